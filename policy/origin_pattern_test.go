package policy

// Origin patterns in allowed_origins, from docs/contract.md §2 and the "What Origin
// values look like" section of the CORS notes: what parses, what it is
// normalised to (the bytes a browser sends), what is refused and why, and
// the origin checks that depend on credentials.

import (
	"strings"
	"testing"

	"github.com/corsproc/corsproc/internal/httpgrammar"
)

func TestParseOriginPatternAccepts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
		kind           patternKind
	}{
		{"an https origin stays as written", "https://app.example.com", "https://app.example.com", exactOrigin},
		{"an explicit port stays", "http://app.example.com:8080", "http://app.example.com:8080", exactOrigin},
		{"a trailing dot in the host is kept", "https://app.example.com.", "https://app.example.com.", exactOrigin},
		{"underscores are allowed in labels", "https://my_app.example.com", "https://my_app.example.com", exactOrigin},
		{"a non-web scheme is an origin too", "chrome-extension://abcdefghijklmnop", "chrome-extension://abcdefghijklmnop", exactOrigin},
		{"null is the null origin", "null", "null", exactOrigin},
		{"NULL is lower-cased to null", "NULL", "null", exactOrigin},
		{"the scheme and host are lower-cased", "HTTPS://App.Example.COM", "https://app.example.com", exactOrigin},
		{"https's default port is dropped", "https://app.example.com:443", "https://app.example.com", exactOrigin},
		{"http's default port is dropped", "http://app.example.com:80", "http://app.example.com", exactOrigin},
		{"wss's default port is dropped", "wss://app.example.com:443", "wss://app.example.com", exactOrigin},
		{"another scheme's port 443 stays", "http://app.example.com:443", "http://app.example.com:443", exactOrigin},
		{"leading zeros in a port are dropped", "https://app.example.com:08443", "https://app.example.com:8443", exactOrigin},
		{"an IDN becomes punycode", "https://bücher.example", "https://xn--bcher-kva.example", exactOrigin},
		{"an upper-case IDN becomes lower-case punycode", "https://BÜCHER.example", "https://xn--bcher-kva.example", exactOrigin},
		{"an IDN is mapped the non-transitional way, as browsers do", "https://faß.de", "https://xn--fa-hia.de", exactOrigin},
		{"IPv6 is compressed", "http://[0:0:0:0:0:0:0:1]:8080", "http://[::1]:8080", exactOrigin},
		{"IPv6 compresses the longest run of zeros", "http://[2001:db8:0:0:1:0:0:0]", "http://[2001:db8:0:0:1::]", exactOrigin},
		{"IPv6 is lower-cased", "http://[2001:DB8::A]", "http://[2001:db8::a]", exactOrigin},
		{"IPv4-mapped IPv6 is written in hex, as browsers do", "http://[::ffff:127.0.0.1]", "http://[::ffff:7f00:1]", exactOrigin},
		{"a short IPv4 address is written in full", "http://127.1:3000", "http://127.0.0.1:3000", exactOrigin},
		{"a hex IPv4 address is written in decimal", "http://0x7f.0.0.1", "http://127.0.0.1", exactOrigin},
		{"an octal IPv4 part is written in decimal", "http://0300.0250.0.1", "http://192.168.0.1", exactOrigin},
		{"a trailing dot after an IPv4 address is dropped", "http://10.0.0.1.", "http://10.0.0.1", exactOrigin},
		{"any port on localhost", "http://localhost:*", "http://localhost:*", anyPortOrigin},
		{"any port on an IPv6 host", "http://[::1]:*", "http://[::1]:*", anyPortOrigin},
		{"a wildcard subdomain", "https://*.example.com", "https://*.example.com", wildcardOrigin},
		{"a wildcard subdomain with a port", "https://*.example.com:8443", "https://*.example.com:8443", wildcardOrigin},
		{"a wildcard subdomain with any port", "https://*.example.com:*", "https://*.example.com:*", wildcardOrigin},
		{"a wildcard subdomain is normalised too", "HTTPS://*.Example.COM:443", "https://*.example.com", wildcardOrigin},
		{"a wildcard over an IDN", "https://*.bücher.example", "https://*.xn--bcher-kva.example", wildcardOrigin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, msg := parseOriginPattern(tc.in)
			if msg != "" || p.normalised != tc.want || p.kind != tc.kind {
				t.Fatalf("parseOriginPattern(%q) = %q kind %d, %q; want %q kind %d", tc.in, p.normalised, p.kind, msg, tc.want, tc.kind)
			}
			again, msg := parseOriginPattern(p.normalised)
			if msg != "" || again != p {
				t.Errorf("normalising %q again gives %+v, %q; want it unchanged", p.normalised, again, msg)
			}
			// What the entry matches must be a serialized origin, or it
			// could never match a browser's origin.
			example := strings.Replace(strings.TrimSuffix(p.normalised, ":*"), "*.", "a.", 1)
			if p.normalised != "null" && !httpgrammar.IsOrigin(example) {
				t.Errorf("%q normalises to %q, whose origins (%q) no browser sends", tc.in, p.normalised, example)
			}
		})
	}
}

func TestParseOriginPatternRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, says string }{
		{"a trailing slash", "https://shop.example.com/", `an origin has no path; remove the trailing "/"`},
		{"a path", "https://app.example.com/login", `remove "/login"`},
		{"a trailing slash after a port", "http://localhost:3000/", `remove the trailing "/"`},
		{"a query", "https://app.example.com?x=1", "no query"},
		{"a fragment", "https://app.example.com#x", "no fragment"},
		{"userinfo", "https://user:pw@app.example.com", "user info"},
		{"userinfo hiding another host", "https://app.example.com@evil.example", "user info"},
		{"no scheme", "app.example.com", "scheme://host"},
		{"a scheme without slashes", "https:app.example.com", "scheme://host"},
		{"an empty string", "", "empty"},
		{"a bare *", "*", "allow_all_origins"},
		{"surrounding spaces", " https://app.example.com", "spaces"},
		{"a bad scheme", "1http://app.example.com", "scheme"},
		{"no host", "https://", "no host"},
		{"an empty label", "https://app..example.com", "empty label"},
		{"a label over 63 bytes", "https://" + strings.Repeat("a", 64) + ".example.com", "at most 63"},
		{"a leading dot", "https://.example.com", "empty label"},
		{"a space in the host", "https://app example.com", "' '"},
		{"two origins in one entry", "https://a.example.com,https://b.example.com", "comma"},
		{"a comma in the host", "https://a,b.example.com", "comma"},
		{"percent-encoding in the host", "https://ex%61mple.com", "'%'"},
		{"a backtick in the host", "https://a`b.example.com", "'`'"},
		{"port 0", "https://app.example.com:0", "1 to 65535"},
		{"port 65536", "https://app.example.com:65536", "1 to 65535"},
		{"a named port", "https://app.example.com:https", "1 to 65535"},
		{"a signed port", "https://app.example.com:+443", "1 to 65535"},
		{"a colon without a port", "https://app.example.com:", "without a port"},
		{"a wildcard alone", "https://*", "whole leading labels"},
		{"a wildcard inside a label", "https://*app.example.com", "whole leading labels"},
		{"a wildcard in the middle", "https://app.*.example.com", "whole leading labels"},
		{"two wildcards", "https://*.*.example.com", "whole leading labels"},
		{"a wildcard before an IPv4 address", "https://*.10.0.0.1", "IP address"},
		{"a wildcard before an IPv4 number", "https://*.0x1", "IP address"},
		{"a wildcard before an IPv6 address", "https://*.[::1]", "IPv6"},
		{"brackets around a name", "https://[app.example.com]", "IPv6"},
		{"an unclosed IPv6 address", "http://[::1", `closing "]"`},
		{"an IPv6 address with junk after it", "http://[::1]x", "only \":port\" may follow"},
		{"an IPv6 address with a zone", "http://[fe80::1%25eth0]", "not valid"},
		{"an IPv4 address in brackets", "http://[127.0.0.1]", "not valid"},
		{"an IPv4 address with five parts", "http://1.2.3.4.5", "not a valid IPv4 address"},
		{"an IPv4 part over 255", "http://256.0.0.1", "not a valid IPv4 address"},
		{"a host ending in a bad octal number", "http://app.09", "not a valid IPv4 address"},
		{"an IDN breaking the bidi rule", "https://\u0661a.example.com", "internationalised"},
		{"broken punycode", "https://xn--zz.example.com", "internationalised"},
	} {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			t.Parallel()
			p, msg := parseOriginPattern(tc.in)
			if msg == "" || !strings.Contains(msg, tc.says) {
				t.Errorf("parseOriginPattern(%q) = %+v, %q; want a message saying %q", tc.in, p, msg, tc.says)
			}
		})
	}
}

