"""Settings of every service, one pydantic-settings class each, read from the environment.

Nothing else in the code base reads `os.environ` for configuration. Each class has its own
prefix (EXTRACTGUARD_INGEST_, EXTRACTGUARD_LANDER_, ...); Kafka also honours the conventional
KAFKA_BOOTSTRAP_SERVERS so an operator can point everything at an existing cluster.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from extractguard.paths import data_home

#: The port of the local broker (`infra/kafka/kafka.sh`) when EXTRACTGUARD_KAFKA_PORT does not say.
LOCAL_KAFKA_PORT = 9092


class KafkaSettings(BaseSettings):
    """Where the broker is. `bootstrap_servers` (KAFKA_BOOTSTRAP_SERVERS) when set; else the local
    broker on the loopback at `port` (EXTRACTGUARD_KAFKA_PORT, the variable `kafka.sh` starts it on),
    so moving the local broker is one variable for the script and every service alike (no doctest:
    the answer depends on the environment; tests/unit/test_kafka_settings.py sets it).
    """

    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_KAFKA_")

    bootstrap_servers: str = Field(
        default=f"127.0.0.1:{LOCAL_KAFKA_PORT}",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "EXTRACTGUARD_KAFKA_BOOTSTRAP_SERVERS"),
    )
    port: int = Field(
        default=LOCAL_KAFKA_PORT, ge=1, le=65535, description="The local broker's port (infra/kafka/kafka.sh)."
    )
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None

    @model_validator(mode="after")
    def _local_broker_at_port(self) -> KafkaSettings:
        # An empty KAFKA_BOOTSTRAP_SERVERS counts as unset, as `kafka.sh` and the demo always took it.
        if "bootstrap_servers" not in self.model_fields_set or not self.bootstrap_servers.strip():
            self.bootstrap_servers = f"127.0.0.1:{self.port}"
        return self

    @property
    def local_broker(self) -> bool:
        """Whether the brokers are the local one `kafka.sh` runs on `port` (which `up` and the demo
        then start if it is not running); a cluster named elsewhere is left to its operator."""
        return self.bootstrap_servers.strip() in (f"127.0.0.1:{self.port}", f"localhost:{self.port}")

    def client_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka settings shared by every producer, consumer and admin client."""
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
        }
        if self.sasl_mechanism:
            config["sasl.mechanism"] = self.sasl_mechanism
        if self.sasl_username:
            config["sasl.username"] = self.sasl_username
        if self.sasl_password:
            config["sasl.password"] = self.sasl_password.get_secret_value()
        if self.ssl_ca_location:
            config["ssl.ca.location"] = self.ssl_ca_location
        return config


class ClickHouseSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_CLICKHOUSE_")

    dsn: str = Field(default_factory=lambda: f"chdb://{data_home() / 'clickhouse'}")
    events_ttl_days: int = Field(default=30, ge=1)
    cluster: str | None = Field(
        default=None, description="Run migrations ON CLUSTER this cluster: replicated local tables + Distributed."
    )
    analyst_grantees: list[str] = Field(
        default_factory=list,
        description='ClickHouse users or roles given the SELECT-only extractguard_analyst role, e.g. ["ana"] (server).',
    )


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_INGEST_")

    host: str = "127.0.0.1"
    port: int = 8480
    token: SecretStr = SecretStr("change-me")
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_events_per_request: int = Field(default=5000, ge=1)
    max_event_bytes: int = Field(default=16 * 1024, ge=512)
    max_clock_skew_s: int = Field(default=300, ge=0)
    # The gateway adapters' receivers (OTLP, Kong http-log): the secret keys and end users are
    # hashed with, the proxies in front of the gateway, and an IPtoASN file if the operator has one.
    key_secret: SecretStr = SecretStr("change-me")
    trusted_proxies: str = ""  # comma-separated CIDRs
    asn_database: Path | None = None
    # Who may write, and how much (see ingest/tokens.py, ingest/rate_limits.py).
    tokens_file: Path | None = Field(
        default=None, description='JSON {"gateway name": "token", ...}, reloaded when it changes; replaces `token`.'
    )
    tokens_reload_s: float = Field(default=5.0, gt=0, description="How often the tokens file is checked for changes.")
    rate_limit_events_per_s: float = Field(default=20_000, gt=0, description="Per gateway token; over it, 429.")
    rate_limit_burst_s: int = Field(default=10, ge=1, description="A burst of this many seconds' worth is allowed.")
    max_concurrent_requests: int = Field(
        default=64, ge=1, description="Requests in progress at once; beyond them, 503 with Retry-After at once."
    )
    body_timeout_s: float = Field(default=10.0, gt=0, description="A body not received within this is answered 408.")
    decision_feed: bool = Field(
        default=True, description="Serve enforcement decisions to bouncers at GET /v1/decisions (the gateways' tokens)."
    )


