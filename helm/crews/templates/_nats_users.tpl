{{/*
The NATS users of the release and what each may publish and subscribe, as JSON:
[{"user", "secret", "permissions": {"publish": {"allow": [...]}, "subscribe": {"allow": [...]}}}].
Every name comes from the `bus` block and the roles' blocks (written from bus/subjects.py).
Anything not allowed is denied.

- api: submit jobs, publish job-level events, follow a job's events through its own ordered consumers
  and read its last one, read stream info and the role consumers' lag (metrics), call A2A agents,
  serve every crew as an A2A agent on crews.a2a.<crew>.
- coordinator: the JetStream API (it creates the streams and consumers), publish on every crews
  subject (steps, job events, dead letters), ack what it consumes.
- role.<crew>.<role>: read-only info of the streams, only its own consumer (info, create, fetch, ack),
  job events (publish; subscribe to stop a step whose job was cancelled), its dead-letter subject,
  its A2A subject (serve) and the A2A agents its engine calls;
  replies via _INBOX. Creating or changing streams is the coordinator's alone.
*/}}
{{- define "crews.natsUsers" -}}
{{- $b := .Values.bus -}}
{{- $js := "$JS.API" -}}
{{- $events := $b.eventsStream -}}
{{- $users := list -}}
{{- $api := dict
  "user" "api"
  "secret" (include "crews.componentName" (dict "root" . "component" "api-nats"))
  "permissions" (dict
    "publish" (dict "allow" (list
      $b.jobsSubject
      $b.eventsSubjects
      (printf "%s.>" $b.a2aPrefix)
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
      (printf "$JS.FC.%s.>" $events)
      "_INBOX.>"))
    "subscribe" (dict "allow" (list "_INBOX.>" (printf "%s.*" $b.a2aPrefix)))) -}}
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
      $b.eventsSubjects
      $b.deadLetterSubjects
      (printf "%s.>" $b.a2aPrefix)
      "_INBOX.>"))
    "subscribe" (dict "allow" (list "_INBOX.>"))) -}}
{{- $users = append $users $coordinator -}}
{{- range $crew, $spec := .Values.crews -}}
{{- range $role, $r := $spec.roles -}}
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
  $b.eventsSubjects
  $r.deadLetterSubject
  "_INBOX.>" -}}
{{- $peers := $r.a2aPeers | default list -}}
{{- with $r.outsideAgent -}}
{{- $agent := include "crews.outsideAgent" (dict "root" $ "name" .) | fromJson -}}
{{- if $agent.nats }}{{ $peers = append $peers (printf "%s.%s" $b.a2aPrefix $agent.nats) }}{{ end -}}
{{- end -}}
{{- $user := dict
  "user" (include "crews.roleUser" (dict "crew" $crew "role" $role))
  "secret" (printf "%s-nats" (include "crews.roleName" (dict "root" $ "crew" $crew "role" $role)))
  "permissions" (dict
    "publish" (dict "allow" (concat $publish $peers))
    "subscribe" (dict "allow" (list "_INBOX.>" $r.a2aSubject $b.eventsSubjects))) -}}
{{- $users = append $users $user -}}
{{- end -}}
{{- end -}}
{{- toJson $users -}}
{{- end -}}

{{/* A list of subjects in the NATS config syntax: "a", "b" (quoted, so `$JS` is no variable). */}}
{{- define "crews.natsSubjects" -}}
{{- range $i, $subject := . }}{{ if $i }}, {{ end }}{{ quote $subject }}{{ end -}}
{{- end -}}
