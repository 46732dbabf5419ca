package policy

import (
	"strings"
	"testing"
)

func TestExplainPassedOver(t *testing.T) {
	t.Parallel()
	const origin = `allowed_origins: ["https://app.example.com"]`
	file := "policies:\n" +
		"  - {name: hosts, match: {hosts: [api.example.com, \"*.cdn.example.com\"]}, " + origin + "}\n" +
		"  - {name: prefixes, match: {path_prefixes: [/v2/, /admin/]}, " + origin + "}\n" +
		"  - {name: regex, match: {path_regex: \"^/v1/upload\"}, " + origin + "}\n" +
		"  - {name: routes, match: {routes: [legacy]}, " + origin + "}\n" +
		"  - {name: empty, match: {routes: []}, " + origin + "}\n" +
		"  - {name: host-then-path, match: {hosts: [www.example.com], path_prefixes: [/v1/]}, " + origin + "}\n"
	s := decSet(t, file)
	tests := []struct {
		name        string
		host, path  string
		route       string
		wantChosen  string
		wantMisses  []string // "policy key got"
		wantMessage map[string]string
	}{
		{
			name: "every policy is listed with its first failed condition when none matches",
			host: "API.example.org:443", path: "/v1/upload/123?x=1",
			wantMisses: []string{
				"hosts match.hosts api.example.org",
				"prefixes match.path_prefixes /v1/upload/123",
				"regex match.path_regex /v1/upload/123",
				"routes match.routes ",
				"empty match.routes ",
				"host-then-path match.hosts api.example.org",
			},
			wantMessage: map[string]string{
				"regex":  `it matches only the start "/v1/upload": path_regex must match the whole path`,
				"routes": "the request has no route name; match.routes wants one of [\"legacy\"]",
				"empty":  "empty list",
			},
		},
		{
			name: "the host is compared without its port, in lower case",
			host: "WWW.example.com:8443", path: "/v2", route: "other",
			wantMisses: []string{
				"hosts match.hosts www.example.com",
				"prefixes match.path_prefixes /v2",
				"regex match.path_regex /v2",
				"routes match.routes other",
				"empty match.routes ",
				"host-then-path match.path_prefixes /v2",
			},
			wantMessage: map[string]string{
				"hosts":    `host "www.example.com" is not in match.hosts ["api.example.com", "*.cdn.example.com"]`,
				"prefixes": `"/v2/" needs the trailing slash: add "/v2" to match the path itself`,
			},
		},
		{
			name: "a wildcard host says it does not cover the name itself",
			host: "cdn.example.com", path: "/admin/",
			wantChosen: "prefixes",
			wantMisses: []string{"hosts match.hosts cdn.example.com"},
			wantMessage: map[string]string{
				"hosts": `"*.cdn.example.com" covers its subdomains only: add "cdn.example.com" for the name itself`,
			},
		},
		{
			name: "only the policies before the chosen one are listed",
			host: "img.example.com", path: "/admin/x",
			wantChosen: "prefixes",
			wantMisses: []string{"hosts match.hosts img.example.com"},
		},
		{
			name: "nothing is listed when the first policy matches",
			host: "img.cdn.example.com", wantChosen: "hosts",
		},
		{
			name: "a request without a host says how to give one",
			path: "/", wantMisses: []string{"hosts match.hosts ", "prefixes match.path_prefixes /", "regex match.path_regex /", "routes match.routes ", "empty match.routes ", "host-then-path match.hosts "},
			wantMessage: map[string]string{"hosts": "the request has no host; match.hosts wants one of"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			x := s.Explain(&Request{Method: "GET", Host: tt.host, Path: tt.path, Route: tt.route, Origin: "https://app.example.com"})
			if x.Policy != tt.wantChosen {
				t.Errorf("chosen %q, want %q", x.Policy, tt.wantChosen)
			}
			var got []string
			for _, m := range x.PassedOver {
				got = append(got, m.Policy+" "+m.Key+" "+m.Got)
				if want, ok := tt.wantMessage[m.Policy]; ok && !strings.Contains(m.Message, want) {
					t.Errorf("%s: message %q lacks %q", m.Policy, m.Message, want)
				}
			}
			if strings.Join(got, "\n") != strings.Join(tt.wantMisses, "\n") {
				t.Errorf("passed over:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantMisses, "\n"))
			}
		})
	}
}

func TestPathRegexThatLooksLikeAPrefixWarns(t *testing.T) {
	t.Parallel()
	const okOrigin = `allowed_origins: ["https://app.example.com"]`
	ldRun(t, []ldCase{
		{"an anchored regex without a tail warns, with a path it misses", ldOne(okOrigin + `, match: {path_regex: '^/v1/upload'}`),
			[]ldWant{{`warning policies[0] match.path_regex "^/v1/upload"`, `never matches "/v1/upload/123"; end it with .*`}}},
		{"an anchored group without a tail warns", ldOne(okOrigin + `, match: {path_regex: '^/v1/(cart|items)'}`),
			[]ldWant{{`warning policies[0] match.path_regex "^/v1/(cart|items)"`, "looks like a prefix match"}}},
		{"a regex whose example path would match still warns, without the example", ldOne(okOrigin + `, match: {path_regex: '^/v1/[a-z0-9/]+'}`),
			[]ldWant{{`warning policies[0] match.path_regex "^/v1/[a-z0-9/]+"`, "never matches longer paths"}}},
		{"a literal dollar is no end anchor", ldOne(okOrigin + `, match: {path_regex: '^/price\$'}`),
			[]ldWant{{`warning policies[0] match.path_regex "^/price\\$"`, "looks like a prefix match"}}},
		{"an anchored regex ending in .* is a deliberate prefix", ldOne(okOrigin + `, match: {path_regex: '^/v1/upload.*'}`), nil},
		{"an anchored regex ending in $ is a deliberate whole-path match", ldOne(okOrigin + `, match: {path_regex: '^/v1/upload$'}`), nil},
		{"an anchored regex ending in a group with .+ is deliberate", ldOne(okOrigin + `, match: {path_regex: '^/v1/(upload/.+)'}`), nil},
		{"a regex without ^ is taken as the whole-path match it is", ldOne(okOrigin + `, match: {path_regex: '/v1/upload'}`), nil},
	})
}

// browserOriginTests are the cases of TestBrowserOrigin and the seeds of
// FuzzBrowserOrigin.
var browserOriginTests = []struct {
	name      string
	in        string
	wantSent  string
	wantIssue string // "" when the origin is what a browser sends
}{
	{"an origin as browsers send it passes", "https://app.example.com", "https://app.example.com", ""},
	{"an origin with a port passes", "http://localhost:5173", "http://localhost:5173", ""},
	{"the null origin passes", "null", "null", ""},
	{"a bare host gets a scheme", "app.example.com", "https://app.example.com", "no scheme"},
	{"upper case is lowered", "https://APP.example.com", "https://app.example.com", "lower case"},
	{"a path is dropped", "https://app.example.com/x", "https://app.example.com", "never with a path"},
	{"a trailing slash is dropped", "https://app.example.com/", "https://app.example.com", "never with a path"},
	{"user info is dropped", "https://me@app.example.com", "https://app.example.com", "never with a path"},
	{"the default port is dropped", "https://app.example.com:443", "https://app.example.com", "lower case"},
	{"an IDN becomes punycode", "https://bücher.example", "https://xn--bcher-kva.example", "punycode"},
	{"NULL is lowered", "NULL", "null", "lower case"},
	{"a wildcard is no origin", "https://*.example.com", "", "never sends a wildcard"},
	{"garbage says what is wrong", "https://exa mple.com", "", "not an origin"},
}

func TestBrowserOrigin(t *testing.T) {
	t.Parallel()
	tests := browserOriginTests
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sent, issue := BrowserOrigin(tt.in)
			if sent != tt.wantSent {
				t.Errorf("sent %q, want %q", sent, tt.wantSent)
			}
			if tt.wantIssue == "" && issue != "" || !strings.Contains(issue, tt.wantIssue) {
				t.Errorf("problem %q, want one containing %q", issue, tt.wantIssue)
			}
		})
	}
}

// FuzzBrowserOrigin checks that any input gets an answer without a panic,
// and that what BrowserOrigin says a browser sends is itself accepted.
func FuzzBrowserOrigin(f *testing.F) {
	for _, tt := range browserOriginTests {
		f.Add(tt.in)
	}
	f.Fuzz(func(t *testing.T, o string) {
		sent, problem := BrowserOrigin(o)
		if problem == "" && sent != o {
			t.Fatalf("%q: accepted, but a browser would send %q", o, sent)
		}
		if sent != "" {
			if again, p := BrowserOrigin(sent); p != "" || again != sent {
				t.Fatalf("%q: a browser would send %q, which is itself refused: %s", o, sent, p)
			}
		}
	})
}