class PublisherSettings(BaseSettings):
    """How the gateway SDK batches events into envelopes before producing them."""

    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_PUBLISHER_")

    envelope_max_events: int = Field(default=500, ge=1)
    envelope_max_bytes: int = Field(default=1024 * 1024, ge=16 * 1024)
    linger_ms: int = Field(default=200, ge=0)


VerdictSourceName = Literal["analyst", "simulation"]


class ModelLaunch(BaseModel):
    """A model launch announced to the detection engine."""

    model: str = Field(min_length=1)
    at_ms: int = Field(ge=0, description="Event time of the launch (ms since the epoch).")


class DetectionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_DETECT_")

    app_id: str = "extractguard-detect"
    window_s: int = Field(default=60, ge=1, description="Tumbling event-time window.")
    allowed_lateness_s: int = Field(default=10, ge=0)
    burst_threshold: float = Field(default=8.0, gt=0)
    drift_delta: float = Field(default=0.002, gt=0)
    learn_from_sources: list[VerdictSourceName] = Field(
        default_factory=lambda: list[VerdictSourceName](["analyst"]),
        description="Which verdicts on account.labels the extraction detector learns from.",
    )
    launches: list[ModelLaunch] = Field(
        default_factory=list, description='Announced launches, e.g. [{"model": "m-3", "at_ms": 1795000000000}].'
    )
    detectors: list[str] | None = Field(
        default=None, description='Detectors to run, by registered name (default: all), e.g. ["burst", "extraction"].'
    )
    link_accounts: bool = Field(
        default=True, description="Send fingerprint shares of each closed window to the campaign linker."
    )
    # 0.6: an account without the two account-level tells (a bought aged account, a jittered
    # controller: young account and machine pacing, 2 of the score's 6.5 weight) scores at most 4.5/6.5
    # (0.69) of one that has them, however shaped each of its requests is; a bar at 0.8 of the threshold
    # never let such accounts lean at a few requests a day (low_and_slow's aged half: median 0.33 over
    # the day, against 0.36). The linker's surprise test, not this bar, keeps organic sharers out.
    link_score_factor: float = Field(
        default=0.6, gt=0, le=1, description="Linking marks an account shaped at this fraction of the score threshold."
    )
    link_min_requests: int = Field(default=2, ge=1, description="...and from this many requests on.")
    launch_grace_s: float = Field(default=6 * 3600, gt=0, description="How long a launch's surge is expected.")
    behaviour_horizons_s: list[float] = Field(
        default_factory=lambda: [3600.0, 86_400.0, 7 * 86_400.0],
        min_length=1,
        description="Horizons of the per-account behaviour tallies (exponential half-lives), shortest first.",
    )
    link_request_shape: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description=(
            "An account too faint to be judged yet counts as shaped for linking when a request of its in the window"
            " shows at least this share of the request-level tells."
        ),
    )
    session_timeout_s: float = Field(
        default=15.0, gt=0, description="How long a dead worker holds its partitions before a rebalance."
    )
    commit_interval_s: float = Field(default=2.8, gt=0, description="How often Faust commits offsets.")
    checkpoint_interval_s: float = Field(
        default=5.0,
        gt=0,
        description=(
            "Checkpoint a partition's engine at least this often while it receives events: what a crash makes a"
            " worker redo (re-sent with the same ids), against the CPU of pickling the engine."
        ),
    )
    checkpoint_every_envelopes: int = Field(default=200, ge=1)
    faust_log_level: Literal["crit", "error", "warn", "info", "debug"] = "warn"
    web_port: int = 6066
    web_bind: str = Field(default="127.0.0.1", description="Where /metrics listens; 0.0.0.0 in a container.")
    max_invalid_fraction: float = Field(default=0.9, gt=0, le=1)


