"""Every Prometheus metric of ExtractGuard, declared once, here.

Conventions: base units (seconds, bytes), `_total` for counters, and never an account, key or
other high-cardinality identifier as a label.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: The exposition format's content type without its charset, for aiohttp-based pages (Faust's web),
#: which refuse a charset inside `content_type`; the body is ASCII anyway.
EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4"

# Counter: events received by the HTTP ingest, by outcome (accepted | rejected).
INGEST_EVENTS = Counter("extractguard_ingest_events_total", "Events received over HTTP.", ["outcome"])
# Counter: HTTP requests refused whole, by reason (unauthorized | body_too_large | bad_content_type ...).
INGEST_REQUESTS_REFUSED = Counter(
    "extractguard_ingest_requests_refused_total", "Ingest requests refused as a whole.", ["reason"]
)
# Counter: payloads received by a gateway adapter's receiver, by adapter and outcome (read, unreadable).
ADAPTER_PAYLOADS = Counter(
    "extractguard_adapter_payloads_total", "Gateway payloads received by an adapter.", ["adapter", "outcome"]
)
# Counter: fields left out of otherwise sound events (the event was kept), by field and reason code.
EVENT_FIELDS_DROPPED = Counter(
    "extractguard_event_fields_dropped_total", "Unusable fields left out of kept events.", ["field", "reason"]
)
# Counter: messages written to a dead-letter topic, by DLQ topic and reason code.
DLQ_MESSAGES = Counter("extractguard_dlq_messages_total", "Messages kept in a dead-letter topic.", ["topic", "reason"])
# Counter: events processed by the detection workers.
DETECT_EVENTS = Counter("extractguard_detect_events_total", "Events processed by detection workers.")
# Counter: event-time windows closed by the detection workers (each closes them per partition).
DETECT_WINDOWS_CLOSED = Counter("extractguard_detect_windows_closed_total", "Event-time windows closed.")
# Counter: detections emitted, by detector and severity.
DETECTIONS = Counter("extractguard_detections_total", "Detections emitted.", ["detector", "severity"])
# Counter: link evidence found by the campaign linker (fingerprints whose sharing was surprising).
LINK_EVIDENCE = Counter("extractguard_link_evidence_total", "Link evidence emitted by the campaign linker.")
# Counter: campaign records published by the resolver, by status.
CAMPAIGN_UPDATES = Counter("extractguard_campaign_updates_total", "Campaign changes published.", ["status"])
# Counter: rows written to ClickHouse by the lander, by table.
LANDER_ROWS = Counter("extractguard_lander_rows_total", "Rows inserted into ClickHouse.", ["table"])
# Histogram: duration of one ClickHouse insert, seconds.
LANDER_INSERT_SECONDS = Histogram(
    "extractguard_lander_insert_duration_seconds", "ClickHouse insert latency.", ["table"]
)
# Counter: ClickHouse insert failures (the batch is retried, never skipped).
LANDER_INSERT_ERRORS = Counter("extractguard_lander_insert_errors_total", "Failed ClickHouse inserts.", ["table"])
# Gauge: 1 while the lander's last ClickHouse insert worked, 0 while it retries one that failed
# (ClickHouse away: nothing is committed meanwhile, the batch is inserted once it is back).
LANDER_STORE_UP = Gauge("extractguard_lander_store_up", "Whether the lander's last ClickHouse insert worked.")
# Counter: alerts raised and delivered, by rule, severity and channel outcome.
ALERTS = Counter("extractguard_alerts_total", "Alerts raised.", ["rule", "severity"])
# Counter: scheduled SQL rule queries that failed (ClickHouse or the lander's SQL door away, or a
# query it refused), by rule; the rule neither opens nor resolves an alert on a failed query.
SQL_RULE_FAILURES = Counter("extractguard_alerter_sql_rule_failures_total", "SQL rule queries that failed.", ["rule"])
# Gauge: 1 while the alerter's last SQL rule query was answered, 0 while the database does not answer.
SQL_DATABASE_UP = Gauge("extractguard_alerter_sql_database_up", "Whether the last SQL rule query was answered.")
ALERT_DELIVERIES = Counter(
    "extractguard_alert_deliveries_total", "Alert deliveries to webhooks.", ["channel_format", "outcome"]
)
# Gauge: wall-clock time of the last poll of each consumer loop, for stuck-consumer liveness.
LAST_POLL = Gauge("extractguard_consumer_last_poll_timestamp_seconds", "Last poll of a consumer loop.", ["service"])
# Counter: enforcement decision records published by the enforcer, by action and status.
ENFORCEMENT_DECISIONS = Counter(
    "extractguard_enforcement_decisions_total", "Enforcement decision records published.", ["action", "status"]
)
# Gauge: decisions the enforcer holds in force now, by action and status (active | pending_approval).
ENFORCEMENT_IN_FORCE = Gauge(
    "extractguard_enforcement_decisions_in_force", "Enforcement decisions in force.", ["action", "status"]
)
# Counter: requests answered by an ExtractGuard bouncer of this process, by bouncer and outcome.
BOUNCER_REQUESTS = Counter(
    "extractguard_bouncer_requests_total", "Requests answered by a bouncer.", ["bouncer", "outcome"]
)
# Counter: IP-prefix decisions pushed to a CrowdSec Local API, by outcome (pushed | failed).
CROWDSEC_PUSHES = Counter("extractguard_crowdsec_pushes_total", "Decisions pushed to CrowdSec.", ["outcome"])
