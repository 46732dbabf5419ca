package policy

// Guardrail tests, written from docs/contract.md §6: the section is decoded
// and checked as strictly as the rest of the file; a contributed policy
// that breaks a guardrail is refused whole, with every problem naming the
// guardrail key and the spec key.

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestGuardrailsSectionIsCheckedAsStrictlyAsTheFile(t *testing.T) {
	t.Parallel()
	const p = "\npolicies: [{name: p, match: {hosts: [admin.example.com]}, allowed_origins: [\"https://app.example.com\"]}]"
	const catchAll = "\npolicies: [{name: p, allowed_origins: [\"https://app.example.com\"]}]"
	ns := func(entry string) string { return "guardrails:\n  namespaces: [" + entry + "]" + p }
	ldRun(t, []ldCase{
		{"a valid section loads without a word",
			"guardrails:\n  namespaces:\n    - {name: team-a, hosts: [a.example.com, \"*.a.example.com\"], path_prefixes: [/api], hosts_from_httproutes: true, allowed_origins: [\"https://*.a.example.com\"]}\n" +
				"  allowed_origins: [\"https://*.example.com\", \"http://localhost:*\"]\n  allow_all_origins: false\n  credentials_with_wildcards: false\n  private_network: false\n  origin_regexes: false\n  order: before" + p, nil},
		{"an unknown key is refused with the keys the section takes",
			"guardrails:\n  namespaces: []\n  allow_credentials: false" + p,
			[]ldWant{{"warning guardrails.namespaces", "no namespace may declare"}, {"error guardrails.allow_credentials", "guardrails takes namespaces, allowed_origins"}}},
		{"a section without namespaces is refused",
			"guardrails:\n  allowed_origins: [\"https://*.example.com\"]" + p,
			[]ldWant{{"error guardrails.namespaces", "missing; list the namespaces"}}},
		{"a section that is not a mapping is refused",
			"guardrails: [team-a]" + p,
			[]ldWant{{"error guardrails", "must be a mapping"}}},
		{"namespaces that are not a list are refused",
			"guardrails:\n  namespaces: team-a" + p,
			[]ldWant{{"error guardrails.namespaces", "must be a list of namespaces"}}},
		{"a namespace entry with an unknown key is refused with the keys it takes",
			ns("{name: team-a, hosts: [a.example.com], host: [b.example.com]}"),
			[]ldWant{{"error guardrails.namespaces[0].host", "a namespace entry takes name, hosts"}}},
		{"a namespace entry without a name is refused",
			ns("{hosts: [a.example.com]}"),
			[]ldWant{{"error guardrails.namespaces[0].name", "missing; name the namespace"}}},
		{"a namespace name Kubernetes would refuse is refused",
			ns("{name: Team_A, hosts: [a.example.com]}"),
			[]ldWant{{`error guardrails.namespaces[0].name "Team_A"`, "not a Kubernetes namespace name"}}},
		{"a namespace listed twice is refused",
			ns("{name: team-a, hosts: [a.example.com]}, {name: team-a, hosts: [b.example.com]}"),
			[]ldWant{{`error guardrails.namespaces[1].name "team-a"`, "listed twice; guardrails.namespaces[0] already names it"}}},
		{"a namespace without hosts or HTTPRoutes is refused: none of its policies could be admitted",
			ns("{name: team-a}"),
			[]ldWant{{"error guardrails.namespaces[0].hosts", "missing; without hosts (or hosts_from_httproutes: true)"}}},
		{"a namespace with HTTPRoute hostnames alone loads",
			ns("{name: team-a, hosts_from_httproutes: true}"), nil},
		{"a host with a port is refused as in match.hosts",
			ns("{name: team-a, hosts: [\"a.example.com:443\", \"\"]}"),
			[]ldWant{{`error guardrails.namespaces[0].hosts[0] "a.example.com:443"`, "without its port"}, {`error guardrails.namespaces[0].hosts[1] ""`, "cannot be empty"}}},
		{"a path prefix without its slash is refused",
			ns("{name: team-a, hosts: [a.example.com], path_prefixes: [api]}"),
			[]ldWant{{`error guardrails.namespaces[0].path_prefixes[0] "api"`, `starts with "/"`}}},
		{"an empty path_prefixes list is refused: it would admit nothing",
			ns("{name: team-a, hosts: [a.example.com], path_prefixes: []}"),
			[]ldWant{{"error guardrails.namespaces[0].path_prefixes", "an empty list admits no policy"}}},
		{"an allowed origin of \"*\" is refused with the key to use",
			"guardrails:\n  namespaces: []\n  allowed_origins: [\"*\", \"https://example.com/\"]" + p,
			[]ldWant{{"warning guardrails.namespaces", "no namespace"}, {`error guardrails.allowed_origins[0] "*"`, "guardrails.allow_all_origins: true"}, {`error guardrails.allowed_origins[1] "https://example.com/"`, "no path"}}},
		{"a namespace's own bad origin is refused",
			ns("{name: team-a, hosts: [a.example.com], allowed_origins: [\"a.example.com\"]}"),
			[]ldWant{{`error guardrails.namespaces[0].allowed_origins[0] "a.example.com"`, "scheme://host"}}},
		{"defaults the guardrails refuse are warned about: every object inheriting them would be refused",
			"defaults:\n  allowed_origins: [\"https://app.example.com\", \"http://localhost:3000\"]\n  allow_private_network: true\n" +
				"guardrails:\n  namespaces: [{name: team-a, hosts: [a.example.com]}]\n  allowed_origins: [\"https://*.example.com\"]" + p,
			[]ldWant{
				{`warning defaults.allowed_origins "http://localhost:3000"`, "every CORSPolicy that does not set allowed_origins inherits this, and the guardrails refuse it (not within guardrails.allowed_origins"},
				{"warning defaults.allow_private_network", "(true is not allowed: guardrails.private_network is not true in policy.yaml); change defaults or the guardrail"},
			}},
		{"defaults within the guardrails say nothing",
			"defaults:\n  allowed_origins: [\"https://app.example.com\"]\n  allow_credentials: true\n" +
				"guardrails:\n  namespaces: [{name: team-a, hosts: [a.example.com]}]\n  allowed_origins: [\"https://*.example.com\"]" + p, nil},
		{"defaults are not held to a top-level list no namespace uses",
			"defaults:\n  allowed_origins: [\"https://app.example.com\"]\n" +
				"guardrails:\n  namespaces: [{name: team-a, hosts: [a.example.com], allowed_origins: [\"https://app.example.com\"]}]" + p, nil},
		{"a catch-all policy before every object is warned about",
			"guardrails:\n  namespaces: [{name: team-a, hosts: [a.example.com]}]" + catchAll,
			[]ldWant{{"warning guardrails.order", `policies[0] "p" has no match conditions, so no object can ever apply; give it a match, or set order: before`}}},
		{"a catch-all policy after the objects is not",
			"guardrails:\n  namespaces: [{name: team-a, hosts: [a.example.com]}]\n  order: before" + catchAll, nil},
		{"a boolean guardrail written as a word is refused",
			"guardrails:\n  namespaces: []\n  private_network: \"no\"\n  order: first" + p,
			[]ldWant{{"warning guardrails.namespaces", "no namespace"}, {"error guardrails.private_network", "true or false"}, {`error guardrails.order "first"`, "after, before"}}},
	})
}

