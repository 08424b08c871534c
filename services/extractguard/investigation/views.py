"""The lists and the account view of the investigation CLI, as SQL over the landed tables.

Each returns plain rows (times in epoch ms), so the CLI prints them as tables or JSON alike.
"""

from __future__ import annotations

from typing import Any

from extractguard.investigation.case import TELLS_SQL, decisions_about
from extractguard.investigation.source import Row, Source, literal


def since_clause(column: str, since_s: float | None) -> str:
    return "" if since_s is None else f" AND {column} >= now64(3) - toIntervalSecond({int(since_s)})"


def campaigns(source: Source, status: str | None, since_s: float | None, limit: int) -> list[Row]:
    where = "1" + ("" if status is None else f" AND status = {literal(status)}") + since_clause("last_seen", since_s)
    return source.rows(
        "SELECT campaign_id, status, severity, round(score, 1) AS score, members_total, shaped_members, "
        "toUnixTimestamp64Milli(first_seen) AS first_seen_ms, toUnixTimestamp64Milli(last_seen) AS last_seen_ms, "
        "arrayStringConcat(arraySlice(arrayMap(f -> f.1, fingerprints), 1, 3), ', ') AS top_fingerprints, "
        f"merged_into FROM campaigns FINAL WHERE {where} ORDER BY last_seen DESC LIMIT {int(limit)}"
    )


def alerts(source: Source, status: str | None, rule: str | None, since_s: float | None, limit: int) -> list[Row]:
    where = "1" + ("" if status is None else f" AND status = {literal(status)}")
    where += ("" if rule is None else f" AND rule = {literal(rule)}") + since_clause("fired_at", since_s)
    return source.rows(
        "SELECT alert_id, rule, severity, status, entity_kind, entity, length(accounts) AS accounts_named, "
        "toUnixTimestamp64Milli(first_seen) AS first_seen_ms, toUnixTimestamp64Milli(fired_at) AS fired_at_ms, "
        f"summary FROM alerts FINAL WHERE {where} ORDER BY fired_at DESC LIMIT {int(limit)}"
    )


def decisions(source: Source, account: str | None, limit: int) -> list[Row] | None:
    """Decisions, newest first; None when this database has no decisions table yet."""
    if not source.has("decisions"):
        return None
    columns = source.columns("decisions")
    where = "1"
    if account is not None and "account_id" in columns:
        where = f"account_id = {literal(account)}"
    order = next((c for c in ("decided_at", "created_at", "updated_at") if c in columns), None)
    return source.rows(
        f"SELECT * FROM decisions WHERE {where}" + (f" ORDER BY {order} DESC" if order else "") + f" LIMIT {int(limit)}"
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
        f"toUnixTimestamp64Milli(last_seen) AS last_seen_ms FROM campaigns FINAL WHERE has(members, {aid}) "
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
