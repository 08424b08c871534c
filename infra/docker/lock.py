"""Write `requirements.lock`: the exact versions the container image installs.

The image must run what the tests ran, so the pins come from this checkout's virtualenv
(`pip freeze`), kept to the packages that `extractguard` needs at run time: the closure of its
declared dependencies, extras included (`aiokafka[lz4]`, `clickhouse-connect[chdb]`). Dev tools
(pytest, mypy, ruff, hadolint, helm) and the `eval` extra (matplotlib, used only to draw the
scorecard's plots) stay out of the image.

    .venv/bin/python infra/docker/lock.py > requirements.lock
"""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

PROJECT = "extractguard"
# Built from this checkout by the Dockerfile (gateway/), not pinned: their own dependencies are.
FIRST_PARTY = {canonicalize_name("extractguard-gateway")}
HEADER = """\
# Runtime pins of the extractguard image (Dockerfile). Generated, do not edit by hand:
#   .venv/bin/python infra/docker/lock.py > requirements.lock
# Plain `==` pins without hashes: hashes must come from the registry's files for every platform
# the image is built for, which this offline generator cannot see.
"""


def runtime_closure(project: str) -> set[NormalizedName]:
    """Names of every installed distribution `project` needs at run time, itself excluded."""
    needed: set[NormalizedName] = set()
    pending: list[tuple[str, frozenset[str]]] = [(project, frozenset())]
    visited: set[tuple[NormalizedName, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        key = (canonicalize_name(name), extras)
        if key in visited:
            continue
        visited.add(key)
        try:
            requires = distribution(name).requires or []
        except PackageNotFoundError:
            sys.exit(f"{name} is required by {project} but not installed: run `make install` first")
        needed.add(key[0])
        for line in requires:
            requirement = Requirement(line)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker and not any(requirement.marker.evaluate(env) for env in environments):
                continue
            pending.append((requirement.name, frozenset(requirement.extras)))
    needed.discard(canonicalize_name(project))
    return needed


def main() -> None:
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"], check=True, capture_output=True, text=True
    ).stdout.splitlines()
    needed = runtime_closure(PROJECT) - FIRST_PARTY
    pins = {canonicalize_name(line.split("==")[0]): line for line in frozen if "==" in line}
    missing = needed - pins.keys()
    if missing:
        sys.exit(f"not pinned by pip freeze (installed from a path or URL?): {sorted(missing)}")
    sys.stdout.write(HEADER + "".join(f"{pins[name]}\n" for name in sorted(needed)))


if __name__ == "__main__":
    main()
