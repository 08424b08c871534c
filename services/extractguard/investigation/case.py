"""A campaign's case: everything `campaigns show` prints and the case page draws, read once.

Why accounts were linked is answered three ways: the fingerprints the resolver weighed (kind,
value, weight = the surprise, -log10 p, that this many extraction-shaped accounts share it by
chance, and its sharers), how concentrated on the campaign each fingerprint is in the raw events
(members among all accounts that used it), and the members' *tells* against an organic reference
(accounts in no campaign, over the same hours). Tells here are computed from the landed events
with the definitions of `detection/behaviour.py` that a row of `events` can answer.
"""

from __future__ import annotations

import datetime
from dataclasses import asdict, dataclass, field
from typing import Any

from extractguard.contracts.subjects import END_USER_MARK
from extractguard.investigation.source import Row, Source, literal
from extractguard.investigation.tables import cell

#: Tells computable from one events row: name -> the SQL share (its `avg`).
TELLS_SQL: dict[str, str] = {
    "single_turn": "turn_index = 0",
    "output_heavy": "output_tokens >= 1000",
    "logprobs": "request_logprobs OR request_top_logprobs > 0 OR request_logit_bias",
    "cot": "prompt_cot_elicitation",
    "young_account": "account_created IS NOT NULL AND event_time - account_created < 7 * 86400",
    "refusals": "refusal",
    "temperature_zero": "request_temperature = 0",
    "multi_choice": "request_choice_count > 1",
}
#: Fingerprint kind -> the events expression it was taken from (prompt bands are sketch hashes
#: the events table does not keep as such).
FINGERPRINT_SQL: dict[str, str] = {
    "ip_prefix": "client_ip_prefix",
    "asn": "toString(client_asn)",
    "tls_ja4": "tls_ja4",
    "sdk": "sdk_name",
    "template": "prompt_template_hash",
    "signup_cohort": "toString(intDiv(toUnixTimestamp64Milli(account_created), 600000))",
}
TOP_MEMBERS_PLOTTED = 8
REFERENCE_ACCOUNTS = 2000
MAX_FINGERPRINTS_CHECKED = 10
MAX_ALERTS = 200
MAX_DECISIONS = 500
MAX_SIMILAR = 50


COHORT_MS = 600_000  # the linker's signup cohorts: accounts created in the same ten minutes
MEANING = {
    "ip_prefix": "client IP prefix", "asn": "network (ASN)", "tls_ja4": "TLS client fingerprint (JA4)",
    "sdk": "client SDK", "template": "prompt template (masked skeleton hash)",
    "prompt_band": "near-duplicate prompts (MinHash band)",
}  # fmt: skip


def describe_fingerprint(fingerprint: str) -> str:
    """What a fingerprint is, in words.

    >>> describe_fingerprint("signup_cohort:2993543")
    'accounts created 2026-12-01 11:50-12:00 UTC'
    >>> describe_fingerprint("asn:209588")
    'network (ASN) 209588'
    """
    kind, _, value = fingerprint.partition(":")
    if kind == "signup_cohort" and value.isdigit():
        start = datetime.datetime.fromtimestamp(int(value) * COHORT_MS / 1000, tz=datetime.UTC)
        end = start + datetime.timedelta(milliseconds=COHORT_MS)
        return f"accounts created {start:%Y-%m-%d %H:%M}-{end:%H:%M} UTC"
    return f"{MEANING.get(kind, kind)} {value}"


TAKE_COLUMNS = ("requests", "output_tokens", "input_tokens", "accounts", "orgs", "keys", "end_users",
                "first_request_ms", "last_request_ms")  # fmt: skip
SIMILAR_COLUMNS = ["subject", "org", "shared", "requests", "shared_fingerprints"]
MEMBER_COLUMNS = ["member", "org_id", "requests", "first_request_ms", "last_request_ms", "output_tokens", "ip_prefixes"]


