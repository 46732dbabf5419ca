package deploy

import (
	"errors"
	"testing"

	"github.com/corsproc/corsproc/policy"
)

// The policy files this repository ships; the walk must find at least these,
// so that a broken walk cannot pass by finding nothing.
var shippedPolicies = []string{
	"envoy/demo-policy.yaml",
	"envoy/policy.yaml",
	"k8s/base/policy.yaml",
	"k8s/examples/teams/policy.yaml",
}

func TestEveryPolicyFileInTheRepositoryLoads(t *testing.T) {
	files := policyFiles(t)
	for _, want := range shippedPolicies {
		if !contains(files, want) {
			t.Errorf("the walk for policy files did not find %s (found %v)", want, files)
		}
	}
	for _, rel := range files {
		t.Run(rel+" passes corsproc validate", func(t *testing.T) {
			set, err := policy.Load(repoPath(rel))
			if err != nil {
				var perr *policy.Error
				if errors.As(err, &perr) {
					for _, p := range perr.Problems {
						t.Errorf("%s", p.String())
					}
					return
				}
				t.Fatal(err)
			}
			for _, w := range set.Warnings() {
				t.Logf("%s", w.String())
			}
		})
	}
}

// The policies this project writes for its demo and its Kubernetes base
// are examples users copy: they must not teach anything corsproc warns
// about.
func TestShippedExamplePoliciesLoadWithoutWarnings(t *testing.T) {
	for _, rel := range []string{"envoy/demo-policy.yaml", "k8s/base/policy.yaml", "k8s/examples/teams/policy.yaml"} {
		t.Run(rel+" loads without a warning", func(t *testing.T) {
			set, err := policy.Load(repoPath(rel))
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range set.Warnings() {
				t.Errorf("%s", w.String())
			}
		})
	}
}
