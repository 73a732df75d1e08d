{{/* The release's name for every object (at most 63 characters). */}}
{{- define "partition-deps.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "partition-deps.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "partition-deps.labels" -}}
{{ include "partition-deps.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Pod annotations: Prometheus scraping of the metrics port, and the user's own. */}}
{{- define "partition-deps.podAnnotations" -}}
{{- $annotations := dict -}}
{{- if .Values.metrics.enabled -}}
{{- $_ := set $annotations "prometheus.io/scrape" "true" -}}
{{- $_ := set $annotations "prometheus.io/port" (toString .Values.ports.metrics) -}}
{{- $_ := set $annotations "prometheus.io/path" "/metrics" -}}
{{- end -}}
{{- $annotations = merge $annotations .Values.podAnnotations -}}
{{- if $annotations -}}
{{- toYaml $annotations -}}
{{- end -}}
{{- end -}}

{{/* One gRPC probe of the health-only plaintext listener, for a health service name. */}}
{{- define "partition-deps.probe" -}}
grpc:
  port: {{ .root.Values.ports.health }}
  service: {{ .service }}
{{ toYaml .settings }}
{{- end -}}

{{/* The partition-deps container (both modes). */}}
{{- define "partition-deps.container" -}}
name: partition-deps
image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
imagePullPolicy: {{ .Values.image.pullPolicy }}
args: ["serve"]
ports:
  - name: grpc
    containerPort: {{ .Values.ports.grpc }}
  - name: health
    containerPort: {{ .Values.ports.health }}
  {{- if .Values.metrics.enabled }}
  - name: metrics
    containerPort: {{ .Values.ports.metrics }}
  {{- end }}
env:
  - name: DATABASE_URL
    valueFrom:
      secretKeyRef:
        name: {{ required "database.secretName: a Secret with the Postgres URL" .Values.database.secretName }}
        key: {{ .Values.database.key }}
  {{- if .Values.auth.secretName }}
  - name: PD_TOKENS
    valueFrom:
      secretKeyRef:
        name: {{ .Values.auth.secretName }}
        key: {{ .Values.auth.key }}
  {{- end }}
  {{- if .Values.tls.secretName }}
  - name: PD_TLS_CERT
    value: /etc/partition-deps/tls/tls.crt
  - name: PD_TLS_KEY
    value: /etc/partition-deps/tls/tls.key
  {{- if .Values.tls.mutual }}
  - name: PD_TLS_CLIENT_CA
    value: /etc/partition-deps/tls/ca.crt
  {{- end }}
  {{- end }}
  # The kubelet probes the pod IP: listen on every interface of the pod.
  - name: PD_LISTEN
    value: "0.0.0.0:{{ .Values.ports.grpc }}"
  - name: PD_HEALTH_LISTEN
    value: "0.0.0.0:{{ .Values.ports.health }}"
  {{- if .Values.metrics.enabled }}
  - name: PD_METRICS_LISTEN
    value: "0.0.0.0:{{ .Values.ports.metrics }}"
  {{- end }}
  - name: PD_POOL_SIZE
    value: {{ .Values.server.poolSize | quote }}
  - name: PD_WORKERS
    value: {{ .Values.server.workers | quote }}
  - name: PD_GRACE_SECONDS
    value: {{ .Values.server.graceSeconds | quote }}
  - name: PD_MEMO_ENTRIES
    value: {{ .Values.server.memoEntries | quote }}
  - name: PD_STATE_CACHE_ROWS
    value: {{ .Values.server.stateCacheRows | quote }}
  - name: PD_PROCESSES
    value: {{ .Values.server.processes | quote }}
  - name: PD_LOG_LEVEL
    value: {{ .Values.server.logLevel | quote }}
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
startupProbe:
  {{- include "partition-deps.probe" (dict "root" . "service" "readiness" "settings" .Values.probes.startup) | nindent 2 }}
livenessProbe:
  {{- include "partition-deps.probe" (dict "root" . "service" "liveness" "settings" .Values.probes.liveness) | nindent 2 }}
readinessProbe:
  {{- include "partition-deps.probe" (dict "root" . "service" "readiness" "settings" .Values.probes.readiness) | nindent 2 }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
volumeMounts:
  - name: tmp
    mountPath: /tmp
  {{- if .Values.tls.secretName }}
  - name: tls
    mountPath: /etc/partition-deps/tls
    readOnly: true
  {{- end }}
{{- end -}}

{{/* The pod's volumes (both modes). */}}
{{- define "partition-deps.volumes" -}}
- name: tmp
  emptyDir: {}
{{- if .Values.tls.secretName }}
- name: tls
  secret:
    secretName: {{ .Values.tls.secretName }}
{{- end }}
{{- end -}}

{{/* Scheduling and security settings of the pod (both modes). */}}
{{- define "partition-deps.podSettings" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
# partition-deps drains in-flight calls on SIGTERM (server.graceSeconds) before exiting.
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
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
{{- end -}}