func TestHostWithin(t *testing.T) {
	for _, tc := range []struct {
		name        string
		team, guard string
		want        bool
	}{
		{"a host is within itself", "a.example.com", "a.example.com", true},
		{"a host is within a wildcard over its parent", "api.a.example.com", "*.a.example.com", true},
		{"a host two labels down is within the wildcard too", "v1.api.a.example.com", "*.a.example.com", true},
		{"the apex is not within a wildcard over it", "a.example.com", "*.a.example.com", false},
		{"a wildcard is within itself", "*.a.example.com", "*.a.example.com", true},
		{"a narrower wildcard is within a wider one", "*.api.a.example.com", "*.a.example.com", true},
		{"a wider wildcard is not within a narrower one", "*.example.com", "*.a.example.com", false},
		{"a wildcard is not within a host", "*.a.example.com", "a.example.com", false},
		{"a look-alike suffix is not within", "evila.example.com", "*.a.example.com", false},
		{"case and a trailing dot do not matter", "API.A.Example.com.", "*.a.example.com", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th, msg := parseHostPattern(tc.team)
			gh, msg2 := parseHostPattern(tc.guard)
			if msg != "" || msg2 != "" {
				t.Fatal(msg, msg2)
			}
			if got := hostWithin(th, gh); got != tc.want {
				t.Errorf("hostWithin(%q, %q) = %v, want %v", tc.team, tc.guard, got, tc.want)
			}
		})
	}
}

