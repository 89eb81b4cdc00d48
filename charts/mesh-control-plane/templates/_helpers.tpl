{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "mesh-control-plane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: <release>-mesh-control-plane, or the release name alone when it already contains the
chart name; fullnameOverride wins. Names the Deployment, the Service and the RBAC objects.
*/}}
{{- define "mesh-control-plane.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Chart label value.
*/}}
{{- define "mesh-control-plane.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Standard labels.
*/}}
{{- define "mesh-control-plane.labels" -}}
helm.sh/chart: {{ include "mesh-control-plane.chart" . }}
{{ include "mesh-control-plane.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: control-plane
app.kubernetes.io/part-of: mesh
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Selector labels (immutable on a Deployment: keep them to name and instance).
*/}}
{{- define "mesh-control-plane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mesh-control-plane.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of the CRDs: the chart's, without the instance (a CRD is cluster-wide and outlives the
release that installed it).
*/}}
{{- define "mesh-control-plane.crdLabels" -}}
helm.sh/chart: {{ include "mesh-control-plane.chart" . }}
app.kubernetes.io/name: {{ include "mesh-control-plane.name" . }}
app.kubernetes.io/part-of: mesh
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The ServiceAccount the pods run as and the RBAC rules are bound to.
*/}}
{{- define "mesh-control-plane.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "mesh-control-plane.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Name of the cluster-scoped RBAC objects: the namespace is part of it, so that releases of the same
name in two namespaces do not collide.
*/}}
{{- define "mesh-control-plane.clusterRoleName" -}}
{{- printf "%s-%s" (include "mesh-control-plane.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
The Service's in-cluster DNS name, <fullname>.<namespace>.svc: the xDS/CA address injected pods
dial, and the DNS name of the webhook's serving certificate (the API server calls
<service>.<namespace>.svc).
*/}}
{{- define "mesh-control-plane.serviceHost" -}}
{{- printf "%s.%s.svc" (include "mesh-control-plane.fullname" .) .Release.Namespace }}
{{- end }}

{{/*
The Secret holding the CA when caMode is secret (created by the first replica): ca.secretName, or
<fullname>-ca.
*/}}
{{- define "mesh-control-plane.caSecretName" -}}
{{- .Values.ca.secretName | default (printf "%s-ca" (include "mesh-control-plane.fullname" .)) }}
{{- end }}

{{/*
Name of the MutatingWebhookConfiguration: cluster-scoped, so named like the ClusterRole.
*/}}
{{- define "mesh-control-plane.webhookConfigName" -}}
{{- include "mesh-control-plane.clusterRoleName" . }}
{{- end }}

{{/*
The image reference.
*/}}
{{- define "mesh-control-plane.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
True ("true") when a PodDisruptionBudget is rendered: it is enabled and more than one replica
runs. With a single replica, minAvailable 1 would block every voluntary eviction (node drains).
*/}}
{{- define "mesh-control-plane.pdbEnabled" -}}
{{- if .Values.podDisruptionBudget.enabled }}
{{- if .Values.autoscaling.enabled }}
{{- if gt (int .Values.autoscaling.minReplicas) 1 }}true{{ end }}
{{- else if gt (int .Values.replicaCount) 1 }}true{{ end }}
{{- end }}
{{- end }}
