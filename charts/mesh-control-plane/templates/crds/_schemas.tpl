{{- /*
Structural openAPIV3Schemas of the CRDs: the subset of Istio and Gateway API the control plane
supports, field for field as control-plane/src/config reads it (serde, camelCase).

Rules followed throughout:
- Every known field is typed, so a wrong type (`weight: "ten"`, `number: "80"`) is refused by the
  API server, and the few fields the control plane needs to name a thing are required.
- Objects that are Istio / Gateway API messages with fields the control plane does not implement
  carry x-kubernetes-preserve-unknown-fields: true. Those fields must reach the control plane, not
  be pruned or refused by the API server: it reports each one (a warning, the field ignored; under
  AuthorizationPolicy rules and selector an error, since ignoring a condition would widen what a
  policy allows), and Istio YAML with fields we do not support still applies.
- Small value types that are complete here (StringMatch, Percent, port selectors, header
  operations, Destination) are closed.
- No CEL: everything here can be checked by a plain JSON-schema validator offline
  (scripts/check_chart.py does).
*/}}

{{- /* Go duration as the control plane parses it: "1.5s", "250ms", "1m30s", or "0". */}}
{{- define "mesh.crd.duration" -}}
type: string
pattern: '^\+?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(h|m|s|ms|us|µs|μs|ns))+)$'
{{- end }}

{{- /* Gateway API's Duration (GEP-2257), as the upstream CRDs define it. */}}
{{- define "mesh.crd.gatewayDuration" -}}
type: string
pattern: '^([0-9]{1,5}(h|m|s|ms)){1,4}$'
{{- end }}

{{- define "mesh.crd.port" -}}
type: integer
format: int32
minimum: 1
maximum: 65535
{{- end }}

{{- define "mesh.crd.strings" -}}
type: array
items:
  type: string
{{- end }}

{{- define "mesh.crd.labels" -}}
type: object
additionalProperties:
  type: string
{{- end }}

