"""Alert rules: which detections page someone, which alert they update, and which SQL over
ClickHouse is asked on a schedule. Rules are declarative YAML files (`rules/*.yaml` in this
package are the shipped defaults); this module is what a rule is and how a file becomes rules.

A stream rule matches detections by detector, entity kind and minimum severity; its dedup key
(a template over the rule and the detection's entity) is stable, so a burst on one proxy prefix
that lasts an hour is one alert that updates, not sixty pages. A rule with `group` folds the
detections of one window that share accounts into one alert naming every entity, so a burst
seen at once on an account, its org, key, prefix, ASN and JA4 pages once.

A file is validated as it loads (pydantic models); an error names the file, the line and the
field, from the YAML node marks that ruamel.yaml keeps:

>>> import tempfile, pathlib
>>> bad = pathlib.Path(tempfile.mkdtemp()) / "bad.yaml"
>>> _ = bad.write_text("version: 1\\nstream_rules:\\n  - name: x\\n    summary: s\\n    detectors: [burst]\\n"
...                    "    min_severity: loud\\n")
>>> try:
...     load_rule_files([bad])
... except RuleFileError as error:
...     print(str(error).split(": ", 1)[0].rsplit("/", 1)[1], error.field)
bad.yaml:6 stream_rules[0].min_severity
"""

from __future__ import annotations

