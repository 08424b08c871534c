"""Who the client is, network-wise: its address from a forwarded chain, and its ASN if known.

The address is the nearest hop that is not one of the operator's own proxies: walk the chain
`X-Forwarded-For: client, proxy1, proxy2` (then the peer) from the right, skip trusted proxies,
and take the first untrusted hop; if every hop is trusted, the leftmost. A hop that does not parse
("unknown", an RFC 7239 obfuscated name) ends the walk: whatever is left of it was written by
someone we cannot vouch for, so the address is absent rather than guessed.

>>> trusted = trusted_networks("10.0.0.0/8")
>>> client_address("198.51.100.7, 10.1.2.3", peer="10.0.0.1", trusted=trusted)
'198.51.100.7'
>>> client_address("6.6.6.6, 198.51.100.7", peer="10.0.0.1", trusted=trusted)  # 6.6.6.6 is client-written
'198.51.100.7'
>>> client_address("unknown", peer="10.0.0.1", trusted=trusted) is None
True
>>> client_address(None, peer="203.0.113.9", trusted=trusted)
'203.0.113.9'
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Sequence
from pathlib import Path

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(spec: str) -> tuple[Network, ...]:
    """Comma-separated CIDRs (EXTRACTGUARD_TRUSTED_PROXIES), e.g. "10.0.0.0/8, 127.0.0.1/32"."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def _parse(hop: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    hop = hop.strip().strip('"')
    if hop.startswith("[") and "]" in hop:  # [v6]:port
        hop = hop[1 : hop.index("]")]
    elif hop.count(":") == 1:  # v4:port
        hop = hop.split(":", 1)[0]
    try:
        return ipaddress.ip_address(hop)
    except ValueError:
        return None


def client_address(forwarded_for: str | None, peer: str | None, trusted: Sequence[Network]) -> str | None:
    hops = [h for h in (forwarded_for or "").split(",") if h.strip()]
    if peer:
        hops.append(peer)
    chosen = None
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            return None
        chosen = address
        if not any(address in network for network in trusted):
            break
    return None if chosen is None else str(chosen)


class AsnDatabase:
    """Address -> ASN from an IPtoASN TSV file (`range_start range_end AS_number country description`,
    https://iptoasn.com), given by the operator. Ranges with AS 0 ("not routed") answer None.

    >>> import tempfile, os
    >>> with tempfile.NamedTemporaryFile("w", suffix=".tsv", delete=False) as f:
    ...     _ = f.write("1.0.0.0\\t1.0.0.255\\t13335\\tUS\\tCLOUDFLARENET\\n")
    ...     _ = f.write("2.0.0.0\\t2.0.0.255\\t0\\tNone\\tNot routed\\n")
    >>> db = AsnDatabase(Path(f.name)); os.unlink(f.name)
    >>> db.lookup("1.0.0.9"), db.lookup("2.0.0.1"), db.lookup("9.9.9.9")
    (13335, None, None)
    """

    def __init__(self, path: Path) -> None:
        rows: list[tuple[int, int, int]] = []
        with path.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                parts = line.split("\t")
                if len(parts) < 3:
                    continue
                try:
                    start, end = ipaddress.ip_address(parts[0]), ipaddress.ip_address(parts[1])
                    asn = int(parts[2])
                except ValueError:
                    continue
                # v6 ranges sit above every v4 range: offset them so one sorted list holds both.
                offset = 1 << 32 if start.version == 6 else 0
                rows.append((int(start) + offset, int(end) + offset, asn))
        rows.sort()
        self._starts = [r[0] for r in rows]
        self._rows = rows

    def lookup(self, address: str) -> int | None:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return None
        key = int(ip) + (1 << 32 if ip.version == 6 else 0)
        i = bisect.bisect_right(self._starts, key) - 1
        if i < 0:
            return None
        start, end, asn = self._rows[i]
        return asn if start <= key <= end and asn > 0 else None