// originWithinCases are also the seeds of FuzzOriginWithin.
var originWithinCases = []struct {
	name        string
	team, guard string
	want        bool
}{
	{"an origin is within itself", "https://app.example.com", "https://app.example.com", true},
	{"a subdomain is within a wildcard", "https://app.example.com", "https://*.example.com", true},
	{"a narrower wildcard is within a wider one", "https://*.a.example.com", "https://*.example.com", true},
	{"a wildcard is within itself", "https://*.example.com", "https://*.example.com", true},
	{"the apex is not within a wildcard over it", "https://example.com", "https://*.example.com", false},
	{"a wider wildcard is not within a narrower one", "https://*.example.com", "https://*.a.example.com", false},
	{"a look-alike domain is not within", "https://evilexample.com", "https://*.example.com", false},
	{"another scheme is not within", "http://app.example.com", "https://*.example.com", false},
	{"another port is not within a wildcard on the default port", "https://app.example.com:8443", "https://*.example.com", false},
	{"any port is within a wildcard on any port", "https://app.example.com:8443", "https://*.example.com:*", true},
	{"a wildcard on any port is not within one on the default port", "https://*.a.example.com:*", "https://*.example.com", false},
	{"a port is within a port wildcard", "http://localhost:3000", "http://localhost:*", true},
	{"the default port is within a port wildcard", "http://localhost", "http://localhost:*", true},
	{"a port wildcard is not within one port", "http://localhost:*", "http://localhost:3000", false},
	{"a wildcard is not within an exact origin", "https://*.example.com", "https://app.example.com", false},
	{"the default port written out is within the origin without it", "https://app.example.com:443", "https://app.example.com", true},
	{"case does not matter", "https://APP.Example.com", "https://*.example.com", true},
	{"null is within null", "null", "null", true},
	{"null is within no wildcard", "null", "https://*.example.com", false},
}

func TestOriginWithin(t *testing.T) {
	for _, tc := range originWithinCases {
		t.Run(tc.name, func(t *testing.T) {
			tp, msg := parseOriginPattern(tc.team)
			gp, msg2 := parseOriginPattern(tc.guard)
			if msg != "" || msg2 != "" {
				t.Fatal(msg, msg2)
			}
			if got := originWithin(tp, gp); got != tc.want {
				t.Errorf("originWithin(%q, %q) = %v, want %v", tc.team, tc.guard, got, tc.want)
			}
		})
	}
}

// FuzzOriginWithin checks originWithin against the reference matcher of
// fuzz_test.go: when a team pattern is within a guardrail pattern, every
// origin the team's admits, the guardrail's admits too.
//
//	go test -run '^$' -fuzz '^FuzzOriginWithin$' -fuzztime 30s -fuzzminimizetime 3s ./policy
func FuzzOriginWithin(f *testing.F) {
	for _, tc := range originWithinCases {
		f.Add(tc.team, tc.guard, strings.Replace(strings.Replace(tc.team, "*.", "x.", 1), ":*", ":8080", 1))
	}
	f.Fuzz(func(t *testing.T, team, guard, origin string) {
		tp, msg := parseOriginPattern(team)
		gp, msg2 := parseOriginPattern(guard)
		if msg != "" || msg2 != "" || !originWithin(tp, gp) {
			return
		}
		if decRefMatch(tp.normalised, origin) && !decRefMatch(gp.normalised, origin) {
			t.Errorf("%q is within %q, yet admits %q, which the guardrail does not", tp.normalised, gp.normalised, origin)
		}
	})
}