def take_line(take: dict[str, Any]) -> str:
    """What the actor took, in one line (the header of `campaigns show` and of the case page)."""
    if not take or not take.get("requests"):
        return "no events of the members in ClickHouse"
    span = (int(take["last_request_ms"]) - int(take["first_request_ms"])) / 3_600_000
    return (
        f"took {int(take['requests']):,} requests and {int(take['output_tokens']):,} output tokens "
        f"through {int(take['accounts']):,} accounts, {int(take['orgs']):,} orgs, {int(take['keys']):,} keys and "
        f"{int(take['end_users']):,} end users, active {span:,.1f} h "
        f"({cell(take['first_request_ms'], 'first_request_ms')} to "
        f"{cell(take['last_request_ms'], 'last_request_ms')} UTC)"
    )


def fronted_by(case: Case) -> str:
    """The resellers fronting end-user members: the resolver's fronting orgs, and the accounts whose
    end users are members."""
    orgs = list(case.campaign.get("fronting_orgs") or [])
    orgs += [str(f["org_id"]) for f in case.fronting if f["org_id"] and str(f["org_id"]) not in orgs]
    accounts = ", ".join(
        f"{f['account_id']} ({f['end_users_in_campaign']} of its {f['end_users_total']} end users)"
        for f in case.fronting
    )
    return (f"fronted by org(s) {', '.join(orgs)}" if orgs else "") + (f" through {accounts}" if accounts else "")


class CampaignNotFound(LookupError):
    pass


@dataclass(slots=True)
class Case:
    campaign: Row
    take: Row  # what the actor took: requests, tokens, accounts, orgs, keys, end users, active span
    harvest: list[Row]  # the take per hour
    members: list[Row]  # one row per member subject (an end user behind a reseller is one)
    fronting: list[Row]  # the accounts whose end users are members, with how many of them
    fingerprints: list[Row]
    timeline: list[Row]
    tells_members: list[Row]
    tells_reference: list[Row]
    activity: list[Row]
    alerts: list[Row]
    alerts_total: int
    similar: list[Row]  # subjects sharing the campaign's fingerprints that are not members
    decisions: list[Row] | None  # None: no decisions table in this database
    further_sql: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


#: The subject an events row was judged as (`contracts/subjects.py`): the account, or
#: `<account>/eu:<end user>` when the gateway named the end user behind a reseller's key.
SUBJECT_SQL = f"if(ifNull(end_user_id, '') = '', account_id, concat(account_id, {literal(END_USER_MARK)}, end_user_id))"


def members_of(campaign_id: str) -> str:
    return f"(SELECT arrayJoin(members) FROM campaigns FINAL WHERE campaign_id = {literal(campaign_id)})"


def member_events(campaign_id: str) -> str:
    """The WHERE clause of the members' events: an account member's requests, and an end-user
    member's requests through its reseller's account (narrowed by account first, the table's key)."""
    accounts = (
        f"(SELECT arrayJoin(arrayMap(m -> splitByString({literal(END_USER_MARK)}, m)[1], members)) "
        f"FROM campaigns FINAL WHERE campaign_id = {literal(campaign_id)})"
    )
    return f"account_id IN {accounts} AND {SUBJECT_SQL} IN {members_of(campaign_id)}"


def _window(campaign: Row) -> str:
    # An hour either side: members keep sending after the last evidence, and the reference needs the same hours.
    start, end = int(campaign["first_seen_ms"]) - 3_600_000, int(campaign["last_seen_ms"]) + 3_600_000
    return f"event_time BETWEEN fromUnixTimestamp64Milli({start}) AND fromUnixTimestamp64Milli({end})"


def _tells(source: Source, where: str, limit: str = "") -> list[Row]:
    shares = ", ".join(f"avg({sql}) AS {name}" for name, sql in TELLS_SQL.items())
    return source.rows(
        f"SELECT {SUBJECT_SQL} AS subject, count() AS requests, {shares} FROM events WHERE {where} "
        f"GROUP BY subject HAVING requests >= 2 {limit}"
    )


