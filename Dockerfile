# syntax=docker/dockerfile:1
# The one ExtractGuard image. Every service is a subcommand of the `extractguard` console script,
# so a Deployment runs `ingest`, `detect`, `campaigns`, `lander`, `alerter` (or the setup steps
# `topics` and `migrate`) by passing the subcommand as its args.
#
#   docker build -t extractguard:0.1.0 .
#   docker run --rm -p 8480:8480 -e KAFKA_BOOTSTRAP_SERVERS=broker:9092 extractguard:0.1.0 ingest
#
# Pin the base by digest (python:3.11-slim-bookworm@sha256:...) in the release pipeline, which
# can ask the image registry for it; the tag below fixes the Python minor version and the Debian
# release, and stays the same in both stages so the virtualenv copied between them still runs.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
# Dependencies first, exactly as locked and without resolving anything again (--no-deps), in a
# layer of their own that is reused until requirements.lock changes. Plain `==` pins, no
# --require-hashes: the lock is generated offline from the tested virtualenv, where the hashes
# of every platform's files cannot be known (see infra/docker/lock.py).
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --no-deps -r requirements.lock
# The project itself and its gateway distribution (both wheels carry their schemas inside), then a
# check that the lock is whole.
COPY pyproject.toml README.md ./
COPY schemas/ schemas/
COPY services/ services/
COPY gateway/ gateway/
RUN /opt/venv/bin/pip install --no-deps ./gateway . \
 && /opt/venv/bin/pip check

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="extractguard" \
      org.opencontainers.image.description="Detect capability-extraction campaigns against an LLM API while they run." \
      org.opencontainers.image.licenses="Apache-2.0"
# A fixed UID/GID that the Helm chart's securityContext names (runAsUser: 10001).
RUN groupadd --system --gid 10001 extractguard \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/extractguard --no-create-home \
      --shell /usr/sbin/nologin extractguard \
 && mkdir -p /var/lib/extractguard \
 && chown 10001:10001 /var/lib/extractguard
COPY --from=builder /opt/venv /opt/venv
# Listen on every interface (the code's defaults are loopback, right for a laptop, unreachable
# in a container); keep state under EXTRACTGUARD_HOME, which the chart mounts writable while the
# root filesystem stays read-only; no .pyc writes at run time (pip compiled them at build).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EXTRACTGUARD_HOME=/var/lib/extractguard \
    EXTRACTGUARD_LOG_FORMAT=json \
    EXTRACTGUARD_INGEST_HOST=0.0.0.0 \
    EXTRACTGUARD_LANDER_SQL_HOST=0.0.0.0 \
    EXTRACTGUARD_DETECT_WEB_BIND=0.0.0.0 \
    EXTRACTGUARD_CAMPAIGNS_WEB_BIND=0.0.0.0 \
    EXTRACTGUARD_ALERTER_WEB_HOST=0.0.0.0
WORKDIR /var/lib/extractguard
USER 10001:10001
# ingest (HTTP events), detect, campaigns (Faust web: /metrics), lander (health, metrics, SQL),
# alerter (health, metrics).
EXPOSE 8480 6066 6067 8481 6068 6069
# No HEALTHCHECK: each subcommand listens on its own port, and Kubernetes ignores HEALTHCHECK
# anyway; the chart's probes are the health checks.
ENTRYPOINT ["extractguard"]
CMD ["--help"]