const grCentral = `
defaults:
  allowed_origins: ["https://app.example.com"]
guardrails:
  namespaces:
    - name: team-a
      hosts: [a.example.com, "*.a.example.com"]
    - name: team-b
      hosts: [b.example.com]
      path_prefixes: [/api/]
      allowed_origins: ["https://b.example.com"]
    - name: team-r
      hosts_from_httproutes: true
  allowed_origins: ["https://app.example.com", "https://*.example.com", "http://localhost:*"]
policies:
  - name: admin
    match: {hosts: [admin.example.com]}
`

// grCase is one contribution; want lists every error, as ldWhere renders
// it less the severity, with a few words of its message.
type grCase struct {
	name      string
	central   string // grCentral when empty
	namespace string
	spec      string
	routes    []string
	want      []ldWant
}

var grCases = []grCase{
	{name: "a policy within every guardrail is admitted",
		namespace: "team-a", spec: `{"match":{"hosts":["api.a.example.com"]},"allowed_origins":["https://www.a.example.com","http://localhost:3000"],"allow_credentials":true}`},
	{name: "a policy inheriting the file's origins is admitted when they are within",
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]}}`},
	{name: "a file without guardrails refuses every namespace and says what to add",
		central: "policies: [{name: admin, match: {hosts: [admin.example.com]}}]", namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]}}`,
		want: []ldWant{{`metadata.namespace "team-a"`, "no guardrails section, so no namespace may declare CORSPolicy objects; to admit this one, add guardrails.namespaces"}}},
	{name: "a namespace not listed is refused, naming the ones listed",
		namespace: "team-c", spec: `{"match":{"hosts":["c.example.com"]}}`,
		want: []ldWant{{`metadata.namespace "team-c"`, `not listed in guardrails.namespaces of central.yaml (which lists ["team-a", "team-b", "team-r"])`}}},
	{name: "a policy without match.hosts is refused: it would match every host",
		namespace: "team-a", spec: `{"match":{"path_prefixes":["/"]}}`,
		want: []ldWant{{"spec.match.hosts", `missing; a CORSPolicy must name the hosts it matches (without match.hosts it would match every host), within the hosts namespace team-a may match, guardrails.namespaces[0].hosts ["a.example.com", "*.a.example.com"]`}}},
	{name: "an empty match.hosts is refused",
		namespace: "team-a", spec: `{"match":{"hosts":[]}}`,
		want: []ldWant{{"spec.match.hosts", "an empty list matches nothing"}}},
	{name: "a host outside the namespace's hosts is refused",
		namespace: "team-a", spec: `{"match":{"hosts":["api.a.example.com","b.example.com"]}}`,
		want: []ldWant{{`spec.match.hosts[1] "b.example.com"`, "not within the hosts namespace team-a may match, guardrails.namespaces[0].hosts"}}},
	{name: "a wildcard wider than the namespace's is refused",
		namespace: "team-a", spec: `{"match":{"hosts":["*.example.com"]}}`,
		want: []ldWant{{`spec.match.hosts[0] "*.example.com"`, "not within"}}},
	{name: "a host named by one of the namespace's HTTPRoutes is admitted when the guardrail says so",
		namespace: "team-r", spec: `{"match":{"hosts":["r.example.com"]}}`, routes: []string{"R.example.com", "*.r.example.com"}},
	{name: "a host below a wildcard HTTPRoute hostname is admitted",
		namespace: "team-r", spec: `{"match":{"hosts":["v1.r.example.com"]}}`, routes: []string{"*.r.example.com"}},
	{name: "a host of no HTTPRoute is refused, naming the hostnames it has",
		namespace: "team-r", spec: `{"match":{"hosts":["q.example.com"]}}`, routes: []string{"r.example.com"},
		want: []ldWant{{`spec.match.hosts[0] "q.example.com"`, `and the hostnames of its HTTPRoutes ["r.example.com"]`}}},
	{name: "HTTPRoute hostnames count only where the guardrail says so",
		namespace: "team-a", spec: `{"match":{"hosts":["r.example.com"]}}`, routes: []string{"r.example.com"},
		want: []ldWant{{`spec.match.hosts[0] "r.example.com"`, "not within"}}},
	{name: "a namespace with path prefixes requires match.path_prefixes",
		namespace: "team-b", spec: `{"match":{"hosts":["b.example.com"]},"allowed_origins":["https://b.example.com"]}`,
		want: []ldWant{{"spec.match.path_prefixes", `missing; namespace team-b may match only paths under guardrails.namespaces[1].path_prefixes ["/api/"]`}}},
	{name: "a path prefix outside the namespace's is refused",
		namespace: "team-b", spec: `{"match":{"hosts":["b.example.com"],"path_prefixes":["/api","/admin"]},"allowed_origins":["https://b.example.com"]}`,
		want: []ldWant{{`spec.match.path_prefixes[0] "/api"`, "not under"}, {`spec.match.path_prefixes[1] "/admin"`, "not under"}}},
	{name: "a path prefix under the namespace's is admitted",
		namespace: "team-b", spec: `{"match":{"hosts":["b.example.com"],"path_prefixes":["/api/v1/"]},"allowed_origins":["https://b.example.com"]}`},
	{name: "an origin outside guardrails.allowed_origins is refused",
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]},"allowed_origins":["https://a.example.com","https://evil.example.org"]}`,
		want: []ldWant{{`spec.allowed_origins[1] "https://evil.example.org"`, `not within guardrails.allowed_origins ["https://app.example.com", "https://*.example.com", "http://localhost:*"] of central.yaml`}}},
	{name: "the apex of a wildcard guardrail is refused with a hint",
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]},"allowed_origins":["https://example.com"]}`,
		want: []ldWant{{`spec.allowed_origins[0] "https://example.com"`, `"https://*.example.com" covers subdomains only, not example.com itself`}}},
	{name: "a namespace's own allowed_origins replace the top-level list",
		namespace: "team-b", spec: `{"match":{"hosts":["b.example.com"],"path_prefixes":["/api/"]},"allowed_origins":["https://www.example.com"]}`,
		want: []ldWant{{`spec.allowed_origins[0] "https://www.example.com"`, `not within guardrails.namespaces[1].allowed_origins ["https://b.example.com"]`}}},
	{name: "an inherited origin outside the guardrail is refused at the key, saying where it came from",
		namespace: "team-b", spec: `{"match":{"hosts":["b.example.com"],"path_prefixes":["/api/"]}}`,
		want: []ldWant{{`spec.allowed_origins "https://app.example.com"`, "(inherited from the defaults of central.yaml; set allowed_origins in the spec to override it)"}}},
	{name: "allow_all_origins is refused unless the guardrail allows it",
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]},"allow_all_origins":true}`,
		want: []ldWant{{"spec.allow_all_origins", "guardrails.allow_all_origins is not true in central.yaml; list the origins"}}},
	{name: "allow_all_origins is admitted where the guardrail allows it, its origins unchecked",
		central:   strings.Replace(grCentral, "policies:", "  allow_all_origins: true\npolicies:", 1),
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]},"allow_all_origins":true,"allowed_origins":["https://elsewhere.org"]}`},
	{name: "credentials with a wildcard origin are refused unless the guardrail allows them",
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]},"allowed_origins":["https://*.a.example.com","http://localhost:*"],"allow_credentials":true}`,
		want: []ldWant{
			{`spec.allowed_origins[0] "https://*.a.example.com"`, "a wildcard origin with allow_credentials: true is not allowed: guardrails.credentials_with_wildcards is not true"},
			{`spec.allowed_origins[1] "http://localhost:*"`, "guardrails.credentials_with_wildcards"},
		}},
	{name: "credentials with a wildcard origin are admitted where the guardrail allows them",
		central:   strings.Replace(grCentral, "policies:", "  credentials_with_wildcards: true\npolicies:", 1),
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]},"allowed_origins":["https://*.a.example.com"],"allow_credentials":true}`},
	{name: "private network access is refused unless the guardrail allows it",
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]},"allow_private_network":true}`,
		want: []ldWant{{"spec.allow_private_network", "guardrails.private_network is not true"}}},
	{name: "private network access is admitted where the guardrail allows it",
		central:   strings.Replace(grCentral, "policies:", "  private_network: true\npolicies:", 1),
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]},"allow_private_network":true}`},
	{name: "origin regexes are refused unless the guardrail allows them",
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]},"allowed_origin_regexes":["https://[a-z]+\\.a\\.example\\.com"]}`,
		want: []ldWant{{`spec.allowed_origin_regexes[0] "https://[a-z]+\\.a\\.example\\.com"`, "guardrails.origin_regexes is not true"}}},
	{name: "origin regexes with credentials are refused where only regexes are allowed",
		central:   strings.Replace(grCentral, "policies:", "  origin_regexes: true\npolicies:", 1),
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]},"allowed_origins":["https://a.example.com"],"allowed_origin_regexes":["https://[a-z]+\\.a\\.example\\.com"],"allow_credentials":true}`,
		want: []ldWant{{`spec.allowed_origin_regexes[0] "https://[a-z]+\\.a\\.example\\.com"`, "an origin regex with allow_credentials: true is not allowed: guardrails.credentials_with_wildcards"}}},
	{name: "teams may allow no origin when the guardrail lists none",
		central:   "guardrails:\n  namespaces: [{name: team-a, hosts: [a.example.com]}]\npolicies: []",
		namespace: "team-a", spec: `{"match":{"hosts":["a.example.com"]},"allowed_origins":["https://a.example.com"]}`,
		want: []ldWant{{`spec.allowed_origins[0] "https://a.example.com"`, "teams may allow no origin: guardrails.allowed_origins is not set"}}},
	{name: "every breach is reported at once, beside the loader's own problems",
		namespace: "team-a", spec: "match:\n  hosts: [x.example.com]\nallowed_origins: [\"https://x.example.org\", \"https://a.example.com/\"]\nallow_private_network: true\nallow_all_origins: true\n",
		want: []ldWant{
			{`spec.match.hosts[0] "x.example.com"`, "not within"},
			{`spec.allowed_origins[0] "https://x.example.org"`, "not within"},
			{`spec.allowed_origins[1] "https://a.example.com/"`, "no path"},
			{"spec.allow_private_network", "guardrails.private_network"},
			{"spec.allow_all_origins", "guardrails.allow_all_origins"},
		}},
}

