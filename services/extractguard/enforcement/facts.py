"""What is known of an account besides its traffic: its age and what it pays. Used by the policy
(young accounts only, where a rule says so) and by the approval gate (a long-standing paying
account waits for a person). Unknown is unknown: a missing fact never counts for or against.

The operator's billing export as JSON lines, one account a line:
`{"account_id": "a-1", "created_ms": 1700000000000, "monthly_spend_usd": 250.0}`.

>>> facts = AccountFacts({"a-1": AccountFact(created_ms=0, monthly_spend_usd=250.0)})
>>> facts.get("a-1").age_days(now_ms=400 * 86_400_000), facts.get("a-2")
(400.0, None)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class AccountFact:
    created_ms: int | None = None
    monthly_spend_usd: float | None = None

    def age_days(self, now_ms: int) -> float | None:
        return None if self.created_ms is None else max(0.0, (now_ms - self.created_ms) / DAY_MS)


class AccountFacts:
    def __init__(self, facts: dict[str, AccountFact] | None = None, path: Path | None = None) -> None:
        self.facts = dict(facts or {})
        self.path = path
        self._stamp: float | None = None
        self.reload_if_changed()

    def reload_if_changed(self) -> bool:
        if self.path is None or not self.path.exists() or self.path.stat().st_mtime == self._stamp:
            return False
        self._stamp = self.path.stat().st_mtime
        loaded: dict[str, AccountFact] = {}
        for number, line in enumerate(self.path.read_bytes().splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
                loaded[str(row["account_id"])] = AccountFact(row.get("created_ms"), row.get("monthly_spend_usd"))
            except (orjson.JSONDecodeError, KeyError, TypeError) as error:
                raise ValueError(f"{self.path}:{number}: not an account fact ({error})") from None
        self.facts = loaded
        return True

    def get(self, account: str) -> AccountFact | None:
        return self.facts.get(account)
