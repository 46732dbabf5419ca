package policy

// Loading and validation tests, written from docs/contract.md §2: every error refuses
// the file, every warning lets it load, and each names the file, the policy
// and the key. Origin patterns have origin_pattern_test.go; the exact
// messages `validate` prints are the golden files under testdata/.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the .golden files under testdata/ from what Parse reports")

// ldWant is one expected problem: where it is, as ldWhere renders it, and a
// word or two its message must contain (case-insensitive).
type ldWant struct{ at, says string }

type ldCase struct {
	name string
	yaml string
	want []ldWant
}

// ldWhere renders a problem's severity and place without its message:
// `error policies[1] allowed_origins[2] "https://shop.example.com/"`.
func ldWhere(p Problem) string {
	parts := []string{p.Severity.String()}
	if p.Policy >= 0 {
		parts = append(parts, "policies["+strconv.Itoa(p.Policy)+"]")
	}
	if p.Key != "" {
		parts = append(parts, p.Key)
	}
	if p.HasValue {
		parts = append(parts, strconv.Quote(p.Value))
	}
	return strings.Join(parts, " ")
}

// ldParse parses yaml as policy.yaml and returns every problem found, from
// the error when the file is refused and from the warnings when it loads.
func ldParse(t *testing.T, yaml string) (*Set, []Problem) {
	t.Helper()
	s, err := Parse("policy.yaml", []byte(yaml))
	if err == nil {
		return s, s.Warnings()
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Parse returned %T %v, want an *Error", err, err)
	}
	if s != nil {
		t.Errorf("Parse returned both a Set and an error")
	}
	return nil, e.Problems
}

// ldCheck parses yaml and compares its problems, in order, with want. The
// file must be refused exactly when an error is wanted.
func ldCheck(t *testing.T, yaml string, want []ldWant) *Set {
	t.Helper()
	s, got := ldParse(t, yaml)
	wantErr := slices.ContainsFunc(want, func(w ldWant) bool { return strings.HasPrefix(w.at, "error") })
	if (s == nil) != wantErr {
		t.Errorf("file refused = %v, want %v", s == nil, wantErr)
	}
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			t.Errorf("missing problem %d: %s: ...%s...", i, want[i].at, want[i].says)
		case i >= len(want):
			t.Errorf("unexpected problem %d: %s", i, got[i])
		case ldWhere(got[i]) != want[i].at:
			t.Errorf("problem %d is at %s, want %s\n\t%s", i, ldWhere(got[i]), want[i].at, got[i])
		case !strings.Contains(strings.ToLower(got[i].Message), strings.ToLower(want[i].says)):
			t.Errorf("problem %d does not say %q:\n\t%s", i, want[i].says, got[i])
		}
		if i < len(got) && (got[i].File != "policy.yaml" || got[i].Message == "") {
			t.Errorf("problem %d lacks its file or message: %#v", i, got[i])
		}
	}
	if t.Failed() {
		t.Logf("policy:\n%s", yaml)
	}
	return s
}

func ldRun(t *testing.T, cases []ldCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ldCheck(t, tc.yaml, tc.want)
		})
	}
}

// ldOne wraps the flow-style keys of one policy named "p" into a file.
func ldOne(keys string) string { return "policies: [{name: p, " + keys + "}]" }