{{- define "mesh.crd.status" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
{{- end }}

{{- /* Istio StringMatch: at most one of exact, prefix, regex; {} means "present". */}}
{{- define "mesh.crd.stringMatch" -}}
type: object
maxProperties: 1
properties:
  exact:
    type: string
  prefix:
    type: string
  regex:
    type: string
{{- end }}

{{- define "mesh.crd.stringMatchMap" -}}
type: object
additionalProperties:
  {{- include "mesh.crd.stringMatch" . | nindent 2 }}
{{- end }}

{{- /* Istio Percent: {value: 12.5}. */}}
{{- define "mesh.crd.percent" -}}
type: object
properties:
  value:
    type: number
    format: double
    minimum: 0
    maximum: 100
{{- end }}

{{- /* Istio Destination: host, subset, port. */}}
{{- define "mesh.crd.destination" -}}
type: object
required: [host]
properties:
  host:
    type: string
    minLength: 1
  subset:
    type: string
  port:
    type: object
    required: [number]
    properties:
      number:
        {{- include "mesh.crd.port" . | nindent 8 }}
{{- end }}

{{- /* Istio Headers: request / response operations. */}}
{{- define "mesh.crd.headerOps" -}}
type: object
properties:
  set:
    {{- include "mesh.crd.labels" . | nindent 4 }}
  add:
    {{- include "mesh.crd.labels" . | nindent 4 }}
  remove:
    {{- include "mesh.crd.strings" . | nindent 4 }}
{{- end }}

{{- define "mesh.crd.headers" -}}
type: object
properties:
  request:
    {{- include "mesh.crd.headerOps" . | nindent 4 }}
  response:
    {{- include "mesh.crd.headerOps" . | nindent 4 }}
{{- end }}

{{- /* Istio workload selector (matchLabels). Preserved: the control plane refuses other fields. */}}
{{- define "mesh.crd.matchLabelsSelector" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
properties:
  matchLabels:
    {{- include "mesh.crd.labels" . | nindent 4 }}
{{- end }}

{{- /* ======================= VirtualService ======================= */}}
{{- define "mesh.crd.virtualService.spec" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
properties:
  hosts:
    {{- include "mesh.crd.strings" . | nindent 4 }}
  gateways:
    {{- include "mesh.crd.strings" . | nindent 4 }}
  exportTo:
    {{- include "mesh.crd.strings" . | nindent 4 }}
  http:
    type: array
    items:
      type: object
      x-kubernetes-preserve-unknown-fields: true
      properties:
        name:
          type: string
        match:
          type: array
          items:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            properties:
              name:
                type: string
              uri:
                {{- include "mesh.crd.stringMatch" . | nindent 16 }}
              scheme:
                {{- include "mesh.crd.stringMatch" . | nindent 16 }}
              method:
                {{- include "mesh.crd.stringMatch" . | nindent 16 }}
              authority:
                {{- include "mesh.crd.stringMatch" . | nindent 16 }}
              headers:
                {{- include "mesh.crd.stringMatchMap" . | nindent 16 }}
              queryParams:
                {{- include "mesh.crd.stringMatchMap" . | nindent 16 }}
              withoutHeaders:
                {{- include "mesh.crd.stringMatchMap" . | nindent 16 }}
              ignoreUriCase:
                type: boolean
              port:
                {{- include "mesh.crd.port" . | nindent 16 }}
        route:
          type: array
          items:
            type: object
            required: [destination]
            properties:
              destination:
                {{- include "mesh.crd.destination" . | nindent 16 }}
              weight:
                type: integer
                format: int32
                minimum: 0
              headers:
                {{- include "mesh.crd.headers" . | nindent 16 }}
        timeout:
          {{- include "mesh.crd.duration" . | nindent 10 }}
        retries:
          type: object
          x-kubernetes-preserve-unknown-fields: true
          properties:
            attempts:
              type: integer
              format: int32
              minimum: 0
            perTryTimeout:
              {{- include "mesh.crd.duration" . | nindent 14 }}
            retryOn:
              type: string
        fault:
          type: object
          properties:
            delay:
              type: object
              x-kubernetes-preserve-unknown-fields: true
              properties:
                fixedDelay:
                  {{- include "mesh.crd.duration" . | nindent 18 }}
                percentage:
                  {{- include "mesh.crd.percent" . | nindent 18 }}
            abort:
              type: object
              x-kubernetes-preserve-unknown-fields: true
              properties:
                httpStatus:
                  type: integer
                  format: int32
                  minimum: 200
                  maximum: 599
                grpcStatus:
                  type: string
                  enum: [OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED]
                percentage:
                  {{- include "mesh.crd.percent" . | nindent 18 }}
        mirror:
          {{- include "mesh.crd.destination" . | nindent 10 }}
        mirrorPercentage:
          {{- include "mesh.crd.percent" . | nindent 10 }}
        mirrors:
          type: array
          items:
            type: object
            required: [destination]
            properties:
              destination:
                {{- include "mesh.crd.destination" . | nindent 16 }}
              percentage:
                {{- include "mesh.crd.percent" . | nindent 16 }}
        headers:
          {{- include "mesh.crd.headers" . | nindent 10 }}
        rewrite:
          type: object
          x-kubernetes-preserve-unknown-fields: true
          properties:
            uri:
              type: string
            authority:
              type: string
        directResponse:
          type: object
          required: [status]
          properties:
            status:
              type: integer
              format: int32
              minimum: 200
              maximum: 599
            body:
              type: object
              x-kubernetes-preserve-unknown-fields: true
              properties:
                string:
                  type: string
{{- end }}

{{- /* ======================= DestinationRule ======================= */}}
{{- define "mesh.crd.trafficPolicy" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
properties:
  loadBalancer:
    type: object
    x-kubernetes-preserve-unknown-fields: true
    properties:
      simple:
        type: string
        enum: [UNSPECIFIED, LEAST_CONN, RANDOM, PASSTHROUGH, ROUND_ROBIN, LEAST_REQUEST]
      consistentHash:
        type: object
        x-kubernetes-preserve-unknown-fields: true
        properties:
          httpHeaderName:
            type: string
          httpCookie:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            required: [name]
            properties:
              name:
                type: string
              path:
                type: string
              ttl:
                {{- include "mesh.crd.duration" . | nindent 16 }}
          useSourceIp:
            type: boolean
          httpQueryParameterName:
            type: string
          ringHash:
            type: object
            properties:
              minimumRingSize:
                type: integer
                minimum: 0
          maglev:
            type: object
            x-kubernetes-preserve-unknown-fields: true
          minimumRingSize:
            type: integer
            minimum: 0
  connectionPool:
    type: object
    properties:
      tcp:
        type: object
        x-kubernetes-preserve-unknown-fields: true
        properties:
          maxConnections:
            type: integer
            format: int32
            minimum: 0
          connectTimeout:
            {{- include "mesh.crd.duration" . | nindent 12 }}
      http:
        type: object
        x-kubernetes-preserve-unknown-fields: true
        properties:
          http1MaxPendingRequests:
            type: integer
            format: int32
            minimum: 0
          http2MaxRequests:
            type: integer
            format: int32
            minimum: 0
          maxRetries:
            type: integer
            format: int32
            minimum: 0
  outlierDetection:
    type: object
    x-kubernetes-preserve-unknown-fields: true
    properties:
      consecutive5xxErrors:
        type: integer
        minimum: 0
        maximum: 4294967295
      consecutiveGatewayErrors:
        type: integer
        minimum: 0
        maximum: 4294967295
      interval:
        {{- include "mesh.crd.duration" . | nindent 8 }}
      baseEjectionTime:
        {{- include "mesh.crd.duration" . | nindent 8 }}
      maxEjectionPercent:
        type: integer
        format: int32
        minimum: 0
        maximum: 100
  retryBudget:
    type: object
    x-kubernetes-preserve-unknown-fields: true
    properties:
      percent:
        type: number
        format: double
        minimum: 0
        maximum: 100
      minRetryConcurrency:
        type: integer
        minimum: 0
        maximum: 4294967295
  tls:
    type: object
    x-kubernetes-preserve-unknown-fields: true
    properties:
      mode:
        type: string
        enum: [DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL]
      subjectAltNames:
        {{- include "mesh.crd.strings" . | nindent 8 }}
      sni:
        type: string
      insecureSkipVerify:
        type: boolean
      clientCertificate:
        type: string
      privateKey:
        type: string
      caCertificates:
        type: string
      credentialName:
        type: string
{{- end }}

{{- define "mesh.crd.destinationRule.spec" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
required: [host]
properties:
  host:
    type: string
    minLength: 1
  trafficPolicy:
    {{- include "mesh.crd.trafficPolicy" . | nindent 4 }}
  subsets:
    type: array
    items:
      type: object
      x-kubernetes-preserve-unknown-fields: true
      required: [name]
      properties:
        name:
          type: string
          minLength: 1
        labels:
          {{- include "mesh.crd.labels" . | nindent 10 }}
        trafficPolicy:
          {{- include "mesh.crd.trafficPolicy" . | nindent 10 }}
  exportTo:
    {{- include "mesh.crd.strings" . | nindent 4 }}
{{- end }}

{{- /* ======================= ServiceEntry / WorkloadEntry ======================= */}}
{{- define "mesh.crd.workloadEntry.spec" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
properties:
  address:
    type: string
  ports:
    type: object
    additionalProperties:
      {{- include "mesh.crd.port" . | nindent 6 }}
  labels:
    {{- include "mesh.crd.labels" . | nindent 4 }}
  locality:
    type: string
  weight:
    type: integer
    minimum: 0
    maximum: 4294967295
  serviceAccount:
    type: string
{{- end }}

{{- define "mesh.crd.serviceEntry.spec" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
required: [hosts]
properties:
  hosts:
    type: array
    minItems: 1
    items:
      type: string
      minLength: 1
  ports:
    type: array
    items:
      type: object
      required: [number, name]
      properties:
        number:
          {{- include "mesh.crd.port" . | nindent 10 }}
        name:
          type: string
          minLength: 1
        protocol:
          type: string
        targetPort:
          {{- include "mesh.crd.port" . | nindent 10 }}
  resolution:
    type: string
    enum: [NONE, STATIC, DNS, DNS_ROUND_ROBIN]
  endpoints:
    type: array
    items:
      {{- include "mesh.crd.workloadEntry.spec" . | nindent 6 }}
  workloadSelector:
    type: object
    properties:
      labels:
        {{- include "mesh.crd.labels" . | nindent 8 }}
  location:
    type: string
    enum: [MESH_EXTERNAL, MESH_INTERNAL]
  exportTo:
    {{- include "mesh.crd.strings" . | nindent 4 }}
{{- end }}

{{- /* ======================= PeerAuthentication ======================= */}}
{{- define "mesh.crd.mtls" -}}
type: object
properties:
  mode:
    type: string
    enum: [UNSET, DISABLE, PERMISSIVE, STRICT]
{{- end }}

{{- define "mesh.crd.peerAuthentication.spec" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
properties:
  selector:
    {{- include "mesh.crd.matchLabelsSelector" . | nindent 4 }}
  mtls:
    {{- include "mesh.crd.mtls" . | nindent 4 }}
  portLevelMtls:
    type: object
    additionalProperties:
      {{- include "mesh.crd.mtls" . | nindent 6 }}
{{- end }}

{{- /* ======================= AuthorizationPolicy ======================= */}}
{{- define "mesh.crd.authorizationPolicy.spec" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
properties:
  selector:
    {{- include "mesh.crd.matchLabelsSelector" . | nindent 4 }}
  action:
    type: string
    enum: [ALLOW, DENY, AUDIT, CUSTOM]
  provider:
    type: object
    x-kubernetes-preserve-unknown-fields: true
  targetRef:
    type: object
    x-kubernetes-preserve-unknown-fields: true
  targetRefs:
    type: array
    items:
      type: object
      x-kubernetes-preserve-unknown-fields: true
  rules:
    type: array
    items:
      type: object
      x-kubernetes-preserve-unknown-fields: true
      properties:
        from:
          type: array
          items:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            properties:
              source:
                type: object
                x-kubernetes-preserve-unknown-fields: true
                properties:
                  {{- range list "principals" "notPrincipals" "requestPrincipals" "notRequestPrincipals" "namespaces" "notNamespaces" "serviceAccounts" "notServiceAccounts" "ipBlocks" "notIpBlocks" "remoteIpBlocks" "notRemoteIpBlocks" }}
                  {{ . }}:
                    {{- include "mesh.crd.strings" $ | nindent 20 }}
                  {{- end }}
        to:
          type: array
          items:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            properties:
              operation:
                type: object
                x-kubernetes-preserve-unknown-fields: true
                properties:
                  {{- range list "hosts" "notHosts" "methods" "notMethods" "paths" "notPaths" }}
                  {{ . }}:
                    {{- include "mesh.crd.strings" $ | nindent 20 }}
                  {{- end }}
                  {{- range list "ports" "notPorts" }}
                  {{ . }}:
                    type: array
                    items:
                      x-kubernetes-int-or-string: true
                  {{- end }}
        when:
          type: array
          items:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            required: [key]
            properties:
              key:
                type: string
                minLength: 1
              values:
                {{- include "mesh.crd.strings" . | nindent 16 }}
              notValues:
                {{- include "mesh.crd.strings" . | nindent 16 }}
{{- end }}

{{- /* ======================= Gateway API ======================= */}}
{{- define "mesh.crd.gateway.parentRefs" -}}
type: array
items:
  type: object
  required: [name]
  properties:
    group:
      type: string
    kind:
      type: string
    namespace:
      type: string
    name:
      type: string
      minLength: 1
    sectionName:
      type: string
    port:
      {{- include "mesh.crd.port" . | nindent 6 }}
{{- end }}

{{- define "mesh.crd.gateway.backendObjectRef" -}}
type: object
required: [name]
properties:
  group:
    type: string
  kind:
    type: string
  name:
    type: string
    minLength: 1
  namespace:
    type: string
  port:
    {{- include "mesh.crd.port" . | nindent 4 }}
{{- end }}

{{- define "mesh.crd.gateway.headerMatches" -}}
type: array
items:
  type: object
  required: [name, value]
  properties:
    type:
      type: string
      enum: [Exact, RegularExpression]
    name:
      type: string
      minLength: 1
    value:
      type: string
{{- end }}

{{- define "mesh.crd.gateway.headerModifier" -}}
type: object
properties:
  set:
    type: array
    items:
      type: object
      required: [name, value]
      properties:
        name:
          type: string
          minLength: 1
        value:
          type: string
  add:
    type: array
    items:
      type: object
      required: [name, value]
      properties:
        name:
          type: string
          minLength: 1
        value:
          type: string
  remove:
    {{- include "mesh.crd.strings" . | nindent 4 }}
{{- end }}

{{- define "mesh.crd.gateway.requestMirror" -}}
type: object
required: [backendRef]
properties:
  backendRef:
    {{- include "mesh.crd.gateway.backendObjectRef" . | nindent 4 }}
  percent:
    type: integer
    format: int32
    minimum: 0
    maximum: 100
  fraction:
    type: object
    required: [numerator]
    properties:
      numerator:
        type: integer
        format: int32
        minimum: 0
      denominator:
        type: integer
        format: int32
        minimum: 1
{{- end }}

{{- /* backendRefs[] of a route rule; `filters` per backend are preserved (reported, ignored). */}}
{{- define "mesh.crd.gateway.backendRefs" -}}
type: array
items:
  type: object
  x-kubernetes-preserve-unknown-fields: true
  required: [name]
  properties:
    group:
      type: string
    kind:
      type: string
    name:
      type: string
      minLength: 1
    namespace:
      type: string
    port:
      {{- include "mesh.crd.port" . | nindent 6 }}
    weight:
      type: integer
      format: int32
      minimum: 0
      maximum: 1000000
{{- end }}

{{- define "mesh.crd.httpRoute.spec" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
properties:
  parentRefs:
    {{- include "mesh.crd.gateway.parentRefs" . | nindent 4 }}
  hostnames:
    {{- include "mesh.crd.strings" . | nindent 4 }}
  rules:
    type: array
    items:
      type: object
      x-kubernetes-preserve-unknown-fields: true
      properties:
        name:
          type: string
        matches:
          type: array
          items:
            type: object
            properties:
              path:
                type: object
                properties:
                  type:
                    type: string
                    enum: [Exact, PathPrefix, RegularExpression]
                  value:
                    type: string
              headers:
                {{- include "mesh.crd.gateway.headerMatches" . | nindent 16 }}
              queryParams:
                {{- include "mesh.crd.gateway.headerMatches" . | nindent 16 }}
              method:
                type: string
                enum: [GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH]
        filters:
          type: array
          items:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            required: [type]
            properties:
              type:
                type: string
                enum: [RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, RequestRedirect, URLRewrite, ExtensionRef, CORS, ExternalAuth]
              requestHeaderModifier:
                {{- include "mesh.crd.gateway.headerModifier" . | nindent 16 }}
              responseHeaderModifier:
                {{- include "mesh.crd.gateway.headerModifier" . | nindent 16 }}
              requestMirror:
                {{- include "mesh.crd.gateway.requestMirror" . | nindent 16 }}
              urlRewrite:
                type: object
                properties:
                  hostname:
                    type: string
                  path:
                    type: object
                    required: [type]
                    properties:
                      type:
                        type: string
                        enum: [ReplaceFullPath, ReplacePrefixMatch]
                      replaceFullPath:
                        type: string
                      replacePrefixMatch:
                        type: string
        backendRefs:
          {{- include "mesh.crd.gateway.backendRefs" . | nindent 10 }}
        timeouts:
          type: object
          properties:
            request:
              {{- include "mesh.crd.gatewayDuration" . | nindent 14 }}
            backendRequest:
              {{- include "mesh.crd.gatewayDuration" . | nindent 14 }}
{{- end }}

{{- define "mesh.crd.grpcRoute.spec" -}}
type: object
x-kubernetes-preserve-unknown-fields: true
properties:
  parentRefs:
    {{- include "mesh.crd.gateway.parentRefs" . | nindent 4 }}
  hostnames:
    {{- include "mesh.crd.strings" . | nindent 4 }}
  rules:
    type: array
    items:
      type: object
      x-kubernetes-preserve-unknown-fields: true
      properties:
        name:
          type: string
        matches:
          type: array
          items:
            type: object
            properties:
              method:
                type: object
                properties:
                  type:
                    type: string
                    enum: [Exact, RegularExpression]
                  service:
                    type: string
                  method:
                    type: string
              headers:
                {{- include "mesh.crd.gateway.headerMatches" . | nindent 16 }}
        filters:
          type: array
          items:
            type: object
            x-kubernetes-preserve-unknown-fields: true
            required: [type]
            properties:
              type:
                type: string
                enum: [RequestHeaderModifier, ResponseHeaderModifier, RequestMirror, ExtensionRef]
              requestHeaderModifier:
                {{- include "mesh.crd.gateway.headerModifier" . | nindent 16 }}
              responseHeaderModifier:
                {{- include "mesh.crd.gateway.headerModifier" . | nindent 16 }}
              requestMirror:
                {{- include "mesh.crd.gateway.requestMirror" . | nindent 16 }}
        backendRefs:
          {{- include "mesh.crd.gateway.backendRefs" . | nindent 10 }}
{{- end }}

{{- /*
A whole CRD. Arguments (a dict): root (the chart context), group, kind, plural, singular,
shortNames (list), categories (list), versions (list, the first one is stored), schema (the
name of the spec's schema template), columns (list of dicts: name, type, jsonPath; the status
conditions the control plane writes, Accepted and ResolvedRefs, are among them so that
`kubectl get virtualservices -A` shows them).
*/}}
{{- define "mesh.crd" -}}
{{- $root := .root }}
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {{ .plural }}.{{ .group }}
  labels:
    {{- include "mesh-control-plane.crdLabels" $root | nindent 4 }}
  annotations:
    # Uninstalling the release must not delete every VirtualService (etc.) in the cluster.
    helm.sh/resource-policy: keep
spec:
  group: {{ .group }}
  names:
    kind: {{ .kind }}
    listKind: {{ .kind }}List
    plural: {{ .plural }}
    singular: {{ .singular }}
    {{- with .shortNames }}
    shortNames: {{ toJson . }}
    {{- end }}
    {{- with .categories }}
    categories: {{ toJson . }}
    {{- end }}
  scope: Namespaced
  conversion:
    strategy: None
  versions:
    {{- $storage := first .versions }}
    {{- $columns := .columns }}
    {{- $schema := .schema }}
    {{- range .versions }}
    - name: {{ . }}
      served: true
      storage: {{ eq . $storage }}
      subresources:
        status: {}
      additionalPrinterColumns:
        {{- range $columns }}
        - name: {{ .name }}
          type: {{ .type }}
          jsonPath: {{ .jsonPath | quote }}
        {{- end }}
        - name: Age
          type: date
          jsonPath: .metadata.creationTimestamp
      schema:
        openAPIV3Schema:
          type: object
          properties:
            apiVersion:
              type: string
            kind:
              type: string
            metadata:
              type: object
            spec:
              {{- include $schema $root | nindent 14 }}
            status:
              {{- include "mesh.crd.status" $root | nindent 14 }}
    {{- end }}
{{- end }}
