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
The image of a role's workers: the role's own `image` (a CrewAI project's image, say: `python -m
images.build --project DIR`), its unset keys from the default: crewaiImage (Containerfile.crewai:
CrewAI in its own environment) for engine crewai, else the crews image.
Takes (dict "root" $ "engine" "<engine>" "image" <the role's image or nil>).
*/}}
{{- define "crews.roleImage" -}}
{{- $default := ternary .root.Values.crewaiImage .root.Values.image (eq (toString .engine) "crewai") -}}
{{- $image := merge (deepCopy (.image | default dict)) $default -}}
image: {{ printf "%s:%s" $image.repository (default .root.Chart.AppVersion $image.tag) }}
imagePullPolicy: {{ $image.pullPolicy }}
{{- end -}}

{{/*
CREWS_PROJECT_PATHS: the CrewAI projects (package directories in the image) whose code a crewai
worker may import; nothing when `paths` is empty (the image's own ENV then decides).
Takes (dict "paths" <list>).
*/}}
{{- define "crews.projectPathsEnv" -}}
{{- with .paths }}
- name: CREWS_PROJECT_PATHS
  value: {{ join ":" . | quote }}
{{- end }}
{{- end -}}

{{/*
Every role's projectPaths (and roleDefaults'), sorted, as JSON: the API refuses a crew file that
names the code of a project none of them declares.
*/}}
{{- define "crews.allProjectPaths" -}}
{{- $paths := .Values.roleDefaults.projectPaths | default list -}}
{{- range $crew, $spec := .Values.crews }}
{{- range $role, $r := $spec.roles }}
{{- $paths = concat $paths ($r.projectPaths | default list) -}}
{{- end }}
{{- end }}
{{- $paths | uniq | sortAlpha | toJson -}}
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
{{- $keys := ternary (list (include "crews.apiKeys" .root) $v.api.existingKeysSecret (include "crews.pushKey" .root) $v.api.pushKeySecret) list (eq .user "api") -}}
{{- $redis := ternary (include "crews.redisUserUrl" .) $v.redis.url (and $v.redis.auth.enabled (not $v.redis.existingSecret)) -}}
{{- $agentKeys := ternary (include "crews.roleAgentKeys" .root) "" (hasPrefix "role." .user) -}}
{{- list $nats $redis $v.redis.existingSecret $keys $agentKeys | toJson | sha256sum -}}
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

{{/*
The Fernet key that seals webhook tokens and credentials in Redis (CREWS_A2A_PUSH_SECRET_KEY):
empty with api.pushKeySecret.name (the operator's Secret holds it), else the one kept in the
Secret of an earlier release, else a new one (32 random bytes, URL-safe base64; memoized).
*/}}
{{- define "crews.pushKey" -}}
{{- if and (not .Values.api.pushKeySecret.name) (not (index .Values.api "_pushKey")) -}}
{{- $key := randBytes 32 | replace "+" "-" | replace "/" "_" -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "crews.componentName" (dict "root" . "component" "push-key")) -}}
{{- if and $existing $existing.data (hasKey $existing.data "push-key") -}}
{{- $key = b64dec (index $existing.data "push-key") -}}
{{- end -}}
{{- $_ := set .Values.api "_pushKey" $key -}}
{{- end -}}
{{- index .Values.api "_pushKey" | default "" -}}
{{- end -}}

{{- define "crews.roleUser" -}}
{{- printf "role.%s.%s" .crew .role -}}
{{- end -}}

{{/*
Environment of every crews process. Takes (dict "root" $ "secret" "<nats secret name>"); the
component's Redis URL is in the Secret beside it (crews.redisSecretOf).
*/}}
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
{{- else if $root.Values.redis.auth.enabled }}
      name: {{ include "crews.redisSecretOf" .secret }}  # the component's own Redis user
      key: url
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

{{/* True when the workers find the vLLM pods through the headless Service (CREWS_LLM_DISCOVER). */}}
{{- define "crews.llmDiscover" -}}
{{- if and .Values.vllm.enabled .Values.vllm.headlessService .Values.llm.discover -}}
{{- printf "http://%s:%d/v1" (include "crews.componentName" (dict "root" . "component" "vllm-pods")) (int .Values.vllm.port) -}}
{{- end -}}
{{- end -}}

{{/* The LLM pool client's environment (inference/settings.py) for a worker. */}}
{{- define "crews.llmEnv" -}}
{{- $llm := .Values.llm -}}
{{- $o := $llm.overflow -}}
- name: CREWS_LLM_URLS
  value: {{ include "crews.llmUrls" . | quote }}
{{- with include "crews.llmDiscover" . }}
- name: CREWS_LLM_DISCOVER
  value: {{ . | quote }}
- name: CREWS_LLM_DISCOVER_INTERVAL_S
  value: {{ $llm.discoverIntervalSeconds | quote }}
{{- end }}
- name: CREWS_LLM_MODEL
  value: {{ $llm.model | quote }}
{{- if $llm.apiKeySecret.name }}
- name: CREWS_LLM_API_KEY
  valueFrom:
    secretKeyRef: {name: {{ $llm.apiKeySecret.name }}, key: {{ $llm.apiKeySecret.key }}}
{{- end }}
{{- $prices := deepCopy ($llm.prices | default dict) -}}
{{- if $o.enabled }}
{{- $_ := set $prices $o.model $o.price }}
- name: CREWS_LLM_OVERFLOW_URL
  value: {{ $o.url | quote }}
- name: CREWS_LLM_OVERFLOW_MODEL
  value: {{ $o.model | quote }}
- name: CREWS_LLM_OVERFLOW_PROVIDER
  value: {{ $o.provider | quote }}
- name: CREWS_LLM_OVERFLOW_KEY
  valueFrom:
    secretKeyRef: {name: {{ $o.apiKeySecret.name }}, key: {{ $o.apiKeySecret.key }}}
- name: CREWS_LLM_OVERFLOW_API_KEY_ENV
  value: CREWS_LLM_OVERFLOW_KEY
- name: CREWS_LLM_OVERFLOW_START_WAITING
  value: {{ $o.startWaiting | quote }}
- name: CREWS_LLM_OVERFLOW_STOP_WAITING
  value: {{ $o.stopWaiting | quote }}
- name: CREWS_LLM_OVERFLOW_DROP_PARAMS
  value: {{ join "," $o.dropParams | quote }}
- name: CREWS_LLM_METRICS_INTERVAL_S
  value: {{ $o.metricsIntervalSeconds | quote }}
{{- end }}
{{- if $prices }}
- name: CREWS_LLM_PRICES
  value: {{ toJson $prices | quote }}
{{- end }}
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

{{/* The operator's declaration of the outside agent .name (a2aAgents), as JSON; fails when it is missing. */}}
{{- define "crews.outsideAgent" -}}
{{- $agent := index (.root.Values.a2aAgents | default dict) .name -}}
{{- if not $agent -}}
{{- fail (printf "a role names the outside agent %q, which a2aAgents does not declare: add it to the values (url or nats, authorizationSecret)" .name) -}}
{{- end -}}
{{- toJson $agent -}}
{{- end -}}

{{/* The Host names the API serves: its Service's in-cluster names, the ingress host, api.allowedHosts. */}}
{{- define "crews.apiHosts" -}}
{{- $ns := .root.Release.Namespace -}}
{{- $hosts := list "localhost" "127.0.0.1" .name (printf "%s.%s" .name $ns) (printf "%s.%s.svc" .name $ns) (printf "%s.%s.svc.cluster.local" .name $ns) -}}
{{- if .root.Values.api.ingress.enabled }}{{ $hosts = append $hosts .root.Values.api.ingress.host }}{{ end -}}
{{- join "," (concat $hosts (.root.Values.api.allowedHosts | default list)) -}}
{{- end -}}

{{/* An MCP server's objects: <fullname>-mcp-<server>. Takes (dict "root" $ "server" .). */}}
{{- define "crews.mcpName" -}}
{{- printf "%s-mcp-%s" (include "crews.fullname" .root | trunc 30 | trimSuffix "-") (regexReplaceAll "[^a-z0-9-]+" (.server | lower) "-") | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The environment variable that carries header number .index of MCP server .server. */}}
{{- define "crews.mcpHeaderEnv" -}}
{{- printf "CREWS_MCP_%s_HEADER_%d" (regexReplaceAll "[^A-Z0-9]+" (.server | upper) "_") .index -}}
{{- end -}}

{{/*
CREWS_MCP_SERVERS for a process that uses the MCP servers in .servers (a list of names): each one's
in-cluster URL, approval rules and timeout, and the names of the variables that hold its headers
(filled from Secrets by crews.mcpEnv). Takes (dict "root" $ "servers" (list ...)).
*/}}
{{- define "crews.mcpEnv" -}}
{{- $root := .root -}}
{{- $declared := dict -}}
{{- $secretEnv := list -}}
{{- range $server := .servers -}}
{{- $m := index ($root.Values.mcpServers | default dict) $server -}}
{{- if not $m -}}
{{- fail (printf "a role's tools name the MCP server %q, which mcpServers does not declare: declare it (image, or url) in the values" $server) -}}
{{- end -}}
{{- $url := $m.url | default (printf "http://%s:%d%s" (include "crews.mcpName" (dict "root" $root "server" $server)) (int ($m.port | default 8000)) ($m.path | default "/mcp")) -}}
{{- $headers := dict -}}
{{- range $i, $header := keys ($m.headersFromSecrets | default dict) | sortAlpha -}}
{{- $env := include "crews.mcpHeaderEnv" (dict "server" $server "index" $i) -}}
{{- $_ := set $headers $header $env -}}
{{- $secretEnv = append $secretEnv (dict "name" $env "ref" (index $m.headersFromSecrets $header)) -}}
{{- end -}}
{{- $_ := set $declared $server (dict "url" $url "headers_from" $headers "approval" ($m.approval | default dict) "timeout_s" ($m.timeoutSeconds | default 30)) -}}
{{- end -}}
- name: CREWS_MCP_SERVERS
  value: {{ toJson $declared | quote }}
{{- range $secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef: {name: {{ .ref.name }}, key: {{ .ref.key }}}
{{- end }}
{{- end -}}

{{/* Role ids of the roles whose tools use MCP server .server. Takes (dict "root" $ "server" .). */}}
{{- define "crews.mcpUsers" -}}
{{- $users := list -}}
{{- range $crew, $spec := .root.Values.crews -}}
{{- range $role, $r := $spec.roles -}}
{{- if has $.server ($r.mcpServers | default list) -}}
{{- $users = append $users (include "crews.roleId" (dict "crew" $crew "role" $role)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $users -}}
{{- end -}}