func TestParseRefusesEveryErrorInSpec(t *testing.T) {
	t.Parallel()
	const okOrigin = `allowed_origins: ["https://app.example.com"]`
	ldRun(t, []ldCase{
		// Unknown keys, at every level, with the exact path.
		{"an unknown top-level key is refused", "policies: [{name: p, " + okOrigin + "}]\nextra: 1", []ldWant{{`error extra`, "unknown key"}}},
		{"a CORS key at the top level is refused with a hint", `allowed_origins: ["https://a.example.com"]` + "\npolicies: [{name: p, " + okOrigin + "}]",
			[]ldWant{{`error allowed_origins`, "under defaults or under a policy"}}},
		{"an unknown key in defaults is refused", "defaults: {allowed_origin: []}\npolicies: [{name: p, " + okOrigin + "}]", []ldWant{{`error defaults.allowed_origin`, "unknown key"}}},
		{"match in defaults is refused", "defaults: {match: {hosts: [a.example.com]}}\npolicies: [{name: p, " + okOrigin + "}]", []ldWant{{`error defaults.match`, "belongs to a policy"}}},
		{"an unknown key in a policy is refused", ldOne(okOrigin + ", allow_origins: []"), []ldWant{{`error policies[0] allow_origins`, "unknown key"}}},
		{"an unknown key in match is refused", ldOne(okOrigin + ", match: {host: [a.example.com]}"), []ldWant{{`error policies[0] match.host`, "unknown key"}}},
		{"policies missing is refused", "defaults: {" + okOrigin + "}", []ldWant{{`error policies`, "missing"}}},

		// Wrong types.
		{"policies as a mapping is refused", "policies: {name: p}", []ldWant{{`error policies`, "list"}}},
		{"a policy that is not a mapping is refused", "policies: [shop-api]", []ldWant{{`error policies[0]`, "mapping"}}},
		{"defaults as a list is refused", "defaults: [a]\npolicies: [{name: p, " + okOrigin + "}]", []ldWant{{`error defaults`, "mapping"}}},
		{"match as a list is refused", ldOne(okOrigin + ", match: [a]"), []ldWant{{`error policies[0] match`, "mapping"}}},
		{"a string where a list belongs is refused", ldOne(`allowed_origins: "https://app.example.com"`), []ldWant{{`error policies[0] allowed_origins`, `write ["https://app.example.com"]`}}},
		{"a number in a list of strings is refused", ldOne(okOrigin + ", allow_headers: [accept, 1]"), []ldWant{{`error policies[0] allow_headers[1]`, "must be a string"}}},
		{"an unquoted null origin is refused", ldOne(`allowed_origins: [null]`), []ldWant{{`error policies[0] allowed_origins[0]`, `in quotes: "null"`}}},
		{"a quoted boolean is refused", ldOne(okOrigin + `, allow_credentials: "true"`), []ldWant{{`error policies[0] allow_credentials`, "true or false"}}},
		{"yes is not a boolean", ldOne(okOrigin + `, allow_private_network: yes`), []ldWant{{`error policies[0] allow_private_network`, "true or false"}}},
		{"a quoted number is refused", ldOne(okOrigin + `, preflight_max_age: "600"`), []ldWant{{`error policies[0] preflight_max_age`, "whole number"}}},
		{"a fractional max age is refused", ldOne(okOrigin + `, preflight_max_age: 86400.0`), []ldWant{{`error policies[0] preflight_max_age`, "86400.0"}}},
		{"a max age of -1 loads without a word", ldOne(okOrigin + `, preflight_max_age: -1`), nil},
		{"a max age below -1 is refused, naming what -1 and 0 mean", ldOne(okOrigin + `, preflight_max_age: -2`), []ldWant{{`error policies[0] preflight_max_age`, "0 to omit the header, or -1 to send 0"}}},
		{"an unknown mode is refused", ldOne(okOrigin + `, mode: Enforce`), []ldWant{{`error policies[0] mode "Enforce"`, "enforce, report, off"}}},
		{"an unknown upstream_cors_headers is refused", ldOne(okOrigin + `, upstream_cors_headers: merge`), []ldWant{{`error policies[0] upstream_cors_headers "merge"`, "replace, keep"}}},
		{"a policy without a name is refused", "policies: [{" + okOrigin + "}]", []ldWant{{`error policies[0] name`, "missing"}}},
		{"an empty name is refused", "policies: [{name: '', " + okOrigin + "}]", []ldWant{{`error policies[0] name`, "empty"}}},
		{"a path_regex list is refused", ldOne(okOrigin + `, match: {path_regex: [a]}`), []ldWant{{`error policies[0] match.path_regex`, "string"}}},

		// Regexes (origins: origin_pattern_test.go).
		{"a bad origin in defaults is refused once, under defaults", "defaults: {allowed_origins: [\"https://app.example.com/\"]}\npolicies: [{name: a, match: {hosts: [a.example.com]}}, {name: b}]",
			[]ldWant{{`error defaults.allowed_origins[0] "https://app.example.com/"`, `remove the trailing "/"`}}},
		{"a bad origin regex is refused", ldOne(`allowed_origin_regexes: ['https://(a|b\.example\.com']`),
			[]ldWant{{`error policies[0] allowed_origin_regexes[0] "https://(a|b\\.example\\.com"`, "RE2"}}},
		{"a Perl-only regex is refused", ldOne(`allowed_origin_regexes: ['https://(?!evil)[a-z]+\.example\.com']`),
			[]ldWant{{`error policies[0] allowed_origin_regexes[0] "https://(?!evil)[a-z]+\\.example\\.com"`, "RE2"}}},
		{"a bad path regex is refused", ldOne(okOrigin + `, match: {path_regex: "/v[0-9+/"}`), []ldWant{{`error policies[0] match.path_regex "/v[0-9+/"`, "RE2"}}},

		// Combinations.
		{"allow_all_origins with allow_credentials is refused", ldOne(`allow_all_origins: true, allow_credentials: true`), []ldWant{{`error policies[0] allow_all_origins`, "allow_credentials"}}},
		{"allow_all_origins from defaults with a policy's credentials is refused and says so", "defaults: {allow_all_origins: true}\npolicies: [{name: p, allow_credentials: true}]",
			[]ldWant{{`error policies[0] allow_all_origins`, "true (inherited from defaults) cannot be combined with allow_credentials: true:"}}},
		{"credentials from defaults with a policy's allow_all_origins is refused and says so", "defaults: {allow_credentials: true}\npolicies: [{name: p, allow_all_origins: true}]",
			[]ldWant{{`error policies[0] allow_all_origins`, "allow_credentials: true (inherited from defaults)"}}},
		{"* in expose_headers with credentials is refused", ldOne(okOrigin + `, expose_headers: ["*"], allow_credentials: true`),
			[]ldWant{{`error policies[0] expose_headers[0] "*"`, "allow_credentials"}}},
		{"* in expose_headers from defaults with credentials is refused and says so", "defaults: {expose_headers: [\"*\"]}\npolicies: [{name: p, " + okOrigin + ", allow_credentials: true}]",
			[]ldWant{{`error policies[0] expose_headers[0] "*"`, `"*" (inherited from defaults) cannot expose`}}},

		// Methods and headers.
		{"CONNECT, TRACE and TRACK are refused in any case", ldOne(okOrigin + `, allow_methods: [GET, CONNECT, trace, Track]`),
			[]ldWant{{`error policies[0] allow_methods[1] "CONNECT"`, "never send"}, {`error policies[0] allow_methods[2] "trace"`, "never send"}, {`error policies[0] allow_methods[3] "Track"`, "never send"}}},
		{"a method that is not a token is refused", ldOne(okOrigin + `, allow_methods: ["GET POST", ""]`),
			[]ldWant{{`error policies[0] allow_methods[0] "GET POST"`, "token"}, {`error policies[0] allow_methods[1] ""`, "token"}}},
		{"* among other methods is refused", ldOne(okOrigin + `, allow_methods: ["*", GET]`), []ldWant{{`error policies[0] allow_methods[0] "*"`, "stands alone"}}},
		{"header names that are not tokens are refused", ldOne(okOrigin + `, allow_headers: ["x api", "x-a:b", "", "x-ü", "x-a,x-b"]`),
			[]ldWant{{`error policies[0] allow_headers[0] "x api"`, "token"}, {`error policies[0] allow_headers[1] "x-a:b"`, "token"}, {`error policies[0] allow_headers[2] ""`, "token"}, {`error policies[0] allow_headers[3] "x-ü"`, "token"}, {`error policies[0] allow_headers[4] "x-a,x-b"`, "token"}}},
		{"an expose header that is not a token is refused", ldOne(okOrigin + `, expose_headers: ["x total"]`), []ldWant{{`error policies[0] expose_headers[0] "x total"`, "token"}}},
		{"forbidden request headers are refused in any case", ldOne(okOrigin + `, allow_headers: [cookie, Host, proxy-authorization, Sec-Fetch-Site, origin, content-length, x-ok]`),
			[]ldWant{{`error policies[0] allow_headers[0] "cookie"`, "forbidden"}, {`error policies[0] allow_headers[1] "Host"`, "forbidden"}, {`error policies[0] allow_headers[2] "proxy-authorization"`, "forbidden"}, {`error policies[0] allow_headers[3] "Sec-Fetch-Site"`, "forbidden"}, {`error policies[0] allow_headers[4] "origin"`, "forbidden"}, {`error policies[0] allow_headers[5] "content-length"`, "forbidden"}}},
		{"a forbidden header in defaults is refused once, under defaults", "defaults: {allow_headers: [cookie]}\npolicies: [{name: a, match: {hosts: [a.example.com]}, " + okOrigin + "}, {name: b, " + okOrigin + "}]",
			[]ldWant{{`error defaults.allow_headers[0] "cookie"`, "forbidden"}}},
		{"set-cookie in expose_headers is refused in any case", ldOne(okOrigin + `, expose_headers: [x-total, set-cookie, Set-Cookie]`),
			[]ldWant{{`error policies[0] expose_headers[1] "set-cookie"`, "set-cookie"}, {`error policies[0] expose_headers[2] "Set-Cookie"`, "set-cookie"}}},
		{"* listed twice in allow_headers is refused", ldOne(okOrigin + `, allow_headers: ["*", "*"]`), []ldWant{{`error policies[0] allow_headers[1] "*"`, "twice"}}},

		// Names, statuses and match.
		{"duplicate policy names are refused", "policies:\n- {name: shop, match: {hosts: [a.example.com]}, " + okOrigin + "}\n- {name: shop, " + okOrigin + "}",
			[]ldWant{{`error policies[1] name "shop"`, "policies[0] already uses it"}}},
		{"preflight_status 201 is refused", ldOne(okOrigin + `, preflight_status: 201`), []ldWant{{`error policies[0] preflight_status`, "200 or 204"}}},
		{"preflight_status 404 in defaults is refused", "defaults: {preflight_status: 404}\npolicies: [{name: p, " + okOrigin + "}]", []ldWant{{`error defaults.preflight_status`, "200 or 204"}}},
		{"a host with a port is refused", ldOne(okOrigin + `, match: {hosts: ["api.example.com:8443"]}`), []ldWant{{`error policies[0] match.hosts[0] "api.example.com:8443"`, `remove ":8443"`}}},
		{"an empty host is refused", ldOne(okOrigin + `, match: {hosts: [""]}`), []ldWant{{`error policies[0] match.hosts[0]`, "empty"}}},
		{"a path prefix without a slash is refused", ldOne(okOrigin + `, match: {path_prefixes: ["v1/"]}`), []ldWant{{`error policies[0] match.path_prefixes[0] "v1/"`, `starts with "/"`}}},
		{"an empty route is refused", ldOne(okOrigin + `, match: {routes: [""]}`), []ldWant{{`error policies[0] match.routes[0]`, "empty"}}},
	})
}

