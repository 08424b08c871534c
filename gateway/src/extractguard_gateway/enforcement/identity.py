"""Who a request is from, in the terms decisions use: the same attribution the LiteLLM adapter
gives its events (account = the key's user, else `team:<team>`, else `key:<keyed hash of the key
hash>`; org = the key's org, else its team; the API key as its keyed hash; the client's /24 or /48
prefix from the nearest untrusted hop). A decision on an account in ExtractGuard's events therefore
names the same string the bouncer derives here.

>>> identity = litellm_identity(user_id="u-1", team_id="t", org_id=None, key_hash="abc", forwarded_for=None,
...     peer="203.0.113.9", secret=b"s", trusted=())
>>> identity.account, identity.org, identity.ip_prefix
('u-1', 'team:t', '203.0.113.0/24')
"""

from __future__ import annotations

from collections.abc import Sequence

from extractguard_gateway.addresses import Network, client_address
from extractguard_gateway.enforcement.cache import Identity
from extractguard_gateway.events import api_key_hash, client_ip_prefix, keyed_hash


def prefix_of(address: str | None) -> str | None:
    if not address:
        return None
    try:
        return client_ip_prefix(address)
    except ValueError:
        return None


def litellm_identity(
    *,
    user_id: str | None,
    team_id: str | None,
    org_id: str | None,
    key_hash: str | None,
    forwarded_for: str | None,
    peer: str | None,
    secret: bytes,
    trusted: Sequence[Network],
) -> Identity:
    account = user_id or (f"team:{team_id}" if team_id else None)
    if account is None and key_hash:
        account = f"key:{keyed_hash(key_hash, secret)}"
    return Identity(
        account=account,
        api_key=api_key_hash(key_hash, secret) if key_hash else None,
        org=org_id or (f"team:{team_id}" if team_id else None),
        ip_prefix=prefix_of(client_address(forwarded_for, peer, trusted)),
    )
