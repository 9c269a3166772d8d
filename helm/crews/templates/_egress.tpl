{{/*
Egress peers and rules that never reach a cloud metadata address.

Every ipBlock the chart renders (its own, or one in the operator's values) gets `except` entries for
the metadata and link-local ranges it contains (169.254.0.0/16, which holds 169.254.169.254;
fd00:ec2::254/128; fe80::/10) and, unless private addresses are allowed, for the private, CGNAT and
loopback ranges it contains. A block inside one of those ranges fails the render. An egress rule
without `to` (any address) becomes one to the public internet: 0.0.0.0/0 and ::/0 minus those ranges.
*/}}

{{- define "crews.metadataCidrs" -}}
{{- toJson (list "169.254.0.0/16" "fd00:ec2::254/128" "fe80::/10") -}}
{{- end -}}

{{- define "crews.privateCidrs" -}}
{{- toJson (list "10.0.0.0/8" "172.16.0.0/12" "192.168.0.0/16" "100.64.0.0/10" "127.0.0.0/8" "fc00::/7" "::1/128") -}}
{{- end -}}

{{/* A CIDR as JSON {"v6": bool, "prefix": int, "units": [8-bit or 16-bit ints]}; fails on a malformed one. */}}
{{- define "crews.parseCidr" -}}
{{- $parts := splitList "/" . -}}
{{- $addr := first $parts -}}
{{- $v6 := contains ":" $addr -}}
{{- $prefix := ternary 128 32 $v6 -}}
{{- if eq (len $parts) 2 }}{{ $prefix = atoi (last $parts) }}{{ end -}}
{{- $units := list -}}
{{- if $v6 -}}
{{- $halves := splitList "::" (lower $addr) -}}
{{- $head := ternary list (splitList ":" (first $halves)) (eq (first $halves) "") -}}
{{- $tail := list -}}
{{- if and (eq (len $halves) 2) (ne (last $halves) "") }}{{ $tail = splitList ":" (last $halves) }}{{ end -}}
{{- $hex := dict "0" 0 "1" 1 "2" 2 "3" 3 "4" 4 "5" 5 "6" 6 "7" 7 "8" 8 "9" 9 "a" 10 "b" 11 "c" 12 "d" 13 "e" 14 "f" 15 -}}
{{- $groups := $head -}}
{{- range until (sub 8 (add (len $head) (len $tail)) | int) }}{{ $groups = append $groups "0" }}{{ end -}}
{{- range concat $groups $tail -}}
{{- $value := 0 -}}
{{- range splitList "" . -}}
{{- if not (hasKey $hex .) }}{{ fail (printf "%q is not an IPv6 CIDR: use hex groups (e.g. 2001:db8::/32)" $addr) }}{{ end -}}
{{- $value = add (mul $value 16) (index $hex .) -}}
{{- end -}}
{{- $units = append $units $value -}}
{{- end -}}
{{- else -}}
{{- range splitList "." $addr }}{{ $units = append $units (atoi .) }}{{ end -}}
{{- end -}}
{{- if ne (len $units) (ternary 8 4 $v6) }}{{ fail (printf "%q is not a CIDR (a.b.c.d/n or an IPv6 prefix)" .) }}{{ end -}}
{{- toJson (dict "v6" $v6 "prefix" $prefix "units" $units) -}}
{{- end -}}

{{/* "true" when CIDR .outer holds all of CIDR .inner (equal included). Takes (dict "outer" . "inner" .). */}}
{{- define "crews.cidrContains" -}}
{{- $o := include "crews.parseCidr" .outer | fromJson -}}
{{- $i := include "crews.parseCidr" .inner | fromJson -}}
{{- if and (eq $o.v6 $i.v6) (ge (int $i.prefix) (int $o.prefix)) -}}
{{- $width := ternary 16 8 $o.v6 -}}
{{- $pow := list 1 2 4 8 16 32 64 128 256 512 1024 2048 4096 8192 16384 32768 65536 -}}
{{- $same := true -}}
{{- range $n, $unit := $o.units -}}
{{- $bits := min $width (max 0 (sub (int $o.prefix) (mul $n $width))) -}}
{{- if gt (int $bits) 0 -}}
{{- $step := index $pow (sub $width $bits | int) -}}
{{- if ne (div (int $unit) $step) (div (int (index $i.units $n)) $step) }}{{ $same = false }}{{ end -}}
{{- end -}}
{{- end -}}
{{- if $same }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/*
An ipBlock peer for .block ({cidr, except}) with the excluded ranges it holds added to `except`;
fails when the block lies inside one. Takes (dict "block" . "allowPrivate" bool "what" "<where it is>").
*/}}
{{- define "crews.safeIpBlock" -}}
{{- $cidr := .block.cidr -}}
{{- $except := .block.except | default list -}}
{{- $allowPrivate := .allowPrivate | default false -}}
{{- $denied := include "crews.metadataCidrs" . | fromJsonArray -}}
{{- if not $allowPrivate }}{{ $denied = concat $denied (include "crews.privateCidrs" . | fromJsonArray) }}{{ end -}}
{{- range $denied -}}
{{- if include "crews.cidrContains" (dict "outer" . "inner" $cidr) -}}
{{- fail (printf "%s: the ipBlock %s is inside %s (metadata, link-local%s), which crews pods may never reach" $.what $cidr . (ternary "" ", or private without allowPrivate" $allowPrivate)) -}}
{{- end -}}
{{- if and (include "crews.cidrContains" (dict "outer" $cidr "inner" .)) (not (has . $except)) -}}
{{- $except = append $except . -}}
{{- end -}}
{{- end -}}
{{- $block := dict "cidr" $cidr -}}
{{- if $except }}{{ $_ := set $block "except" $except }}{{ end -}}
{{- toJson (dict "ipBlock" $block) -}}
{{- end -}}

