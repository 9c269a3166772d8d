{{/* Names and labels. */}}

{{- define "crews.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "crews.fullname" -}}
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

{{/* The name of one component's objects: <fullname>-<component>, at most 63 characters. */}}
{{- define "crews.componentName" -}}
{{- printf "%s-%s" (include "crews.fullname" .root | trunc 40 | trimSuffix "-") .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
A role's component id: crew and role in lower case with a hash of both, because crew and role
names may hold upper case and '_' (not allowed in Kubernetes names) and "a-b"/"c" and "a"/"b-c"
would otherwise collide. Takes (dict "crew" . "role" .).
*/}}
{{- define "crews.roleId" -}}
{{- $plain := regexReplaceAll "[^a-z0-9-]+" (printf "%s-%s" .crew .role | lower) "-" | trunc 20 | trimAll "-" -}}
{{- printf "%s-%s" $plain (printf "%s/%s" .crew .role | sha256sum | trunc 6) -}}
{{- end -}}

{{/* <fullname>-role-<role id>, at most 30 + 6 + 27 characters. Takes (dict "root" $ "crew" . "role" .). */}}
{{- define "crews.roleName" -}}
{{- printf "%s-role-%s" (include "crews.fullname" .root | trunc 30 | trimSuffix "-") (include "crews.roleId" .) -}}
{{- end -}}

{{- define "crews.selectorLabels" -}}
app.kubernetes.io/name: {{ include "crews.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "crews.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "crews.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: crews
{{- end -}}

{{- define "crews.releaseSelector" -}}
app.kubernetes.io/name: {{ include "crews.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "crews.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
The image of a role's workers: crewaiImage (Containerfile.crewai: CrewAI in its own environment)
for engine crewai, else the crews image. Takes (dict "root" $ "engine" "<engine>").
*/}}
{{- define "crews.roleImage" -}}
{{- $image := ternary .root.Values.crewaiImage .root.Values.image (eq (toString .engine) "crewai") -}}
image: {{ printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) }}
imagePullPolicy: {{ $image.pullPolicy }}
{{- end -}}

{{/*
A crews pod's affinity: the component's own, with a required node affinity that keeps it off
GPU nodes (gpuNodes.label NotIn gpuNodes.values; nodes without the label match) unless
gpuNodes.keepCrewsOff is false or the component's own affinity sets nodeAffinity. Takes
(dict "root" $ "affinity" <the component's affinity>).
*/}}
{{- define "crews.affinity" -}}
{{- $own := deepCopy (.affinity | default dict) -}}
{{- $g := .root.Values.gpuNodes -}}
{{- if and $g.keepCrewsOff (not (hasKey $own "nodeAffinity")) -}}
{{- $term := dict "matchExpressions" (list (dict "key" $g.label "operator" "NotIn" "values" $g.values)) -}}
{{- $_ := set $own "nodeAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (dict "nodeSelectorTerms" (list $term))) -}}
{{- end -}}
{{- with $own }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* NATS credentials: one user per component and per role, passwords derived from one seed. */}}

{{- define "crews.natsAccountsSecret" -}}
{{- include "crews.componentName" (dict "root" . "component" "nats-accounts") -}}
{{- end -}}

{{/*
The seed of every NATS password: nats.auth.seed, else the one kept in the accounts Secret of an
earlier release, else a new random one. Memoized in .Values so every template of one render
sees the same seed.
*/}}
{{- define "crews.natsSeed" -}}
{{- if not .Values.nats.auth.seed -}}
{{- $seed := randAlphaNum 48 -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "crews.natsAccountsSecret" .) -}}
{{- if and $existing $existing.data (hasKey $existing.data "seed") -}}
{{- $seed = b64dec (index $existing.data "seed") -}}
{{- end -}}
{{- $_ := set .Values.nats.auth "seed" $seed -}}
{{- end -}}
{{- .Values.nats.auth.seed -}}
{{- end -}}

{{/* Takes (dict "root" $ "user" "<user>"). */}}
{{- define "crews.natsPassword" -}}
{{- printf "%s:%s" (include "crews.natsSeed" .root) .user | sha256sum | trunc 40 -}}
{{- end -}}

{{/* The NATS URL with the user's credentials in it. Takes (dict "root" $ "user" "<user>"). */}}
{{- define "crews.natsUserUrl" -}}
{{- $url := urlParse .root.Values.nats.url -}}
{{- printf "%s://%s:%s@%s" $url.scheme .user (include "crews.natsPassword" .) $url.host -}}
{{- end -}}

{{/*
What a component reads from the chart's Secrets (its NATS URL, Redis URL, API keys), hashed: a change
rolls that component's pods and no other. Takes (dict "root" $ "user" "<nats user>").
*/}}
{{- define "crews.configChecksum" -}}
{{- $v := .root.Values -}}
{{- $nats := ternary (include "crews.natsUserUrl" .) $v.nats.url $v.nats.auth.enabled -}}
{{- $keys := ternary (list (include "crews.apiKeys" .root) $v.api.existingKeysSecret) list (eq .user "api") -}}
{{- list $nats $v.redis.url $v.redis.existingSecret $keys | toJson | sha256sum -}}
{{- end -}}

{{/*
The API's bearer keys, comma-separated: api.keys, else the ones kept in the Secret of an earlier
release, else one new random key (memoized like the NATS seed): the API never runs open.
*/}}
{{- define "crews.apiKeys" -}}
{{- if not .Values.api.keys -}}
{{- $keys := list (randAlphaNum 40) -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "crews.componentName" (dict "root" . "component" "api-keys")) -}}
{{- if and $existing $existing.data (hasKey $existing.data "api-keys") -}}
{{- $keys = splitList "," (b64dec (index $existing.data "api-keys")) -}}
{{- end -}}
{{- $_ := set .Values.api "keys" $keys -}}
{{- end -}}
{{- join "," .Values.api.keys -}}
{{- end -}}

{{- define "crews.roleUser" -}}
{{- printf "role.%s.%s" .crew .role -}}
{{- end -}}

{{/* Environment of every crews process. Takes (dict "root" $ "secret" "<nats secret name>"). */}}
{{- define "crews.env" -}}
{{- $root := .root -}}
- name: CREWS_NATS_URL
{{- if $root.Values.nats.auth.enabled }}
  valueFrom:
    secretKeyRef: {name: {{ .secret }}, key: url}
{{- else }}
  value: {{ $root.Values.nats.url | quote }}
{{- end }}
- name: CREWS_REDIS_URL
  valueFrom:
    secretKeyRef:
{{- if $root.Values.redis.existingSecret }}
      name: {{ $root.Values.redis.existingSecret }}
      key: {{ $root.Values.redis.existingSecretKey }}
{{- else }}
      name: {{ include "crews.componentName" (dict "root" $root "component" "redis") }}
      key: url
{{- end }}
- name: CREWS_ACK_WAIT_S
  value: {{ $root.Values.settings.ackWaitSeconds | quote }}
- name: CREWS_MAX_DELIVER
  value: {{ $root.Values.settings.maxDeliver | quote }}
- name: CREWS_STREAM_REPLICAS
  value: {{ $root.Values.settings.streamReplicas | quote }}
- name: CREWS_REDIS_CLUSTER
  value: {{ $root.Values.redis.cluster | quote }}
{{- range $name, $value := $root.Values.extraEnv }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* The LLM pool's URLs: the chart's vLLM Service, or the external endpoints. */}}
{{- define "crews.llmUrls" -}}
{{- if .Values.vllm.enabled -}}
{{- printf "http://%s:%d/v1" (include "crews.componentName" (dict "root" . "component" "vllm")) (int .Values.vllm.port) -}}
{{- else -}}
{{- join "," .Values.llm.urls -}}
{{- end -}}
{{- end -}}

{{- define "crews.podSecurity" -}}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Exec probes for processes that are not HTTP servers (see files/nats_connected.py). */}}
{{- define "crews.natsProbes" -}}
{{- $command := list "python3" "-I" "-S" "/etc/crews/probes/nats_connected.py" (toString .Values.nats.port) -}}
readinessProbe:
  exec:
    command: {{ toJson $command }}
  {{- toYaml .Values.probes.nats.readiness | nindent 2 }}
livenessProbe:
  exec:
    command: {{ toJson $command }}
  {{- toYaml .Values.probes.nats.liveness | nindent 2 }}
{{- end -}}

{{- define "crews.probeVolume" -}}
- name: probes
  configMap:
    name: {{ include "crews.componentName" (dict "root" . "component" "probes") }}
    defaultMode: 0444
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "crews.probeMounts" -}}
- name: probes
  mountPath: /etc/crews/probes
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end -}}