def decisions_about(source: Source, accounts_sql: str, campaign_id: str | None) -> list[Row] | None:
    """Decisions taken about these accounts or the campaign, if this database has a decisions
    table (enforcement lands one; until then there is nothing to show, which is not an error)."""
    if not source.has("decisions"):
        return None
    columns = set(source.columns("decisions"))
    clauses = []
    if "account_id" in columns:
        clauses.append(f"account_id IN {accounts_sql}")
    if {"scope", "entity"} <= columns:  # the enforcer's table: one decision per target
        clauses.append(f"(scope = 'account' AND entity IN {accounts_sql})")
    if "campaign_id" in columns and campaign_id is not None:
        clauses.append(f"campaign_id = {literal(campaign_id)}")
    if not clauses:
        return []
    return source.rows(  # decisions_total: how many there are, when more than the limit are
        f"SELECT *, count() OVER () AS decisions_total FROM decisions WHERE {' OR '.join(clauses)} "
        f"LIMIT {MAX_DECISIONS}"
    )


def decisions_total(rows: list[Row] | None) -> int:
    return int(rows[0]["decisions_total"]) if rows else 0


def related_line(campaign: Row) -> str:
    """Other actors found in the same population, and what they share: attribution, one actor each.

    >>> related_line({"related": ["cmp-b"], "shared_with_related": ["tls_ja4:t13d", "sdk:httpx"]})
    '\\nrelated actors (linked only by what many use): cmp-b; shared: tls_ja4:t13d, sdk:httpx'
    >>> related_line({"related": []})
    ''
    """
    related = list(campaign.get("related") or [])
    if not related:
        return ""
    shared = list(campaign.get("shared_with_related") or [])[:8]
    return f"\nrelated actors (linked only by what many use): {', '.join(related)}" + (
        f"; shared: {', '.join(shared)}" if shared else ""
    )


def load_campaign(source: Source, campaign_id: str) -> Row:
    campaign = source.one(
        "SELECT campaign_id, status, merged_into, split_from, severity, score, members_total, shaped_members, "
        "toUnixTimestamp64Milli(first_seen) AS first_seen_ms, toUnixTimestamp64Milli(last_seen) AS last_seen_ms, "
        "toUnixTimestamp64Milli(updated) AS updated_ms, fronting_orgs, related, shared_with_related, "
        "arrayMap(f -> (f.1, f.2, f.3), fingerprints) AS fingerprints "
        f"FROM campaigns FINAL WHERE campaign_id = {literal(campaign_id)}"
    )
    if campaign is None:
        raise CampaignNotFound(f"no campaign {campaign_id} in ClickHouse (try `extractguard campaigns list`)")
    return campaign


def _fingerprint_rows(source: Source, campaign: Row, members: str) -> list[Row]:
    rows = []
    for i, (fingerprint, weight, sharers) in enumerate(campaign["fingerprints"]):
        kind, _, value = str(fingerprint).partition(":")
        row: Row = {"fingerprint": fingerprint, "meaning": describe_fingerprint(str(fingerprint)), "kind": kind,
                    "weight": float(weight), "sharers": int(sharers), "members_using": None,
                    "accounts_using": None}  # fmt: skip
        expression = FINGERPRINT_SQL.get(kind)
        if expression is not None and i < MAX_FINGERPRINTS_CHECKED:
            usage = source.one(  # subjects: an end user behind a reseller counts as the one it was judged as
                f"SELECT uniqExactIf({SUBJECT_SQL}, {SUBJECT_SQL} IN {members}) AS members_using, "
                f"uniqExact({SUBJECT_SQL}) AS accounts_using FROM events "
                f"WHERE {expression} = {literal(value)} AND {_window(campaign)}"
            )
            if usage is not None:
                row.update(members_using=int(usage["members_using"]), accounts_using=int(usage["accounts_using"]))
        rows.append(row)
    return rows


