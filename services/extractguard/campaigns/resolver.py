"""The campaign resolver: link evidence merged into campaigns with stable ids and a lifecycle.

The resolver keeps each fingerprint that gave evidence, with its decayed weight and its sharers.
An account is a *member* of the graph when the evidence speaks for it:

- it is extraction-shaped itself and shares at least one evidence fingerprint, or
- it shares evidence fingerprints of two kinds, one of them content (template, prompt band) or
  timing (signup cohort): a reseller's honest customer behind the same egress prefix and client
  as a campaign shares infrastructure only, and stays out.

Campaigns are the connected components of evidence fingerprints joined by members (union-find,
rebuilt on each `resolve`), with at least `min_members` members. Ids are stable: a component
keeps the id of the campaign most of its members were in; when two campaigns merge, the larger
keeps its id and the other is published once as `merged` into it; when one splits, its largest
part keeps the id and the others get new ones.

Lifecycle, in event time: `new` when first published, `growing` while it gains members,
`active`, `dormant` once no evidence came for `dormant_after_s`, `closed` after `close_after_s`
(published once, then forgotten). Evidence weights decay with `half_life_s`; a fingerprint is
forgotten with the campaign's close horizon, and a sharer it has not seen for that long too.

>>> r = CampaignResolver()
>>> from extractguard.campaigns.linking import Evidence
>>> members = [f"c{i}" for i in range(6)]
>>> r.add(Evidence("ip_prefix:185.220.101.0/24", 0, 60_000, 12.0, members, members, 6, 6))
>>> [(c.campaign_id == c.campaign_id, c.status, len(c.members)) for c in r.resolve(60_000)]
[(True, 'new', 6)]
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import xxhash

from extractguard.campaigns.linking import CONTENT_KINDS, TIMING_KINDS, Evidence

#: The families of evidence: a shaped account joins a campaign on a tie, or on two families.
FAMILY = {
    "sdk": "client", "tls_ja4": "client", "ip_prefix": "infrastructure", "asn": "infrastructure",
    "template": "content", "prompt_band": "content", "signup_cohort": "timing", "cadence": "timing",
}  # fmt: skip
#: What says *who* an actor is rather than what it uses: its infrastructure, its controller's
#: schedule, its accounts' cohort. Client stacks and public text are used by many actors at once.
TIE_KINDS = frozenset({"ip_prefix", "asn", "signup_cohort"})
#: ... and only where the extraction-shaped are nearly all of the fingerprint's sharers (a proxy
#: subnet, a hosting ASN the actor fills): a residential ISP or a cloud region is everyone's.
TIE_CONCENTRATION = 0.8
#: A fingerprint counts as a family of evidence for its sharers when the shaped are this share of
#: its sharers (the linker's own bar for a window; a slow horizon's population evidence can be below).
FAMILY_CONCENTRATION = 0.3
#: A component splits into actors when two or more tie groups each hold this share of it.
ACTOR_SHARE = 0.1
#: Extraction-shaped accounts that only commodity evidence links, and that no campaign holds, are a
#: campaign of their own from this many: the linker's surprise test already weighed what they
#: share against the base rate; this is the floor below which a group of them is a few honest
#: look-alikes on a public dataset (a synthetic-data job's accounts, a class of students).
POPULATION_ACCOUNTS = 20
#: A fingerprint is one group's own when this share of its extraction-shaped sharers are that group's.
OWN_SHARE = 0.9

Status = str  # new | growing | active | dormant | closed | merged
PAGE_MEMBERS = 5
PAGE_AT_ONCE = 50
PAGE_AFTER_MS = 3_600_000


@dataclass(slots=True)
class _Fingerprint:
    weight: float
    first_ms: int
    last_ms: int
    sharers: dict[str, int] = field(default_factory=dict)  # account -> last seen (window end)
    shaped: set[str] = field(default_factory=set)
    fronting_org: str | None = None
    #: Moving average of the shaped share of its sharers in its evidence: how much it is the actor's own.
    concentration: float = 0.0

    def ties(self, name: str) -> bool:
        """Whether sharing it says *who*: infrastructure the shaped fill, or a route through one
        org that fronts many (a reseller whose downstream harvests)."""
        if self.fronting_org is not None:
            return True
        return name.split(":", 1)[0] in TIE_KINDS and self.concentration >= TIE_CONCENTRATION


@dataclass(slots=True)
class Campaign:
    campaign_id: str
    status: Status
    first_seen_ms: int
    last_seen_ms: int
    updated_ms: int
    members: list[str]
    shaped_members: int
    fingerprints: list[tuple[str, float, int]]  # (fingerprint, weight, sharers), heaviest first
    score: float
    merged_into: str | None = None
    split_from: str | None = None
    #: Orgs that front the campaign's accounts (a reseller or router whose downstream harvests).
    fronting_orgs: list[str] = field(default_factory=list)
    #: Other actors found in the same population (linked only by what many actors use), and what
    #: they share with this one: related, not the same.
    related: list[str] = field(default_factory=list)
    shared_with_related: list[str] = field(default_factory=list)

    @property
    def severity(self) -> str:
        # A handful of linked accounts is recorded (info: in ClickHouse, below the alert rules); a
        # campaign pages at once when it holds PAGE_AT_ONCE members, and from PAGE_MEMBERS once it
        # has held together for PAGE_AFTER_MS on two fingerprints or more. A slow campaign is found
        # a few accounts at a time, in fragments: most merge within the hour, and the rest are held
        # by one fingerprint each (one signup cohort of ten minutes). Paging each at five members
        # paged one actor 45 times in a day (low_and_slow at one request per account every four
        # hours); one fingerprint alone is recorded until the fragment is large.
        size = len(self.members)
        if size >= PAGE_AT_ONCE:
            return "critical"
        held = self.updated_ms - self.first_seen_ms >= PAGE_AFTER_MS
        if size >= PAGE_MEMBERS and held and len(self.fingerprints) >= 2:
            return "warning"
        return "info"

    def to_record(self, max_fingerprints: int = 200) -> dict[str, Any]:
        """The `campaign/v1` record of the campaigns topic."""
        return {
            "schema_version": 1,
            "campaign_id": self.campaign_id,
            "status": self.status,
            "merged_into": self.merged_into,
            "split_from": self.split_from,
            "first_seen_ms": self.first_seen_ms,
            "last_seen_ms": self.last_seen_ms,
            "updated_ms": self.updated_ms,
            "severity": self.severity,
            "score": self.score,
            "members": self.members,
            "members_total": len(self.members),
            "shaped_members": self.shaped_members,
            "fingerprints": [
                {"fingerprint": name, "weight": weight, "sharers": sharers}
                for name, weight, sharers in self.fingerprints[:max_fingerprints]
            ],
            "fingerprints_total": len(self.fingerprints),
            "fronting_orgs": self.fronting_orgs,
            "related": self.related,
            "shared_with_related": self.shared_with_related[:max_fingerprints],
        }


class CampaignResolver:
    def __init__(
        self,
        min_members: int = 3,
        half_life_s: float = 3600.0,
        dormant_after_s: float = 2 * 3600.0,
        close_after_s: float = 86_400.0,
        growth_to_publish: float = 0.05,
        resolve_interval_s: float = 0.0,
    ) -> None:
        self.min_members = min_members
        self.half_life_ms = int(half_life_s * 1000)
        self.dormant_ms = int(dormant_after_s * 1000)
        self.close_ms = int(close_after_s * 1000)
        self.growth_to_publish = growth_to_publish
        self.resolve_interval_ms = int(resolve_interval_s * 1000)
        self.fingerprints: dict[str, _Fingerprint] = {}
        self.campaigns: dict[str, Campaign] = {}  # live campaigns by id
        self.campaign_of: dict[str, str] = {}  # member account -> campaign id
        # Campaign id -> (status, members, severity) last published.
        self.published: dict[str, tuple[str, int, str]] = {}
        # Account -> the first and the last window it was extraction-shaped in: a loose account
        # must be shaped in two (one shaped request is a faint account's one vote, and ordinary
        # accounts cast one now and then; an actor's accounts keep casting them).
        self.shaped_windows: dict[str, tuple[int, int]] = {}

    def add(self, evidence: Evidence) -> None:
        fp = self.fingerprints.get(evidence.fingerprint)
        first = fp is None
        if fp is None:
            fp = self.fingerprints[evidence.fingerprint] = _Fingerprint(0.0, evidence.window_start_ms, 0)
        if evidence.window_end_ms > fp.last_ms:
            if fp.last_ms:
                fp.weight *= 0.5 ** ((evidence.window_end_ms - fp.last_ms) / self.half_life_ms)
            fp.last_ms = evidence.window_end_ms
        fp.weight += evidence.weight
        share = evidence.concentration
        fp.concentration = share if first else 0.7 * fp.concentration + 0.3 * share
        for account in evidence.accounts:
            fp.sharers[account] = max(fp.sharers.get(account, 0), evidence.window_end_ms)
        fp.shaped.update(evidence.shaped)
        end = evidence.window_end_ms
        for account in evidence.shaped:
            earliest, latest = self.shaped_windows.get(account, (end, end))
            self.shaped_windows[account] = (min(earliest, end), max(latest, end))
        if evidence.fronting_org is not None:
            fp.fronting_org = evidence.fronting_org

    def add_many(self, evidence: Iterable[Evidence]) -> None:
        for item in evidence:
            self.add(item)

    # --- resolving ---

    def _forget(self, now_ms: int) -> None:
        horizon = now_ms - self.close_ms
        for name in [n for n, fp in self.fingerprints.items() if fp.last_ms < horizon]:
            del self.fingerprints[name]
        for fp in self.fingerprints.values():
            stale = [a for a, seen in fp.sharers.items() if seen < horizon]
            for account in stale:
                del fp.sharers[account]
                fp.shaped.discard(account)
        for account in [a for a, (_first, last) in self.shaped_windows.items() if last < horizon]:
            del self.shaped_windows[account]

    def _members(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Member account -> the evidence fingerprints that speak for it; and the *loose* ones:
        extraction-shaped accounts that only commodity evidence speaks for (a popular client stack,
        public text), which join a campaign without joining campaigns together (see `_attach`)."""
        by_account: dict[str, list[str]] = defaultdict(list)
        shaped: set[str] = set()
        for name, fp in self.fingerprints.items():
            for account in fp.sharers:
                by_account[account].append(name)
            shaped |= fp.shaped
        members: dict[str, list[str]] = {}
        loose: dict[str, list[str]] = {}
        fps = self.fingerprints
        for account, names in by_account.items():
            kinds = {n.split(":", 1)[0] for n in names}
            # A client stack is what many actors and many honest programs use: never a family here;
            # nor is a fingerprint the shaped are only a small part of (a population on a popular
            # ASN or public dataset): it says what they use, not who they are.
            families = {
                FAMILY.get(kind, kind) for n in names
                if fps[n].concentration >= FAMILY_CONCENTRATION and (kind := n.split(":", 1)[0])
            } - {"client"}  # fmt: skip
            tied = "cadence" in kinds or any(fps[n].ties(n) for n in names)
            if account in shaped:
                # Shaped, and joined by a tie (a subnet it fills, a schedule) or by two families:
                # public text alone (a dataset, a chain-of-thought recipe) is everyone's.
                if tied or len(families) >= 2:
                    members[account] = names
                elif self._shaped_twice(account):
                    loose[account] = names
            elif len(families) >= 2 and kinds & (CONTENT_KINDS | TIMING_KINDS):
                members[account] = names
        return members, loose

    def _shaped_twice(self, account: str) -> bool:
        first, last = self.shaped_windows.get(account, (0, 0))
        return last > first

    def _components(self, members: dict[str, list[str]]) -> list[tuple[list[str], list[str]]]:
        parent: dict[str, str] = {}

        def find(x: str) -> str:
            parent.setdefault(x, x)
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        for names in members.values():
            root = find(names[0])
            for name in names[1:]:
                other = find(name)
                if other != root:
                    parent[other] = root
        groups: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
        for account, names in members.items():
            groups[find(names[0])][0].append(account)
        for name in parent:
            groups[find(name)][1].append(name)
        return [(sorted(accounts), sorted(names)) for accounts, names in groups.values() if accounts]

    def _owners(self, groups: list[list[str]], unplaced: dict[str, list[str]]) -> dict[str, int]:
        """Fingerprint of an `unplaced` account -> the group (an index of `groups`, or -1 for the
        `unplaced` accounts) that holds `OWN_SHARE` of its extraction-shaped sharers, where one
        does: whose it is in practice. Only their fingerprints: no other is ever asked about."""
        index = {a: i for i, accounts in enumerate(groups) for a in accounts}
        index.update(dict.fromkeys(unplaced, -1))
        owner: dict[str, int] = {}
        for name in {n for names in unplaced.values() for n in names}:
            counts = Counter(index[a] for a in self.fingerprints[name].shaped if a in index)
            if counts:
                top, count = counts.most_common(1)[0]
                if count >= OWN_SHARE * counts.total():
                    owner[name] = top
        return owner

    def _attach(self, actors: list[list[str]], loose: dict[str, list[str]]) -> tuple[list[list[str]], list[list[str]]]:
        """Loose accounts placed among the actors, and the populations of those no actor holds; no
        loose account ever joins two actors together.

        Per fingerprint, where its extraction-shaped sharers are: with which actor, or loose. A
        loose account joins an actor through a fingerprint nearly all of whose shaped sharers are
        that actor's (`OWN_SHARE`: in practice the actor's own, though a commodity in kind). A
        fingerprint whose shaped sharers are nearly all loose (`OWN_SHARE` of them) links loose
        accounts to each other, and those groups are campaigns once they are a population
        (`POPULATION_ACCOUNTS`): hundreds of extraction-shaped accounts on one client stack and one
        public dataset are a campaign even when nothing says whose (a slow actor on organic clients
        and residential addresses). A fingerprint shared by an actor and loose accounts alike (three
        actors on one Python TLS stack) links nothing: whose they are is not known yet.
        """
        owner = self._owners(actors, loose)
        placed = [list(accounts) for accounts in actors]
        alone: dict[str, list[str]] = {}
        for account, names in loose.items():
            owned = [n for n in names if n in owner]
            if all(n.split(":", 1)[0] in CONTENT_KINDS for n in owned):
                continue  # public text alone joins no one (an honest data job sends the same items)
            votes = Counter(owner[n] for n in owned)
            joined = [i for i, _count in votes.most_common() if i >= 0]
            if joined:
                placed[joined[0]].append(account)
            elif votes:
                alone[account] = [n for n in names if owner.get(n) == -1]
        populations = [accounts for accounts, _ in self._components(alone) if len(accounts) >= POPULATION_ACCOUNTS]
        return [sorted(accounts) for accounts in placed], populations

    def _actors(self, accounts: list[str], members: dict[str, list[str]]) -> list[list[str]]:
        """A component's actors, when what holds it together says there are several.

        An actor is a controller: the members that keep one sending period (`cadence:` fingerprints,
        clustered by period: two controllers an hour and 75 minutes apart are two), and, apart from
        those, the members that infrastructure ties together (a proxy subnet, a hosting ASN the
        shaped fill, a signup cohort) but that keep no period (Poisson-paced: one actor, since no
        timing tells such groups apart). Each must hold ACTOR_SHARE of the component. Beside them,
        the rest linked by fingerprints that are theirs alone (see `_owners`). Members in none go
        to the actor their fingerprints point at most. With fewer than two actors the
        component is one: a population linked only by what many use is not split into nothing.
        """
        fps = self.fingerprints
        floor = max(self.min_members, ACTOR_SHARE * len(accounts))
        periods: dict[str, int] = {}
        for account in accounts:
            latest: tuple[int, int] | None = None  # (last seen, period bucket): the period it keeps now
            for name in members[account]:
                if name.startswith("cadence:"):
                    seen = fps[name].sharers.get(account, 0)
                    if latest is None or seen > latest[0]:
                        latest = (seen, int(name.split(":", 1)[1]))
            if latest is not None:
                periods[account] = latest[1]
        actors = [group for group in _period_clusters(periods) if len(group) >= floor]
        untimed = sorted(a for a in accounts if a not in periods and any(fps[n].ties(n) for n in members[a]))
        if len(untimed) >= floor:
            actors.append(untimed)
        if actors:
            # The rest, held by neither a period nor a tie: those linked to each other by what is
            # theirs alone (a hosting ASN shared with nobody else shaped, their own sweep) are an
            # actor too — Poisson-paced on infrastructure it does not fill — once a population;
            # what they share with the actors found (public text, a client stack) says nothing.
            placed = {a for group in actors for a in group}
            rest = {a: members[a] for a in accounts if a not in placed}
            owner = self._owners(actors, rest)
            theirs = {a: mine for a, names in rest.items() if (mine := [n for n in names if owner.get(n) == -1])}
            actors += [g for g, _ in self._components(theirs) if len(g) >= min(floor, POPULATION_ACCOUNTS)]
        if len(actors) < 2:
            return [accounts]
        actor_of = {a: i for i, group in enumerate(actors) for a in group}
        # Where each fingerprint's placed sharers are: its pull towards each actor.
        pull: dict[str, Counter[int]] = defaultdict(Counter)
        for account, index in actor_of.items():
            for name in members[account]:
                pull[name][index] += 1
        for account in accounts:
            if account in actor_of:
                continue
            votes: dict[int, float] = defaultdict(float)
            for name in members[account]:
                counts = pull.get(name)
                if counts:
                    total = sum(counts.values())
                    for index, count in counts.items():
                        votes[index] += count / total
            choice = max(votes, key=lambda index: (votes[index], -index)) if votes else 0
            actors[choice].append(account)
        return sorted((sorted(group) for group in actors), key=len, reverse=True)

    # Defaults for resolvers restored from checkpoints made before these existed.
    resolve_interval_ms = 0
    resolved_ms = 0

    def resolve(self, now_ms: int) -> list[Campaign]:
        """Rebuild the campaigns at event time `now_ms`; returns those to publish (changed ones).

        At most once per `resolve_interval_s` of event time (a call sooner returns nothing): the
        rebuild walks every fingerprint held over the day-long close horizon, and evidence arrives
        every window from every linker partition. Evidence added meanwhile is kept for the next.
        """
        if self.resolved_ms and now_ms - self.resolved_ms < self.resolve_interval_ms:
            return []
        self.resolved_ms = now_ms
        self._forget(now_ms)
        members, loose = self._members()
        # The actors that ties and schedules tell apart, each with the population (component) it
        # was found in; then the loose accounts placed among them or as populations of their own.
        seeded: list[tuple[list[str], int]] = []
        populations = 0
        for populations, (accounts, _names) in enumerate(self._components(members), 1):
            if len(accounts) >= self.min_members:
                seeded += [(group, populations) for group in self._actors(accounts, members)]
        placed, found = self._attach([group for group, _ in seeded], loose)
        groups = [(group, population) for group, (_, population) in zip(placed, seeded, strict=True)]
        groups += [(group, populations + i) for i, group in enumerate(found, 1)]
        members.update(loose)
        # (accounts, fingerprints, the population it was found in): one entry per actor.
        components = [
            (group, sorted({n for a in group for n in members[a]}), population) for group, population in groups
        ]
        # Largest first, so that when a campaign splits, its largest part keeps the id.
        components.sort(key=lambda c: (-len(c[0]), c[1][0]))
        previous = self.campaign_of
        taken: set[str] = set()
        current: dict[str, Campaign] = {}
        changed: list[Campaign] = []
        merged: list[tuple[str, str]] = []
        actors_of: dict[int, list[tuple[str, list[str]]]] = defaultdict(list)
        for accounts, names, population in components:
            votes = Counter(previous[a] for a in accounts if a in previous)
            campaign_id = next((cid for cid, _ in votes.most_common() if cid not in taken), None)
            split_from = None
            if campaign_id is None:
                split_from = votes.most_common(1)[0][0] if votes else None
                campaign_id = "cmp-" + xxhash.xxh64_hexdigest(f"{names[0]}|{now_ms}".encode())[:12]
            taken.add(campaign_id)
            merged += [(other, campaign_id) for other in votes if other != campaign_id and other not in taken]
            fps = self.fingerprints
            first = min(fps[n].first_ms for n in names)
            last = max(fps[n].last_ms for n in names)
            old = self.campaigns.get(campaign_id)
            shaped = set().union(*(fps[n].shaped for n in names)) & set(accounts)
            ranked = sorted(((n, round(fps[n].weight, 2), len(fps[n].sharers)) for n in names), key=lambda f: -f[1])
            campaign = Campaign(
                campaign_id=campaign_id,
                status=self._status(old, len(accounts), last, now_ms),
                first_seen_ms=old.first_seen_ms if old else first,
                last_seen_ms=last,
                updated_ms=now_ms,
                members=accounts,
                shaped_members=len(shaped),
                fingerprints=ranked,
                score=round(sum(f[1] for f in ranked), 2),
                split_from=split_from if old is None else old.split_from,
                fronting_orgs=sorted({o for n in names if (o := fps[n].fronting_org) is not None}),
            )
            current[campaign_id] = campaign
            actors_of[population].append((campaign_id, names))
        for actors in actors_of.values():
            for campaign_id, names in actors:
                others = [(cid, set(n)) for cid, n in actors if cid != campaign_id]
                current[campaign_id].related = sorted(cid for cid, _ in others)
                shared = set().union(*(n for _, n in others)) & set(names) if others else set()
                current[campaign_id].shared_with_related = sorted(shared, key=lambda n: -self.fingerprints[n].weight)
        for campaign in current.values():
            if self._should_publish(campaign):
                changed.append(campaign)
        for old_id, into in merged:
            if old_id in self.campaigns and old_id not in current:
                gone = self.campaigns[old_id]
                gone.status, gone.merged_into, gone.updated_ms = "merged", into, now_ms
                changed.append(gone)
                self.published.pop(old_id, None)
        for old_id, old in self.campaigns.items():
            if old_id not in current and old.status != "merged" and all(m[0] != old_id for m in merged):
                old.status, old.updated_ms = "closed", now_ms  # its evidence was forgotten
                changed.append(old)
                self.published.pop(old_id, None)
        self.campaigns = current
        self.campaign_of = {a: cid for cid, c in current.items() for a in c.members}
        return changed

    def _status(self, old: Campaign | None, members: int, last_ms: int, now_ms: int) -> Status:
        if now_ms - last_ms >= self.dormant_ms:
            return "dormant"
        if old is None:
            return "new"
        if members > len(old.members):
            return "growing"
        return "active"

    def _should_publish(self, campaign: Campaign) -> bool:
        last = self.published.get(campaign.campaign_id)
        size = len(campaign.members)
        # New, growing and active are one live state to a reader; the member count shows the rest.
        live = {"new", "growing", "active"}
        status_moved = last is not None and last[0] != campaign.status and not {last[0], campaign.status} <= live
        grew = last is not None and size != last[1] and abs(size - last[1]) >= max(1, self.growth_to_publish * last[1])
        paging_moved = last is not None and last[2:] != (campaign.severity,)  # (a checkpoint kept 2 fields)
        if last is None or status_moved or grew or paging_moved:
            self.published[campaign.campaign_id] = (campaign.status, size, campaign.severity)
            return True
        return False


