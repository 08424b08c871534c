{{/*
Shared pieces of the chart: names, labels, the per-service facts that come from the code (not
from values), the settings every service reads, and the pod's security posture.
*/}}

{{- define "extractguard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "extractguard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The name of one service's objects: <fullname>-<service>. Takes (list $ "detect"). */}}
{{- define "extractguard.componentName" -}}
{{- $root := index . 0 -}}
{{- printf "%s-%s" (include "extractguard.fullname" $root) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "extractguard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "extractguard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "extractguard.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "extractguard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: extractguard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one service. Takes (list $ "detect"). */}}
{{- define "extractguard.componentSelectorLabels" -}}
{{ include "extractguard.selectorLabels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "extractguard.componentLabels" -}}
{{ include "extractguard.labels" (index . 0) }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "extractguard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "extractguard.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "extractguard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
What the code fixes about each service: its subcommand, the HTTP paths its probes use, whether it
consumes Kafka (and so can scale on lag) and the topic whose lag and partitions matter, and the
settings that name its port, its bind address and its consumer group. Values add the numbers.
Faust serves pages of its own on its web port, so detect and campaigns are probed on /metrics,
which answers only while the worker's event loop runs. The lander's and the alerter's /healthz
fails once their poll loop has been silent too long, and /readyz until their first poll.
*/}}
{{- define "extractguard.components" -}}
ingest:
  liveness: /healthz
  readiness: /readyz
  consumer: false
  portEnv: EXTRACTGUARD_INGEST_PORT
  bindEnv: EXTRACTGUARD_INGEST_HOST
detect:
  liveness: /metrics
  readiness: /metrics
  consumer: true
  topic: gateway.events
  portEnv: EXTRACTGUARD_DETECT_WEB_PORT
  bindEnv: EXTRACTGUARD_DETECT_WEB_BIND
  groupEnv: EXTRACTGUARD_DETECT_APP_ID
campaigns:
  liveness: /metrics
  readiness: /metrics
  consumer: true
  topic: fingerprint.activity
  portEnv: EXTRACTGUARD_CAMPAIGNS_WEB_PORT
  bindEnv: EXTRACTGUARD_CAMPAIGNS_WEB_BIND
  groupEnv: EXTRACTGUARD_CAMPAIGNS_APP_ID
lander:
  liveness: /healthz
  readiness: /readyz
  consumer: true
  # Every landed topic: the lag of the whole group.
  topic: ""
  portEnv: EXTRACTGUARD_LANDER_SQL_PORT
  bindEnv: EXTRACTGUARD_LANDER_SQL_HOST
  groupEnv: EXTRACTGUARD_LANDER_GROUP_ID
alerter:
  liveness: /healthz
  readiness: /readyz
  consumer: true
  topic: detections
  portEnv: EXTRACTGUARD_ALERTER_WEB_PORT
  bindEnv: EXTRACTGUARD_ALERTER_WEB_HOST
  groupEnv: EXTRACTGUARD_ALERTER_GROUP_ID
enforcer:
  liveness: /healthz
  readiness: /readyz
  # One writer of enforcement.decisions: never scaled.
  consumer: false
  portEnv: EXTRACTGUARD_ENFORCER_WEB_PORT
  bindEnv: EXTRACTGUARD_ENFORCER_WEB_HOST
  groupEnv: EXTRACTGUARD_ENFORCER_GROUP_ID
{{- end -}}

{{- define "extractguard.embedded" -}}
{{- if eq .Values.clickhouse.mode "embedded" -}}true{{- end -}}
{{- end -}}

{{/* Where the data directory (EXTRACTGUARD_HOME) and the embedded database live in a pod. */}}
{{- define "extractguard.home" -}}/var/lib/extractguard{{- end -}}
{{- define "extractguard.kafkaCaDir" -}}/etc/extractguard/kafka-ca{{- end -}}

{{/* Whether the Kafka CA is mounted (a PEM in values, or a Secret of the operator's). */}}
{{- define "extractguard.kafkaCa" -}}
{{- if or .Values.kafka.tls.caCert .Values.kafka.tls.existingSecret.name -}}true{{- end -}}
{{- end -}}

{{/*
The non-secret settings, as environment variables: the ConfigMap's data, and the setup Job's env
(a pre-install hook runs before the ConfigMap exists). Each service reads only its own prefix.
*/}}
{{- define "extractguard.settings" -}}
KAFKA_BOOTSTRAP_SERVERS: {{ .Values.kafka.bootstrapServers | quote }}
EXTRACTGUARD_KAFKA_SECURITY_PROTOCOL: {{ .Values.kafka.securityProtocol | quote }}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}
EXTRACTGUARD_KAFKA_SASL_MECHANISM: {{ .Values.kafka.sasl.mechanism | quote }}
EXTRACTGUARD_KAFKA_SASL_USERNAME: {{ .Values.kafka.sasl.username | quote }}
{{- end }}
{{- if include "extractguard.kafkaCa" . }}
EXTRACTGUARD_KAFKA_SSL_CA_LOCATION: {{ printf "%s/ca.crt" (include "extractguard.kafkaCaDir" .) | quote }}
{{- end }}
EXTRACTGUARD_HOME: {{ include "extractguard.home" . | quote }}
EXTRACTGUARD_LOG_FORMAT: {{ .Values.logFormat | quote }}
EXTRACTGUARD_CLICKHOUSE_EVENTS_TTL_DAYS: {{ .Values.clickhouse.eventsTtlDays | quote }}
{{- if .Values.clickhouse.cluster }}
EXTRACTGUARD_CLICKHOUSE_CLUSTER: {{ .Values.clickhouse.cluster | quote }}
{{- end }}
{{- if and .Values.clickhouse.analystGrantees (not (include "extractguard.embedded" .)) }}
EXTRACTGUARD_CLICKHOUSE_ANALYST_GRANTEES: {{ .Values.clickhouse.analystGrantees | toJson | quote }}
{{- end }}
{{- $components := include "extractguard.components" . | fromYaml }}
{{- range $name := keys $components | sortAlpha }}
{{- $facts := get $components $name }}
{{- $values := get $.Values $name }}
{{ $facts.bindEnv }}: "0.0.0.0"
{{ $facts.portEnv }}: {{ $values.port | quote }}
{{- if $facts.groupEnv }}
{{ $facts.groupEnv }}: {{ $values.consumerGroup | quote }}
{{- end }}
{{- end }}
EXTRACTGUARD_ALERTER_WEBHOOK_FORMAT: {{ .Values.alerter.webhookFormat | quote }}
EXTRACTGUARD_ALERTER_MIN_SEVERITY: {{ .Values.alerter.minSeverity | quote }}
{{- if .Values.enforcer.policy }}
EXTRACTGUARD_ENFORCER_POLICY_FILE: {{ printf "%s/policy.yaml" (include "extractguard.policyDir" .) | quote }}
{{- end }}
{{- end -}}

{{- define "extractguard.policyDir" -}}/etc/extractguard/enforcement{{- end -}}

{{/*
One secret setting as a container env entry, from the operator's Secret when one is named, else
from the chart's (only when a value was given). Takes a dict: env, existing ({name, key}), value,
secret (the chart's Secret name), key (its key there).
*/}}
{{- define "extractguard.secretEnv" -}}
{{- if .existing.name }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .existing.name }}
      key: {{ .existing.key }}
{{- else if .value }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}
{{- end -}}

{{/* The Kafka secrets every service needs. Takes (list $ secretName). */}}
{{- define "extractguard.kafkaSecretEnv" -}}
{{- $root := index . 0 -}}
{{- if hasPrefix "SASL_" $root.Values.kafka.securityProtocol }}
{{- include "extractguard.secretEnv" (dict "env" "EXTRACTGUARD_KAFKA_SASL_PASSWORD" "existing" $root.Values.kafka.sasl.existingSecret "value" $root.Values.kafka.sasl.password "secret" (index . 1) "key" "kafka-sasl-password") }}
{{- end }}
{{- end -}}

{{/* The ClickHouse DSN of a server or cluster. Takes (list $ secretName). */}}
{{- define "extractguard.clickhouseSecretEnv" -}}
{{- $root := index . 0 -}}
{{- include "extractguard.secretEnv" (dict "env" "EXTRACTGUARD_CLICKHOUSE_DSN" "existing" $root.Values.clickhouse.existingSecret "value" $root.Values.clickhouse.dsn "secret" (index . 1) "key" "clickhouse-dsn") }}
{{- end -}}

{{- define "extractguard.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "extractguard.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The Kafka CA as a volume, when one is configured. Takes (list $ secretName). */}}
{{- define "extractguard.kafkaCaVolume" -}}
{{- $root := index . 0 -}}
{{- if include "extractguard.kafkaCa" $root }}
- name: kafka-ca
  secret:
    secretName: {{ default (index . 1) $root.Values.kafka.tls.existingSecret.name }}
    items:
      - key: {{ ternary $root.Values.kafka.tls.existingSecret.key "kafka-ca.crt" (not (empty $root.Values.kafka.tls.existingSecret.name)) }}
        path: ca.crt
{{- end }}
{{- end -}}

{{- define "extractguard.kafkaCaMount" -}}
{{- if include "extractguard.kafkaCa" . }}
- name: kafka-ca
  mountPath: {{ include "extractguard.kafkaCaDir" . }}
  readOnly: true
{{- end }}
{{- end -}}

{{/*
The keys of a chart-made Secret, base64-encoded. Takes (list $ forSetup): the setup Job needs
only the Kafka and ClickHouse credentials.
*/}}
{{- define "extractguard.secretData" -}}
{{- $root := index . 0 -}}
{{- $forSetup := index . 1 -}}
{{- $v := $root.Values -}}
{{- if and (hasPrefix "SASL_" $v.kafka.securityProtocol) $v.kafka.sasl.password (not $v.kafka.sasl.existingSecret.name) }}
kafka-sasl-password: {{ $v.kafka.sasl.password | b64enc | quote }}
{{- end }}
{{- if and $v.kafka.tls.caCert (not $v.kafka.tls.existingSecret.name) }}
kafka-ca.crt: {{ $v.kafka.tls.caCert | b64enc | quote }}
{{- end }}
{{- if and (not (include "extractguard.embedded" $root)) $v.clickhouse.dsn (not $v.clickhouse.existingSecret.name) }}
clickhouse-dsn: {{ $v.clickhouse.dsn | b64enc | quote }}
{{- end }}
{{- if not $forSetup }}
{{- if and $v.ingest.token (not $v.ingest.existingSecret.name) }}
ingest-token: {{ $v.ingest.token | b64enc | quote }}
{{- end }}
{{- if and $v.alerter.webhookUrls (not $v.alerter.existingSecret.name) }}
alerter-webhook-urls: {{ $v.alerter.webhookUrls | toJson | b64enc | quote }}
{{- end }}
{{- if not $v.lander.existingSecret.name }}
lander-sql-token: {{ include "extractguard.landerSqlToken" $root | b64enc | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
A service's own env entries: the secrets it needs (and only those) and its extra settings.
Takes (list $ "ingest").
*/}}
{{- define "extractguard.containerEnv" -}}
{{- $root := index . 0 -}}
{{- $name := index . 1 -}}
{{- $values := get $root.Values $name -}}
{{- $secret := include "extractguard.fullname" $root -}}
{{- include "extractguard.kafkaSecretEnv" (list $root $secret) }}
{{- if eq $name "ingest" }}
{{- include "extractguard.secretEnv" (dict "env" "EXTRACTGUARD_INGEST_TOKEN" "existing" $values.existingSecret "value" $values.token "secret" $secret "key" "ingest-token") }}
{{- end }}
{{- if eq $name "lander" }}
{{- if include "extractguard.embedded" $root }}
- name: EXTRACTGUARD_CLICKHOUSE_DSN
  value: {{ printf "chdb://%s/clickhouse" (include "extractguard.home" $root) | quote }}
{{- else }}
{{- include "extractguard.clickhouseSecretEnv" (list $root $secret) }}
{{- end }}
{{- end }}
{{- if or (eq $name "lander") (eq $name "alerter") }}
{{- include "extractguard.secretEnv" (dict "env" "EXTRACTGUARD_LANDER_SQL_TOKEN" "existing" $root.Values.lander.existingSecret "value" "always" "secret" $secret "key" "lander-sql-token") }}
{{- end }}
{{- if eq $name "alerter" }}
{{- include "extractguard.secretEnv" (dict "env" "EXTRACTGUARD_ALERTER_WEBHOOK_URLS" "existing" $values.existingSecret "value" $values.webhookUrls "secret" $secret "key" "alerter-webhook-urls") }}
{{- end }}
{{- range $key, $value := $values.env }}
- name: {{ $key }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}


{{/*
The SQL door's token: the value given, else the one the chart's Secret already holds (so an
upgrade keeps it), else a new random one.
*/}}
{{- define "extractguard.landerSqlToken" -}}
{{- if .Values.lander.sqlToken -}}
{{- .Values.lander.sqlToken -}}
{{- else -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "extractguard.fullname" .) -}}
{{- if and $existing (index ($existing.data | default dict) "lander-sql-token") -}}
{{- index $existing.data "lander-sql-token" | b64dec -}}
{{- else -}}
{{- randAlphaNum 48 -}}
{{- end -}}
{{- end -}}
{{- end -}}