{{/* Peers with every ipBlock made safe (crews.safeIpBlock). Takes (dict "peers" list "allowPrivate" bool "what" .). */}}
{{- define "crews.safePeers" -}}
{{- $out := list -}}
{{- range .peers -}}
{{- if .ipBlock -}}
{{- $out = append $out (include "crews.safeIpBlock" (dict "block" .ipBlock "allowPrivate" $.allowPrivate "what" $.what) | fromJson) -}}
{{- else -}}
{{- $out = append $out . -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* The public internet as peers: 0.0.0.0/0 and ::/0 without the excluded ranges. Takes (dict "allowPrivate" bool). */}}
{{- define "crews.publicPeers" -}}
{{- $blocks := list (dict "ipBlock" (dict "cidr" "0.0.0.0/0")) (dict "ipBlock" (dict "cidr" "::/0")) -}}
{{- include "crews.safePeers" (dict "peers" $blocks "allowPrivate" .allowPrivate "what" "public internet") -}}
{{- end -}}

{{/*
Egress rules made safe: each rule's ipBlocks (crews.safeIpBlock), and a rule without `to` sent to the
public internet only. Takes (dict "rules" list "allowPrivate" bool "what" "<whose rules>").
*/}}
{{- define "crews.safeEgress" -}}
{{- $out := list -}}
{{- range .rules -}}
{{- $rule := deepCopy . -}}
{{- if $rule.to -}}
{{- $_ := set $rule "to" (include "crews.safePeers" (dict "peers" $rule.to "allowPrivate" $.allowPrivate "what" $.what) | fromJsonArray) -}}
{{- else -}}
{{- $_ := set $rule "to" (include "crews.publicPeers" (dict "allowPrivate" $.allowPrivate) | fromJsonArray) -}}
{{- end -}}
{{- $out = append $out $rule -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
Where a service the crews pods dial is (networkPolicy.nats, .redis, .llm): the operator's peers
(`to`, made safe) if given, else its pods in the cluster (`podLabels` in `namespace`, default the
release's) and its outside addresses (`cidrs`, as ipBlocks without metadata addresses; private ones
allowed: a database or broker usually sits in the private network), else .fallback (peers), else
the render fails. Takes (dict "root" $ "service" .block "what" . ["fallback" list]).
*/}}
{{- define "crews.servicePeers" -}}
{{- $s := .service -}}
{{- $peers := list -}}
{{- if $s.to -}}
{{- $peers = include "crews.safePeers" (dict "peers" $s.to "allowPrivate" true "what" .what) | fromJsonArray -}}
{{- else -}}
{{- if $s.podLabels -}}
{{- $peer := dict "podSelector" (dict "matchLabels" $s.podLabels) -}}
{{- if $s.namespace }}{{ $_ := set $peer "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" $s.namespace)) }}{{ end -}}
{{- $peers = append $peers $peer -}}
{{- else if $s.namespace -}}
{{- $peers = append $peers (dict "namespaceSelector" (dict "matchLabels" (dict "kubernetes.io/metadata.name" $s.namespace))) -}}
{{- end -}}
{{- range $s.cidrs | default list -}}
{{- $peers = append $peers (include "crews.safeIpBlock" (dict "block" (dict "cidr" .) "allowPrivate" true "what" $.what) | fromJson) -}}
{{- end -}}
{{- end -}}
{{- if and (not $peers) .fallback -}}
{{- $peers = .fallback -}}
{{- end -}}
{{- if not $peers -}}
{{- fail (printf "%s: no peers (podLabels, namespace, cidrs or to): say where it is" .what) -}}
{{- end -}}
{{- toJson $peers -}}
{{- end -}}
