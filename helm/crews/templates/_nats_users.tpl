{{/*
The NATS users of the release and what each may publish and subscribe, as JSON:
[{"user", "secret", "permissions": {"publish": {"allow": [...]}, "subscribe": {"allow": [...]}}}].
Every name comes from the `bus` block and the roles' blocks (written from bus/subjects.py).
Anything not allowed is denied.

Every user subscribes only to its own inboxes, <inboxPrefix>_<user>.> (bus/connect.py connects with
that prefix), and publishes replies only to the inboxes of the users allowed to call it.
Events: the API and the coordinator publish on crews.events.*.job (the job's own subject) and its
signals crews.signals.* (state only), a role only on crews.events.*.<crew>.<role>.* (its own; kind last).

- api: submit jobs, publish on the jobs' own events subjects, follow a job's events through its own
  ordered consumers and read its last one, read stream info and the role consumers' lag (metrics),
  serve every crew as an A2A agent on crews.a2a.<crew> and answer the roles that call a crew.
  It calls no A2A agent.
- coordinator: the JetStream API (it creates the streams and consumers), publish jobs, steps, the
  jobs' own events and dead letters, ack what it consumes. It calls no A2A agent.
- role.<crew>.<role>: read-only info of the streams, only its own consumer (info, create, fetch, ack),
  its own events subject (publish; subscribe, where a call to its agent is cancelled), the jobs'
  signals, never their events (subscribe: a cancelled job stops its step, an approval wakes it; a
  signal carries no output, text or arguments), its dead-letter subject,
  its A2A subject (serve; publish, to hand the calls held while its agent loads to the agent; reply
  to the roles that name it as their outside agent) and the A2A agents its engine calls. Creating or changing streams is the coordinator's alone.
*/}}
{{- define "crews.natsUsers" -}}
{{- $b := .Values.bus -}}
{{- $js := "$JS.API" -}}
{{- $events := $b.eventsStream -}}
{{- $inbox := $b.inboxPrefix -}}
{{- /* who calls whom: A2A agent name (<crew> or <crew>.<role>) -> the users of the roles calling it */ -}}
{{- $callers := dict -}}
{{- range $crew, $spec := .Values.crews -}}
{{- range $role, $r := $spec.roles -}}
{{- $user := include "crews.roleUser" (dict "crew" $crew "role" $role) -}}
{{- $agents := list -}}
{{- range $r.a2aPeers | default list }}{{ $agents = append $agents (trimPrefix (printf "%s." $b.a2aPrefix) .) }}{{ end -}}
{{- with $r.outsideAgent -}}
{{- $agent := include "crews.outsideAgent" (dict "root" $ "name" .) | fromJson -}}
{{- if $agent.nats }}{{ $agents = append $agents $agent.nats }}{{ end -}}
{{- end -}}
{{- range $agents -}}
{{- $_ := set $callers . (append (get $callers . | default list) $user) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- $users := list -}}
{{- $apiReplies := list -}}
{{- range $agent, $who := $callers -}}
{{- if not (contains "." $agent) -}}
{{- range $who }}{{ $apiReplies = append $apiReplies (printf "%s_%s.>" $inbox .) }}{{ end -}}
{{- end -}}
{{- end -}}
{{- $api := dict
  "user" "api"
  "secret" (include "crews.componentName" (dict "root" . "component" "api-nats"))
  "permissions" (dict
    "publish" (dict "allow" (concat (list
      $b.jobsSubject
      $b.jobEventsSubjects
      $b.jobSignalsSubjects
      (printf "%s.INFO" $js)
      (printf "%s.STREAM.INFO.*" $js)
      (printf "%s.CONSUMER.CREATE.%s" $js $events)
      (printf "%s.CONSUMER.CREATE.%s.>" $js $events)
      (printf "%s.CONSUMER.INFO.%s.>" $js $events)
      (printf "%s.CONSUMER.DELETE.%s.>" $js $events)
      (printf "%s.CONSUMER.MSG.NEXT.%s.>" $js $events)
      (printf "%s.STREAM.MSG.GET.%s" $js $events)
      (printf "%s.DIRECT.GET.%s" $js $events)
      (printf "%s.DIRECT.GET.%s.>" $js $events)
      (printf "%s.CONSUMER.INFO.%s.*" $js $b.tasksStream)
      (printf "$JS.ACK.%s.>" $events)
      (printf "$JS.FC.%s.>" $events)) (uniq $apiReplies)))
    "subscribe" (dict "allow" (list (printf "%s_api.>" $inbox) (printf "%s.*" $b.a2aPrefix)))) -}}
{{- $users = append $users $api -}}
{{- $coordinator := dict
  "user" "coordinator"
  "secret" (include "crews.componentName" (dict "root" . "component" "coordinator-nats"))
  "permissions" (dict
    "publish" (dict "allow" (list
      (printf "%s.>" $js)
      "$JS.ACK.>"
      "$JS.FC.>"
      $b.jobsSubject
      $b.tasksSubjects
      $b.jobEventsSubjects
      $b.jobSignalsSubjects
      $b.deadLetterSubjects))
    "subscribe" (dict "allow" (list (printf "%s_coordinator.>" $inbox)))) -}}
{{- $users = append $users $coordinator -}}
{{- range $crew, $spec := .Values.crews -}}
{{- range $role, $r := $spec.roles -}}
{{- $name := include "crews.roleUser" (dict "crew" $crew "role" $role) -}}
{{- $publish := list
  (printf "%s.STREAM.INFO.%s" $js $b.jobsStream)
  (printf "%s.STREAM.INFO.%s" $js $b.tasksStream)
  (printf "%s.STREAM.INFO.%s" $js $b.eventsStream)
  (printf "%s.STREAM.INFO.%s" $js $b.deadLetterStream)
  (printf "%s.CONSUMER.INFO.%s.%s" $js $r.stream $r.consumer)
  (printf "%s.CONSUMER.CREATE.%s.%s" $js $r.stream $r.consumer)
  (printf "%s.CONSUMER.CREATE.%s.%s.%s" $js $r.stream $r.consumer $r.subject)
  (printf "%s.CONSUMER.DURABLE.CREATE.%s.%s" $js $r.stream $r.consumer)
  (printf "%s.CONSUMER.MSG.NEXT.%s.%s" $js $r.stream $r.consumer)
  (printf "$JS.ACK.%s.%s.>" $r.stream $r.consumer)
  $r.eventsSubject
  $r.deadLetterSubject
  $r.a2aSubject -}}
{{- $peers := $r.a2aPeers | default list -}}
{{- with $r.outsideAgent -}}
{{- $agent := include "crews.outsideAgent" (dict "root" $ "name" .) | fromJson -}}
{{- if $agent.nats }}{{ $peers = append $peers (printf "%s.%s" $b.a2aPrefix $agent.nats) }}{{ end -}}
{{- end -}}
{{- $replies := list -}}
{{- range get $callers (printf "%s.%s" $crew $role) | default list }}{{ $replies = append $replies (printf "%s_%s.>" $inbox .) }}{{ end -}}
{{- $user := dict
  "user" $name
  "secret" (printf "%s-nats" (include "crews.roleName" (dict "root" $ "crew" $crew "role" $role)))
  "permissions" (dict
    "publish" (dict "allow" (concat $publish (uniq $peers) (uniq $replies)))
    "subscribe" (dict "allow" (list (printf "%s_%s.>" $inbox $name) $r.a2aSubject $r.eventsSubject $b.jobSignalsSubjects))) -}}
{{- $users = append $users $user -}}
{{- end -}}
{{- end -}}
{{- toJson $users -}}
{{- end -}}

{{/* A list of subjects in the NATS config syntax: "a", "b" (quoted, so `$JS` is no variable). */}}
{{- define "crews.natsSubjects" -}}
{{- range $i, $subject := . }}{{ if $i }}, {{ end }}{{ quote $subject }}{{ end -}}
{{- end -}}