func TestParseWarnsButLoads(t *testing.T) {
	t.Parallel()
	const okOrigin = `allowed_origins: ["https://app.example.com"]`
	ldRun(t, []ldCase{
		{"an unescaped dot in an origin regex warns", ldOne(`allowed_origin_regexes: ['https://app.example\.com', 'https://[a-z]+\.example\.com', 'https://.*\.example\.com', 'https://[.a-z]+\.example\.com']`),
			[]ldWant{{`warning policies[0] allowed_origin_regexes[0] "https://app.example\\.com"`, `unescaped "."`}}},
		{"an unescaped dot in a path regex warns", ldOne(okOrigin + `, match: {path_regex: '/v1.0/.*'}`), []ldWant{{`warning policies[0] match.path_regex "/v1.0/.*"`, `unescaped "."`}}},
		{"a policy after one without match can never match", "policies:\n- {name: all, " + okOrigin + "}\n- {name: shop, match: {hosts: [shop.example.com]}, " + okOrigin + "}",
			[]ldWant{{`warning policies[1]`, `policies[0] "all"`}}},
		{"a policy after an empty match block can never match", "policies:\n- {name: all, match: {}, " + okOrigin + "}\n- {name: shop, " + okOrigin + "}",
			[]ldWant{{`warning policies[1]`, "can never match"}}},
		{"a policy after a path prefix of / can never match", "policies:\n- {name: all, match: {path_prefixes: [/]}, " + okOrigin + "}\n- {name: shop, " + okOrigin + "}",
			[]ldWant{{`warning policies[1]`, "can never match"}}},
		{"a policy after a narrower one can match", "policies:\n- {name: shop, match: {hosts: [shop.example.com]}, " + okOrigin + "}\n- {name: rest, " + okOrigin + "}",
			nil},
		{"a policy after an off catch-all can never match", "policies:\n- {name: all, mode: off}\n- {name: shop, " + okOrigin + "}", []ldWant{{`warning policies[1]`, "can never match"}}},
		{"a lower-case simple method warns", ldOne(okOrigin + `, allow_methods: [get, patch]`), []ldWant{{`warning policies[0] allow_methods[0] "get"`, `"GET"`}}},
		{"a header listed beside * warns unless it is authorization", ldOne(okOrigin + `, allow_headers: ["*", authorization, x-api-key]`),
			[]ldWant{{`warning policies[0] allow_headers[2] "x-api-key"`, "covered"}}},
		{"an empty match list warns that it never matches", ldOne(okOrigin + `, match: {hosts: []}`), []ldWant{{`warning policies[0] match`, "matches nothing"}}},
		{"a policy allowing no origin warns", ldOne(`mode: report`), []ldWant{{`warning policies[0]`, "allows no origin"}}},
		{"an empty policies list warns", "policies: []", []ldWant{{`warning policies`, "empty"}}},
	})
}

