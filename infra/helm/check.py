"""`make helm-check`: render the Helm chart with each CI values file and validate every manifest.

Offline, with no cluster and no `helm` binary:

1. Helm renders the chart: helm-python-sdk loads Helm's own Go SDK as a library, which merges the
   values, validates them against values.schema.json and renders the templates as `helm template`
   would; `helm lint --strict` runs too. The chart's bare defaults must be refused: they name no
   Kafka, no ClickHouse and no ingest token.
2. Every manifest is validated against the Kubernetes OpenAPI schemas (kubernetes-validate, strict:
   an unknown field is an error) of the oldest Kubernetes the chart supports and of the newest the
   package bundles. Custom resources (KEDA, prometheus-operator) have no schema there: they are
   validated against the schemas in crd-schemas/ beside this file.
3. What no schema says: names are unique, selectors select the pods they are meant for, probes
   name a port the container has, the Secrets and ConfigMaps the chart refers to are rendered by
   the chart (and before a hook needs them), autoscalers target a Deployment.

    .venv/bin/python infra/helm/check.py [VALUES_FILE ...]   # default: helm/extractguard/ci/*.yaml

Exits 1 naming the values file, the manifest and the error of every problem found.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import referencing
import yaml
from kubernetes_validate import utils as kubernetes_schemas

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "extractguard"
CI_VALUES = CHART / "ci"
CRD_SCHEMAS = Path(__file__).resolve().parent / "crd-schemas"
RELEASE = "extractguard"
NAMESPACE = "extractguard"
# The chart's kubeVersion floor, and the newest schemas kubernetes-validate ships: an API removed
# or a field added in between shows up in one of the two.
KUBERNETES_VERSIONS = ("1.25.0", kubernetes_schemas.latest_version())
WORKLOAD_KINDS = ("Deployment", "Job")
HOOK_ANNOTATION = "helm.sh/hook"


class ChartRefused(Exception):
    """Helm refused the values (values.schema.json) or a template failed to render."""


@dataclass(frozen=True)
class Manifest:
    """One rendered Kubernetes object and the template it came from."""

    template: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", "?"))

    @property
    def name(self) -> str:
        return str(self.body.get("metadata", {}).get("name", "?"))

    @property
    def title(self) -> str:
        return f"{self.kind}/{self.name} ({self.template})"

    @property
    def is_hook(self) -> bool:
        return HOOK_ANNOTATION in (self.body.get("metadata", {}).get("annotations") or {})


@dataclass(frozen=True)
class Problem:
    values: str
    manifest: str
    message: str

    def __str__(self) -> str:
        return f"{self.values}: {self.manifest}: {self.message}"


def load_values(path: Path) -> dict[str, Any]:
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise ChartRefused(f"{path}: a values file must be a mapping")
    return values


@functools.cache
def _chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render(values: dict[str, Any]) -> list[Manifest]:
    """The chart's objects for these values, as `helm install` would create them (hooks included)."""
    try:
        rendered = _chart().render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    except helm.HelmError as error:
        raise ChartRefused(str(error).strip()) from None
    manifests = []
    for template, text in sorted(rendered.items()):
        if not template.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        for document in yaml.safe_load_all(text):
            if document:
                manifests.append(Manifest(template.removeprefix(f"{CHART.name}/"), document))
    return manifests


def render_file(path: Path) -> list[Manifest]:
    return render(load_values(path))


def lint(values: dict[str, Any]) -> list[str]:
    """`helm lint --strict`: its warnings and errors (its info, such as 'icon is recommended', pass)."""
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE)
    found = [f"{m['path']}: {m['error'].strip()}" for m in report["messages"] if m["severity"] >= 2]
    return found or [error.strip() for error in report["errors"]]


@functools.cache
def _crd_validators() -> dict[tuple[str, str], jsonschema.Draft7Validator]:
    validators = {}
    for path in sorted(CRD_SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text())
        jsonschema.Draft7Validator.check_schema(schema)
        kind = (schema["properties"]["apiVersion"]["const"], schema["properties"]["kind"]["const"])
        validators[kind] = jsonschema.Draft7Validator(schema)
    return validators


