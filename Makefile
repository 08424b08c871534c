# ExtractGuard — the two commands that matter: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install litellm-venv kafka-up kafka-down kafka-status topics demo eval test test-unit lint format sql clean helm-check bench watermark-eval chaos fuzz

help:
	@echo "make demo         run Kafka, every service and a simulated campaign; print and write a report"
	@echo "make eval         labelled scenarios through the pipeline -> reports/eval/scorecard.{json,md} (SCALE=full)"
	@echo "make test         unit + integration tests (starts the local Kafka broker)"
	@echo "make watermark-eval  the watermark audit measured on CPU -> reports/watermark/watermark.{json,md} (SCALE=small)"
	@echo "make bench        each stage's speed and the pipeline's, vs a naive baseline -> reports/bench/bench.json"
	@echo "make chaos        one fault per run (SIGKILL, broker stop/kill, SIGSTOP) vs a clean run -> reports/chaos/chaos.{json,md}"
	@echo "make chaos CLUSTER=3  the same on a local 3-node cluster: leader kill, node away, rolling restart, controller kill"
	@echo "make fuzz         hostile input: >10,000 generated inputs to every decoder and the ingest -> reports/fuzz/"
	@echo "make lint         ruff and mypy"
	@echo "make kafka-up     start the local Kafka broker (kafka-down stops it)"

$(STAMP): pyproject.toml gateway/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ./gateway -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# The real LiteLLM proxy with the shipped callback, in an environment of its own (as a gateway
# runs it), for tests/integration/test_litellm_proxy.py.
LITELLM_VENV ?= .venv-litellm
LITELLM_VERSION ?= 1.108.7
$(LITELLM_VENV)/.installed: gateway/pyproject.toml
	@test -x $(LITELLM_VENV)/bin/python || $(PYTHON) -m venv $(LITELLM_VENV)
	$(LITELLM_VENV)/bin/pip install --quiet 'litellm[proxy]==$(LITELLM_VERSION)' -e './gateway[kafka]'
	@touch $@

litellm-venv: $(LITELLM_VENV)/.installed

kafka-up:
	@infra/kafka/kafka.sh up

kafka-down:
	@infra/kafka/kafka.sh down

kafka-status:
	@infra/kafka/kafka.sh status

topics: install
	$(BIN)/extractguard topics

demo: install
	$(BIN)/extractguard demo --seconds $${DEMO_SECONDS:-120}

eval: install
	$(BIN)/extractguard eval --scale $${SCALE:-default}

# Like `make demo`, `make test` stops the broker when it was the one to start it. (No $(MAKE) in
# this line: `make -n` runs any line that has one, and this one starts a broker.)
test: install litellm-venv
	@started=0; infra/kafka/kafka.sh status >/dev/null 2>&1 || { infra/kafka/kafka.sh up && started=1; }; \
	trap '[ $$started = 0 ] || infra/kafka/kafka.sh down' EXIT; \
	$(BIN)/python infra/helm/check.py && $(BIN)/extractguard topics && $(BIN)/pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/pytest -m "not kafka and not clickhouse" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check services tests infra benchmarks gateway/src
	$(BIN)/ruff format --check services tests infra benchmarks gateway/src
	$(BIN)/mypy
	$(BIN)/mypy infra benchmarks

format: install
	$(BIN)/ruff format services tests infra benchmarks gateway/src
	$(BIN)/ruff check --fix services tests infra benchmarks gateway/src

# The watermark audit measured without a GPU (services/extractguard/watermark/measurement.py): no
# broker, no ClickHouse; a few minutes on two cores.
watermark-eval: install
	$(BIN)/python -m extractguard.watermark.measurement --scale $${SCALE:-default} --out reports/watermark

bench: install kafka-up
	$(BIN)/extractguard topics
	$(BIN)/python benchmarks/bench.py

# Fault injection over the real pipeline; CHAOS_ARGS="--fault sigkill-detect" for one fault.
# CLUSTER=3: on a local 3-node cluster (started if need be, left running like the single broker),
# with the faults of a replicated cluster -> reports/chaos/cluster/.
CLUSTER ?= 1
chaos: install
	@export EXTRACTGUARD_KAFKA_NODES=$(CLUSTER); infra/kafka/kafka.sh up && \
	if [ "$(CLUSTER)" != 1 ]; then export KAFKA_BOOTSTRAP_SERVERS=$$(infra/kafka/kafka.sh bootstrap); fi && \
	$(BIN)/extractguard topics && $(BIN)/extractguard chaos $(CHAOS_ARGS)

# Property-based fuzzing of every decoder and the HTTP ingest (schemathesis on its OpenAPI
# document too); `make test` runs the same properties with fewer examples.
fuzz: install
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -p no:randomly tests/unit/test_hostile_input.py tests/unit/test_ingest_hostile.py $(PYTEST_ARGS)

# Render the Helm chart with each helm/extractguard/ci values file and validate every manifest, offline.
helm-check: install
	$(BIN)/python infra/helm/check.py

clean:
	rm -rf .extractguard/demo reports