func TestOriginChecksInPolicies(t *testing.T) {
	t.Parallel()
	ldRun(t, []ldCase{
		{"an origin with a path is refused", ldOne(`allowed_origins: ["https://app.example.com/app"]`),
			[]ldWant{{`error policies[0] allowed_origins[0] "https://app.example.com/app"`, "no path"}}},
		{"an origin with a query is refused", ldOne(`allowed_origins: ["https://app.example.com?a=1"]`),
			[]ldWant{{`error policies[0] allowed_origins[0] "https://app.example.com?a=1"`, "no query"}}},
		{"an origin with a fragment is refused", ldOne(`allowed_origins: ["https://app.example.com#top"]`),
			[]ldWant{{`error policies[0] allowed_origins[0] "https://app.example.com#top"`, "no fragment"}}},
		{"an origin with userinfo is refused", ldOne(`allowed_origins: ["https://me@app.example.com"]`),
			[]ldWant{{`error policies[0] allowed_origins[0] "https://me@app.example.com"`, "user info"}}},
		{"an origin without a scheme is refused", ldOne(`allowed_origins: ["app.example.com"]`),
			[]ldWant{{`error policies[0] allowed_origins[0] "app.example.com"`, "scheme://host"}}},
		{"null with allow_credentials is refused", ldOne(`allowed_origins: ["null"], allow_credentials: true`),
			[]ldWant{{`warning policies[0] allowed_origins[0] "null"`, "any site"}, {`error policies[0] allowed_origins[0] "null"`, "cannot be trusted with allow_credentials"}}},
		{"null from defaults with a policy's credentials is refused and says so", "defaults: {allowed_origins: [\"null\"]}\npolicies: [{name: p, allow_credentials: true}]",
			[]ldWant{{`warning defaults.allowed_origins[0] "null"`, "any site"}, {`error policies[0] allowed_origins[0] "null"`, "null origin (inherited from defaults) cannot be trusted"}}},
		{"a wildcard over .com with credentials is refused", ldOne(`allowed_origins: ["https://*.com"], allow_credentials: true`),
			[]ldWant{{`error policies[0] allowed_origins[0] "https://*.com"`, `public suffix "com"`}}},
		{"a wildcard over github.io with credentials is refused", ldOne(`allowed_origins: ["https://*.github.io"], allow_credentials: true`),
			[]ldWant{{`error policies[0] allowed_origins[0] "https://*.github.io"`, `public suffix "github.io"`}}},
		{"a wildcard over co.uk with credentials from defaults is refused and says so", "defaults: {allow_credentials: true}\npolicies: [{name: p, allowed_origins: [\"https://*.co.uk:*\"]}]",
			[]ldWant{{`error policies[0] allowed_origins[0] "https://*.co.uk:*"`, "allow_credentials: true (inherited from defaults)"}}},
		{"null allowed warns", ldOne(`allowed_origins: ["null"]`),
			[]ldWant{{`warning policies[0] allowed_origins[0] "null"`, "sandboxed"}}},
		{"a wildcard origin with credentials warns", ldOne(`allowed_origins: ["https://*.example.com"], allow_credentials: true`),
			[]ldWant{{`warning policies[0] allowed_origins[0] "https://*.example.com"`, "every subdomain"}}},
		{"a wildcard origin with credentials from defaults warns and says so", "defaults: {allow_credentials: true}\npolicies: [{name: p, allowed_origins: [\"https://*.example.com:*\"]}]",
			[]ldWant{{`warning policies[0] allowed_origins[0] "https://*.example.com:*"`, "with allow_credentials: true (inherited from defaults)"}}},
		{"a wildcard over a public suffix without credentials warns", ldOne(`allowed_origins: ["https://*.com", "https://*.github.io", "https://*.example.com"]`),
			[]ldWant{{`warning policies[0] allowed_origins[0] "https://*.com"`, "public suffix"}, {`warning policies[0] allowed_origins[1] "https://*.github.io"`, "public suffix"}}},
		{"an http origin with credentials warns", ldOne(`allowed_origins: ["http://app.example.com", "http://app.example.com:*"], allow_credentials: true`),
			[]ldWant{{`warning policies[0] allowed_origins[0] "http://app.example.com"`, "http://"}, {`warning policies[0] allowed_origins[1] "http://app.example.com:*"`, "http://"}}},
		{"an http wildcard with credentials warns twice", ldOne(`allowed_origins: ["http://*.example.com"], allow_credentials: true`),
			[]ldWant{{`warning policies[0] allowed_origins[0] "http://*.example.com"`, "wildcard"}, {`warning policies[0] allowed_origins[0] "http://*.example.com"`, "http://"}}},
		{"http localhost origins with credentials do not warn", ldOne(`allowed_origins: ["http://localhost:*", "http://127.0.0.1:8080", "http://[::1]:3000", "http://app.localhost", "https://app.example.com"], allow_credentials: true`),
			nil},
		{"http origins without credentials do not warn", ldOne(`allowed_origins: ["http://app.example.com"]`), nil},
		{"any origin that is not https with credentials warns, naming its scheme", ldOne(`allowed_origins: ["connector://app", "chrome-extension://abcdefghijklmnop", "wss://app.example.com"], allow_credentials: true`),
			[]ldWant{{`warning policies[0] allowed_origins[0] "connector://app"`, "a connector:// origin with allow_credentials: true: it is not an https:// site"},
				{`warning policies[0] allowed_origins[1] "chrome-extension://abcdefghijklmnop"`, "a chrome-extension:// origin"},
				{`warning policies[0] allowed_origins[2] "wss://app.example.com"`, "a wss:// origin"}}},
		{"a non-https localhost origin with credentials does not warn", ldOne(`allowed_origins: ["connector://localhost", "myapp://127.0.0.1:*"], allow_credentials: true`), nil},
		{"non-https origins without credentials do not warn", ldOne(`allowed_origins: ["connector://app", "chrome-extension://abcdefghijklmnop"]`), nil},
		{"a non-normalised origin warns with its normalised form", ldOne(`allowed_origins: ["HTTPS://App.Example.COM:443"]`),
			[]ldWant{{`warning policies[0] allowed_origins[0] "HTTPS://App.Example.COM:443"`, `normalised to "https://app.example.com"`}}},
	})
}

