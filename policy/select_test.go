package policy

// Policy selection (docs/contract.md §2 "match"): the first policy whose conditions all
// hold is used; hosts compare case-insensitively without the port, "*."
// stands for one or more labels but not the apex, path prefixes and the
// whole-path regex see the path without its query, routes are Envoy route
// names.

import "testing"

const decSelectPolicies = `
defaults:
  allowed_origins: ["https://app.example.com"]
policies:
  - name: exact-host
    match: {hosts: [API.example.com, "[::1]"]}
  - name: wildcard-host
    match: {hosts: ["*.shop.example.com"]}
  - name: prefix
    match: {path_prefixes: [/v1/, /legacy]}
  - name: regex
    match: {path_regex: "/v[0-9]+/items"}
  - name: route
    match: {routes: [orders-route]}
  - name: all-conditions
    match: {hosts: [admin.example.com], path_prefixes: [/admin/], routes: [admin-route]}
  - name: dotted
    match: {hosts: [dotted.example.com., "*.dotted.example.net."]}
  - name: first-of-two
    match: {hosts: [twice.example.com]}
  - name: second-of-two
    match: {hosts: [twice.example.com]}
`

func TestPolicySelection(t *testing.T) {
	t.Parallel()
	s := decSet(t, decSelectPolicies)
	cases := []struct {
		name              string
		host, path, route string
		want              string // "" for no policy
	}{
		{"an exact host matches", "api.example.com", "/", "", "exact-host"},
		{"hosts compare case-insensitively", "Api.EXAMPLE.com", "/", "", "exact-host"},
		{"the port of :authority is ignored", "api.example.com:8443", "/", "", "exact-host"},
		{"the port of a bracketed IPv6 :authority is ignored", "[::1]:8443", "/", "", "exact-host"},
		{"a host that only starts with the listed one does not match", "api.example.com.evil.net", "/", "", ""},
		{"a host that only ends with the listed one does not match", "evilapi.example.com", "/", "", ""},
		{"a wildcard host matches one label", "a.shop.example.com", "/", "", "wildcard-host"},
		{"a wildcard host matches several labels", "a.b.shop.example.com:443", "/", "", "wildcard-host"},
		{"a wildcard host matches case-insensitively", "A.Shop.Example.COM", "/", "", "wildcard-host"},
		{"a wildcard host does not match its apex", "shop.example.com", "/", "", ""},
		{"a wildcard host does not match a name that only ends like it", "evilshop.example.com", "/", "", ""},
		{"a wildcard host does not match an empty label", ".shop.example.com", "/", "", ""},
		{"a wildcard host does not match an empty label after a real one", "a..shop.example.com", "/", "", ""},
		{"a trailing dot on :authority is ignored", "api.example.com.", "/", "", "exact-host"},
		{"a host written with a trailing dot matches without it", "dotted.example.com", "/", "", "dotted"},
		{"a host written with a trailing dot matches with it", "dotted.example.com.:8443", "/", "", "dotted"},
		{"a wildcard host written with a trailing dot matches", "a.dotted.example.net", "/", "", "dotted"},
		{"a path prefix matches", "x.example.com", "/v1/items", "", "prefix"},
		{"a path prefix is a plain string prefix", "x.example.com", "/legacy-api/x", "", "prefix"},
		{"a path prefix does not match a shorter path", "x.example.com", "/v1", "", ""},
		{"a path prefix is not looked for in the query", "x.example.com", "/other?next=/v1/", "", ""},
		{"a path prefix compares case-sensitively", "x.example.com", "/V1/items", "", ""},
		{"the path regex matches the whole path", "x.example.com", "/v2/items", "", "regex"},
		{"the path regex ignores the query", "x.example.com", "/v22/items?page=2&x=/v1/", "", "regex"},
		{"the path regex does not match a longer path", "x.example.com", "/v2/items/7", "", ""},
		{"the path regex does not match inside a path", "x.example.com", "/api/v2/items", "", ""},
		{"the path regex is not tried on the query", "x.example.com", "/x?/v2/items", "", ""},
		{"a route name matches", "x.example.com", "/", "orders-route", "route"},
		{"another route name does not match", "x.example.com", "/", "orders-route-2", ""},
		{"a policy with several conditions needs them all", "admin.example.com", "/admin/users", "admin-route", "all-conditions"},
		{"a policy with several conditions fails on the wrong route", "admin.example.com", "/admin/users", "other", ""},
		{"a policy with several conditions fails on the wrong path", "admin.example.com", "/users", "admin-route", ""},
		{"a policy with several conditions fails on the wrong host", "api2.example.com", "/admin/users", "admin-route", ""},
		{"the first policy whose match holds wins", "twice.example.com", "/", "", "first-of-two"},
		{"an earlier policy wins over a later one that also matches", "api.example.com", "/v1/items", "orders-route", "exact-host"},
		{"a request nothing matches is unmatched", "x.example.com", "/", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, r := range []Request{
				{Method: "GET", Host: c.host, Path: c.path, Route: c.route, Origin: decOrigin},
				{Method: "OPTIONS", Host: c.host, Path: c.path, Route: c.route, Origin: decOrigin, RequestMethod: "PUT", HasRequestMethod: true},
				{Method: "GET", Host: c.host, Path: c.path, Route: c.route},
			} {
				d := s.Decide(&r)
				if d.Policy != c.want {
					t.Errorf("%s %s%s (route %q, origin %q): policy %q, want %q", r.Method, r.Host, r.Path, r.Route, r.Origin, d.Policy, c.want)
				}
				if c.want == "" && (d.Class != Unmatched || d.Reason != ReasonNoPolicy || !d.SkipResponse || d.Local || len(d.Headers()) != 0) {
					t.Errorf("unmatched request: class %v reason %v skip %v local %v headers %q", d.Class, d.Reason, d.SkipResponse, d.Local, decLines(d.Headers()))
				}
			}
		})
	}
}

