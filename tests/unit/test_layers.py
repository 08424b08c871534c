"""Dependencies point one way: no pipeline stage imports another stage's modules.

What passes between two stages is a contract in `contracts/`; shared mechanisms sit at the top
level of the package (settings, checkpoints, health, ...). The orchestrators that run several
stages together (cli, demo, evaluation, simulator) may import any of them. A stage reaching into
another is how an import circle starts: detection and campaigns had one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import extractguard

STAGES = {"gateway", "ingest", "detection", "campaigns", "lander", "alerting", "enforcement"}
#: Stage -> the other stages it may use. The HTTP ingest is the gateway's door and builds its events.
ALLOWED = {"ingest": {"gateway"}}
PACKAGE = Path(extractguard.__file__).parent


def _imports_by_package() -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).parts
        if len(parts) < 2:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            modules = []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            for module in modules:
                if module.startswith("extractguard."):
                    found.setdefault(parts[0], set()).add((module.split(".")[1], str(path.relative_to(PACKAGE))))
    return found


def test_no_stage_imports_another_stage() -> None:
    crossings = [
        f"{where} imports extractguard.{target}"
        for package, targets in _imports_by_package().items()
        if package in STAGES
        for target, where in targets
        if target in STAGES and target != package and target not in ALLOWED.get(package, set())
    ]
    assert not crossings, "stages must talk through contracts/:\n" + "\n".join(sorted(crossings))


def test_contracts_import_no_stage() -> None:
    crossings = [where for target, where in _imports_by_package().get("contracts", set()) if target in STAGES]
    assert not crossings
