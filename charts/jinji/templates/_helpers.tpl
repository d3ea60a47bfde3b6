{{/*
What the code fixes, not the deployment: each component's CLI service name (`jinji serve
<service>`, also its metrics label), its URL prefix, the components it calls, and the
environment variable that carries its service client's secret. The NetworkPolicies, the
in-cluster URLs and the Ingress are all derived from this table, which docs/architecture.md
("Delivery") shows and tests/chart checks against it.
*/}}
{{- define "jinji.catalog" -}}
identity:
  service: identity
  prefix: /identity
  calls: [audit-log]
tenant-admin:
  service: tenant_admin
  prefix: /tenants
  calls: [identity, audit-log]
  clientSecret: {env: JINJI_IDENTITY_CLIENT_SECRET, key: tenantAdmin}
  webhooks: true
ingestion:
  service: ingestion
  prefix: /ingestion
  calls: [identity, tenant-admin, analytics, audit-log]
  clientSecret: {env: JINJI_INGESTION_CLIENT_SECRET, key: ingestion}
analytics:
  service: analytics
  prefix: /analytics
  calls: [identity, tenant-admin, audit-log]
  clientSecret: {env: JINJI_ANALYTICS_CLIENT_SECRET, key: analytics}
audit-log:
  service: audit_log
  prefix: /audit
  calls: [identity]
{{- end }}

{{/* Jobs are clients too: what each calls (purge acts as tenant-admin). Bootstrap
registers every service client, so it reads every clientSecret of the catalog above. */}}
{{- define "jinji.jobCatalog" -}}
migrate:
  calls: []
  kms: false
bootstrap:
  calls: []
  kms: true
  allClientSecrets: true
purge:
  calls: [identity, audit-log]
  kms: true
  clientSecret: {env: JINJI_IDENTITY_CLIENT_SECRET, key: tenantAdmin}
backup:
  calls: []
  kms: true
  backupStore: true
backup-verify:
  calls: []
  kms: true
  backupStore: true
{{- end }}

{{- define "jinji.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "jinji.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Name of one component's objects: <fullname>-<component>. */}}
{{- define "jinji.componentName" -}}
{{- printf "%s-%s" (include "jinji.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "jinji.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: jinji
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
jinji.io/data-region: {{ .Values.global.dataRegion }}
{{- end }}

{{/* Selector labels of one component: {root, component}. */}}
{{- define "jinji.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jinji.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "jinji.componentLabels" -}}
{{ include "jinji.labels" .root }}
{{ include "jinji.selectorLabels" . }}
{{- end }}

{{- define "jinji.image" -}}
{{- if .Values.image.digest -}}
{{ printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else -}}
{{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* In-cluster base URL of a component's Service (no prefix). */}}
{{- define "jinji.serviceUrl" -}}
{{- printf "http://%s.%s.svc:80" (include "jinji.componentName" .) .root.Release.Namespace }}
{{- end }}

{{/*
Environment of a workload: {root, component, catalog entry, extra}. Settings every service
shares, the in-cluster URL of each component it calls (and only those), its own client
secret, then the service's own extra settings.
*/}}
{{- define "jinji.env" -}}
{{- $root := .root -}}
{{- $entry := .entry -}}
- name: JINJI_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.database.existingSecret }}
      key: {{ $root.Values.database.key }}
- name: JINJI_ISSUER
  value: {{ $root.Values.config.issuer | quote }}
- name: JINJI_LOG_LEVEL
  value: {{ $root.Values.config.logLevel | quote }}
- name: JINJI_DB_POOL_SIZE
  value: {{ $root.Values.config.dbPoolSize | quote }}
- name: JINJI_KEY_PROVIDER
  value: {{ $root.Values.kms.provider | quote }}
- name: JINJI_KMS_REGION
  value: {{ $root.Values.kms.region | quote }}
{{- with $root.Values.kms.endpointUrl }}
- name: JINJI_KMS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
- name: JINJI_DATA_DIR
  value: /tmp/jinji
{{- if eq .component "identity" }}
{{- /* Identity reads its own keys over loopback: no network path to itself. */}}
- name: JINJI_JWKS_URL
  value: {{ printf "http://127.0.0.1:%v/identity/.well-known/jwks.json" $root.Values.containerPort | quote }}
{{- end }}
{{- range $callee := $entry.calls }}
{{- $url := include "jinji.serviceUrl" (dict "root" $root "component" $callee) }}
{{- if eq $callee "identity" }}
- name: JINJI_IDENTITY_URL
  value: {{ printf "%s/identity" $url | quote }}
- name: JINJI_JWKS_URL
  value: {{ printf "%s/identity/.well-known/jwks.json" $url | quote }}
{{- else if eq $callee "audit-log" }}
- name: JINJI_AUDIT_URL
  value: {{ $url | quote }}
{{- else if eq $callee "tenant-admin" }}
- name: JINJI_TENANTS_URL
  value: {{ $url | quote }}
{{- else if eq $callee "analytics" }}
- name: JINJI_ANALYTICS_URL
  value: {{ $url | quote }}
{{- end }}
{{- end }}
{{- $clientSecrets := list }}
{{- with $entry.clientSecret }}{{ $clientSecrets = append $clientSecrets . }}{{ end }}
{{- if $entry.allClientSecrets }}
{{- range $_, $other := include "jinji.catalog" $root | fromYaml }}
{{- with $other.clientSecret }}{{ $clientSecrets = append $clientSecrets . }}{{ end }}
{{- end }}
{{- end }}
{{- range $clientSecrets }}
- name: {{ .env }}
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.serviceClients.existingSecret }}
      key: {{ get $root.Values.serviceClients.keys .key }}
{{- end }}
{{- with $root.Values.config.forwardedAllowIps }}
- name: FORWARDED_ALLOW_IPS
  value: {{ . | quote }}
{{- end }}
{{- range $k, $v := merge (dict) (default (dict) .extra) $root.Values.config.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end }}

{{- define "jinji.envFrom" -}}
{{- with .Values.kms.existingSecret -}}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end }}

{{/* Pod-level settings shared by every workload. */}}
{{- define "jinji.podCommon" -}}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Egress to DNS. */}}
{{- define "jinji.dnsEgress" -}}
- to:
    - namespaceSelector: {{- toYaml .Values.networkPolicy.dns.namespaceSelector | nindent 8 }}
      podSelector: {{- toYaml .Values.networkPolicy.dns.podSelector | nindent 8 }}
  ports:
    - {port: 53, protocol: UDP}
    - {port: 53, protocol: TCP}
{{- end }}

{{/* Egress every workload needs: DNS, PostgreSQL, the backup store (backup jobs) and
(when it uses keys) KMS. */}}
{{- define "jinji.commonEgress" -}}
{{- $np := .root.Values.networkPolicy -}}
{{ include "jinji.dnsEgress" .root }}
{{- if $np.database.to }}
- to: {{- toYaml $np.database.to | nindent 4 }}
  ports:
{{- else }}
- ports:
{{- end }}
    {{- range $np.database.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
{{- if .backupStore }}
{{- if $np.backupStore.to }}
- to: {{- toYaml $np.backupStore.to | nindent 4 }}
  ports:
{{- else }}
- ports:
{{- end }}
    {{- range $np.backupStore.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
{{- end }}
{{- if .kms }}
{{- if $np.kms.to }}
- to: {{- toYaml $np.kms.to | nindent 4 }}
  ports:
{{- else }}
- ports:
{{- end }}
    {{- range $np.kms.ports }}
    - {port: {{ . }}, protocol: TCP}
    {{- end }}
{{- end }}
{{- end }}
