package kubetest

// minimalCRD stands in for k8s/crd/ until the generated CRD lands there:
// the same group, names and status subresource, with a structural schema
// for the spec's keys, so that a mistyped spec is refused as the shipped
// one refuses it. InstallCRD prefers the repository's file.
var minimalCRD = []byte(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: corspolicies.corsproc.io
spec:
  group: corsproc.io
  scope: Namespaced
  names: {kind: CORSPolicy, listKind: CORSPolicyList, plural: corspolicies, singular: corspolicy, shortNames: [corspol]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object}
          spec: &spec
            type: object
            properties:
              match:
                type: object
                properties:
                  hosts: {type: array, items: {type: string}}
                  path_prefixes: {type: array, items: {type: string}}
                  path_regex: {type: string}
                  routes: {type: array, items: {type: string}}
              mode: {type: string}
              allowed_origins: {type: array, items: {type: string}}
              allowed_origin_regexes: {type: array, items: {type: string}}
              allow_all_origins: {type: boolean}
              allow_methods: {type: array, items: {type: string}}
              allow_headers: {type: array, items: {type: string}}
              expose_headers: {type: array, items: {type: string}}
              preflight_max_age: {type: integer}
              allow_credentials: {type: boolean}
              allow_private_network: {type: boolean}
              preflight_status: {type: integer}
              upstream_cors_headers: {type: string}
          status:
            type: object
            properties:
              observedGeneration: {type: integer, format: int64}
              acceptedGeneration: {type: integer, format: int64}
              acceptedSpec: *spec
              conditions:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [type]
                items:
                  type: object
                  required: [type, status, lastTransitionTime, reason, message]
                  properties:
                    type: {type: string}
                    status: {type: string}
                    observedGeneration: {type: integer, format: int64}
                    lastTransitionTime: {type: string, format: date-time}
                    reason: {type: string}
                    message: {type: string}
`)
