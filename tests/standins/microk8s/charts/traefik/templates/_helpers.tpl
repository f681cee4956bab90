{{/* STAND-IN chart (see Chart.yaml). Names and labels as the upstream chart's _helpers.tpl renders them. */}}
{{- define "traefik.fullname" -}}
{{- if contains "traefik" .Release.Name -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-traefik" .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "traefik.selector" -}}
app.kubernetes.io/name: traefik
app.kubernetes.io/instance: {{ printf "%s-%s" .Release.Name .Release.Namespace | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "traefik.labels" -}}
{{ include "traefik.selector" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* An argument line (indented for the container args) unless the value is null or empty: 0 and false
    are rendered (upstream _podtemplate.tpl). */}}
{{- define "traefik.set" -}}
{{- $v := index . 1 -}}
{{- if and (not (kindIs "invalid" $v)) (ne (toString $v) "") }}
            - {{ printf "--%s=%s" (index . 0) (toString $v) | quote }}
{{- end -}}
{{- end -}}