func TestDefaultsAreInherited(t *testing.T) {
	t.Parallel()
	s := ldCheck(t, `
defaults:
  allowed_origins: ["https://app.example.com"]
  expose_headers: [x-request-id]
  allow_credentials: true
  preflight_max_age: 600
policies:
  - name: own
    match: {hosts: [own.example.com]}
    allowed_origins: ["https://own.example.com"]
    allow_credentials: false
    preflight_status: 200
  - name: cleared
    match: {hosts: [cleared.example.com]}
    allowed_origins: []
    allow_all_origins: true
    allow_credentials: false
    expose_headers: []
  - name: inherits
`, nil)
	if s == nil {
		return
	}
	ps := s.Policies()
	if len(ps) != 3 {
		t.Fatalf("Policies() has %d policies, want 3", len(ps))
	}
	for _, c := range []struct {
		name, got, want string
	}{
		{"a policy's own list wins over defaults", strings.Join(ps[0].AllowedOrigins, " "), "https://own.example.com"},
		{"a policy's own false wins over a default true", strconv.FormatBool(*ps[0].AllowCredentials), "false"},
		{"a policy's own status wins over the builtin one", strconv.Itoa(*ps[0].PreflightStatus), "200"},
		{"a key the policy does not set comes from defaults", strings.Join(ps[0].ExposeHeaders, " "), "x-request-id"},
		{"a key only defaults set is inherited", strconv.Itoa(*ps[0].PreflightMaxAge), "600"},
		{"a key neither sets takes the builtin default", *ps[0].UpstreamCORSHeaders, "replace"},
		{"an explicit [] overrides a default list", strconv.Itoa(len(ps[1].AllowedOrigins)) + strconv.Itoa(len(ps[1].ExposeHeaders)), "00"},
		{"an explicit [] is still a list, not unset", strconv.FormatBool(ps[1].AllowedOrigins != nil && ps[1].ExposeHeaders != nil), "true"},
		{"a policy setting nothing takes every default", strings.Join(ps[2].AllowedOrigins, " ") + " " + strconv.FormatBool(*ps[2].AllowCredentials), "https://app.example.com true"},
		// docs/contract.md §2: the keys' own defaults, django-cors-headers' for CORS.
		{"mode defaults to enforce", *ps[2].Mode, "enforce"},
		{"allow_methods defaults to django-cors-headers'", strings.Join(ps[2].AllowMethods, ","), "DELETE,GET,OPTIONS,PATCH,POST,PUT"},
		{"allow_headers defaults to django-cors-headers'", strings.Join(ps[2].AllowHeaders, ","), "accept,authorization,content-type,user-agent,x-csrftoken,x-requested-with"},
		{"allow_all_origins defaults to false", strconv.FormatBool(*ps[2].AllowAllOrigins), "false"},
		{"allow_private_network defaults to false", strconv.FormatBool(*ps[2].AllowPrivateNetwork), "false"},
		{"preflight_status defaults to 204", strconv.Itoa(*ps[2].PreflightStatus), "204"},
		{"upstream_cors_headers defaults to replace", *ps[2].UpstreamCORSHeaders, "replace"},
		{"allowed_origin_regexes defaults to none", strconv.Itoa(len(ps[2].AllowedOriginRegexes)), "0"},
	} {
		if c.got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, c.got, c.want)
		}
	}
}