class ConsumerGroupSettings(BaseSettings):
    """A service that reads its topics as a member of a consumer group (lander, enforcer, alerter)."""

    group_id: str
    group_instance_id: str | None = Field(
        default=None,
        description="Static membership: a restart under the same id takes its partitions back at once instead "
        "of after the dead member's session timeout; unique per replica (`extractguard up` sets it).",
    )

    def group_config(self) -> dict[str, str | int | float | bool]:
        """The librdkafka settings of the membership. A static member does not leave the group on
        close (KIP-345): its partitions wait for it, for one session timeout, to come back."""
        config: dict[str, str | int | float | bool] = {"group.id": self.group_id}
        if self.group_instance_id:
            config["group.instance.id"] = self.group_instance_id
        return config


class LanderSettings(ConsumerGroupSettings):
    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_LANDER_")

    group_id: str = "extractguard-lander"
    batch_max_rows: int = Field(default=50_000, ge=1)
    batch_max_wait_s: float = Field(default=1.0, gt=0)
    sql_host: str = Field(default="127.0.0.1", description="Loopback by default; anything else needs sql_token.")
    sql_port: int = Field(default=8481, description="Read-only SQL over HTTP while the lander owns chdb.")
    sql_token: SecretStr | None = Field(default=None, description="Bearer token of the SQL door (its clients send it).")
    sql_timeout_s: float = Field(default=30.0, gt=0, description="A query running longer is stopped.")
    sql_max_result_rows: int = Field(default=100_000, ge=1, description="A query answering more rows is refused.")
    sql_max_result_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_poll_silence_s: float = Field(default=120.0, gt=0, description="/healthz fails after this long without a poll.")
    max_invalid_fraction: float = Field(default=0.9, gt=0, le=1)
    store_outage_max_s: float = Field(
        default=900.0, gt=0, description="ClickHouse unavailable this long: the lander stops (it retried until then)."
    )
    store_retry_max_s: float = Field(default=30.0, gt=0, description="The longest wait between two insert attempts.")


class EnforcerSettings(ConsumerGroupSettings):
    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_ENFORCER_")

    group_id: str = "extractguard-enforcer"
    policy_file: Path | None = Field(default=None, description="The enforcement policy (default: the shipped one).")
    policy_reload_s: float = Field(default=10.0, gt=0, description="How often a changed policy file is reloaded.")
    account_facts_file: Path | None = Field(
        default=None, description="JSON lines of account_id, created_ms, monthly_spend_usd (the billing export)."
    )
    expire_interval_s: float = Field(default=5.0, gt=0, description="How often expired decisions are republished.")
    restore_book: bool = Field(
        default=True,
        description="Rebuild the decision book from the decisions topic at start (off: an isolated run, as a demo).",
    )
    web_host: str = Field(default="127.0.0.1", description="Where /healthz, /readyz and /metrics listen.")
    web_port: int = 6069
    max_poll_silence_s: float = Field(default=120.0, gt=0, description="/healthz fails after this long without a poll.")