// TestNormalisedOriginsAreWhatMatches: the matcher holds the normalised
// entry, compared byte for byte with the request origin, which is never
// normalised itself (docs/contract.md §2).
func TestNormalisedOriginsAreWhatMatches(t *testing.T) {
	t.Parallel()
	s := ldCheck(t, ldOne(`allowed_origins: ["HTTPS://App.Example.COM:443", "http://[0:0::1]:8080", "https://bücher.example", "https://*.Example.NET"]`), []ldWant{
		{`warning policies[0] allowed_origins[0] "HTTPS://App.Example.COM:443"`, `normalised to "https://app.example.com"`},
		{`warning policies[0] allowed_origins[1] "http://[0:0::1]:8080"`, `normalised to "http://[::1]:8080"`},
		{`warning policies[0] allowed_origins[2] "https://bücher.example"`, `normalised to "https://xn--bcher-kva.example"`},
		{`warning policies[0] allowed_origins[3] "https://*.Example.NET"`, `normalised to "https://*.example.net"`},
	})
	if s == nil {
		return
	}
	want := []string{"https://app.example.com", "http://[::1]:8080", "https://xn--bcher-kva.example", "https://*.example.net"}
	if got := s.Policies()[0].AllowedOrigins; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Policies() shows %q, want the normalised %q", got, want)
	}
	for origin, allowed := range map[string]bool{
		"https://app.example.com": true, "http://[::1]:8080": true, "https://xn--bcher-kva.example": true, "https://a.example.net": true,
		"HTTPS://App.Example.COM:443": false, "https://app.example.com:443": false, "https://app.example.com/": false,
		"http://[0:0::1]:8080": false, "https://bücher.example": false, "https://A.example.net": false,
	} {
		d := s.Decide(&Request{Method: "GET", Host: "api.example.com", Path: "/", Origin: origin})
		if (d.Outcome == Allowed) != allowed {
			t.Errorf("origin %q: %v, want allowed=%v", origin, d.Outcome, allowed)
		}
	}
}

