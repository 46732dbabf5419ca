package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/corsproc/corsproc/policy"
)

// CORSPolicy is one team's CORS policy for requests to the hosts and paths
// it owns. corsproc admits it if it passes the same checks as a policy in
// the file and every guardrail of the central file; one that does not is
// refused whole, and its status says why.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=corspol,categories=corsproc
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CORSPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the policy, with the keys of one entry of a policy file's
	// policies list, less its name.
	Spec CORSPolicySpec `json:"spec"`
	// Status is written by corsproc.
	Status CORSPolicyStatus `json:"status,omitempty"`
}

// CORSPolicySpec is one policy as written in a policy file, without its
// name: the object's NAMESPACE/NAME names it.
type CORSPolicySpec struct {
	// Match selects the requests this policy applies to. The guardrails
	// require hosts that the namespace may match.
	Match *policy.Match `json:"match,omitempty"`
	// Settings are the CORS keys, as in the policy file.
	policy.Settings `json:",inline"`
}

// CORSPolicyStatus says whether corsproc accepted the object and what runs.
type CORSPolicyStatus struct {
	// ObservedGeneration is the generation the conditions describe.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions hold Accepted: True when the spec at ObservedGeneration
	// runs, False with every problem in its message when it was refused.
	//
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// AcceptedGeneration is the generation of AcceptedSpec.
	AcceptedGeneration int64 `json:"acceptedGeneration,omitempty"`
	// AcceptedSpec is the spec last accepted. While a later spec is
	// refused, this one keeps running on every replica, including one that
	// starts after the refusal.
	AcceptedSpec *CORSPolicySpec `json:"acceptedSpec,omitempty"`
}

// CORSPolicyList is a list of CORSPolicy objects.
//
// +kubebuilder:object:root=true
type CORSPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the policies.
	Items []CORSPolicy `json:"items"`
}

// ConditionAccepted is the condition type that says whether the object's
// current spec runs.
const ConditionAccepted = "Accepted"
