r"""A user's event file checked whole before anything is sent: every line against the gateway_event
contract the pipeline holds it to, the faults grouped so one refusal says what is wrong, on which
line first, and how many lines share it (an export with short event ids is one fault on 54,667
lines, not 54,667 dead letters and a stopped worker).

>>> import tempfile, pathlib, orjson
>>> from extractguard.paths import schemas_dir
>>> path = pathlib.Path(tempfile.mkdtemp()) / "events.ndjson"
>>> event = orjson.loads((schemas_dir() / "examples" / "gateway_event" / "chat_organic.json").read_bytes())
>>> lines = [{**event, "event_id": f"e{n}"} for n in range(3)] + [event, {**event, "latency_ms": "slow"}]
>>> _ = path.write_bytes(b"\n".join(map(orjson.dumps, lines)) + b"\n\n{not json\n")
>>> faults = EventFileFaults()
>>> valid = [faults.check(number, line) for number, line in numbered_lines(path)]
>>> print(faults.refusal(path).split(": ", 1)[1])
5 of 6 events would be refused by the pipeline; nothing was sent:
  line 1: event_id: schema_violation: event_id must be longer than or equal to 8 characters -- 3 lines
  line 5: latency_ms: wrong_type: latency_ms must be integer -- 1 line
  line 7: (record): not_json: not JSON: unexpected character, expected a string key at char 1 -- 1 line
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from extractguard.contracts.rejection import InvalidMessage
from extractguard.contracts.schemas import decode_json, validate

#: Distinct faults a refusal lists; the rest are counted.
SHOWN = 10


def numbered_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """The file's non-blank lines with their 1-based numbers."""
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                yield number, line


@dataclass(slots=True)
class _Fault:
    first_line: int
    detail: str
    lines: int = 0


class EventFileFaults:
    """The faults of a file of `payload` records (gateway events, or account labels), grouped."""

    def __init__(self, payload: str = "gateway_event", noun: str = "events") -> None:
        self.payload = payload
        self.noun = noun
        self.events = 0
        self.refused = 0
        self._faults: dict[tuple[str, str], _Fault] = {}

    def check(self, number: int, line: bytes) -> dict[str, Any] | None:
        """The record on this line if the pipeline would take it, else None (its fault counted)."""
        self.events += 1
        try:
            return validate(self.payload, decode_json(line))
        except InvalidMessage as error:
            self.refused += 1
            # Grouped by what is wrong, not by the values: "event_id ... 'a1' is too short" and
            # "... 'b2' is too short" are one fault.
            shape = re.sub(r"'[^']*'|\"[^\"]*\"|\d+", "_", error.detail)
            fault = self._faults.setdefault((f"{error.field or '(record)'}: {error.code}", shape),
                                            _Fault(number, error.detail))  # fmt: skip
            fault.lines += 1
            return None

    def refusal(self, path: Path) -> str:
        """Why the file is refused, worst fault first ('' when every event is valid)."""
        if not self.refused:
            return ""
        worst = sorted(self._faults.items(), key=lambda item: (-item[1].lines, item[1].first_line))
        listed = [
            f"  line {fault.first_line}: {where.split(': ')[0]}: {where.split(': ')[1]}: "
            f"{_shown(fault.detail)} -- {fault.lines:,} line{'s' if fault.lines != 1 else ''}"
            for (where, _shape), fault in worst[:SHOWN]
        ]
        if len(worst) > SHOWN:
            listed.append(f"  ... and {len(worst) - SHOWN} other faults")
        head = (f"{path}: {self.refused:,} of {self.events:,} {self.noun} would be refused by the pipeline; "
                "nothing was sent:")  # fmt: skip
        return "\n".join([head, *listed])


def _shown(detail: str) -> str:
    return detail if len(detail) <= 300 else detail[:297] + "..."