def load_similar(source: Source, campaign: Row, limit: int = MAX_SIMILAR) -> list[Row]:
    """Subjects not (yet) in the campaign that share its fingerprints in the raw events of its hours:
    the next thing an analyst asks. The more of the campaign's fingerprints one shares, the higher;
    `requests` counts its requests in these hours that share one or more."""
    conditions: dict[str, str] = {}  # fingerprint -> the events condition it holds on
    for fingerprint, _weight, _sharers in campaign["fingerprints"][:MAX_FINGERPRINTS_CHECKED]:
        kind, _, value = str(fingerprint).partition(":")
        if (expression := FINGERPRINT_SQL.get(kind)) is not None:
            conditions[str(fingerprint)] = f"{expression} = {literal(value)}"
    if not conditions:
        return []
    labels = ", ".join(f"if({condition}, {literal(fp)}, '')" for fp, condition in conditions.items())
    return source.rows(
        f"SELECT {SUBJECT_SQL} AS subject, any(org_id) AS org, count() AS requests, "
        f"groupUniqArrayArray(arrayFilter(f -> f != '', [{labels}])) AS shared_fingerprints, "
        "length(shared_fingerprints) AS shared, count() OVER () AS similar_total "
        f"FROM events WHERE {_window(campaign)} "
        f"AND ({' OR '.join(conditions.values())}) AND {SUBJECT_SQL} NOT IN {members_of(str(campaign['campaign_id']))} "
        f"GROUP BY subject ORDER BY shared DESC, requests DESC, subject LIMIT {int(limit)}"
    )


def load_take(source: Source, campaign_id: str) -> tuple[Row, list[Row]]:
    """What the actor took: totals over every event of the members (end users through their
    reseller's key included), and the same per hour."""
    where = member_events(campaign_id)
    take = source.one(
        "SELECT count() AS requests, sum(output_tokens) AS output_tokens, sum(input_tokens) AS input_tokens, "
        f"uniqExact({SUBJECT_SQL}) AS subjects, uniqExact(account_id) AS accounts, uniqExact(org_id) AS orgs, "
        "uniqExact(api_key_hash) AS keys, uniqExactIf(end_user_id, ifNull(end_user_id, '') != '') AS end_users, "
        "toUnixTimestamp64Milli(min(event_time)) AS first_request_ms, "
        f"toUnixTimestamp64Milli(max(event_time)) AS last_request_ms FROM events WHERE {where}"
    )
    per_hour = source.rows(
        "SELECT toUnixTimestamp(toStartOfHour(event_time)) * 1000 AS hour_ms, count() AS requests, "
        f"sum(output_tokens) AS output_tokens FROM events WHERE {where} GROUP BY hour_ms ORDER BY hour_ms"
    )
    return (take or {}), per_hour


def load_fronting(source: Source, campaign_id: str) -> list[Row]:
    """The accounts (resellers, routers) whose end users are members: how many of the end users
    behind each are in the campaign, and how much of its traffic theirs is."""
    members = members_of(campaign_id)
    fronting_accounts = (
        f"(SELECT arrayJoin(arrayMap(m -> splitByString({literal(END_USER_MARK)}, m)[1], "
        f"arrayFilter(m -> position(m, {literal(END_USER_MARK)}) > 0, members))) "
        f"FROM campaigns FINAL WHERE campaign_id = {literal(campaign_id)})"
    )
    return source.rows(
        "SELECT account_id, any(org_id) AS org_id, "
        f"uniqExactIf(end_user_id, {SUBJECT_SQL} IN {members}) AS end_users_in_campaign, "
        "uniqExactIf(end_user_id, ifNull(end_user_id, '') != '') AS end_users_total, "
        f"countIf({SUBJECT_SQL} IN {members}) AS campaign_requests, count() AS requests "
        f"FROM events WHERE account_id IN {fronting_accounts} GROUP BY account_id ORDER BY campaign_requests DESC"
    )