func TestPoliciesAreCopies(t *testing.T) {
	t.Parallel()
	const file = "policies: [{name: p, allowed_origins: [\"https://app.example.com\"], match: {hosts: [a.example.com]}}]"
	s, _ := ldParse(t, file)
	p := s.Policies()[0]
	// A caller scribbling over what it was shown changes nothing: not this
	// Set's decisions, and not the builtin defaults of the next file.
	*p.Mode, *p.AllowCredentials, p.AllowMethods[0], p.AllowedOrigins[0], p.Match.Hosts[0] = "off", true, "X", "https://evil.example", "x"
	again, _ := ldParse(t, file)
	if q := again.Policies()[0]; *q.Mode != "enforce" || *q.AllowCredentials || q.AllowMethods[0] != "DELETE" {
		t.Errorf("changing one Set's Policies() changed the defaults of the next: %+v", q.Settings)
	}
	d := s.Decide(&Request{Method: "GET", Host: "a.example.com", Path: "/", Origin: "https://app.example.com"})
	if d.Outcome != Allowed || d.Mode != Enforce {
		t.Errorf("changing Policies() changed the Set's decision: %v %v", d.Mode, d.Outcome)
	}
}

// TestParseReportsEveryProblemTogether is docs/contract.md §2's promise that one pass
// fixes a file: N problems in, N problems out, in file order, with lines.
func TestParseReportsEveryProblemTogether(t *testing.T) {
	t.Parallel()
	const file = `defaults:
  allowed_origins: ["https://app.example.com/"]
policies:
  - name: api
    match: {hosts: [api.example.com], colour: blue}
    allow_credentials: true
    allow_all_origins: true
  - name: shop-api
    allowed_origins: ["https://a.example.com", "null", "https://shop.example.com/"]
    allow_methods: [GET, TRACE]
    allow_headers: [x-ok, cookie]
    preflight_status: 302
  - name: api
    allowed_origins: ["HTTPS://B.EXAMPLE.COM"]
`
	_, got := ldParse(t, file)
	want := []struct {
		line int
		at   string
	}{
		{2, `error defaults.allowed_origins[0] "https://app.example.com/"`},
		{5, `error policies[0] match.colour`},
		{7, `error policies[0] allow_all_origins`},
		{9, `warning policies[1] allowed_origins[1] "null"`},
		{9, `error policies[1] allowed_origins[2] "https://shop.example.com/"`},
		{10, `error policies[1] allow_methods[1] "TRACE"`},
		{11, `error policies[1] allow_headers[1] "cookie"`},
		{12, `error policies[1] preflight_status`},
		{13, `warning policies[2]`}, // can never match: policies[1] has no match
		{13, `error policies[2] name "api"`},
		{14, `warning policies[2] allowed_origins[0] "HTTPS://B.EXAMPLE.COM"`},
	}
	if len(got) != len(want) {
		t.Errorf("got %d problems, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		if ldWhere(got[i]) != want[i].at || got[i].Line != want[i].line {
			t.Errorf("problem %d: got line %d %s, want line %d %s", i, got[i].Line, ldWhere(got[i]), want[i].line, want[i].at)
		}
	}
	if t.Failed() {
		for _, p := range got {
			t.Log(p.Line, p)
		}
	}
}

