{{/*
Redis users: one per component and per role (the same names as the NATS users), each allowed the
keys its code reads and writes (docs/architecture.md, "Redis keys"; bus/contracts/keys.py,
crews/jobs/store.py, roles/step/*, roles/a2a/*, crews/a2a/*). Every user gets the same commands:
data, transactions and scripts, no admin or dangerous ones (FLUSHALL, KEYS, CONFIG, DEBUG, ...),
no pub/sub channels. What keeps one component from another's keys is the key patterns:

- api: everything crews writes (it registers crews, creates and cancels jobs, decides approvals,
  keeps A2A tasks and push configs, counts rate limits), read-only `crews:stack:*`.
- coordinator: a job's state, the job index and deadlines, the owners' running sets; read-only
  crews, results, memory, usage; EXPIRE only on the other keys of a job that ends. No crew, no
  approval is written.
- role.<crew>.<role>: results, memory, usage (and its reservation), the tool-loop checkpoints of
  any job; read-only job state, crews and approvals; a new approval request (HSETNX: a field that
  does not exist yet) but never a change to one, so no decision; the state of its own A2A calls'
  jobs (`crews:{job:a2a-*}`) and its own A2A task store (`crews:a2a:{<crew>.<role>}:*`).
- admin: every key and command, for the operator (ACL LOAD after an upgrade); no pod uses it.

`default` is switched off: a Redis that loads this file accepts no connection without a user.
*/}}

{{- define "crews.redisAclSecret" -}}
{{- include "crews.componentName" (dict "root" . "component" "redis-acl") -}}
{{- end -}}

{{/* The seed of every Redis password: redis.auth.seed, else the one kept by an earlier release, else random. */}}
{{- define "crews.redisSeed" -}}
{{- if not .Values.redis.auth.seed -}}
{{- $seed := randAlphaNum 48 -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "crews.redisAclSecret" .) -}}
{{- if and $existing $existing.data (hasKey $existing.data "seed") -}}
{{- $seed = b64dec (index $existing.data "seed") -}}
{{- end -}}
{{- $_ := set .Values.redis.auth "seed" $seed -}}
{{- end -}}
{{- .Values.redis.auth.seed -}}
{{- end -}}

{{/* Takes (dict "root" $ "user" "<user>"). */}}
{{- define "crews.redisPassword" -}}
{{- printf "%s:redis:%s" (include "crews.redisSeed" .root) .user | sha256sum | trunc 40 -}}
{{- end -}}

{{/* redis.url with the user's credentials. Takes (dict "root" $ "user" "<user>"). */}}
{{- define "crews.redisUserUrl" -}}
{{- $url := urlParse .root.Values.redis.url -}}
{{- $query := ternary (printf "?%s" $url.query) "" (ne $url.query "") -}}
{{- printf "%s://%s:%s@%s%s%s" $url.scheme .user (include "crews.redisPassword" .) $url.host $url.path $query -}}
{{- end -}}

{{/* The Secret holding a component's Redis URL: beside its NATS Secret (<base>-nats → <base>-redis). */}}
{{- define "crews.redisSecretOf" -}}
{{- printf "%s-redis" (trimSuffix "-nats" .) -}}
{{- end -}}

{{/* Commands every crews user may run (data on its keys, transactions, scripts, connection, cluster topology). */}}
{{- define "crews.redisCommands" -}}
-@all +@connection +@read +@write +@transaction +eval +evalsha +script|load +script|exists -@dangerous -@admin -function +cluster|slots +cluster|shards +cluster|nodes +cluster|info
{{- end -}}

{{/*
The Redis users as JSON: [{"user", "secret", "rules"}], rules in ACL syntax (key patterns and
selectors after the common commands).
*/}}
{{- define "crews.redisUsers" -}}
{{- $job := "crews:{job:*}" -}}
{{- $users := list -}}
{{- $api := list
  "~crews:crew:*" "~crews:crews:owners" "~crews:idem:*" "~crews:rate:*" "~crews:owner:*"
  "~crews:jobs" "~crews:jobs:deadlines" "~crews:{job:*" "~crews:a2a:push:due" "~crews:a2a:push:cursor" "%R~crews:stack:*" -}}
{{- $users = append $users (dict "user" "api" "secret" (include "crews.componentName" (dict "root" . "component" "api-redis")) "rules" $api) -}}
{{- $ends := list -}}
{{- range list "results" "memory" "usage" "approvals" "turns" "progress" }}{{ $ends = append $ends (printf "%%W~%s:%s" $job .) }}{{ end -}}
{{- $coordinator := list
  (printf "~%s:state" $job) "~crews:jobs" "~crews:jobs:deadlines" "~crews:owner:*"
  "%R~crews:crew:*" (printf "%%R~%s:results" $job) (printf "%%R~%s:memory" $job) (printf "%%R~%s:usage" $job)
  (printf "%%R~%s:progress" $job) (printf "(%s +expire +pexpire)" (join " " $ends)) -}}
{{- $users = append $users (dict "user" "coordinator" "secret" (include "crews.componentName" (dict "root" . "component" "coordinator-redis")) "rules" $coordinator) -}}
{{- range $crew, $spec := .Values.crews -}}
{{- range $role, $r := $spec.roles -}}
{{- $rules := list
  (printf "~%s:results" $job) (printf "~%s:memory" $job) (printf "~%s:usage" $job)
  (printf "~%s:usage:reserved" $job) (printf "~%s:turns" $job) (printf "~%s:progress" $job)
  (printf "%%R~%s:state" $job) (printf "%%R~%s:approvals" $job) "%R~crews:crew:*"
  "~crews:{job:a2a-*}:state" (printf "~crews:a2a:{%s.%s}:*" $crew $role)
  (printf "(%%W~%s:approvals +hsetnx)" $job) -}}
{{- $users = append $users (dict
  "user" (include "crews.roleUser" (dict "crew" $crew "role" $role))
  "secret" (printf "%s-redis" (include "crews.roleName" (dict "root" $ "crew" $crew "role" $role)))
  "rules" $rules) -}}
{{- end -}}
{{- end -}}
{{- toJson $users -}}
{{- end -}}

{{/* The ACL file (aclfile / ACL LOAD; it allows no comments): every user, passwords as sha256 hashes. */}}
{{- define "crews.redisAcl" -}}
user default reset off
user admin reset on #{{ include "crews.redisPassword" (dict "root" . "user" "admin") | sha256sum }} ~* &* +@all
{{- range include "crews.redisUsers" . | fromJsonArray }}
user {{ .user }} reset on #{{ include "crews.redisPassword" (dict "root" $ "user" .user) | sha256sum }} {{ include "crews.redisCommands" $ }} {{ join " " .rules }}
{{- end }}
{{- end -}}