def load_case(source: Source, campaign_id: str) -> Case:
    campaign = load_campaign(source, campaign_id)
    members = members_of(campaign_id)
    of_members = member_events(campaign_id)
    window = _window(campaign)
    member_rows = source.rows(
        f"SELECT {SUBJECT_SQL} AS member, any(account_id) AS account, any(end_user_id) AS end_user, "
        "any(org_id) AS org_id, count() AS requests, "
        "toUnixTimestamp64Milli(min(event_time)) AS first_request_ms, "
        "toUnixTimestamp64Milli(max(event_time)) AS last_request_ms, sum(output_tokens) AS output_tokens, "
        "uniqExact(client_ip_prefix) AS ip_prefixes "
        f"FROM events WHERE {of_members} GROUP BY member ORDER BY first_request_ms, member"
    )
    top = sorted(member_rows, key=lambda r: -int(r["requests"]))[:TOP_MEMBERS_PLOTTED]
    top_list = literal([r["member"] for r in top])
    activity = source.rows(
        f"SELECT if(has({top_list}, {SUBJECT_SQL}), {SUBJECT_SQL}, 'other members') AS member, "
        "toUnixTimestamp(toStartOfMinute(event_time)) * 1000 AS minute_ms, count() AS requests "
        f"FROM events WHERE {of_members} GROUP BY member, minute_ms ORDER BY minute_ms"
    )
    # Every version the resolver published (`campaign_versions`, migration 0060): `campaigns` itself
    # keeps only the newest once merged.
    timeline = source.rows(
        "SELECT toUnixTimestamp64Milli(updated) AS updated_ms, status, members_total, shaped_members, score "
        f"FROM campaign_versions FINAL WHERE campaign_id = {literal(campaign_id)} ORDER BY updated"
    )
    reference = (
        f"{SUBJECT_SQL} NOT IN (SELECT arrayJoin(members) FROM campaigns FINAL) AND {window}",
        f"ORDER BY cityHash64(subject) LIMIT {REFERENCE_ACCOUNTS}",
    )
    naming = (
        f"(entity_kind = 'campaign' AND entity = {literal(campaign_id)}) "
        f"OR hasAny(accounts, (SELECT members FROM campaigns FINAL WHERE campaign_id = {literal(campaign_id)}))"
    )
    alerts = source.rows(
        "SELECT alert_id, rule, severity, status, entity_kind, entity, length(accounts) AS accounts_named, "
        "toUnixTimestamp64Milli(first_seen) AS first_seen_ms, toUnixTimestamp64Milli(last_seen) AS last_seen_ms, "
        f"toUnixTimestamp64Milli(fired_at) AS fired_at_ms, summary FROM alerts FINAL WHERE {naming} "
        f"ORDER BY first_seen LIMIT {MAX_ALERTS}"
    )
    alerts_total = source.one(f"SELECT count() AS n FROM alerts FINAL WHERE {naming}")
    take, harvest = load_take(source, campaign_id)
    cid = literal(campaign_id)
    further = {
        "members with their orgs and traffic (end users as <account>/eu:<end user>)": (
            f"SELECT {SUBJECT_SQL} AS member, any(org_id), count(), sum(output_tokens), min(event_time), "
            f"max(event_time) FROM events WHERE {of_members} GROUP BY member ORDER BY count() DESC"
        ),
        "every version the resolver published": (
            f"SELECT * FROM campaign_versions FINAL WHERE campaign_id = {cid} ORDER BY updated"
        ),
        "detections naming members": (
            "SELECT detector, entity_kind, entity, severity, window_start, summary FROM detections "
            f"WHERE hasAny(accounts, (SELECT members FROM campaigns FINAL WHERE campaign_id = {cid})) "
            "ORDER BY window_start"
        ),
        "what on-call was told": (
            "SELECT d.destination, d.status, d.attempts, d.delivered_at FROM alert_deliveries d "
            f"WHERE d.alert_id IN (SELECT alert_id FROM alerts FINAL WHERE entity = {cid})"
        ),
    }
    return Case(
        campaign=campaign,
        take=take,
        harvest=harvest,
        members=member_rows,
        fronting=load_fronting(source, campaign_id),
        fingerprints=_fingerprint_rows(source, campaign, members),
        timeline=timeline,
        tells_members=_tells(source, of_members),
        tells_reference=_tells(source, *reference),
        activity=activity,
        alerts=alerts,
        alerts_total=int(alerts_total["n"]) if alerts_total else len(alerts),
        similar=load_similar(source, campaign),
        decisions=decisions_about(source, members, campaign_id),
        further_sql=further,
    )