// TestSpecExampleMessage is the message docs/contract.md §2 shows, byte for byte.
func TestSpecExampleMessage(t *testing.T) {
	t.Parallel()
	const file = `policies:
  - name: admin
    match: {hosts: [admin.example.com]}
    allowed_origins: ["https://admin.example.com"]
  - name: shop-api
    allowed_origins: ["https://app.example.com", "https://*.example.com", "https://shop.example.com/"]
`
	_, err := Parse("policy.yaml", []byte(file))
	const want = `policy.yaml: policies[1] "shop-api": allowed_origins[2] "https://shop.example.com/": an origin has no path; remove the trailing "/"`
	if err == nil || err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	warn := Problem{Severity: SeverityWarning, File: "f.yaml", Policy: -1, Key: "defaults.allowed_origins[0]", Value: "null", HasValue: true, Message: "m"}
	if got := warn.String(); got != `warning: f.yaml: defaults.allowed_origins[0] "null": m` {
		t.Errorf("a warning renders as %s", got)
	}
}

func TestParseYAML(t *testing.T) {
	t.Parallel()
	const origin = `allowed_origins: ["https://app.example.com"]`
	ldRun(t, []ldCase{
		{"a syntax error is refused with its position", "policies:\n  - name: a\n  bad", []ldWant{{`error`, "not valid YAML: [3:"}}},
		{"a tab in indentation is refused", "policies:\n\t- name: a", []ldWant{{`error`, "not valid YAML"}}},
		{"an unclosed flow list is refused", "policies: [{name: a}", []ldWant{{`error`, "not valid YAML"}}},
		{"a duplicate key in a policy is refused", "policies:\n  - name: a\n    " + origin + "\n    " + origin, []ldWant{{`error`, `"allowed_origins" already defined`}}},
		{"a duplicate top-level key is refused", "policies: []\npolicies: []", []ldWant{{`error`, "already defined"}}},
		{"an alias to an unknown anchor is refused", "policies: [{name: a, allowed_origins: *nope}]", []ldWant{{`error`, "nope"}}},
		{"an empty file is refused", "", []ldWant{{`error policies`, "empty"}}},
		{"a file of comments and blank lines is refused", "# nothing yet\n\n   \n", []ldWant{{`error policies`, "empty"}}},
		{"a file of one scalar is refused", "hello", []ldWant{{`error`, "mapping"}}},
		{"two YAML documents are refused, not half read", "policies: [{name: a, " + origin + "}]\n---\npolicies: [{name: b}]", []ldWant{{`error`, "2 YAML documents"}}},
		{"one document with separators loads", "---\npolicies: [{name: a, " + origin + "}]\n...\n", nil},
		{"a merged unknown key is still refused", "defaults: &d {colour: blue}\npolicies: [{name: a, <<: *d, " + origin + "}]",
			[]ldWant{{`error defaults.colour`, "unknown"}, {`error policies[0] colour`, "unknown"}}},
	})
}

func TestParseYAMLErrorsHaveTheirLine(t *testing.T) {
	t.Parallel()
	for yaml, line := range map[string]int{"policies:\n  - name: a\n  bad": 3, "policies:\n  - name: a\n    name: b\n": 3, "a: 1\n\tb: 2": 2} {
		if _, got := ldParse(t, yaml); len(got) != 1 || got[0].Line != line {
			t.Errorf("%q: got %v, want one problem on line %d", yaml, got, line)
		}
	}
}

