package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is corsproc.io/v1alpha1.
var GroupVersion = schema.GroupVersion{Group: "corsproc.io", Version: "v1alpha1"}

// AddToScheme registers CORSPolicy and CORSPolicyList in a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &CORSPolicy{}, &CORSPolicyList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
