package policy_test

import (
	"fmt"

	"github.com/corsproc/corsproc/policy"
)

// Admit checks a team's CORSPolicy with the loader's own checks; With
// runs the admitted policies after the file's, each named NAMESPACE/NAME
// and inheriting the file's defaults. A refused spec names every problem
// under "spec.".
func ExampleSet_Admit() {
	central, err := policy.Parse("central.yaml", []byte(`
defaults:
  preflight_max_age: 600
guardrails:
  namespaces:
    - {name: team-a, hosts: ["*.a.example.com"]}
    - {name: team-b, hosts: [b.example.com]}
  allowed_origins: ["https://*.example.com"]
policies:
  - name: admin
    match: {hosts: [admin.example.com]}
    allowed_origins: ["https://admin.example.com"]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	api, err := central.Admit(policy.Contribution{
		Namespace: "team-a", Name: "api", Source: "CORSPolicy team-a/api",
		Spec: []byte(`{"match": {"hosts": ["api.a.example.com"]}, "allowed_origins": ["https://www.a.example.com"]}`),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = central.Admit(policy.Contribution{
		Namespace: "team-b", Name: "web", Source: "CORSPolicy team-b/web",
		Spec: []byte(`{"match": {"hosts": ["b.example.com"]}, "allowed_origins": ["https://b.example.com/", "https://b.example.org"], "allow_credentials": "yes"}`),
	})
	fmt.Println(err)

	running, err := central.With([]*policy.Admitted{api})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, p := range running.Policies() {
		fmt.Println(p.Name, "from", running.PolicySource(i), "max age", *p.PreflightMaxAge)
	}
	// Output:
	// CORSPolicy team-b/web: spec.allow_credentials: must be true or false, not the string "yes"
	// CORSPolicy team-b/web: spec.allowed_origins[0] "https://b.example.com/": an origin has no path; remove the trailing "/"
	// CORSPolicy team-b/web: spec.allowed_origins[1] "https://b.example.org": not within guardrails.allowed_origins ["https://*.example.com"] of central.yaml; allow only origins these cover, or ask its owners to add it
	// admin from central.yaml max age 600
	// team-a/api from CORSPolicy team-a/api max age 600
}
