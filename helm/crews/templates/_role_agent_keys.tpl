{{/*
Role agents' keys (CREWS_ROLE_A2A_KEYS). A role of the release that an outside agent names
(a2aAgents.<name>.nats: <crew>.<role>) requires a bearer key, and every role calling it through
that agent sends the key (its agent credential): both read the same Secret key. The key is the
agent's authorizationSecret when the operator gives one (a bare key), else derived from a seed
into <release>-crews-role-a2a-keys (key: the target's role id). As JSON: "<crew>.<role>" ->
{"name", "key", "value" (made ones only)}. Agents naming one role with different Secrets fail.
*/}}
{{- define "crews.roleAgentKeys" -}}
{{- $refs := dict -}}
{{- $made := include "crews.componentName" (dict "root" . "component" "role-a2a-keys") -}}
{{- range $name, $agent := .Values.a2aAgents | default dict -}}
{{- $target := splitList "." ($agent.nats | default "") -}}
{{- if and (eq (len $target) 2) (hasKey $.Values.crews (first $target)) -}}
{{- if hasKey (index $.Values.crews (first $target)).roles (last $target) -}}
{{- $ref := dict "name" $made "key" (include "crews.roleId" (dict "crew" (first $target) "role" (last $target))) -}}
{{- with $agent.authorizationSecret -}}
{{- $ref = dict "name" .name "key" (.key | default "authorization") -}}
{{- else -}}
{{- $_ := set $ref "value" (printf "%s:a2a:%s" (include "crews.roleAgentSeed" $) $agent.nats | sha256sum | trunc 40) -}}
{{- end -}}
{{- $known := get $refs $agent.nats -}}
{{- if and $known (or (ne $known.name $ref.name) (ne $known.key $ref.key)) -}}
{{- fail (printf "a2aAgents.%s names the role agent %s with another credential than an earlier agent naming it: give every agent naming it the same authorizationSecret, or none (the chart then makes its key)" $name $agent.nats) -}}
{{- end -}}
{{- $_ := set $refs $agent.nats $ref -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $refs -}}
{{- end -}}

{{/* The seed of the role agents' keys: roleAgentKeys.seed, else the one kept by an earlier release, else new. */}}
{{- define "crews.roleAgentSeed" -}}
{{- if not .Values.roleAgentKeys.seed -}}
{{- $seed := randAlphaNum 48 -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "crews.componentName" (dict "root" . "component" "role-a2a-keys")) -}}
{{- if and $existing $existing.data (hasKey $existing.data "seed") -}}
{{- $seed = b64dec (index $existing.data "seed") -}}
{{- end -}}
{{- $_ := set .Values.roleAgentKeys "seed" $seed -}}
{{- end -}}
{{- .Values.roleAgentKeys.seed -}}
{{- end -}}

{{/*
The Secret key an outside agent's credential comes from, as JSON {"name", "key"} ({} : none): a
role agent of the release its made key (crews.roleAgentKeys), else its authorizationSecret.
Takes (dict "root" $ "agent" <the agent's declaration>).
*/}}
{{- define "crews.agentCredential" -}}
{{- $ref := get (include "crews.roleAgentKeys" .root | fromJson) (.agent.nats | default "") -}}
{{- if $ref -}}
{{- toJson (dict "name" $ref.name "key" $ref.key) -}}
{{- else if .agent.authorizationSecret -}}
{{- toJson (dict "name" .agent.authorizationSecret.name "key" (.agent.authorizationSecret.key | default "authorization")) -}}
{{- else -}}
{{- toJson dict -}}
{{- end -}}
{{- end -}}