@functools.cache
def _kubernetes_validator(version: str, api_version: str, kind: str) -> jsonschema.Draft202012Validator | None:
    """kubernetes-validate's strict schema of one kind, compiled once (its own `validate` reloads
    the whole definitions file for every object, which would make this check slow)."""
    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # apps/v1 -> apps-v1
    try:
        schema = kubernetes_schemas.schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        return None
    definitions = kubernetes_schemas.schema_contents(f"{schema_dir}/_definitions.json", version)
    # Both carry an $id; the kind's schema refers to the definitions by it, as in the package.
    registry: referencing.Registry[Any] = referencing.Resource.from_contents(definitions) @ (
        referencing.Resource.from_contents(schema) @ referencing.Registry()
    )
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _first_error(validator: jsonschema.protocols.Validator, body: dict[str, Any]) -> str | None:
    error = jsonschema.exceptions.best_match(validator.iter_errors(body))
    if error is None:
        return None
    where = ".".join(str(part) for part in error.absolute_path) or "(top)"
    return f"{where}: {error.message}"


def validate_manifest(manifest: Manifest) -> list[str]:
    """Schema errors of one object: Kubernetes' own schemas, or ours for custom resources."""
    api_version = str(manifest.body.get("apiVersion", ""))
    crd = _crd_validators().get((api_version, manifest.kind))
    if crd is not None:
        error = _first_error(crd, manifest.body)
        return [f"custom resource schema: {error}"] if error else []
    errors = []
    for version in KUBERNETES_VERSIONS:
        validator = _kubernetes_validator(version, api_version, manifest.kind)
        if validator is None:
            errors.append(f"no schema for {api_version} {manifest.kind} in Kubernetes {version}")
            continue
        error = _first_error(validator, manifest.body)
        if error:
            errors.append(f"Kubernetes {version} schema: {error}")
    return errors


