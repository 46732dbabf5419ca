package policy

// The host index of large Sets must select exactly the policy that trying
// each policy in order selects (docs/contract.md §2: the first policy
// whose match holds is used), whatever the host.

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// siSet builds a Set of n policies mixing exact hosts, wildcards, no
// hosts, empty lists, path prefixes and routes, from a fixed seed.
func siSet(tb testing.TB, n int) *Set {
	tb.Helper()
	r := rand.New(rand.NewPCG(15, uint64(n)))
	hosts := []string{"a.example.com", "*.example.com", "b.a.example.com", "*.a.example.com", "*.b.a.example.com", "example.com", "x.y.z.w.v.u.example.com", "*.u.example.com", "*.v.u.example.com", "*.w.v.u.example.com", "*.z.w.v.u.example.com", "[::1]", "127.0.0.1"}
	var b strings.Builder
	b.WriteString("defaults: {allowed_origins: [\"https://app.example.com\"]}\npolicies:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: p%d\n", i)
		var match []string
		switch r.IntN(6) {
		case 0: // no hosts condition
		case 1:
			match = append(match, "hosts: []")
		default:
			var hs []string
			for range 1 + r.IntN(3) {
				hs = append(hs, `"`+hosts[r.IntN(len(hosts))]+`"`)
			}
			match = append(match, "hosts: ["+strings.Join(hs, ", ")+"]")
		}
		if r.IntN(3) == 0 {
			match = append(match, `path_prefixes: ["/v`+fmt.Sprint(r.IntN(3))+`/"]`)
		}
		if r.IntN(8) == 0 {
			match = append(match, "routes: [r"+fmt.Sprint(r.IntN(2))+"]")
		}
		if len(match) > 0 || i < n-1 { // one catch-all at most, at the end
			if len(match) == 0 {
				match = append(match, `path_prefixes: ["/never/"]`)
			}
			fmt.Fprintf(&b, "    match: {%s}\n", strings.Join(match, ", "))
		}
	}
	s, err := Parse("index.yaml", []byte(b.String()))
	if err != nil {
		tb.Fatal(err)
	}
	if s.byHost == nil {
		tb.Fatalf("a Set of %d policies has no host index", n)
	}
	return s
}

// siHosts are the hosts tried, seeds of FuzzSelectByHost too.
var siHosts = []string{"", "a.example.com", "A.Example.COM:8443", "a.example.com.", "b.a.example.com", "c.b.a.example.com", "example.com", "other.org",
	"x.y.z.w.v.u.example.com", "q.x.y.z.w.v.u.example.com", "a..example.com", ".a.example.com", "[::1]:9000", "127.0.0.1", "1.2.3.4.5.6.7.8.9.a.example.com"}

func siCheck(t *testing.T, s *Set, host, path, route string) {
	linear := *s
	linear.byHost = nil
	want, got := linear.selectPolicy(host, path, route), s.selectPolicy(host, path, route)
	if got != want {
		name := func(c *compiled) string {
			if c == nil {
				return "none"
			}
			return c.name
		}
		t.Errorf("host %q path %q route %q: the index selects %s, trying each policy selects %s", host, path, route, name(got), name(want))
	}
}

func TestHostIndexSelectsAsTryingEachPolicyDoes(t *testing.T) {
	for _, n := range []int{indexFrom, 200, 1000} {
		s := siSet(t, n)
		t.Run(fmt.Sprintf("a Set of %d policies", n), func(t *testing.T) {
			for _, h := range siHosts {
				for _, p := range []string{"/", "/v0/x", "/v1/", "/v2/y?q=1"} {
					for _, r := range []string{"", "r0", "r1"} {
						siCheck(t, s, h, p, r)
					}
				}
			}
		})
	}
}

// FuzzSelectByHost: whatever the host, path and route, the index selects
// what trying each policy selects.
//
//	go test -run '^$' -fuzz '^FuzzSelectByHost$' -fuzztime 30s -fuzzminimizetime 3s ./policy
func FuzzSelectByHost(f *testing.F) {
	for _, h := range siHosts {
		f.Add(h, "/v1/x", "r0")
	}
	s := siSet(f, 300)
	f.Fuzz(func(t *testing.T, host, path, route string) {
		siCheck(t, s, host, path, route)
	})
}