func TestParseAnchorsGiveTheSameValues(t *testing.T) {
	t.Parallel()
	s := ldCheck(t, `defaults: &base
  allowed_origins: ["https://app.example.com"]
  allow_credentials: true
policies:
  - <<: *base
    name: a
    allow_credentials: false
    match: &m {hosts: [a.example.com]}
  - name: b
    <<: *base
    match: *m
    allowed_origins: ["https://b.example.com"]
`, nil)
	if s == nil {
		return
	}
	a, b := s.Policies()[0], s.Policies()[1]
	if *a.AllowCredentials || !slices.Equal(a.AllowedOrigins, []string{"https://app.example.com"}) {
		t.Errorf("policy a: credentials %v, origins %v; want false and the merged origin", *a.AllowCredentials, a.AllowedOrigins)
	}
	if !*b.AllowCredentials || !slices.Equal(b.AllowedOrigins, []string{"https://b.example.com"}) || !slices.Equal(b.Match.Hosts, []string{"a.example.com"}) {
		t.Errorf("policy b: credentials %v, origins %v, hosts %v; want true, its own origin and the aliased hosts", *b.AllowCredentials, b.AllowedOrigins, b.Match.Hosts)
	}
}

func TestDefaultPolicy(t *testing.T) {
	t.Parallel()
	s := Default()
	if w := s.Warnings(); len(w) != 0 {
		t.Errorf("the embedded development policy has warnings: %v", w)
	}
	if s.File() != DefaultFile {
		t.Errorf("File() = %q, want %q", s.File(), DefaultFile)
	}
	ps := s.Policies()
	if len(ps) != 1 || ps[0].Match != nil || *ps[0].AllowCredentials || *ps[0].AllowAllOrigins ||
		!slices.Equal(ps[0].AllowedOrigins, []string{"http://localhost:*", "http://127.0.0.1:*"}) {
		t.Errorf("Default() = %+v, want one match-all policy for http://localhost:* and http://127.0.0.1:* without credentials", ps)
	}
	again, err := Parse(DefaultFile, DefaultYAML())
	if err != nil || again.SHA256() != s.SHA256() {
		t.Errorf("DefaultYAML() does not parse to Default(): %v", err)
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	t.Run("a missing file is a read error, not a policy error", func(t *testing.T) {
		t.Parallel()
		_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
		var pe *Error
		if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &pe) {
			t.Errorf("Load(missing) = %v, want a wrapped fs.ErrNotExist", err)
		}
	})
	t.Run("a file loads with its name and digest", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "policy.yaml")
		data := []byte("policies: [{name: a, allowed_origins: [\"https://app.example.com\"]}]\n")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data) // of the bytes, as sha256sum prints it
		if s.File() != path || s.SHA256() != hex.EncodeToString(sum[:]) {
			t.Errorf("File() = %q, SHA256() = %q", s.File(), s.SHA256())
		}
	})
	t.Run("a refused file names the path it was loaded from", func(t *testing.T) {
		t.Parallel()
		_, err := Load("testdata/invalid/origin-trailing-slash.yaml")
		if err == nil || !strings.HasPrefix(err.Error(), "testdata/invalid/origin-trailing-slash.yaml: ") {
			t.Errorf("Load = %v", err)
		}
	})
}