class EnvoyBouncerSettings(BaseSettings):
    """`extractguard bouncer envoy`: Envoy's ext_authz and rate-limit gRPC services over the decisions."""

    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_ENVOY_")

    host: str = "127.0.0.1"
    port: int = Field(default=6070, description="gRPC: envoy.service.auth.v3 and envoy.service.ratelimit.v3.")
    fail_open: bool = Field(default=True, description="Admit requests while the decision cache is not yet warm.")
    account_header: str = Field(default="x-extractguard-account", description="Header naming the account (ext_authz).")
    api_key_header: str = Field(default="authorization", description="Header carrying the API key (hashed here).")
    key_secret: SecretStr = SecretStr("change-me")
    trusted_proxies: str = ""  # comma-separated CIDRs
    report_interval_s: float = Field(default=30.0, gt=0)
    web_host: str = Field(default="127.0.0.1", description="Where /healthz, /readyz and /metrics listen.")
    web_port: int = 6071


class CrowdSecSettings(BaseSettings):
    """IP-prefix decisions pushed to a CrowdSec Local API as alerts (a machine login)."""

    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_CROWDSEC_")

    group_id: str = "extractguard-crowdsec"
    lapi_url: str = "http://127.0.0.1:8080"
    machine_id: str = "extractguard"
    password: SecretStr = SecretStr("change-me")
    push_interval_s: float = Field(default=10.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)


class CampaignSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_CAMPAIGNS_")

    app_id: str = "extractguard-campaigns"
    window_s: int = Field(default=60, ge=1, description="Must equal the detection workers' window.")
    min_share: float = Field(default=0.3, gt=0, le=1, description="Least share of shaped sharers for evidence.")
    min_surprise: float = Field(default=6.0, gt=0, description="Least surprise (-log10 p) for evidence.")
    min_members: int = Field(default=3, ge=2)
    half_life_s: float = Field(default=3600.0, gt=0)
    dormant_after_s: float = Field(default=2 * 3600.0, gt=0)
    resolve_interval_s: float = Field(
        default=120.0, ge=0, description="Campaigns are rebuilt from the evidence at most this often (event time)."
    )
    close_after_s: float = Field(
        default=86_400.0, gt=0, description="A campaign (and a member) without evidence this long is closed (dropped)."
    )
    session_timeout_s: float = 15.0
    commit_interval_s: float = 2.8
    checkpoint_interval_s: float = Field(default=2.0, gt=0)
    checkpoint_every_messages: int = Field(
        default=200, ge=1, description="...or after this many unacknowledged messages of a partition, if sooner."
    )
    faust_log_level: Literal["crit", "error", "warn", "info", "debug"] = "warn"
    web_port: int = 6067
    web_bind: str = Field(default="127.0.0.1", description="Where /metrics listens; 0.0.0.0 in a container.")
    max_invalid_fraction: float = Field(
        default=0.9, gt=0, le=1, description="Stop when more than this share of the last messages was invalid."
    )
    invalid_window_messages: int = Field(default=1000, ge=1, description="...of the last this many messages.")