func TestAdmitHoldsAPolicyToTheGuardrails(t *testing.T) {
	for _, tc := range grCases {
		t.Run(tc.name, func(t *testing.T) {
			s := ctSet(t, cmpOr(tc.central, grCentral))
			src := "CORSPolicy " + tc.namespace + "/api"
			_, err := s.Admit(Contribution{Namespace: tc.namespace, Name: "api", Source: src, Spec: []byte(tc.spec), RouteHosts: tc.routes})
			var e *Error
			if err != nil && !errors.As(err, &e) {
				t.Fatalf("Admit returned %T %v, want an *Error", err, err)
			}
			var got []Problem
			if e != nil {
				for _, p := range e.Problems {
					if p.Severity == SeverityError {
						got = append(got, p)
					}
				}
			}
			for i := range max(len(got), len(tc.want)) {
				switch {
				case i >= len(got):
					t.Errorf("missing problem %d: %s: ...%s...", i, tc.want[i].at, tc.want[i].says)
				case i >= len(tc.want):
					t.Errorf("unexpected problem %d: %s", i, got[i])
				case strings.TrimPrefix(ldWhere(got[i]), "error ") != tc.want[i].at:
					t.Errorf("problem %d is at %s, want %s\n\t%s", i, ldWhere(got[i]), tc.want[i].at, got[i])
				case !strings.Contains(got[i].Message, tc.want[i].says):
					t.Errorf("problem %d does not say %q:\n\t%s", i, tc.want[i].says, got[i])
				}
				if i < len(got) && (got[i].File != src || got[i].PolicyName != tc.namespace+"/api") {
					t.Errorf("problem %d is not named by the contribution: %#v", i, got[i])
				}
			}
		})
	}
}

