"""Campaign indicators: the STIX 2.1 bundle of a campaign (valid to the `stix2` library, no account,
key or text unless asked), its round trip through `indicators export` / `indicators import` into
the linker's watchlist, and the watchlist as prior evidence: it links a faint fleet sooner and never
links accounts that only share a popular fingerprint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import stix2
from click.testing import CliRunner

from extractguard.campaigns import watchlist as watchlists
from extractguard.campaigns.linking import FingerprintLinker, surprise
from extractguard.campaigns.watchlist import MAX_PRIOR, Watchlist
from extractguard.cli import main
from extractguard.contracts.schemas import validate

KEY_HASH = "1347dc54c0f0d45688cfb91a36f53772"
RECORD: dict[str, Any] = {
    "schema_version": 1, "campaign_id": "cmp-0123456789ab", "status": "active", "first_seen_ms": 1_795_000_000_000,
    "last_seen_ms": 1_795_086_400_000, "updated_ms": 1_795_086_400_000, "severity": "critical", "score": 48.0,
    "members": [f"acct-{i:03d}" for i in range(40)], "members_total": 40, "shaped_members": 38,
    "fingerprints": [
        {"fingerprint": "ip_prefix:185.220.101.0/24", "weight": 14.2, "sharers": 40},
        {"fingerprint": "ip_prefix:2001:db8:abcd::/48", "weight": 6.5, "sharers": 12},
        {"fingerprint": "asn:209588", "weight": 11.0, "sharers": 40},
        {"fingerprint": "tls_ja4:t13d1516h2_8daaf6152771_e5627efa2ab1", "weight": 9.1, "sharers": 38},
        {"fingerprint": "template:5d2c0e9f11aa4b70", "weight": 7.4, "sharers": 30},
        {"fingerprint": "prompt_band:3:2864101943", "weight": 6.2, "sharers": 20},
        {"fingerprint": "cadence:3600", "weight": 6.1, "sharers": 40},
    ],
}  # fmt: skip


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EXTRACTGUARD_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _export(tmp_path: Path, *extra: str) -> str:
    record = tmp_path / "record.json"
    record.write_bytes(orjson.dumps({**RECORD, "api_key_hash": KEY_HASH}))
    out = tmp_path / "bundle.json"
    result = CliRunner().invoke(main, ["indicators", "export", "cmp-0123456789ab", "--record", str(record),
                                       "--out", str(out), *extra])  # fmt: skip
    assert result.exit_code == 0, result.output
    return out.read_text()


def test_the_bundle_validates_and_names_no_account_key_or_text_by_default(tmp_path: Path) -> None:
    document = _export(tmp_path)
    bundle = stix2.parse(document, allow_custom=True)
    assert bundle.type == "bundle" and json.loads(document)["type"] == "bundle"
    kinds = [o.type for o in bundle.objects]
    assert kinds.count("indicator") == len(RECORD["fingerprints"]) == kinds.count("relationship")
    (campaign,) = [o for o in bundle.objects if o.type == "campaign"]
    assert (campaign.first_seen.year, campaign.last_seen > campaign.first_seen) == (2026, True)
    patterns = {o.x_extractguard_fingerprint: o.pattern for o in bundle.objects if o.type == "indicator"}
    assert patterns["ip_prefix:185.220.101.0/24"] == "[ipv4-addr:value = '185.220.101.0/24']"
    assert patterns["ip_prefix:2001:db8:abcd::/48"] == "[ipv6-addr:value = '2001:db8:abcd::/48']"
    assert patterns["asn:209588"] == "[autonomous-system:number = 209588]"
    assert not any(member in document for member in RECORD["members"]) and KEY_HASH not in document
    with_accounts = _export(tmp_path, "--include-accounts")
    assert all(member in with_accounts for member in RECORD["members"]) and KEY_HASH not in with_accounts


def test_an_exported_bundle_imports_as_a_watchlist_naming_its_bundle(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = _export(tmp_path)
    (tmp_path / "peer.json").write_text(document)
    result = CliRunner().invoke(main, ["indicators", "import", str(tmp_path / "peer.json")])
    assert result.exit_code == 0, result.output
    watchlist = Watchlist.load()
    assert set(watchlist.entries) == {f["fingerprint"] for f in RECORD["fingerprints"]}
    bundle_id = json.loads(document)["id"]
    assert watchlist.bundle("asn:209588") == bundle_id and (home / "watchlists" / f"{bundle_id}.json").exists()
    assert watchlist.prior("ip_prefix:185.220.101.0/24") == MAX_PRIOR  # weight 14.2: full confidence
    assert 0 < watchlist.prior("cadence:3600") < MAX_PRIOR
    # The linker's view of the data home picks the import up, and a campaign record names the bundle.
    monkeypatch.setattr(watchlists, "_CURRENT", watchlists._Current())
    assert watchlists.current().bundle("asn:209588") == bundle_id
    named = watchlists.named_in({**RECORD, "fingerprints": RECORD["fingerprints"][:3]})
    validate("campaign", named)
    assert named["watchlists"] == [
        {"bundle": bundle_id, "fingerprints": [f["fingerprint"] for f in RECORD["fingerprints"][:3]]}
    ]
    (tmp_path / "junk.json").write_text('{"type": "indicator"}')
    refused = CliRunner().invoke(main, ["indicators", "import", str(tmp_path / "junk.json")])
    assert refused.exit_code != 0 and "not a STIX" in refused.output


def _weigh(linker: FingerprintLinker, fingerprint: str, sharers: list[tuple[str, str, bool]]) -> list[str]:
    linker.add(0, 0, 60_000, [(fingerprint, len(sharers), sharers)])
    return [e.fingerprint for e in linker.add(0, 60_000, 120_000, [])]


def test_a_watchlisted_fingerprint_links_a_fleet_too_faint_to_link_alone() -> None:
    # Five shaped accounts of ten sharers at a base rate of 5%: 4.2 decades, below the linker's 6.
    faint = [(f"c{i}", f"o{i}", True) for i in range(5)] + [(f"u{i}", f"p{i}", False) for i in range(5)]
    assert 3 < surprise(5, 10, 0.05) < 6
    prefix = "ip_prefix:198.51.100.0/24"
    assert _weigh(FingerprintLinker(60_000, min_base_rate=0.05, watchlist=Watchlist()), prefix, faint) == []
    watched = Watchlist({prefix: ("bundle--peer", 100)})
    assert _weigh(FingerprintLinker(60_000, min_base_rate=0.05, watchlist=watched), prefix, faint) == [prefix]


def test_a_watchlist_of_popular_organic_fingerprints_links_no_organic_account() -> None:
    # A peer's bundle naming what everyone uses: a big cloud's ASN, the top SDK, a public CoT wrapper.
    popular = ["asn:16509", "sdk:openai-python", "template:0f0f0f0f0f0f0f0f"]
    watched = Watchlist(dict.fromkeys(popular, ("bundle--popular", 100)))
    organic = [(f"u{i}", f"p{i}", i % 50 == 0) for i in range(2000)]  # 40 shaped-looking among 2,000
    for fingerprint in popular:
        assert _weigh(FingerprintLinker(60_000, watchlist=watched), fingerprint, organic) == [], fingerprint
    # The same sharing by a fleet (most sharers shaped) is linked: the test above is not vacuous.
    fleet = [(f"c{i}", f"o{i}", True) for i in range(40)]
    assert _weigh(FingerprintLinker(60_000, watchlist=watched), "asn:16509", fleet) == ["asn:16509"]
    one_org = [(f"b{i}", "batch-org", True) for i in range(6)]  # one org's own look-alike accounts
    assert _weigh(FingerprintLinker(60_000, watchlist=watched), "asn:16509", one_org) == []