class AlerterSettings(ConsumerGroupSettings):
    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_ALERTER_")

    group_id: str = "extractguard-alerter"
    webhook_urls: list[str] = Field(
        default_factory=list, description="Shorthand for destinations of kind webhook_format, one per URL."
    )
    webhook_format: Literal["generic", "alertmanager"] = "generic"
    destinations: list[dict[str, Any]] = Field(
        default_factory=list,
        description=(
            'On-call destinations, each {"kind": ..., ...} as its module in alerting/destinations/ declares, e.g.'
            ' [{"kind": "pagerduty", "routing_key": "..."}, {"kind": "slack", "url": "https://hooks.slack.com/..."}].'
        ),
    )
    case_base_url: str | None = Field(
        default=None, description="Where case pages are served; PagerDuty, Slack and Alertmanager link to them."
    )
    rules_dir: Path | None = Field(default=None, description="Folder of rule files (default: the shipped rules).")
    rules_reload_s: float = Field(default=10.0, gt=0, description="How often changed rule files are reloaded.")
    sql_rules: bool = Field(default=True, description="Run the scheduled SQL rules over ClickHouse.")
    silences_refresh_s: float = Field(default=30.0, gt=0, description="How often silences are read from ClickHouse.")
    min_severity: Literal["info", "warning", "critical"] = "warning"
    extra_rules: list[str] = Field(
        default_factory=list, description='Optional rules to switch on, e.g. ["extraction_behaviour"] (per account).'
    )
    renotify_s: int = Field(default=300, ge=0, description="Re-deliver an updated alert at most this often.")
    rebuild_lookback_s: int = Field(
        default=3600, ge=0, description="At start, remember alerts delivered within this many seconds."
    )
    web_host: str = Field(default="127.0.0.1", description="Where /healthz, /readyz and /metrics listen.")
    web_port: int = 6068
    max_poll_silence_s: float = Field(default=120.0, gt=0, description="/healthz fails after this long without a poll.")
    delivery_timeout_s: float = 5.0
    delivery_attempts: int = Field(default=5, ge=1)
    max_invalid_fraction: float = Field(
        default=0.9, gt=0, le=1, description="Stop when more than this share of the last detections was invalid."
    )
    invalid_window_messages: int = Field(default=1000, ge=1, description="...of the last this many detections.")


StackServiceName = Literal["lander", "ingest", "detect", "campaigns", "enforcer", "alerter"]


class StackSettings(BaseSettings):
    """`extractguard up`: the services a gateway needs, supervised on one machine.

    Ports left unset keep each service's own setting (EXTRACTGUARD_INGEST_PORT, ...); set here, they
    are handed to the service, so one block moves the whole stack.
    """

    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_STACK_")

    services: list[StackServiceName] = Field(
        default_factory=lambda: list[StackServiceName](
            ["lander", "ingest", "detect", "campaigns", "enforcer", "alerter"]
        ),
        min_length=1,
        description="Which services run (in this order of start; the alerter always after the lander).",
    )
    ingest_port: int | None = Field(default=None, description="The gateways' HTTP ingest (events, OTLP, Kong).")
    lander_sql_port: int | None = Field(default=None, description="The lander's read-only SQL door.")
    detect_web_port: int | None = None
    campaigns_web_port: int | None = None
    enforcer_web_port: int | None = None
    alerter_web_port: int | None = None
    ready_timeout_s: float = Field(default=180.0, gt=0, description="A service not ready within this fails `up`.")
    restart_backoff_s: float = Field(default=1.0, gt=0, description="First wait before restarting a dead service.")
    max_restart_backoff_s: float = Field(default=60.0, gt=0, description="The wait doubles per crash up to this.")
    stable_after_s: float = Field(
        default=60.0, gt=0, description="A service up this long since its last restart starts its back-off over."
    )


def lander_door() -> LanderSettings:
    """The lander's SQL door as a reader beside `extractguard up` finds it: the stack's port, when
    its block sets one, over the lander's own setting."""
    lander, port = LanderSettings(), StackSettings().lander_sql_port
    return lander if port is None else lander.model_copy(update={"sql_port": port})


class WatermarkSettings(BaseSettings):
    """The watermark audit (`extractguard attribute`): the key registry's public file, its secret
    store (a directory of one file per key id, as a Kubernetes Secret mounts, or one JSON file),
    and the served model's tokenizer. Only the audit reads the secret store."""

    model_config = SettingsConfigDict(env_prefix="EXTRACTGUARD_WATERMARK_")

    registry: Path | None = None
    keys: Path | None = None
    tokenizer: Path | None = None
    alpha: float = Field(default=0.01, gt=0, lt=1)
    backend: Literal["numpy", "vllm"] = "numpy"
