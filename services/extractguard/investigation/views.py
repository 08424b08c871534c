"""The lists and the account view of the investigation CLI, as SQL over the landed tables.

Each returns plain rows (times in epoch ms), so the CLI prints them as tables or JSON alike.
"""

from __future__ import annotations

from typing import Any

from extractguard.contracts.subjects import END_USER_MARK
from extractguard.investigation.case import TELLS_SQL, decisions_about
from extractguard.investigation.source import Row, Source, literal


def since_clause(table: str, column: str, since_s: float | None) -> str:
    """Within `since_s` of the newest `column` in the table, not of the wall clock: a replayed
    day (or a database copied from production for a post-mortem) is read as it was then."""
    if since_s is None:
        return ""
    return f" AND {column} >= (SELECT max({column}) FROM {table}) - toIntervalSecond({int(since_s)})"


def campaigns(source: Source, status: str | None, since_s: float | None, limit: int) -> list[Row]:
    where = "1" + ("" if status is None else f" AND status = {literal(status)}")
    where += since_clause("campaigns", "last_seen", since_s)
    return source.rows(
        "SELECT campaign_id, status, severity, round(score, 1) AS score, members_total, shaped_members, "
        "toUnixTimestamp64Milli(first_seen) AS first_seen_ms, toUnixTimestamp64Milli(last_seen) AS last_seen_ms, "
        "arrayStringConcat(arraySlice(arrayMap(f -> f.1, fingerprints), 1, 3), ', ') AS top_fingerprints, "
        f"merged_into FROM campaigns FINAL WHERE {where} ORDER BY last_seen DESC LIMIT {int(limit)}"
    )


def alerts(source: Source, status: str | None, rule: str | None, since_s: float | None, limit: int) -> list[Row]:
    """Alerts, the newest evidence first. `first_seen`/`last_seen` are event times (what the
    evidence covers); `fired_at` is when the alerter sent it (wall clock), kept for JSON."""
    where = "1" + ("" if status is None else f" AND status = {literal(status)}")
    where += ("" if rule is None else f" AND rule = {literal(rule)}") + since_clause("alerts", "last_seen", since_s)
    return source.rows(
        "SELECT alert_id, rule, severity, status, entity_kind, entity, length(accounts) AS accounts_named, "
        "toUnixTimestamp64Milli(first_seen) AS first_seen_ms, toUnixTimestamp64Milli(last_seen) AS last_seen_ms, "
        f"toUnixTimestamp64Milli(fired_at) AS fired_at_ms, summary FROM alerts FINAL WHERE {where} "
        f"ORDER BY last_seen DESC LIMIT {int(limit)}"
    )


DECISION_COLUMNS = (
    "decision_id, group_id, scope, entity, action, status, level, rule, reason, campaign_id, score, "
    "approval_required, approval_reason, approved_by, toUnixTimestamp64Milli(decided_at) AS decided_at_ms, "
    "toUnixTimestamp64Milli(expires_at) AS expires_at_ms, toUnixTimestamp64Milli(updated_at) AS updated_at_ms"
)


def decisions(
    source: Source, account: str | None, campaign: str | None, status: str | None, limit: int
) -> list[Row] | None:
    """The newest version of each decision landed in ClickHouse, newest first; None when this
    database has no decisions table. `account` matches decisions about the account and about end
    users behind it (`<account>/eu:…`); `campaign` those taken on a campaign's evidence."""
    if not source.has("decisions"):
        return None
    where = "1"
    if account is not None:
        where += (
            f" AND scope = 'account' AND (entity = {literal(account)}"
            f" OR startsWith(entity, {literal(account + END_USER_MARK)}))"
        )
    if campaign is not None:
        where += f" AND campaign_id = {literal(campaign)}"
    if status is not None:
        where += f" AND status = {literal(status)}"
    return source.rows(
        f"SELECT {DECISION_COLUMNS} FROM decisions FINAL WHERE {where} "
        f"ORDER BY updated_at DESC, decision_id LIMIT {int(limit)}"
    )


def account(source: Source, account_id: str, bucket_s: int = 3600) -> dict[str, Any]:
    """One account: its traffic over time, its tells and latest extraction score, its campaigns,
    alerts and decisions."""
    aid = literal(account_id)
    summary = source.one(
        "SELECT account_id, any(org_id) AS org_id, count() AS requests, sum(output_tokens) AS output_tokens_total, "
        "toUnixTimestamp64Milli(min(event_time)) AS first_request_ms, "
        "toUnixTimestamp64Milli(max(event_time)) AS last_request_ms, uniqExact(client_ip_prefix) AS ip_prefixes, "
        "uniqExact(api_key_hash) AS api_keys, groupUniqArray(5)(request_model) AS models, "
        + ", ".join(f"round(avg({sql}), 3) AS {name}" for name, sql in TELLS_SQL.items())
        + f" FROM events WHERE account_id = {aid} GROUP BY account_id"
    )
    requests = source.rows(
        f"SELECT toUnixTimestamp(toStartOfInterval(minute, toIntervalSecond({int(bucket_s)}))) * 1000 AS bucket_ms, "
        "countMerge(requests) AS requests, sumMerge(output_tokens) AS output_tokens "
        f"FROM account_minute WHERE account_id = {aid} GROUP BY bucket_ms ORDER BY bucket_ms"
    )
    score = source.one(
        "SELECT score, threshold, severity, toUnixTimestamp64Milli(window_end) AS window_end_ms, summary "
        f"FROM detections WHERE detector = 'extraction' AND entity = {aid} ORDER BY window_end DESC LIMIT 1"
    )
    in_campaigns = source.rows(
        "SELECT campaign_id, status, members_total, round(score, 1) AS score, "
        "toUnixTimestamp64Milli(last_seen) AS last_seen_ms FROM campaigns FINAL "
        # The account itself, or end users behind its key (a reseller's: `<account>/eu:<end user>`).
        f"WHERE has(members, {aid}) OR arrayExists(m -> startsWith(m, {literal(account_id + END_USER_MARK)}), members) "
        "ORDER BY last_seen DESC"
    )
    named_in = source.rows(
        "SELECT alert_id, rule, severity, status, entity, toUnixTimestamp64Milli(fired_at) AS fired_at_ms "
        f"FROM alerts FINAL WHERE has(accounts, {aid}) ORDER BY fired_at DESC LIMIT 50"
    )
    labels = source.rows(
        "SELECT source, label, class, campaign, toUnixTimestamp64Milli(labelled_at) AS labelled_at_ms "
        f"FROM account_labels FINAL WHERE account_id = {aid}"
    )
    return {
        "account": summary,
        "requests": requests,
        "extraction_score": score,
        "campaigns": in_campaigns,
        "alerts": named_in,
        "labels": labels,
        "decisions": decisions_about(source, f"({aid})", None),
    }