func TestPolicySelectionMatchAll(t *testing.T) {
	t.Parallel()
	s := decSet(t, `
policies:
  - name: api
    match: {hosts: [api.example.com]}
    allow_all_origins: true
  - name: everything-else
    allowed_origins: ["https://app.example.com"]
`)
	for _, c := range []struct{ name, host, want string }{
		{"a policy without a match block matches what earlier ones leave", "www.example.com", "everything-else"},
		{"a policy without a match block matches an empty host", "", "everything-else"},
		{"a policy without a match block does not take what an earlier one matched", "api.example.com", "api"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := decActual("GET", decOrigin)
			r.Host = c.host
			if d := s.Decide(&r); d.Policy != c.want {
				t.Errorf("policy %q, want %q", d.Policy, c.want)
			}
		})
	}
}

// TestPolicySelectionEmptyList: a match list written empty matches no
// request at all, whatever its route, and the next policy is tried.
func TestPolicySelectionEmptyList(t *testing.T) {
	t.Parallel()
	s, err := Parse("test.yaml", []byte(`
policies:
  - name: no-hosts
    match: {hosts: []}
    allowed_origins: ["https://app.example.com"]
  - name: no-routes
    match: {routes: []}
    allowed_origins: ["https://app.example.com"]
  - name: everything-else
    allowed_origins: ["https://app.example.com"]
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, route := range []string{"", "any-route", "\x00never"} {
		r := decActual("GET", decOrigin)
		r.Route = route
		if d := s.Decide(&r); d.Policy != "everything-else" {
			t.Errorf("route %q: policy %q, want everything-else", route, d.Policy)
		}
	}
}

func TestDecisionPolicyIndexIsThePositionOfThePolicyInPolicies(t *testing.T) {
	s, err := Parse("test.yaml", []byte(`
policies:
  - name: api
    match: {hosts: [api.example.com]}
    allowed_origins: ["https://app.example.com"]
  - name: shop
    mode: report
    match: {hosts: [shop.example.com]}
    allowed_origins: ["https://app.example.com"]
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, host string
		want       int
		mode       Mode
	}{
		{"the first policy's decision has index 0", "api.example.com", 0, Enforce},
		{"the second policy's decision has index 1 and its mode", "shop.example.com", 1, Report},
		{"a request no policy matches has index -1", "other.example.com", -1, Enforce},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := s.Decide(&Request{Method: "GET", Host: tt.host, Path: "/", Origin: "https://app.example.com", Origins: 1})
			if got := d.PolicyIndex(); got != tt.want {
				t.Fatalf("PolicyIndex() = %d, want %d", got, tt.want)
			}
			if tt.want < 0 {
				return
			}
			if name := s.Policies()[tt.want].Name; name != d.Policy {
				t.Errorf("Policies()[%d] is %q, the decision's policy is %q", tt.want, name, d.Policy)
			}
			if m := s.PolicyMode(tt.want); m != tt.mode {
				t.Errorf("PolicyMode(%d) = %v, want %v", tt.want, m, tt.mode)
			}
		})
	}
}
