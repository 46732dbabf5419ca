package policy

// Benchmarks of admitting CORSPolicy objects: what serve --kubernetes pays
// when an object changes (Admit) and when the running set is composed
// (With), at the scale of 1,000 objects in 100 namespaces.
//
//	go test -run '^$' -bench 'Admit|With' -benchmem ./policy

import (
	"fmt"
	"strings"
	"testing"
)

// bcCentral is a central file whose guardrails list 100 namespaces.
func bcCentral(tb testing.TB) *Set {
	var b strings.Builder
	b.WriteString("guardrails:\n  namespaces:\n")
	for n := range 100 {
		fmt.Fprintf(&b, "    - {name: team-%d, hosts: [\"*.team-%d.example.com\"]}\n", n, n)
	}
	b.WriteString("  allowed_origins: [\"https://*.example.com\"]\npolicies:\n  - {name: admin, match: {hosts: [admin.example.com]}, allowed_origins: [\"https://admin.example.com\"]}\n")
	return ctSet(tb, b.String())
}

func bcContribution(i int) Contribution {
	ns := fmt.Sprintf("team-%d", i%100)
	return Contribution{Namespace: ns, Name: fmt.Sprintf("api-%d", i), Source: "CORSPolicy " + ns,
		Spec: fmt.Appendf(nil, `{"match":{"hosts":["api-%d.%s.example.com"]},"allowed_origins":["https://www.%s.example.com","https://app.example.com"],"allow_credentials":true,"expose_headers":["x-request-id"]}`, i, ns, ns)}
}

func BenchmarkAdmit(b *testing.B) {
	s := bcCentral(b)
	c := bcContribution(7)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Admit(c); err != nil {
			b.Fatal(err)
		}
	}
}

// bcAdmitted admits n contributions spread over 100 namespaces.
func bcAdmitted(b *testing.B, s *Set, n int) []*Admitted {
	b.Helper()
	admitted := make([]*Admitted, n)
	for i := range admitted {
		a, err := s.Admit(bcContribution(i))
		if err != nil {
			b.Fatal(err)
		}
		admitted[i] = a
	}
	return admitted
}

func BenchmarkWith1000Objects(b *testing.B) {
	s := bcCentral(b)
	admitted := bcAdmitted(b, s, 1000)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.With(admitted); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecideWith1000Objects decides a request that the last of 1,000
// admitted policies matches: the worst case of selection by host.
func BenchmarkDecideWith1000Objects(b *testing.B) {
	s := bcCentral(b)
	admitted := bcAdmitted(b, s, 1000)
	w, err := s.With(admitted)
	if err != nil {
		b.Fatal(err)
	}
	r := &Request{Method: "GET", Host: "api-999.team-99.example.com", Path: "/", Origin: "https://www.team-99.example.com", Origins: 1}
	if d := w.Decide(r); d.Outcome != Allowed || d.Policy != "team-99/api-999" {
		b.Fatalf("decided %s by %q", d.Outcome, d.Policy)
	}
	b.ReportAllocs()
	for b.Loop() {
		w.Decide(r)
	}
}
