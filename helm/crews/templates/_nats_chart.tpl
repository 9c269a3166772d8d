{{/*
Values for the official NATS chart (nats-io/k8s, 1.x) that run the NATS cluster this release needs:
`nats.chartValues.replicas` servers with JetStream and the monitoring port (KEDA reads lag there),
and the release's accounts (`crews.natsAccountsSecret`, key accounts.conf) mounted beside the
chart's own config and included from it (`config.merge.$include`, relative to /etc/nats-config).
Only accounts.conf is mounted: the password seed stays in the crews namespace's Secret.
*/}}
{{- define "crews.natsChartValues" -}}
{{- $chart := .Values.nats.chartValues -}}
# Values for the NATS chart (https://nats-io.github.io/k8s/helm/charts/, chart nats 1.x), written by
# the crews release {{ .Release.Name }}. Install NATS in namespace {{ .Release.Namespace }} (it mounts a Secret of it):
#   helm upgrade --install nats nats/nats -n {{ .Release.Namespace }} -f nats-values.yaml
config:
  cluster:
    enabled: {{ gt (int $chart.replicas) 1 }}
    replicas: {{ $chart.replicas }}
  jetstream:
    enabled: true
    fileStore:
      pvc:
        size: {{ $chart.storageSize }}
  monitor:
    enabled: true
  merge:
    $include: crews/accounts.conf
container:
  patch:
    - op: add
      path: /volumeMounts/-
      value: {name: crews-accounts, mountPath: /etc/nats-config/crews, readOnly: true}
podTemplate:
  patch:
    - op: add
      path: /spec/volumes/-
      value:
        name: crews-accounts
        secret:
          secretName: {{ include "crews.natsAccountsSecret" . }}
          items: [{key: accounts.conf, path: accounts.conf}]
{{- end -}}
