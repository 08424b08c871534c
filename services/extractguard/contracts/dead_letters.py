"""Dead-letter records: the original bytes, plus headers that say why, from where and from whom.

A DLQ message can always be found again from its headers (`eg-source-topic`, `-partition`,
`-offset`, or `eg-source` for HTTP) and replayed once the cause is fixed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from extractguard.contracts.envelope import KafkaHeaders
from extractguard.contracts.rejection import InvalidMessage


@dataclass(frozen=True, slots=True)
class DeadLetter:
    original: bytes
    error: InvalidMessage
    service: str
    source: str
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None
    line: int | None = None

    def headers(self) -> KafkaHeaders:
        out: KafkaHeaders = [
            ("eg-reason-code", str(self.error.code).encode()),
            ("eg-reason", self.error.detail.encode()[:1024]),
            ("eg-service", self.service.encode()),
            ("eg-source", self.source.encode()),
            ("eg-rejected-at-ms", str(int(time.time() * 1000)).encode()),
        ]
        if self.error.field:
            out.append(("eg-field", self.error.field.encode()))
        if self.source_topic is not None:
            out += [
                ("eg-source-topic", self.source_topic.encode()),
                ("eg-source-partition", str(self.source_partition).encode()),
                ("eg-source-offset", str(self.source_offset).encode()),
            ]
        if self.line is not None:
            out.append(("eg-source-line", str(self.line).encode()))
        return out
