// Package deploy holds the offline checks of corsproc's deployment files:
// the Dockerfile, the Envoy bootstrap and docker compose demo under envoy/,
// the Kubernetes manifests under k8s/, the policy files, and the JSON Schema
// of the policy file under schema/. It also generates the
// CustomResourceDefinition of CORSPolicy (k8s/crd, charts/corsproc/crds)
// from api/v1alpha1 with controller-tools, and fails when it is stale
// (regenerate with go -C deploy generate).
//
// It is a module of its own so that the heavy parsers these checks use
// (go-control-plane, compose-go, kustomize, k8s.io/api, Envoy Gateway's and
// Istio's API types) stay out of the product's go.mod. Run the checks with
//
//	go -C deploy test -race ./...
//
// Nothing here needs Docker, Envoy or a cluster: every file is read by the
// real parser of its ecosystem and checked for what would make it fail the
// first time a user applies it.
package deploy
