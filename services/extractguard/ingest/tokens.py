"""Who may write: one named bearer token per gateway, read from a file and reloaded when it changes.

The file (`EXTRACTGUARD_INGEST_TOKENS_FILE`, e.g. a mounted Kubernetes Secret) is a JSON object
`{"gateway-eu-1": "<token>", ...}`. Rotation is a write of the file: the next request after
`reload_s` sees the new set, no restart. Without a file, the single `EXTRACTGUARD_INGEST_TOKEN` is
the token of a gateway named `default`.

A presented token is compared with every configured one in constant time (`hmac.compare_digest`),
all of them every time, so neither a token's bytes nor which gateway it belongs to leaks through
timing. Tokens are never logged, never put in a metric; only gateway names are.

>>> tokens = GatewayTokens({"gw-a": "s3cret-a", "gw-b": "s3cret-b"})
>>> tokens.identify("Bearer s3cret-b"), tokens.identify("Bearer wrong"), tokens.identify("s3cret-b")
('gw-b', None, None)
"""

from __future__ import annotations

import hmac
import os
import threading
import time
from pathlib import Path

import orjson

from extractguard.logs import configure

log = configure("ingest")
BEARER = "Bearer "


class TokensFileError(ValueError):
    pass


def read_tokens_file(path: Path) -> dict[str, str]:
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise TokensFileError(f"{path}: not a readable JSON object of gateway name to token ({error})") from None
    if not isinstance(document, dict) or not document:
        raise TokensFileError(f"{path}: expected a non-empty JSON object of gateway name to token")
    for name, token in document.items():
        if not isinstance(token, str) or len(token) < 16:
            raise TokensFileError(f"{path}: the token of {name!r} must be a string of at least 16 characters")
    return {str(name): token for name, token in document.items()}


class GatewayTokens:
    def __init__(self, tokens: dict[str, str], path: Path | None = None, reload_s: float = 5.0) -> None:
        self._tokens = [(name, token.encode()) for name, token in tokens.items()]
        self.path = path
        self.reload_s = reload_s
        self._checked_at = time.monotonic()
        self._mtime = path.stat().st_mtime_ns if path is not None else 0
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, path: Path, reload_s: float = 5.0) -> GatewayTokens:
        tokens = cls(read_tokens_file(path), path, reload_s)
        log.info("ingest_tokens_loaded", gateways=tokens.names())
        return tokens

    def names(self) -> list[str]:
        return sorted(name for name, _token in self._tokens)

    def _reload_if_changed(self) -> None:
        if self.path is None or time.monotonic() - self._checked_at < self.reload_s:
            return
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                mtime = os.stat(self.path).st_mtime_ns
                if mtime == self._mtime:
                    return
                tokens = read_tokens_file(self.path)
            except (OSError, TokensFileError) as error:
                # A half-written or removed file keeps the tokens in force; say so, without them.
                log.warning("ingest_tokens_unreadable", path=str(self.path), error=str(error)[:300])
                return
            self._tokens, self._mtime = [(n, t.encode()) for n, t in tokens.items()], mtime
            log.info("ingest_tokens_reloaded", gateways=self.names())

    def identify(self, authorization: str) -> str | None:
        """The gateway whose token the `Authorization` header carries, or None."""
        self._reload_if_changed()
        presented = authorization[len(BEARER) :].encode() if authorization.startswith(BEARER) else b""
        found = None
        for name, token in self._tokens:  # every one, whatever matched: constant time in the set
            if hmac.compare_digest(presented, token) and presented:
                found = name
        return found
