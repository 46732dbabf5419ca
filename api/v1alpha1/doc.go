// Package v1alpha1 is the corsproc.io/v1alpha1 Kubernetes API: the
// namespaced CORSPolicy, by which a team declares the CORS of the routes it
// owns next to them, checked against the guardrails of the central policy
// file (docs/contract.md, "Policies from Kubernetes").
//
// A CORSPolicy's spec is one policy as in the policy file, with the same
// keys: its match block and its CORS keys (policy.Settings), so that a
// policy moves between the file and an object unchanged, and the same
// loader checks both with the same words. Only the name comes from the
// object (NAMESPACE/NAME).
//
// +kubebuilder:object:generate=true
// +groupName=corsproc.io
package v1alpha1

//go:generate go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 object paths=.
