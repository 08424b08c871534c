"""The Helm chart, rendered offline by Helm's own SDK with each values file of helm/extractguard/ci.

`make helm-check` validates the manifests against the Kubernetes schemas; these tests hold the
chart to what ExtractGuard needs of it: every container bounded and locked down, every listening
service probed, a disruption budget per Deployment, autoscalers only when asked for and never
past the partitions, credentials only in Secrets, and `ON CLUSTER` migrations when asked for.
"""

from __future__ import annotations

import base64
import copy
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from infra.helm import check
from infra.helm.check import Manifest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from extractguard import settings
from extractguard.contracts.topics import contract
from extractguard.lander.sinks import sinks

CI_FILES = sorted(check.CI_VALUES.glob("*.yaml"))
SERVICES = ("ingest", "detect", "campaigns", "lander", "alerter", "enforcer")
CONSUMERS = ("detect", "campaigns", "lander", "alerter")
# The env vars that carry credentials: they may come only from a Secret.
SECRET_SETTINGS = (
    "EXTRACTGUARD_KAFKA_SASL_PASSWORD",
    "EXTRACTGUARD_CLICKHOUSE_DSN",
    "EXTRACTGUARD_INGEST_TOKEN",
    "EXTRACTGUARD_ALERTER_WEBHOOK_URLS",
)


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Manifest]]:
    return {path.name: check.render_file(path) for path in CI_FILES}


def values_of(name: str) -> dict[str, Any]:
    return check.load_values(check.CI_VALUES / name)


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m.kind == kind]


def component(manifest: Manifest) -> str:
    return str(manifest.body["metadata"]["labels"]["app.kubernetes.io/component"])


def deployment(manifests: list[Manifest], service: str) -> Manifest:
    return next(m for m in of_kind(manifests, "Deployment") if component(m) == service)


def containers(manifest: Manifest) -> Iterator[dict[str, Any]]:
    spec = manifest.body["spec"]["template"]["spec"]
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def workloads(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m.kind in check.WORKLOAD_KINDS]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in container.get("env", [])}


def test_ci_values_cover_the_deployment_modes() -> None:
    names = {path.name for path in CI_FILES}
    assert {
        "default-values.yaml",
        "kafka-tls-sasl-values.yaml",
        "clickhouse-cluster-values.yaml",
        "autoscaling-values.yaml",
    } <= names
    modes = {values_of(name).get("autoscaling", {}).get("mode", "none") for name in names}
    assert modes == {"none", "hpa", "keda"}


@pytest.mark.parametrize("path", CI_FILES, ids=lambda p: p.name)
def test_helm_check_finds_no_problem(path: Path) -> None:
    manifests, problems = check.check_values(path.name, check.load_values(path))
    assert manifests
    assert [str(p) for p in problems] == []


@pytest.mark.parametrize("name", [p.name for p in CI_FILES])
def test_every_container_has_requests_and_limits(rendered: dict[str, list[Manifest]], name: str) -> None:
    for workload in workloads(rendered[name]):
        for container in containers(workload):
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), (workload.title, container["name"], bound)