func TestIsPublicSuffix(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"com": true, "co.uk": true, "github.io": true, "com.": true, "xn--90ae": true, // бг
		"example.com": false, "example.github.io": false, "localhost": false, "example.co.uk": false,
	} {
		if got := isPublicSuffix(host); got != want {
			t.Errorf("isPublicSuffix(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestIsLocalhost(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"localhost": true, "localhost.": true, "app.localhost": true, "127.0.0.1": true, "127.1.2.3": true, "[::1]": true,
		"localhost.example.com": false, "mylocalhost": false, "10.0.0.1": false, "[::2]": false, "128.0.0.1": false,
	} {
		if got := isLocalhost(host); got != want {
			t.Errorf("isLocalhost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestSplitHostPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, host, port, says string }{
		{"app.example.com", "app.example.com", "", ""},
		{"app.example.com:8080", "app.example.com", "8080", ""},
		{"localhost:*", "localhost", "*", ""},
		{"[::1]", "[::1]", "", ""},
		{"[::1]:8080", "[::1]", "8080", ""},
		{"[::1", "", "", `closing "]"`},
		{"[::1]:", "", "", ":port"},
		{"[::1]8080", "", "", ":port"},
		{"app.example.com:", "", "", "without a port"},
		{"*.[::1]", "", "", "IPv6"},
	} {
		host, port, msg := splitHostPort(tc.in)
		if host != tc.host || port != tc.port || !strings.Contains(msg, tc.says) || (msg == "") != (tc.says == "") {
			t.Errorf("splitHostPort(%q) = %q, %q, %q; want %q, %q, a message saying %q", tc.in, host, port, msg, tc.host, tc.port, tc.says)
		}
	}
}

// FuzzParseOriginPattern: any string either is refused with a message or
// normalises to visible ASCII that parses to itself (so what `validate`
// tells a user to write is accepted as written).
func FuzzParseOriginPattern(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "HTTPS://*.Example.com:443", "http://localhost:*", "http://[::ffff:1.2.3.4]:80",
		"http://0x7f.1", "https://bücher.example", "null", "https://app.example.com:8443", "http://127.0.0.1:80", "https://a_b.example.", "x-y+z.1://h", "https://a.com/", "https://u@a.com", "https://*.com", "http://[::1", "https://a.com.:08443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, msg := parseOriginPattern(s)
		if msg != "" {
			if p != (originPattern{}) {
				t.Fatalf("%q refused (%s) but gave a pattern %+v", s, msg, p)
			}
			return
		}
		if !visibleASCII(p.normalised) || strings.ToLower(p.normalised) != p.normalised {
			t.Fatalf("%q normalises to %q, not lower-case visible ASCII", s, p.normalised)
		}
		again, msg := parseOriginPattern(p.normalised)
		if msg != "" || again != p {
			t.Fatalf("%q normalises to %q, which parses to %+v, %q", s, p.normalised, again, msg)
		}
		if plain, ok := plainOrigin(s); ok {
			if full, msg := parseOriginEntry(s); msg != "" || full != plain {
				t.Fatalf("%q: the plain-origin shortcut gives %+v, the full parse %+v, %q", s, plain, full, msg)
			}
		}
	})
}

// TestOriginRegexesArePinned: an origin regex is held to the rules of
// wildcard origins, judged from its syntax tree by what follows its last
// wildcard. Messages quote the user's own pattern (in the key's value) and
// the text found after the wildcard, never a canned example.
func TestOriginRegexesArePinned(t *testing.T) {
	t.Parallel()
	creds := func(re string) string {
		return ldOne(`allowed_origin_regexes: ['` + re + `'], allow_credentials: true`)
	}
	plain := func(re string) string { return ldOne(`allowed_origin_regexes: ['` + re + `']`) }
	at := func(sev, re string) string {
		return sev + ` policies[0] allowed_origin_regexes[0] "` + strings.ReplaceAll(re, `\`, `\\`) + `"`
	}
	ldRun(t, []ldCase{
		{"any https origin with credentials is refused", creds(`https://.*`), []ldWant{{at("error", `https://.*`), "nothing follows its last wildcard in the host; with allow_credentials: true"}}},
		{"any origin at all with credentials is refused", creds(`.+`), []ldWant{{at("warning", `.+`), `matches "null"`}, {at("error", `.+`), "can match any site's origin"}}},
		{"a wildcard over a public suffix with credentials is refused", creds(`https://.*\.com`), []ldWant{{at("error", `https://.*\.com`), `".com", and "com" is a public suffix`}}},
		{"a wildcard over github.io with credentials is refused", creds(`https://[a-z0-9-]+\.github\.io`), []ldWant{{at("error", `https://[a-z0-9-]+\.github\.io`), `"github.io" is a public suffix`}}},
		{"a wildcard not followed by a label boundary with credentials is refused", creds(`https://.*example\.com`), []ldWant{{at("error", `https://.*example\.com`), `followed by "example.com", which does not start at a label`}}},
		{"digits before a public suffix with credentials are refused", creds(`https://app[0-9]+\.com`), []ldWant{{at("error", `https://app[0-9]+\.com`), `".com", and "com" is a public suffix`}}},
		{"one unpinned side of an alternation with credentials is refused", creds(`https://app\.example\.com|https://[a-z]+`), []ldWant{{at("error", `https://app\.example\.com|https://[a-z]+`), "nothing follows"}}},
		{"a django-style subdomain regex with credentials warns as a wildcard origin does", creds(`^https://.*\.example\.com$`), []ldWant{{at("warning", `^https://.*\.example\.com$`), "a wildcard origin with allow_credentials: true: every subdomain, and whoever takes one over, can read users' data"}}},
		{"a subdomain regex with an optional port and credentials warns as a wildcard origin does", creds(`https://[a-z0-9-]+\.example\.com(:[0-9]+)?`), []ldWant{{at("warning", `https://[a-z0-9-]+\.example\.com(:[0-9]+)?`), "every subdomain"}}},
		{"a regex of repeated labels under a domain with credentials warns as a wildcard", creds(`https://([a-z0-9]+\.)+example\.com`), []ldWant{{at("warning", `https://([a-z0-9]+\.)+example\.com`), "every subdomain"}}},
		{"a numbered preview host with credentials warns as a wildcard", creds(`https://pr-[0-9]+\.preview\.example\.dev`), []ldWant{{at("warning", `https://pr-[0-9]+\.preview\.example\.dev`), "every subdomain"}}},
		{"a regex of literal origins with credentials says nothing", creds(`https://(app|admin)\.example\.(com|net)`), nil},
		{"a regex with a wildcard only in the scheme and credentials says nothing", creds(`[a-z]+://app\.example\.com`), nil},
		{"a regex with any port on a literal host and credentials says nothing", creds(`https://app\.example\.com:[0-9]+`), nil},
		{"a case-insensitive regex is judged in lower case", creds(`(?i)https://[a-z]+\.EXAMPLE\.com`), []ldWant{{at("warning", `(?i)https://[a-z]+\.EXAMPLE\.com`), "every subdomain"}}},
		{"an unpinned regex from defaults with credentials is refused and says so", "defaults: {allowed_origin_regexes: ['https://.*']}\npolicies: [{name: p, allow_credentials: true}]",
			[]ldWant{{at("error", `https://.*`), "can match any site's origin (inherited from defaults)"}}},
		{"any https origin without credentials warns", plain(`https://.*`), []ldWant{{at("warning", `https://.*`), "can match any site's origin: nothing follows its last wildcard in the host; anyone can set up a site"}}},
		{"a wildcard over a public suffix without credentials warns", plain(`https://[a-z]+\.co\.uk`), []ldWant{{at("warning", `https://[a-z]+\.co\.uk`), `"co.uk" is a public suffix`}}},
		{"a pinned subdomain regex without credentials says nothing", plain(`https://.*\.example\.com`), nil},
	})
}
