"""Why a message is refused: one exception type carrying a machine-readable reason code.

Every stage that validates raises `InvalidMessage`; the caller keeps the original bytes in the
topic's DLQ (or answers the HTTP client) with `code` and `detail`, never drops it silently.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    NOT_JSON = "not_json"
    INVALID_UTF8 = "invalid_utf8"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    UNKNOWN_FIELD = "unknown_field"
    UNKNOWN_SCHEMA_VERSION = "unknown_schema_version"
    OUT_OF_RANGE = "out_of_range"
    OVERSIZED_FIELD = "oversized_field"
    OVERSIZED_EVENT = "oversized_event"
    OVERSIZED_BODY = "oversized_body"
    FUTURE_TIMESTAMP = "future_timestamp"
    SCHEMA_VIOLATION = "schema_violation"
    UNREADABLE_PAYLOAD = "unreadable_payload"  # a gateway adapter could not read its product's payload


class InvalidMessage(Exception):
    """A message that does not meet its topic's contract.

    `field` names the offending field as a dotted path when one can be named.
    """

    def __init__(self, code: Reason, detail: str, field: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.field = field

    def as_dict(self) -> dict[str, str]:
        out = {"code": str(self.code), "detail": self.detail}
        if self.field:
            out["field"] = self.field
        return out


class TooManyInvalid(RuntimeError):
    """Nearly everything is being rejected: likely a bad deploy upstream, so stop instead of
    quietly routing all traffic to the DLQ."""


class InvalidRateGuard:
    """Trips when, over the last `window` messages, more than `max_fraction` were invalid.

    >>> guard = InvalidRateGuard(max_fraction=0.5, window=10)
    >>> for _ in range(4): guard.record(valid=True)
    >>> for _ in range(5): guard.record(valid=False)
    >>> guard.record(valid=False)
    Traceback (most recent call last):
    ...
    extractguard.contracts.rejection.TooManyInvalid: 6 of the last 10 messages were invalid (limit 50%)
    """

    def __init__(self, max_fraction: float, window: int = 1000) -> None:
        self.max_fraction = max_fraction
        self.window = window
        self._seen = 0
        self._invalid = 0.0

    def record(self, valid: bool, count: int = 1) -> None:
        # A tumbling count window: cheap, and a burst of garbage still trips it within one window.
        self._seen += count
        if not valid:
            self._invalid += count
        if self._seen >= self.window:
            invalid, seen = self._invalid, self._seen
            self._seen, self._invalid = 0, 0
            if invalid > self.max_fraction * seen:
                raise TooManyInvalid(
                    f"{invalid:.0f} of the last {seen} messages were invalid (limit {self.max_fraction:.0%})"
                )
