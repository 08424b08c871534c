"""The `link.evidence` contract: what a linker partition tells the campaign resolver.

Both ends live in the campaign service, but a message on a topic is still input: the resolver
decodes it against the schema (`link_evidence/v1`, golden examples beside it) before its state
sees it. Before the schema, a record of the wrong shape was read leniently (`list("abc")` as three
accounts, a weight of `NaN`) and reached the resolver's state.

>>> body = encode(60_000, [["ip_prefix:185.220.101.0/24", 0, 60_000, 7.5, ["a", "b"], ["a"], 2, 2, None]])
>>> decode(body).window_end_ms, len(decode(body).evidence)
(60000, 1)
>>> try:
...     decode(b'{"window_end_ms": 1, "evidence": [["ip_prefix:x", 0, 1, NaN]]}')
... except InvalidMessage as error:
...     print(error.code)
not_json
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from extractguard.contracts.rejection import InvalidMessage
from extractguard.contracts.schemas import decode_json, validate

PAYLOAD = "link_evidence"

__all__ = ["PAYLOAD", "EvidenceEnvelope", "InvalidMessage", "decode", "encode"]


@dataclass(frozen=True, slots=True)
class EvidenceEnvelope:
    window_end_ms: int
    evidence: list[list[Any]]  # records as `campaigns.linking.Evidence.to_record` makes them


def encode(window_end_ms: int, records: list[list[Any]]) -> bytes:
    return orjson.dumps({"schema_version": 1, "window_end_ms": window_end_ms, "evidence": records})


def decode(raw: bytes) -> EvidenceEnvelope:
    """Decode and check one envelope; raises `InvalidMessage` with the reason when it is not one."""
    document = decode_json(raw)
    if isinstance(document, dict):
        document.setdefault("schema_version", 1)  # linkers before the schema sent no version
    doc = validate(PAYLOAD, document)
    return EvidenceEnvelope(doc["window_end_ms"], doc["evidence"])
