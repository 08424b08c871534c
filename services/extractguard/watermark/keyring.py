"""The key registry's secret half: watermark keys by id, read by the batch audit and nothing else.

The public half (ids, pools, validity windows: `extractguard_gateway.watermark_pools`) travels
with events and case files; the keys do not. They are read from a directory holding one file
per key id (how a Kubernetes Secret mounts: `/etc/extractguard/watermark-keys/<key id>`) or from
one JSON file `{"<key id>": "0x<64-bit key>"}`, and are only ever handed to a detector: a key's
repr, str and the ring's are masked, so a log line or a case file cannot carry one by accident.

>>> ring = KeyRing({"wm-c00": 0xDEADBEEF})
>>> ring
KeyRing(1 keys: wm-c00)
>>> ring.secret("wm-c00")
WatermarkSecret(key_id='wm-c00', key=***)
>>> ring.secret("wm-c00").reveal() == 0xDEADBEEF
True
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

_KEY_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


class KeyRingError(ValueError):
    """A key file is unreadable or a key is out of range (says which id, never the value)."""


class WatermarkSecret:
    """One key, masked everywhere except `reveal()`."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key_id: str, key: int) -> None:
        if not 0 <= key <= 2**64 - 1:
            raise KeyRingError(f"key {key_id}: Philox keys must fit in 64 bits")
        self.key_id = key_id
        self._key = key

    def reveal(self) -> int:
        return self._key

    def __repr__(self) -> str:
        return f"WatermarkSecret(key_id={self.key_id!r}, key=***)"

    __str__ = __repr__


def parse_key(key_id: str, text: str) -> int:
    """A key as an engine's config writes it: decimal, or hex with 0x."""
    value = text.strip()
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        raise KeyRingError(f"key {key_id}: not an integer (decimal, or hex with 0x)") from None


class KeyRing(Mapping[str, WatermarkSecret]):
    def __init__(self, keys: Mapping[str, int]) -> None:
        for key_id in keys:
            if not _KEY_ID.match(key_id):
                raise KeyRingError(f"key id {key_id[:70]!r} is not a registry id")
        self._secrets = {key_id: WatermarkSecret(key_id, key) for key_id, key in keys.items()}

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """From a directory of one file per key id, or a JSON object of id -> key."""
        if path.is_dir():
            return cls(
                {
                    f.name: parse_key(f.name, f.read_text())
                    for f in sorted(path.iterdir())
                    if f.is_file() and not f.name.startswith(".")
                }
            )
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise KeyRingError(f"{path}: not JSON (line {error.lineno})") from None
        if not isinstance(document, dict):
            raise KeyRingError(f"{path}: a JSON object of key id -> key")
        return cls({str(k): parse_key(str(k), str(v)) for k, v in document.items()})

    def secret(self, key_id: str) -> WatermarkSecret:
        return self._secrets[key_id]

    def __getitem__(self, key_id: str) -> WatermarkSecret:
        return self._secrets[key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._secrets)

    def __len__(self) -> int:
        return len(self._secrets)

    def __repr__(self) -> str:
        return f"KeyRing({len(self)} keys: {', '.join(sorted(self._secrets))})"
