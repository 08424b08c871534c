"""Small readings every adapter needs: a prompt's text from chat messages, numbers that may lie."""

from __future__ import annotations

from typing import Any

from extractguard_gateway.adapters.base import AdapterSettings
from extractguard_gateway.addresses import client_address


def last_user_text(messages: Any) -> str | None:
    """The text of the last user turn of OpenAI-style or OTel GenAI messages (parts), if any."""
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content", message.get("parts"))
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            texts = [
                part.get("text") or part.get("content") or ""
                for part in content
                if isinstance(part, dict) and part.get("type") in ("text", None)
            ]
            return "\n".join(t for t in texts if isinstance(t, str))
    return None


def prior_turns(messages: Any) -> int:
    """How many assistant turns came before this request (0 for a single-turn request)."""
    if not isinstance(messages, list):
        return 0
    return sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")


def count(value: Any) -> int | None:
    """A non-negative integer count, or None (a string "12" from a log becomes 12)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def client(settings: AdapterSettings, forwarded_for: str | None, peer: str | None) -> tuple[str | None, int | None]:
    """The client address (see `addresses.client_address`) and its ASN if the operator has a database."""
    address = client_address(forwarded_for, peer, settings.trusted_proxies)
    asn = settings.asn_database.lookup(address) if address and settings.asn_database else None
    return address, asn


def sdk_of(user_agent: str | None) -> str | None:
    """The product token of a user agent: "openai-python/1.54.0 (x)" -> "openai-python"."""
    if not user_agent:
        return None
    token = user_agent.split(" ", 1)[0]
    return token.split("/", 1)[0] if "/" in token else None
