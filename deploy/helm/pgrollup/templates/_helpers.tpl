{{/* The chart's name, cut to the 63 characters a label value allows. */}}
{{- define "pgrollup.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name, the prefix of every object's name. */}}
{{- define "pgrollup.fullname" -}}
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

{{/* Labels on every object. */}}
{{- define "pgrollup.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "pgrollup.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The selector labels of one component (proxy or worker): pass (list $ "proxy"). */}}
{{- define "pgrollup.selectorLabels" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: {{ include "pgrollup.name" $ }}
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The image of both binaries. */}}
{{- define "pgrollup.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret the pods read their PGROLLUP_* variables from. */}}
{{- define "pgrollup.secretName" -}}
{{- default (include "pgrollup.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/* The service account of the pods. */}}
{{- define "pgrollup.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pgrollup.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The claim of file storage. */}}
{{- define "pgrollup.claimName" -}}
{{- default (printf "%s-rollups" (include "pgrollup.fullname" .)) .Values.storage.file.existingClaim -}}
{{- end -}}

{{/*
The pgrollup config file: .Values.config with the keys the chart owns set
from the other values (ports, NATS, storage, the pods' directories).
*/}}
{{- define "pgrollup.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%d" (int .Values.ports.postgres)) -}}
{{- $admin := deepCopy (get $cfg "admin" | default dict) -}}
{{- $_ := set $admin "listen" (printf "0.0.0.0:%d" (int .Values.ports.admin)) -}}
{{- $_ := set $cfg "admin" $admin -}}
{{- if not .Values.nats.url -}}
{{- fail "nats.url is required: the proxies and workers share one NATS server with JetStream (docs/deploy.md)" -}}
{{- end -}}
{{- $_ := set $cfg "nats" (dict "url" .Values.nats.url) -}}
{{- $_ := set $cfg "data_dir" "/var/lib/pgrollup" -}}
{{- $worker := deepCopy (get $cfg "worker" | default dict) -}}
{{- $_ := set $worker "cache_dir" "/var/lib/pgrollup/cache" -}}
{{- $_ := set $cfg "worker" $worker -}}
{{- $s := .Values.storage -}}
{{- if eq $s.type "s3" -}}
{{- if not $s.s3.bucket -}}
{{- fail "storage.s3.bucket is required with storage.type s3" -}}
{{- end -}}
{{- $url := printf "s3://%s" $s.s3.bucket -}}
{{- if $s.s3.prefix -}}
{{- $url = printf "%s/%s" $url (trimAll "/" $s.s3.prefix) -}}
{{- end -}}
{{- $s3 := dict "region" $s.s3.region "force_path_style" $s.s3.forcePathStyle -}}
{{- if $s.s3.endpoint -}}
{{- $_ := set $s3 "endpoint" $s.s3.endpoint -}}
{{- end -}}
{{- $_ := set $cfg "storage" (dict "url" $url "s3" $s3) -}}
{{- else if eq $s.type "file" -}}
{{- $_ := set $cfg "storage" (dict "url" (printf "file://%s" $s.file.path)) -}}
{{- else -}}
{{- fail (printf "storage.type must be s3 or file, got %q" $s.type) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The PGROLLUP_* variables read from the Secret, each optional. */}}
{{- define "pgrollup.secretEnv" -}}
{{- $secret := include "pgrollup.secretName" . -}}
{{- range $pair := list (list "PGROLLUP_WAREHOUSE_DSN" "warehouse-dsn") (list "PGROLLUP_NATS_URL" "nats-url") (list "PGROLLUP_S3_ACCESS_KEY" "s3-access-key") (list "PGROLLUP_S3_SECRET_KEY" "s3-secret-key") (list "PGROLLUP_ADMIN_TOKEN" "admin-token") }}
- name: {{ index $pair 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ index $pair 1 }}
      optional: true
{{- end }}
{{- end -}}

{{/* The probes on the admin port. */}}
{{- define "pgrollup.probes" -}}
livenessProbe:
  httpGet:
    path: /healthz
    port: admin
  initialDelaySeconds: {{ .Values.probes.liveness.initialDelaySeconds }}
  periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /readyz
    port: admin
  initialDelaySeconds: {{ .Values.probes.readiness.initialDelaySeconds }}
  periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
  timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
  failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
{{- end -}}

{{/* The volumes both Deployments mount: the config, state, /tmp and file storage. */}}
{{- define "pgrollup.volumes" -}}
- name: config
  configMap:
    name: {{ include "pgrollup.fullname" . }}
- name: tmp
  emptyDir: {}
{{- if eq .Values.storage.type "file" }}
- name: rollups
  persistentVolumeClaim:
    claimName: {{ include "pgrollup.claimName" . }}
{{- end }}
{{- end -}}

{{/* The mounts of the volumes above, without the state directory. */}}
{{- define "pgrollup.volumeMounts" -}}
- name: config
  mountPath: /etc/pgrollup
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if eq .Values.storage.type "file" }}
- name: rollups
  mountPath: {{ .Values.storage.file.path }}
{{- end }}
{{- end -}}