def _pod_specs(manifests: Iterable[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    for manifest in manifests:
        if manifest.kind in WORKLOAD_KINDS:
            yield manifest, manifest.body["spec"]["template"]


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _references(pod_spec: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(kind, name) of every Secret and ConfigMap a pod reads."""
    containers = pod_spec.get("initContainers", []) + pod_spec.get("containers", [])
    for container in containers:
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                yield "ConfigMap", source["configMapRef"]["name"]
            if "secretRef" in source:
                yield "Secret", source["secretRef"]["name"]
        for variable in container.get("env", []):
            value_from = variable.get("valueFrom", {})
            if "secretKeyRef" in value_from:
                yield "Secret", value_from["secretKeyRef"]["name"]
            if "configMapKeyRef" in value_from:
                yield "ConfigMap", value_from["configMapKeyRef"]["name"]
    for volume in pod_spec.get("volumes", []):
        if "secret" in volume:
            yield "Secret", volume["secret"]["secretName"]
        if "configMap" in volume:
            yield "ConfigMap", volume["configMap"]["name"]
        if "persistentVolumeClaim" in volume:
            yield "PersistentVolumeClaim", volume["persistentVolumeClaim"]["claimName"]


def existing_names(values: Any) -> set[str]:
    """Names of the operator's own Secrets the values point to (every `existingSecret.name`)."""
    if isinstance(values, dict):
        found = {str(values["existingSecret"]["name"])} if isinstance(values.get("existingSecret"), dict) else set()
        return found.union(*(existing_names(value) for value in values.values())) - {"", "None"}
    if isinstance(values, list):
        return set().union(*(existing_names(value) for value in values))
    return set()


def cross_check(manifests: list[Manifest], existing: set[str]) -> list[tuple[Manifest, str]]:
    """What the schemas cannot see. `existing`: the operator's own objects, which the chart
    refers to but does not render."""
    problems: list[tuple[Manifest, str]] = []
    seen: dict[tuple[str, str], Manifest] = {}
    for manifest in manifests:
        key = (manifest.kind, manifest.name)
        if key in seen:
            problems.append((manifest, f"same kind and name as {seen[key].title}"))
        seen[key] = manifest
    pods = list(_pod_specs(manifests))
    for manifest, template in pods:
        labels = template["metadata"].get("labels", {})
        if manifest.kind == "Deployment" and not _selects(manifest.body["spec"]["selector"]["matchLabels"], labels):
            problems.append((manifest, "spec.selector does not select the pod template's labels"))
        spec = template["spec"]
        for container in spec.get("initContainers", []) + spec["containers"]:
            ports = {port.get("name") for port in container.get("ports", [])}
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                port = container.get(probe, {}).get("httpGet", {}).get("port")
                if isinstance(port, str) and port not in ports:
                    problems.append((manifest, f"{container['name']}: {probe} names port {port!r}, which it lacks"))
        for kind, name in sorted(set(_references(spec))):
            target = seen.get((kind, name))
            if target is None and name not in existing:
                problems.append((manifest, f"refers to {kind} {name}, which the chart does not render"))
            elif target is not None and manifest.is_hook and not target.is_hook:
                # A pre-install hook runs before the release's own objects exist.
                problems.append((manifest, f"a hook that refers to {kind} {name}, which is created after hooks run"))
    deployments = {m.name: m for m in manifests if m.kind == "Deployment"}
    for manifest in manifests:
        if manifest.kind in ("Service", "PodDisruptionBudget"):
            selector = manifest.body["spec"]["selector"]
            selector = selector.get("matchLabels", {}) if manifest.kind == "PodDisruptionBudget" else selector
            if not any(_selects(selector, t["metadata"].get("labels", {})) for m, t in pods if m.kind == "Deployment"):
                problems.append((manifest, "its selector selects no Deployment's pods"))
        if manifest.kind in ("HorizontalPodAutoscaler", "ScaledObject"):
            target = manifest.body["spec"]["scaleTargetRef"]["name"]
            if target not in deployments:
                problems.append((manifest, f"scales {target}, which is no Deployment of the chart"))
    return problems


def check_values(label: str, values: dict[str, Any]) -> tuple[list[Manifest], list[Problem]]:
    """Render one set of values and every problem found in what came out."""
    try:
        manifests = render(values)
    except ChartRefused as error:
        return [], [Problem(label, "(chart)", f"helm refused to render: {error}")]
    problems = [Problem(label, "(chart)", f"helm lint: {message}") for message in lint(values)]
    for manifest in manifests:
        problems += [Problem(label, manifest.title, message) for message in validate_manifest(manifest)]
    problems += [Problem(label, m.title, message) for m, message in cross_check(manifests, existing_names(values))]
    return manifests, problems


def check_defaults_refused() -> list[Problem]:
    """The chart's own defaults name no Kafka, ClickHouse or token: Helm must refuse them."""
    try:
        render({})
    except ChartRefused:
        return []
    message = "rendered, but values.schema.json must require Kafka, ClickHouse and the ingest token"
    return [Problem("values.yaml alone", "(chart)", message)]


def main(argv: list[str]) -> int:
    started = time.perf_counter()
    files = [Path(arg) for arg in argv] or sorted(CI_VALUES.glob("*.yaml"))
    if not files:
        print(f"helm-check: no values files in {CI_VALUES}", file=sys.stderr)
        return 1
    problems = check_defaults_refused()
    for path in files:
        label = str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)
        try:
            values = load_values(path)
        except (OSError, yaml.YAMLError, ChartRefused) as error:
            problems.append(Problem(label, "(values)", str(error)))
            continue
        manifests, found = check_values(label, values)
        problems += found
        kinds = sorted({m.kind for m in manifests})
        print(f"helm-check: {label}: {len(manifests)} objects ({', '.join(kinds)}), {len(found)} problems")
    for problem in problems:
        print(f"ERROR {problem}")
    elapsed = time.perf_counter() - started
    verdict = "FAILED" if problems else "ok"
    print(
        f"helm-check: {verdict}: {len(files)} values files, Kubernetes {' and '.join(KUBERNETES_VERSIONS)}, "
        f"{len(problems)} problems, {elapsed:.1f}s"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