def _period_clusters(periods: dict[str, int]) -> list[list[str]]:
    """Accounts grouped by the period they keep: the modes of the histogram of period buckets
    (smoothed over neighbours), a valley under half the smaller of two modes parting them; each
    account goes to the nearest mode.

    >>> one = {f"a{i}": 168 + i % 3 for i in range(30)}
    >>> two = {**one, **{f"c{i}": 173 + i % 4 for i in range(20)}}
    >>> [len(g) for g in _period_clusters(one)], sorted(len(g) for g in _period_clusters(two))
    ([30], [20, 30])
    """
    if not periods:
        return []
    hist = Counter(periods.values())
    low, high = min(hist), max(hist)
    smooth = {b: hist[b - 1] + 2 * hist[b] + hist[b + 1] for b in range(low - 1, high + 2)}
    modes: list[int] = []
    for b in range(low, high + 1):
        if smooth[b] > 0 and smooth[b] >= smooth[b - 1] and smooth[b] > smooth[b + 1]:
            if modes and min(smooth[x] for x in range(modes[-1], b + 1)) >= 0.5 * min(smooth[modes[-1]], smooth[b]):
                if smooth[b] > smooth[modes[-1]]:
                    modes[-1] = b  # one mode with a shoulder: keep its top
                continue
            modes.append(b)
    groups: dict[int, list[str]] = defaultdict(list)
    for account, bucket in periods.items():
        groups[min(modes, key=lambda mode: (abs(mode - bucket), mode))].append(account)
    return [sorted(groups[mode]) for mode in modes if groups[mode]]
