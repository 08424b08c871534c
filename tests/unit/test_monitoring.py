"""The pipeline's Prometheus rules and Grafana dashboard speak of metrics and tables that exist.

A renamed metric or column would leave an alert that never fires or a panel that stays empty;
nothing at run time would say so. These tests read the names from where they are declared:
metrics from `extractguard.metrics`, tables from the ClickHouse migrations, and run the
dashboard's SQL on the embedded engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from clickhouse_connect.driver.client import Client
from infra.helm import check
from prometheus_client.metrics import MetricWrapperBase

from extractguard import metrics
from extractguard.storage import migrate
from tests.conftest import embedded_client

RULES = check.ROOT / "infra" / "prometheus" / "extractguard-rules.yaml"
CHART_RULES = check.CHART / "files" / "extractguard-rules.yaml"
DASHBOARD = check.ROOT / "infra" / "grafana" / "extractguard.json"
MIGRATIONS = check.ROOT / "services" / "extractguard" / "storage" / "migrations"
# Exported by kafka-exporter, not by ExtractGuard.
EXTERNAL_METRICS = {"kafka_consumergroup_lag"}
METRIC_NAME = re.compile(r"\b((?:extractguard|kafka)_[a-z_]+)\b")


def exported_series() -> set[str]:
    """Every series name ExtractGuard's metrics expose, as Prometheus sees them."""
    names = set()
    for metric in vars(metrics).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        (family,) = metric.describe()
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}[family.type]
        names |= {family.name + suffix for suffix in suffixes}
    return names


def rule_expressions() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


def dashboard_targets(datasource_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", []):
            if target["datasource"]["type"] == datasource_type:
                yield panel["title"], target


def test_the_chart_and_the_plain_rules_file_are_twins() -> None:
    assert CHART_RULES.read_bytes() == RULES.read_bytes()


def test_rules_file_is_a_valid_rules_file() -> None:
    schema = json.loads((check.CRD_SCHEMAS / "monitoring.coreos.com-v1-PrometheusRule.json").read_text())
    jsonschema.validate(yaml.safe_load(RULES.read_text()), schema["properties"]["spec"])
    names = [alert for alert, _ in rule_expressions()]
    assert len(names) == len(set(names))


def test_rules_cover_the_pipeline() -> None:
    used = {name for _, expr in rule_expressions() for name in METRIC_NAME.findall(expr)}
    assert {
        "kafka_consumergroup_lag",
        "extractguard_dlq_messages_total",
        "extractguard_lander_insert_errors_total",
        "extractguard_detect_events_total",
        "extractguard_ingest_events_total",
        "extractguard_consumer_last_poll_timestamp_seconds",
        "extractguard_enforcement_decisions_in_force",
        "extractguard_crowdsec_pushes_total",
    } <= used


def test_rules_and_panels_name_only_metrics_that_exist() -> None:
    known = exported_series() | EXTERNAL_METRICS
    expressions = [(f"rule {alert}", expr) for alert, expr in rule_expressions()]
    expressions += [(f"panel {title}", target["expr"]) for title, target in dashboard_targets("prometheus")]
    for where, expr in expressions:
        unknown = set(METRIC_NAME.findall(expr)) - known
        assert not unknown, f"{where}: {sorted(unknown)} exported by nobody"


def test_dashboard_shape() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    variables = {variable["name"]: variable["query"] for variable in dashboard["templating"]["list"]}
    assert variables == {"datasource": "prometheus", "clickhouse": "grafana-clickhouse-datasource"}
    for panel in dashboard["panels"]:
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"])
        for target in panel.get("targets", []):
            variable = {"prometheus": "${datasource}", "grafana-clickhouse-datasource": "${clickhouse}"}
            assert target["datasource"]["uid"] == variable[target["datasource"]["type"]]
    assert len(list(dashboard_targets("grafana-clickhouse-datasource"))) >= 2


def declared_tables() -> set[str]:
    text = "\n".join(path.read_text() for path in sorted(MIGRATIONS.glob("*.sql")))
    return set(re.findall(r"CREATE (?:TABLE|VIEW|MATERIALIZED VIEW) IF NOT EXISTS (\w+)", text))


def test_dashboard_sql_reads_declared_tables() -> None:
    for title, target in dashboard_targets("grafana-clickhouse-datasource"):
        tables = set(re.findall(r"\bFROM\s+(\w+)", target["rawSql"]))
        assert tables and tables <= declared_tables(), title


def without_grafana_macros(sql: str) -> str:
    """The SQL as the ClickHouse data source sends it for the last hour, in one-minute steps."""
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"(\1 >= now() - INTERVAL 1 HOUR AND \1 <= now())", sql)
    return re.sub(r"\$__timeInterval\((\w+)\)", r"toStartOfInterval(\1, INTERVAL 60 second)", sql)


@pytest.fixture
def database(embedded_path: Path) -> Iterator[Client]:
    handle = embedded_client(embedded_path)
    migrate.apply(handle, {"events_ttl_days": 7})
    yield handle


@pytest.mark.clickhouse
def test_dashboard_sql_runs_on_clickhouse(database: Client) -> None:
    for title, target in dashboard_targets("grafana-clickhouse-datasource"):
        assert "$" not in without_grafana_macros(target["rawSql"]), title
        database.query(without_grafana_macros(target["rawSql"]), settings={"readonly": 1})