@pytest.mark.parametrize("name", [p.name for p in CI_FILES])
def test_every_container_runs_locked_down(rendered: dict[str, list[Manifest]], name: str) -> None:
    for workload in workloads(rendered[name]):
        pod = workload.body["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, workload.title
        assert pod["securityContext"]["runAsUser"] == 10001, workload.title
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", workload.title
        assert pod["automountServiceAccountToken"] is False, workload.title
        for container in containers(workload):
            context = container["securityContext"]
            where = (workload.title, container["name"])
            assert context["runAsNonRoot"] is True, where
            assert context["runAsUser"] == 10001, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in context["capabilities"], where
            # A read-only root needs somewhere to write: /tmp and the data directory.
            mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert {"/tmp", "/var/lib/extractguard"} <= mounts, where


@pytest.mark.parametrize("name", [p.name for p in CI_FILES])
def test_every_listening_service_is_probed(rendered: dict[str, list[Manifest]], name: str) -> None:
    # Every one of the five services listens (ingest and lander on their own HTTP server, the
    # Faust workers on their web port, the alerter on its health port).
    paths = {
        "ingest": ("/healthz", "/readyz"),
        "detect": ("/metrics", "/metrics"),
        "campaigns": ("/metrics", "/metrics"),
        "lander": ("/healthz", "/readyz"),
        "alerter": ("/healthz", "/readyz"),
        "enforcer": ("/healthz", "/readyz"),
    }
    values = values_of(name)
    for service in SERVICES:
        found = deployment(rendered[name], service)
        (container,) = containers(found)
        port = values.get(service, {}).get("port") or check.load_values(check.CHART / "values.yaml")[service]["port"]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        liveness, readiness = paths[service]
        assert container["livenessProbe"]["httpGet"] == {"path": liveness, "port": "http"}, found.title
        assert container["readinessProbe"]["httpGet"] == {"path": readiness, "port": "http"}, found.title


@pytest.mark.parametrize("name", [p.name for p in CI_FILES])
def test_every_deployment_has_a_disruption_budget(rendered: dict[str, list[Manifest]], name: str) -> None:
    budgets = of_kind(rendered[name], "PodDisruptionBudget")
    for found in of_kind(rendered[name], "Deployment"):
        labels = found.body["spec"]["template"]["metadata"]["labels"]
        covering = [
            b for b in budgets if all(labels.get(k) == v for k, v in b.body["spec"]["selector"]["matchLabels"].items())
        ]
        assert len(covering) == 1, found.title


def topic_partitions(service: str) -> int:
    """Partitions of the topic that bounds a consumer's useful replicas."""
    if service == "lander":
        return max(contract(topic).topic.partitions for topic in sinks())
    topic = {"detect": "gateway.events", "campaigns": "fingerprint.activity", "alerter": "detections"}[service]
    return contract(topic).topic.partitions


@pytest.mark.parametrize("name", [p.name for p in CI_FILES])
def test_autoscalers_only_when_autoscaling_is_on(rendered: dict[str, list[Manifest]], name: str) -> None:
    values = values_of(name)
    mode = values.get("autoscaling", {}).get("mode", "none")
    embedded = values.get("clickhouse", {}).get("mode") == "embedded"
    manifests = rendered[name]
    autoscalers = of_kind(manifests, "HorizontalPodAutoscaler") + of_kind(manifests, "ScaledObject")
    expected_kind = {"none": None, "hpa": "HorizontalPodAutoscaler", "keda": "ScaledObject"}[mode]
    scaled = [s for s in CONSUMERS if not (s == "lander" and embedded)] if expected_kind else []
    assert sorted(component(a) for a in autoscalers) == sorted(scaled)
    assert all(a.kind == expected_kind for a in autoscalers)
    for autoscaler in autoscalers:
        service = component(autoscaler)
        spec = autoscaler.body["spec"]
        most = spec.get("maxReplicas", spec.get("maxReplicaCount"))
        assert most <= topic_partitions(service), f"{autoscaler.title}: replicas past the partitions idle"
    for service in SERVICES:
        replicas = deployment(manifests, service).body["spec"].get("replicas")
        # An autoscaler owns the replica count: the Deployment must not reset it on upgrade.
        assert (replicas is None) == (service in scaled), service


def test_chart_defaults_keep_max_replicas_at_the_partitions() -> None:
    defaults = check.load_values(check.CHART / "values.yaml")
    for service in CONSUMERS:
        assert defaults[service]["autoscaling"]["maxReplicas"] == topic_partitions(service), service


def test_keda_logs_in_to_kafka_like_the_services(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["autoscaling-values.yaml"]
    (authentication,) = of_kind(manifests, "TriggerAuthentication")
    assert authentication.body["spec"]["secretTargetRef"] == [
        {"parameter": "ca", "name": "kafka-cluster-ca-cert", "key": "ca.crt"}
    ]
    for scaled_object in of_kind(manifests, "ScaledObject"):
        (trigger,) = scaled_object.body["spec"]["triggers"]
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["tls"] == "enable"
        assert trigger["metadata"]["allowIdleConsumers"] == "false"
        assert trigger["authenticationRef"] == {"name": authentication.name}
    configmap = of_kind(manifests, "ConfigMap")[0].body["data"]
    groups = {
        trigger["metadata"]["consumerGroup"]
        for s in of_kind(manifests, "ScaledObject")
        for trigger in s.body["spec"]["triggers"]
    }
    # The autoscaler watches the groups the services actually join.
    assert groups == {
        configmap["EXTRACTGUARD_DETECT_APP_ID"],
        configmap["EXTRACTGUARD_CAMPAIGNS_APP_ID"],
        configmap["EXTRACTGUARD_LANDER_GROUP_ID"],
        configmap["EXTRACTGUARD_ALERTER_GROUP_ID"],
    }


def given_credentials(values: dict[str, Any]) -> list[str]:
    """The credentials a values file gives inline (the rest come from the operator's Secrets)."""
    found = [
        values.get("kafka", {}).get("sasl", {}).get("password"),
        values.get("clickhouse", {}).get("dsn"),
        values.get("ingest", {}).get("token"),
        *values.get("alerter", {}).get("webhookUrls", []),
    ]
    return [credential for credential in found if credential]


@pytest.mark.parametrize("name", [p.name for p in CI_FILES])
def test_credentials_live_only_in_secrets(rendered: dict[str, list[Manifest]], name: str) -> None:
    manifests = rendered[name]
    exposed = yaml.safe_dump([m.body for m in manifests if m.kind != "Secret"])
    for credential in given_credentials(values_of(name)):
        assert credential not in exposed
    for configmap in of_kind(manifests, "ConfigMap"):
        assert not set(configmap.body["data"]) & set(SECRET_SETTINGS)
    for workload in workloads(manifests):
        for container in containers(workload):
            for variable in set(SECRET_SETTINGS) & set(env_of(container)):
                entry = env_of(container)[variable]
                # The embedded database's DSN is a path on the pod's volume, no credential.
                if not str(entry.get("value", "")).startswith("chdb://"):
                    assert "secretKeyRef" in entry.get("valueFrom", {}), (workload.title, variable)


def secret_data(manifests: list[Manifest], name: str) -> dict[str, str]:
    (secret,) = [m for m in of_kind(manifests, "Secret") if m.name == name]
    return {key: base64.b64decode(value).decode() for key, value in secret.body["data"].items()}


def test_the_chart_secret_holds_the_inline_credentials(rendered: dict[str, list[Manifest]]) -> None:
    values = values_of("default-values.yaml")
    data = secret_data(rendered["default-values.yaml"], "extractguard")
    assert len(data.pop("lander-sql-token")) >= 32, "the chart makes the SQL door's token when none is given"
    assert data == {
        "clickhouse-dsn": values["clickhouse"]["dsn"],
        "ingest-token": values["ingest"]["token"],
        "alerter-webhook-urls": json.dumps(values["alerter"]["webhookUrls"], separators=(",", ":")),
    }
    cluster = values_of("clickhouse-cluster-values.yaml")
    data = secret_data(rendered["clickhouse-cluster-values.yaml"], "extractguard")
    assert data["kafka-sasl-password"] == cluster["kafka"]["sasl"]["password"]


@pytest.mark.parametrize("name", [p.name for p in CI_FILES])
def test_each_service_gets_only_the_credentials_it_needs(rendered: dict[str, list[Manifest]], name: str) -> None:
    manifests = rendered[name]
    values = values_of(name)
    embedded = values.get("clickhouse", {}).get("mode") == "embedded"
    sasl = values["kafka"].get("securityProtocol", "PLAINTEXT").startswith("SASL_")
    for service in SERVICES:
        (container,) = containers(deployment(manifests, service))
        wanted = {"EXTRACTGUARD_KAFKA_SASL_PASSWORD"} if sasl else set()
        wanted |= {
            "ingest": {"EXTRACTGUARD_INGEST_TOKEN"},
            "lander": {"EXTRACTGUARD_LANDER_SQL_TOKEN"} | (set() if embedded else {"EXTRACTGUARD_CLICKHOUSE_DSN"}),
            "alerter": {"EXTRACTGUARD_LANDER_SQL_TOKEN"}
            | ({"EXTRACTGUARD_ALERTER_WEBHOOK_URLS"} if given_webhooks(values) else set()),
        }.get(service, set())
        from_secrets = {
            name for name, entry in env_of(container).items() if "secretKeyRef" in entry.get("valueFrom", {})
        }
        assert from_secrets == wanted, service


def given_webhooks(values: dict[str, Any]) -> bool:
    alerter = values.get("alerter", {})
    return bool(alerter.get("webhookUrls") or alerter.get("existingSecret", {}).get("name"))


def test_existing_secrets_are_used_as_named(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["kafka-tls-sasl-values.yaml"]
    (lander,) = containers(deployment(manifests, "lander"))
    assert env_of(lander)["EXTRACTGUARD_CLICKHOUSE_DSN"]["valueFrom"]["secretKeyRef"] == {
        "name": "extractguard-clickhouse",
        "key": "dsn",
    }
    assert env_of(lander)["EXTRACTGUARD_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "extractguard-kafka-user",
        "key": "password",
    }
    # Only the CA, given inline, and the SQL door's token the chart makes are left for its Secret.
    assert set(secret_data(manifests, "extractguard")) == {"kafka-ca.crt", "lander-sql-token"}


def setup_job(manifests: list[Manifest]) -> Manifest:
    (job,) = of_kind(manifests, "Job")
    return job


@pytest.mark.parametrize("name", [p.name for p in CI_FILES])
def test_setup_job_provisions_topics_then_migrates_before_install_and_upgrade(
    rendered: dict[str, list[Manifest]], name: str
) -> None:
    job = setup_job(rendered[name])
    assert job.body["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job.name == "extractguard-setup"
    steps = [container["args"] for container in containers(job)]
    embedded = values_of(name).get("clickhouse", {}).get("mode") == "embedded"
    # Embedded: the lander owns the database and migrates it when it starts.
    assert steps == ([["topics"]] if embedded else [["topics"], ["migrate"]])


def test_on_cluster_mode_passes_the_cluster_to_migrations(rendered: dict[str, list[Manifest]]) -> None:
    cluster = values_of("clickhouse-cluster-values.yaml")["clickhouse"]["cluster"]
    manifests = rendered["clickhouse-cluster-values.yaml"]
    (configmap,) = of_kind(manifests, "ConfigMap")
    # The lander migrates at start too, so it reads the cluster from the ConfigMap.
    assert configmap.body["data"]["EXTRACTGUARD_CLICKHOUSE_CLUSTER"] == cluster
    migrate = next(c for c in containers(setup_job(manifests)) if c["args"] == ["migrate"])
    assert env_of(migrate)["EXTRACTGUARD_CLICKHOUSE_CLUSTER"]["value"] == cluster
    for name in ("default-values.yaml", "kafka-tls-sasl-values.yaml"):
        (configmap,) = of_kind(rendered[name], "ConfigMap")
        assert "EXTRACTGUARD_CLICKHOUSE_CLUSTER" not in configmap.body["data"]


def test_embedded_clickhouse_keeps_one_lander_on_its_volume(rendered: dict[str, list[Manifest]]) -> None:
    manifests = rendered["autoscaling-hpa-values.yaml"]
    lander = deployment(manifests, "lander")
    assert lander.body["spec"]["replicas"] == 1
    assert lander.body["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in lander.body["spec"]["template"]["spec"]["volumes"]}
    (claim,) = of_kind(manifests, "PersistentVolumeClaim")
    assert volumes["home"]["persistentVolumeClaim"]["claimName"] == claim.name
    (container,) = containers(lander)
    assert env_of(container)["EXTRACTGUARD_CLICKHOUSE_DSN"]["value"] == "chdb:///var/lib/extractguard/clickhouse"


def test_services_listen_beyond_loopback(rendered: dict[str, list[Manifest]]) -> None:
    (configmap,) = of_kind(rendered["default-values.yaml"], "ConfigMap")
    data = configmap.body["data"]
    for variable in (
        "EXTRACTGUARD_INGEST_HOST",
        "EXTRACTGUARD_DETECT_WEB_BIND",
        "EXTRACTGUARD_CAMPAIGNS_WEB_BIND",
        "EXTRACTGUARD_LANDER_SQL_HOST",
        "EXTRACTGUARD_ALERTER_WEB_HOST",
    ):
        assert data[variable] == "0.0.0.0", variable
    assert data["EXTRACTGUARD_LOG_FORMAT"] == "json"


def test_monitoring_objects_only_when_enabled(rendered: dict[str, list[Manifest]]) -> None:
    assert not of_kind(rendered["default-values.yaml"], "ServiceMonitor")
    assert not of_kind(rendered["default-values.yaml"], "PrometheusRule")
    (monitor,) = of_kind(rendered["kafka-tls-sasl-values.yaml"], "ServiceMonitor")
    assert monitor.body["spec"]["endpoints"][0]["honorLabels"] is True
    (rule,) = of_kind(rendered["kafka-tls-sasl-values.yaml"], "PrometheusRule")
    plain = yaml.safe_load((check.ROOT / "infra" / "prometheus" / "extractguard-rules.yaml").read_text())
    assert rule.body["spec"] == plain


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({}, "bootstrapServers"),
        ({"kafka": {"securityProtocol": "TLS"}}, "securityProtocol"),
        ({"kafka": {"securityProtocol": "SASL_SSL"}}, "mechanism"),
        ({"kafka": {"securityProtocol": "PLAINTEXT", "tls": {"caCert": "-----BEGIN CERTIFICATE-----"}}}, "caCert"),
        ({"clickhouse": {"dsn": "chdb:///data"}}, "dsn"),
        ({"clickhouse": {"mode": "embedded", "dsn": "", "cluster": "c1"}}, "cluster"),
        ({"autoscaling": {"mode": "yes"}}, "mode"),
        ({"detect": {"resources": {"requests": {"memory": "a lot"}}}}, "memory"),
        ({"ingest": {"token": ""}}, "token"),
        ({"alerter": {"webhookFormat": "slack"}}, "webhookFormat"),
        ({"unknownKey": 1}, "unknownKey"),
    ],
)
def test_values_schema_refuses_bad_values(change: dict[str, Any], complaint: str) -> None:
    values = values_of("default-values.yaml") if change else {}
    merged = merge(copy.deepcopy(values), change)
    with pytest.raises(check.ChartRefused, match=complaint):
        check.render(merged)


def merge(base: dict[str, Any], change: dict[str, Any]) -> dict[str, Any]:
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = value
    return base


def test_the_check_names_the_manifest_and_the_error(rendered: dict[str, list[Manifest]]) -> None:
    manifests = copy.deepcopy(rendered["default-values.yaml"])
    broken = deployment(manifests, "detect")
    (container,) = containers(broken)
    container["livenessProbe"]["httpGet"]["port"] = "metrics"
    container["resources"]["limits"]["memory"] = {"gigabytes": 2}
    assert any("resources.limits.memory" in error for error in check.validate_manifest(broken))
    pdb = next(m for m in of_kind(manifests, "PodDisruptionBudget") if component(m) == "lander")
    pdb.body["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "landr"
    found = {(m.title, message) for m, message in check.cross_check(manifests, set())}
    assert (broken.title, "detect: livenessProbe names port 'metrics', which it lacks") in found
    assert (pdb.title, "its selector selects no Deployment's pods") in found


def test_the_check_exits_non_zero_on_a_bad_values_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad-values.yaml"
    bad.write_text(yaml.safe_dump(merge(values_of("default-values.yaml"), {"kafka": {"securityProtocol": "TLS"}})))
    assert check.main([str(bad)]) == 1
    output = capsys.readouterr().out
    assert f"ERROR {bad}: (chart): helm refused to render" in output
    assert "securityProtocol" in output


def settings_variables() -> set[str]:
    """Every environment variable the services read: pydantic-settings fields and their aliases,
    and the two that are read before settings exist (data directory, log format)."""
    names = {"EXTRACTGUARD_HOME", "EXTRACTGUARD_LOG_FORMAT"}
    for model in vars(settings).values():
        if not (isinstance(model, type) and issubclass(model, BaseSettings) and model is not BaseSettings):
            continue
        prefix = model.model_config.get("env_prefix", "")
        for field_name, field in model.model_fields.items():
            names.add(f"{prefix}{field_name}".upper())
            if isinstance(field.validation_alias, AliasChoices):
                names |= {str(choice).upper() for choice in field.validation_alias.choices}
    return names


@pytest.mark.parametrize("name", [p.name for p in CI_FILES])
def test_every_variable_the_chart_sets_is_read_by_a_service(rendered: dict[str, list[Manifest]], name: str) -> None:
    known = settings_variables()
    for configmap in of_kind(rendered[name], "ConfigMap"):
        if configmap.body["metadata"]["name"].endswith("-enforcer-policy"):
            continue  # a file the enforcer reads, not settings
        assert not set(configmap.body["data"]) - known, configmap.title
    for workload in workloads(rendered[name]):
        for container in containers(workload):
            assert not set(env_of(container)) - known, (workload.title, container["name"])


def test_the_enforcer_reads_the_policy_the_values_give(rendered: dict[str, list[Manifest]]) -> None:
    from extractguard.enforcement.policy import Policy
    from extractguard.yaml_documents import load_document

    manifests = rendered["enforcer-policy-values.yaml"]
    (policy_map,) = [
        m for m in of_kind(manifests, "ConfigMap") if m.body["metadata"]["name"].endswith("enforcer-policy")
    ]
    text = policy_map.body["data"]["policy.yaml"]
    path = Path(tempfile.mkdtemp()) / "policy.yaml"
    path.write_text(text)
    assert load_document(path, Policy).revision  # the mounted file is a valid policy
    found = deployment(manifests, "enforcer")
    (container,) = containers(found)
    assert {"name": "policy", "mountPath": "/etc/extractguard/enforcement", "readOnly": True} in container[
        "volumeMounts"
    ]
    assert deployment(manifests, "enforcer").body["spec"]["replicas"] == 1
    settings = [m for m in of_kind(manifests, "ConfigMap") if not m.body["metadata"]["name"].endswith("policy")]
    assert settings[0].body["data"]["EXTRACTGUARD_ENFORCER_POLICY_FILE"] == "/etc/extractguard/enforcement/policy.yaml"
    assert (
        "EXTRACTGUARD_ENFORCER_POLICY_FILE"
        not in next(m for m in of_kind(rendered["default-values.yaml"], "ConfigMap")).body["data"]
    )


def test_analyst_grantees_reach_the_migrations_of_a_server(rendered: dict[str, list[Manifest]]) -> None:
    (configmap,) = of_kind(rendered["clickhouse-cluster-values.yaml"], "ConfigMap")
    assert json.loads(configmap.body["data"]["EXTRACTGUARD_CLICKHOUSE_ANALYST_GRANTEES"]) == [
        "analyst_ana",
        "analyst_bo",
    ]
    for name in ("default-values.yaml", "autoscaling-hpa-values.yaml"):
        for configmap in of_kind(rendered[name], "ConfigMap"):
            assert "EXTRACTGUARD_CLICKHOUSE_ANALYST_GRANTEES" not in configmap.body["data"]
