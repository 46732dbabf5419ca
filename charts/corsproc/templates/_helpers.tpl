{{/* The objects' name: the release name when it contains "corsproc", else <release>-corsproc. */}}
{{- define "corsproc.fullname" -}}
{{- if contains "corsproc" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-corsproc" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels that select corsproc's pods; the same as k8s/base's. */}}
{{- define "corsproc.selectorLabels" -}}
app.kubernetes.io/name: corsproc
app.kubernetes.io/component: ext-proc
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "corsproc.labels" -}}
app.kubernetes.io/name: corsproc
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: corsproc
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "corsproc.policyConfigMap" -}}
{{- .Values.policy.existingConfigMap | default (printf "%s-policy" (include "corsproc.fullname" .)) -}}
{{- end -}}