// TestTestdataGolden loads every file under testdata/invalid (each refused,
// for one concern) and testdata/valid (each loading), and compares what
// `validate` prints for it, one problem a line, with its .golden file.
// go test ./policy -run TestTestdataGolden -update rewrites them: review
// the diff.
func TestTestdataGolden(t *testing.T) {
	t.Parallel()
	for _, dir := range []string{"invalid", "valid"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no policy files under testdata/%s: %v", dir, err)
		}
		goldens, _ := filepath.Glob(filepath.Join("testdata", dir, "*.golden"))
		for _, g := range goldens {
			if !slices.Contains(files, strings.TrimSuffix(g, ".golden")+".yaml") {
				t.Errorf("%s has no policy file beside it", g)
			}
		}
		for _, path := range files {
			verb := "loads with the warnings"
			if dir == "invalid" {
				verb = "is refused with the messages"
			}
			t.Run(filepath.Base(path)+" "+verb+" in its golden file", func(t *testing.T) {
				t.Parallel()
				s, err := Load(path)
				var got []Problem
				var e *Error
				switch {
				case dir == "valid" && err != nil:
					t.Fatalf("a valid file is refused:\n%v", err)
				case dir == "valid":
					got = s.Warnings()
				case !errors.As(err, &e):
					t.Fatalf("an invalid file loads (or fails to read): %v", err)
				default:
					got = e.Problems
				}
				var b bytes.Buffer
				for _, p := range got {
					b.WriteString(p.String())
					b.WriteByte('\n')
				}
				golden := strings.TrimSuffix(path, ".yaml") + ".golden"
				if *update {
					if err := os.WriteFile(golden, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(b.Bytes(), want) {
					t.Errorf("%s prints:\n%s\nwant (%s):\n%s", path, b.Bytes(), golden, want)
				}
			})
		}
	}
}

// FuzzParse: whatever the bytes, Parse returns a Set or an *Error whose
// every problem names the file and says something, and never panics.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*", "*.yaml"))
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(DefaultYAML())
	// Hand-made seeds for paths a mutator rarely reaches: keys with dots,
	// brackets and quotes (which locate() turns into YAML paths), non-string
	// keys, out-of-range numbers, explicit tags, an alias fan-out, empty
	// documents. (Inputs that once failed stay in testdata/fuzz.)
	for _, seed := range []string{
		"policies: [{name: a, allowed_origins: [\"https://a.example.com\"], preflight_max_age: 99999999999999999999999, preflight_status: -9223372036854775809}]\n", // big-numbers
		"a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\npolicies: [{name: p, allowed_origins: *c}]\n",                                          // deep-alias
		"---\n---\npolicies: []\n---\n", // multidoc-empty
		"policies:\n  - name: a\n    1: x\n    ? [a, b]\n    : c\n    null: d\n    true: e\n? {a: b}\n: c\n",                                                                   // non-string-keys
		"policies:\n  - name: \"a.b[0]\"\n    \"match.hosts[0]\": x\n    \"'\": 1\n    \"$\": 2\n    \"a]b\": 3\n    match: {\"hosts[\": [a], \"..\": 1}\n\"defaults.x\": 1\n", // odd-keys
		"policies: !!seq [{name: !!str 1, allow_credentials: !!bool \"true\", preflight_max_age: !!float 1, allowed_origins: !!binary aGk=}]\n",                                // tags
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const file = "fuzz.yaml"
		s, err := Parse(file, data)
		if (s == nil) == (err == nil) {
			t.Fatalf("Parse returned Set %v and error %v: want exactly one", s, err)
		}
		problems := []Problem(nil)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse returned %T, want an *Error: %v", err, err)
			}
			if !slices.ContainsFunc(e.Problems, func(p Problem) bool { return p.Severity == SeverityError }) || e.File != file {
				t.Fatalf("a refused file with no error among its problems, or the wrong file: %#v", e)
			}
			problems = e.Problems
		} else {
			problems = s.Warnings()
			for _, p := range problems {
				if p.Severity != SeverityWarning {
					t.Fatalf("a loaded file with an error: %v", p)
				}
			}
			for _, p := range s.Policies() {
				if p.Name == "" {
					t.Fatalf("a loaded policy without a name: %+v", p)
				}
				for _, o := range p.AllowedOrigins {
					if n, msg := parseOriginPattern(o); msg != "" || n.normalised != o {
						t.Fatalf("Policies() shows %q, which is not normalised (%q, %s)", o, n.normalised, msg)
					}
				}
			}
			s.Decide(&Request{Method: "OPTIONS", Host: "a.example.com", Path: "/", Origin: "https://a.example.com", HasRequestMethod: true, RequestMethod: "PUT"})
		}
		for _, p := range problems {
			if p.File != file || p.Message == "" {
				t.Fatalf("a problem without its file or message: %#v", p)
			}
			if s := p.String(); !strings.HasPrefix(strings.TrimPrefix(s, "warning: "), file+": ") {
				t.Fatalf("a problem that does not start with its file: %s", s)
			}
		}
	})
}

// TestProblemJSONNamesTheSeverity: validate --json and /config show
// "error" or "warning", not the constants' numbers, and read them back.
func TestProblemJSONNamesTheSeverity(t *testing.T) {
	t.Parallel()
	for _, sev := range []Severity{SeverityError, SeverityWarning} {
		b, err := json.Marshal(Problem{Severity: sev, File: "f.yaml", Policy: -1, Message: "m"})
		if err != nil {
			t.Fatal(err)
		}
		want := `"severity":"` + sev.String() + `"`
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
		var back Problem
		if err := json.Unmarshal(b, &back); err != nil || back.Severity != sev {
			t.Errorf("read back %v (%v), want %v", back.Severity, err, sev)
		}
	}
	var back Problem
	if err := json.Unmarshal([]byte(`{"severity":"fatal"}`), &back); err == nil {
		t.Error("an unknown severity was read without an error")
	}
}
