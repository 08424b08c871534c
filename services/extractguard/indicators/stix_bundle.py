"""A campaign as a STIX 2.1 bundle, and a peer's bundle as watchlist entries.

What holds a campaign together is its fingerprints (`<kind>:<value>`, as the resolver weighs them):
client IP prefixes and ASNs (as standard STIX patterns on `ipv4-addr`/`ipv6-addr` and
`autonomous-system`, so any STIX consumer can use them), TLS and SDK client fingerprints, prompt
template and near-duplicate band hashes (sketches: the text never leaves the gateway), signup
cohorts and cadence (its timing signature). Each is one `indicator` that `indicates` the
`campaign`, carrying the exact fingerprint (`x_extractguard_fingerprint`) and its weight in the
campaign (`x_extractguard_weight`, decades of surprise) with a confidence from it; the campaign
carries its first and last seen, its confidence and its size. Member accounts are named only when
asked for (`include_accounts`); keys never are.

>>> record = {"campaign_id": "cmp-0123456789ab", "first_seen_ms": 1_795_000_000_000,
...     "last_seen_ms": 1_795_000_600_000, "score": 42.0, "members": ["acct-1", "acct-2", "acct-3"],
...     "members_total": 3, "shaped_members": 3, "fingerprints": [
...         {"fingerprint": "ip_prefix:185.220.101.0/24", "weight": 12.5, "sharers": 3},
...         {"fingerprint": "template:5d2c0e9f11aa4b70", "weight": 8.0, "sharers": 3}]}
>>> bundle = campaign_bundle(record)
>>> sorted({o.type for o in bundle.objects})
['campaign', 'identity', 'indicator', 'relationship']
>>> "acct-1" in bundle.serialize()
False
>>> sorted(watchlist_entries(bundle.serialize()).items())
[('ip_prefix:185.220.101.0/24', 100), ('template:5d2c0e9f11aa4b70', 80)]
"""

from __future__ import annotations

import datetime
import ipaddress
import uuid
from typing import Any

import stix2

PRODUCER = stix2.Identity(
    id="identity--7d3f4c1e-2b0a-5c4e-9f6d-1a2b3c4d5e6f", name="ExtractGuard", identity_class="system",
    created="2026-12-06T00:00:00.000Z", modified="2026-12-06T00:00:00.000Z",
)  # fmt: skip
#: Weight (decades of surprise) at which an indicator's confidence is full.
FULL_CONFIDENCE_WEIGHT = 10.0
_NAMESPACE = uuid.UUID("0b1e7c2a-4c5d-4e8f-9a6b-3c2d1e0f9a8b")


class UnreadableBundle(ValueError):
    pass


def _time(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


def _pattern(fingerprint: str) -> tuple[str, str]:
    """(pattern, pattern type) of a fingerprint: STIX's own where STIX has the object."""
    kind, _, value = fingerprint.partition(":")
    if kind == "ip_prefix":
        version = ipaddress.ip_network(value, strict=False).version
        return f"[ipv{version}-addr:value = '{value}']", "stix"
    if kind == "asn" and value.isdigit():
        return f"[autonomous-system:number = {int(value)}]", "stix"
    return fingerprint, "extractguard-fingerprint"


def _confidence(weight: float) -> int:
    return max(1, min(100, round(100 * weight / FULL_CONFIDENCE_WEIGHT)))


def campaign_bundle(record: dict[str, Any], include_accounts: bool = False) -> stix2.Bundle:
    """The bundle of one campaign record (as the resolver publishes it, or from ClickHouse)."""
    campaign_id = str(record["campaign_id"])
    first, last = _time(int(record["first_seen_ms"])), _time(int(record["last_seen_ms"]))
    extra: dict[str, Any] = {
        "x_extractguard_campaign": campaign_id, "x_extractguard_members_total": int(record.get("members_total") or 0),
        "x_extractguard_shaped_members": int(record.get("shaped_members") or 0),
    }  # fmt: skip
    if include_accounts:
        extra["x_extractguard_accounts"] = sorted(str(a) for a in record.get("members") or [])
    campaign = stix2.Campaign(
        id=f"campaign--{uuid.uuid5(_NAMESPACE, campaign_id)}", name=f"extraction campaign {campaign_id}",
        description="A capability-extraction campaign found by ExtractGuard: many accounts, one actor.",
        first_seen=first, last_seen=last, confidence=_confidence(float(record.get("score") or 0) / 4),
        created_by_ref=PRODUCER.id, allow_custom=True, **extra,
    )  # fmt: skip
    objects: list[Any] = [PRODUCER, campaign]
    for entry in record.get("fingerprints") or []:
        fingerprint, weight = str(entry["fingerprint"]), float(entry["weight"])
        pattern, pattern_type = _pattern(fingerprint)
        indicator = stix2.Indicator(
            id=f"indicator--{uuid.uuid5(_NAMESPACE, campaign_id + '|' + fingerprint)}",
            name=fingerprint.partition(":")[0], pattern=pattern, pattern_type=pattern_type, valid_from=first,
            indicator_types=["malicious-activity"], confidence=_confidence(weight), created_by_ref=PRODUCER.id,
            allow_custom=True, x_extractguard_fingerprint=fingerprint, x_extractguard_weight=weight,
            x_extractguard_sharers=int(entry.get("sharers") or 0),
        )  # fmt: skip
        objects += [indicator, stix2.Relationship(indicator, "indicates", campaign, created_by_ref=PRODUCER.id)]
    return stix2.Bundle(objects=objects, allow_custom=True)


def watchlist_entries(document: str | bytes) -> dict[str, int]:
    """fingerprint -> confidence of every ExtractGuard indicator of a bundle (others are skipped:
    a pattern the linker cannot match is no evidence to it). Raises `UnreadableBundle`."""
    try:
        bundle = stix2.parse(document, allow_custom=True)
    except Exception as error:  # stix2 raises a family of its own and json's
        raise UnreadableBundle(f"not a STIX 2.1 bundle: {error}") from error
    if getattr(bundle, "type", None) != "bundle":
        raise UnreadableBundle(f"not a STIX bundle but a {getattr(bundle, 'type', '?')!r}")
    entries: dict[str, int] = {}
    for item in getattr(bundle, "objects", None) or []:
        fingerprint = item.get("x_extractguard_fingerprint") if item.get("type") == "indicator" else None
        if isinstance(fingerprint, str) and ":" in fingerprint:
            entries[fingerprint] = max(entries.get(fingerprint, 0), int(item.get("confidence") or 0))
    return entries


def bundle_id(document: str | bytes) -> str:
    return str(stix2.parse(document, allow_custom=True).id)