import string
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from extractguard.contracts.detectors import DETECTORS
from extractguard.yaml_documents import DocumentError, load_document

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
Severity = Literal["info", "warning", "critical"]
SHIPPED_RULES_DIR = Path(__file__).parent / "rules"
#: What a dedup key template may name: stable per rule and entity, and rebuildable from an alert.
DEDUP_FIELDS = frozenset({"rule", "entity_kind", "entity"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Grouping(_Strict):
    """Detections of this rule whose accounts overlap, seen within `within_s` of each other (event
    time), are one alert: the first one's key, every entity named."""

    by: Literal["accounts"] = "accounts"
    within_s: int = Field(default=120, ge=0)


class RecordOnly(_Strict):
    """An alert naming one of these orgs and fewer than `below_accounts` accounts is recorded
    (alerts topic, ClickHouse) but not sent to on-call: a known org's evaluation sweep from one
    account is expected; linked to other accounts it pages."""

    orgs: frozenset[str]
    below_accounts: int = Field(default=2, ge=1)


class AlertRule(_Strict):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[a-z][a-z0-9_]*$")
    summary: str = Field(min_length=1, max_length=512)
    detectors: frozenset[str] = Field(min_length=1)
    entity_kinds: frozenset[str] | None = None
    min_severity: Severity = "warning"
    dedup_key: str = "{rule}:{entity_kind}:{entity}"
    group: Grouping | None = None
    record_only: RecordOnly | None = None
    enabled: bool = Field(
        default=True, description="false: shipped off, switched on by EXTRACTGUARD_ALERTER_EXTRA_RULES"
    )

    @field_validator("detectors")
    @classmethod
    def _declared(cls, detectors: frozenset[str]) -> frozenset[str]:
        # Checked against the declared detectors at load: a rule naming a detector that does not
        # exist (a typo, a removed one) would silently never fire.
        unknown = detectors - DETECTORS
        if unknown:
            raise ValueError(f"unknown detector(s) {sorted(unknown)}; the detectors are {sorted(DETECTORS)}")
        return detectors

    @field_validator("dedup_key")
    @classmethod
    def _known_fields(cls, template: str) -> str:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        unknown = names - DEDUP_FIELDS
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}; a dedup key may use {sorted(DEDUP_FIELDS)}")
        if "entity" not in names:
            raise ValueError("a dedup key must name {entity}, or one alert would cover every entity")
        return template

    def covers(self, detection: dict[str, Any]) -> bool:
        """Whether the detection is of this rule's kind, whatever its severity."""
        return detection["detector"] in self.detectors and (
            self.entity_kinds is None or detection["entity_kind"] in self.entity_kinds
        )

    def matches(self, detection: dict[str, Any]) -> bool:
        return self.covers(detection) and SEVERITY_RANK[detection["severity"]] >= SEVERITY_RANK[self.min_severity]

    def key_for(self, entity_kind: str, entity: str) -> str:
        return self.dedup_key.format(rule=self.name, entity_kind=entity_kind, entity=entity)

    def dedup_key_of(self, detection: dict[str, Any]) -> str:
        return self.key_for(detection["entity_kind"], detection["entity"])


class SqlRule(_Strict):
    """A query over ClickHouse asked every `interval_s`; each row whose `value_column` reaches
    `threshold` is an alert on the entity in `entity_column` (accounts from `accounts_column`).
    `{now}` in the query stands for the evaluation time."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[a-z][a-z0-9_]*$")
    summary: str = Field(min_length=1, max_length=512)
    query: str = Field(min_length=1)
    interval_s: int = Field(default=300, ge=1)
    entity_kind: str = Field(min_length=1)
    entity_column: str = Field(min_length=1)
    value_column: str = Field(min_length=1)
    threshold: float
    accounts_column: str | None = None
    severity: Severity = "warning"
    enabled: bool = True

    def query_at(self, now_ms: int) -> str:
        """The query with `{now}` as the evaluation time (a DateTime64 literal)."""
        return self.query.replace("{now}", f"fromUnixTimestamp64Milli(toInt64({int(now_ms)}), 'UTC')")

    @field_validator("query")
    @classmethod
    def _read_only(cls, query: str) -> str:
        first = query.lstrip().split(None, 1)[0].upper() if query.strip() else ""
        if first not in {"SELECT", "WITH"}:
            raise ValueError("a SQL rule is one SELECT (or WITH ... SELECT) statement")
        return query


class RuleFile(_Strict):
    version: Literal[1]
    stream_rules: list[AlertRule] = Field(default_factory=list)
    sql_rules: list[SqlRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> RuleFile:
        names = [r.name for r in self.stream_rules] + [r.name for r in self.sql_rules]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"rule names repeated: {repeated}")
        return self


class RuleFileError(DocumentError):
    """A rule file that does not load: says which file, line and field, and why."""


@dataclass(frozen=True, slots=True)
class RuleSet:
    stream: tuple[AlertRule, ...]
    sql: tuple[SqlRule, ...]
    optional: tuple[AlertRule, ...]  # shipped switched off

    def with_optional(self, names: Iterable[str]) -> tuple[AlertRule, ...]:
        wanted = set(names)
        return self.stream + tuple(r for r in self.optional if r.name in wanted)


def load_rule_file(path: Path) -> RuleFile:
    return load_document(path, RuleFile, RuleFileError, "a mapping with `version` and `stream_rules`/`sql_rules`")


def load_rule_files(paths: Iterable[Path]) -> RuleSet:
    stream: list[AlertRule] = []
    sql: list[SqlRule] = []
    optional: list[AlertRule] = []
    seen: dict[str, Path] = {}
    for path in paths:
        loaded = load_rule_file(path)
        for name in [r.name for r in loaded.stream_rules] + [r.name for r in loaded.sql_rules]:
            if name in seen:
                raise RuleFileError(path, None, name, f"rule name also used in {seen[name]}")
            seen[name] = path
        stream += [r for r in loaded.stream_rules if r.enabled]
        optional += [r for r in loaded.stream_rules if not r.enabled]
        sql += [r for r in loaded.sql_rules if r.enabled]
    return RuleSet(tuple(stream), tuple(sql), tuple(optional))


def rule_paths(directory: Path | None = None) -> list[Path]:
    """The rule files of a folder (the shipped defaults when none is given), in name order."""
    return sorted((directory or SHIPPED_RULES_DIR).glob("*.yaml"))


@cache
def shipped_rules() -> RuleSet:
    return load_rule_files(rule_paths())


DEFAULT_RULES: tuple[AlertRule, ...] = shipped_rules().stream
#: Rules an operator can switch on (EXTRACTGUARD_ALERTER_EXTRA_RULES); off by default because a
#: campaign pages once for all its accounts, where such a rule pages once per account.
OPTIONAL_RULES: tuple[AlertRule, ...] = shipped_rules().optional