func TestOrderBeforePlacesAdmittedPoliciesFirst(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order string
		want  []string
	}{
		{"without order, team policies come after the file's", "", []string{"admin", "team-a/api"}},
		{"order: after places them after the file's", "  order: after\n", []string{"admin", "team-a/api"}},
		{"order: before places them before the file's", "  order: before\n", []string{"team-a/api", "admin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := ctSet(t, strings.Replace(grCentral, "policies:", tc.order+"policies:", 1))
			a, err := s.Admit(Contribution{Namespace: "team-a", Name: "api", Spec: []byte(`{"match":{"hosts":["a.example.com"]}}`)})
			if err != nil {
				t.Fatal(err)
			}
			w, err := s.With([]*Admitted{a})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for i, p := range w.Policies() {
				names = append(names, p.Name)
				if d := w.Decide(&Request{Method: "GET", Host: p.Match.Hosts[0], Path: "/", Origin: "https://app.example.com"}); d.PolicyIndex() != i {
					t.Errorf("a request for %s went to policy %d, want %d", p.Match.Hosts[0], d.PolicyIndex(), i)
				}
			}
			if !slices.Equal(names, tc.want) {
				t.Errorf("policies %v, want %v", names, tc.want)
			}
		})
	}
}

// FuzzAdmit checks that Admit never panics, names every problem by the
// contribution, and admits nothing that breaks a guardrail of grCentral:
// hosts within the namespace's, origins within the allowed ones, no
// private network access, no allow-all.
//
//	go test -run '^$' -fuzz '^FuzzAdmit$' -fuzztime 30s -fuzzminimizetime 3s ./policy
func FuzzAdmit(f *testing.F) {
	for _, tc := range ctAdmitCases {
		f.Add("team-a", tc.spec)
	}
	for _, tc := range grCases {
		if tc.central == "" {
			f.Add(tc.namespace, tc.spec)
		}
	}
	s := ctSet(f, grCentral)
	f.Fuzz(func(t *testing.T, namespace, spec string) {
		a, err := s.Admit(Contribution{Namespace: namespace, Name: "api", Source: "src", Spec: []byte(spec)})
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Admit returned %T %v, want an *Error", err, err)
			}
			for _, p := range e.Problems {
				if p.File != "src" || !strings.HasPrefix(p.Key, "spec") && !strings.HasPrefix(p.Key, "metadata.") || p.Message == "" {
					t.Errorf("problem not named by the contribution: %#v", p)
				}
			}
			return
		}
		w, err := s.With([]*Admitted{a})
		if err != nil {
			t.Fatal(err)
		}
		p := w.Policies()[len(w.Policies())-1]
		ns := s.guardrails.namespaces[namespace]
		if ns == nil || p.Match == nil || len(p.Match.Hosts) == 0 || *p.AllowPrivateNetwork || *p.AllowAllOrigins || len(p.AllowedOriginRegexes) > 0 {
			t.Fatalf("admitted %s in namespace %q, which breaks a guardrail: %+v", spec, namespace, p)
		}
		for _, h := range p.Match.Hosts {
			hp, _ := parseHostPattern(h)
			if !slices.ContainsFunc(ns.hosts, func(g hostPattern) bool { return hostWithin(hp, g) }) {
				t.Errorf("admitted host %q outside %v", h, ns.hostsText)
			}
		}
		for _, o := range p.AllowedOrigins {
			op, _ := parseOriginPattern(o)
			list := s.guardrails.origins
			if ns.origins != nil {
				list = ns.origins
			}
			if !slices.ContainsFunc(list, func(g originPattern) bool { return originWithin(op, g) }) {
				t.Errorf("admitted origin %q outside the guardrails", o)
			}
		}
	})
}
