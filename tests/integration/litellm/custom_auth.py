"""Test scaffolding for the LiteLLM proxy: several API keys without LiteLLM's Postgres key store.

LiteLLM keeps virtual keys in Postgres; offline, this custom auth stands in for it with a fixed
table (one key with an org, keys with a team, keys with only a user) and refuses any other key, as
the key store would. It is the proxy's business, not ExtractGuard's: the callback sees what
LiteLLM's own attribution gives it either way.
"""

import json
from pathlib import Path
from typing import Any

from litellm.proxy._types import ProxyErrorTypes, ProxyException, UserAPIKeyAuth

# One key with an org, keys with a team, keys with only a user (the test reads the same file).
KEYS: dict[str, dict[str, Any]] = json.loads((Path(__file__).parent / "keys.json").read_text())


async def user_api_key_auth(request: Any, api_key: str) -> UserAPIKeyAuth:
    who = KEYS.get(api_key)
    if who is None:
        # As the key store refuses: 401, and the proxy logs a failure event.
        raise ProxyException("invalid API key", ProxyErrorTypes.auth_error, "api_key", 401)
    return UserAPIKeyAuth(api_key=api_key, **who)
