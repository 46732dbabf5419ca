package policy

// The attack list of notes/cors-rules.md, as decisions: each origin is sent
// both as an actual request and as a preflight, and must be allowed or
// denied as the contract says; a denied one must never be reflected.

import (
	"runtime"
	"strconv"
	"strings"
	"testing"
)

const decAttackPolicy = `
policies:
  - name: test
    allowed_origins:
      - https://example.com
      - https://*.example.org
      - https://*.ports.example.io:8443
      - https://*.anyport.example.io:*
      - http://localhost:*
      - "http://[::1]:*"
    allowed_origin_regexes:
      - 'https://[a-z0-9-]+\.preview\.example\.dev'
      - 'https://one\.example\.net|https://two\.example\.net'
`

// decOriginCase is one origin and whether the policy must allow it.
type decOriginCase struct {
	name   string
	origin string
	allow  bool
}

func decRunOrigins(t *testing.T, policy string, cases []decOriginCase) {
	t.Helper()
	s := decSet(t, policy)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for _, r := range []Request{decActual("GET", c.origin), decPreflight(c.origin, "PUT")} {
				d := s.Decide(&r)
				if got := d.Outcome == Allowed; got != c.allow {
					t.Errorf("%s from %q: %v (%s), want allowed=%v", r.Method, c.origin, d.Outcome, d.Message(), c.allow)
				}
				var e Edit
				d.Respond(&Upstream{}, &e)
				hs := d.Headers()
				if !d.Local {
					hs = e.Set(&d)
				}
				decInvariants(t, s, &r, hs)
				for _, h := range hs {
					if h.Name == hdrAllowOrigin && !c.allow && h.Value != "*" {
						t.Errorf("a denied origin was reflected: %s: %q", h.Name, h.Value)
					}
				}
			}
		})
	}
}

func TestAttackOrigins(t *testing.T) {
	t.Parallel()
	decRunOrigins(t, decAttackPolicy, decAttackOrigins())
}

// decAttackOrigins are the origins sent against decAttackPolicy, and
// whether it must allow each; the fuzz tests start from them too.
func decAttackOrigins() []decOriginCase {
	cases := []decOriginCase{
		{"an exact origin is allowed", "https://example.com", true},
		{"an exact origin followed by another domain is denied (prefix trick)", "https://example.com.evil.net", false},
		{"a domain that ends with the allowed one is denied (suffix trick)", "https://evilexample.com", false},
		{"an allowed origin with http instead of https is denied", "http://example.com", false},
		{"an allowed origin with its default port written out is denied", "https://example.com:443", false},
		{"an allowed origin with another port is denied", "https://example.com:8443", false},
		{"an allowed origin with a trailing slash is denied", "https://example.com/", false},
		{"an allowed origin with a path is denied", "https://example.com/x", false},
		{"an allowed origin in upper case is denied: request origins are never normalised", "https://EXAMPLE.com", false},
		{"an allowed origin with user info in front is denied", "https://example.com@evil.net", false},
		{"an allowed origin with a trailing dot is denied", "https://example.com.", false},
		{"an origin that is a prefix of the allowed one is denied", "https://example.co", false},
		{"an allowed origin with a leading space is denied", " https://example.com", false},
		{"an allowed origin with a trailing space is denied", "https://example.com ", false},
		{"an allowed origin followed by a comma and another origin is denied", "https://example.com,https://evil.net", false},
		{"another origin followed by a comma and the allowed one is denied", "https://evil.net, https://example.com", false},
		{"an allowed origin followed by CR LF is denied", "https://example.com\r\n", false},
		{"an allowed origin with an injected header is denied", "https://example.com\r\nset-cookie: a=b", false},
		{"an allowed origin followed by a NUL byte is denied", "https://example.com\x00", false},
		{"an allowed origin with a tab is denied", "https://example.com\t", false},
		{"an origin with DEL is denied", "https://example.com\x7f", false},
		{"an origin with UTF-8 is denied", "https://exämple.com", false},
		{"the null origin is denied when it is not listed", "null", false},
		{"an empty origin value is denied", "", false},
		{"a lone * is not an origin", "*", false},

		{"a wildcard matches one label", "https://a.example.org", true},
		{"a wildcard matches several labels", "https://a.b.c.example.org", true},
		{"a wildcard matches labels with digits, hyphens and underscores", "https://a-1_b.x9.example.org", true},
		{"a wildcard does not match the apex", "https://example.org", false},
		{"a wildcard does not match an empty label", "https://.example.org", false},
		{"a wildcard does not match two dots", "https://a..example.org", false},
		{"a wildcard does not match a name that only ends like the domain", "https://evilexample.org", false},
		{"a wildcard does not match the domain followed by another", "https://a.example.org.evil.net", false},
		{"a wildcard does not match another scheme", "http://a.example.org", false},
		{"a wildcard without a port does not match a port", "https://a.example.org:8443", false},
		{"a wildcard without a port does not match the default port written out", "https://a.example.org:443", false},
		{"a wildcard does not match an empty port", "https://a.example.org:", false},
		{"a wildcard does not match upper case", "https://A.example.org", false},
		{"a wildcard does not match a literal *", "https://*.example.org", false},
		{"a wildcard does not match user info", "https://evil.net@a.example.org", false},
		{"a wildcard does not match a path that ends like the domain", "https://evil.net/.example.org", false},
		{"a wildcard does not match a fragment that ends like the domain", "https://evil.net#.example.org", false},
		{"a wildcard does not match a query that ends like the domain", "https://evil.net?.example.org", false},
		{"a wildcard does not match a backslash trick", "https://evil.net\\.example.org", false},
		{"a wildcard does not match an IPv6 host", "https://[::1].example.org", false},
		{"a wildcard with a port matches that port", "https://a.ports.example.io:8443", true},
		{"a wildcard with a port does not match another port", "https://a.ports.example.io:8444", false},
		{"a wildcard with a port does not match a zero-padded port", "https://a.ports.example.io:08443", false},
		{"a wildcard with a port does not match no port", "https://a.ports.example.io", false},
		{"a wildcard with any port matches a port", "https://a.anyport.example.io:1234", true},
		{"a wildcard with any port matches no port", "https://a.anyport.example.io", true},
		{"a wildcard with any port does not match a port that is not digits", "https://a.anyport.example.io:12x", false},
		{"a wildcard with any port does not match an empty port", "https://a.anyport.example.io:", false},

		{"a port wildcard matches a port", "http://localhost:3000", true},
		{"a port wildcard matches no port", "http://localhost", true},
		{"a port wildcard does not match an empty port", "http://localhost:", false},
		{"a port wildcard does not match a port that is not digits", "http://localhost:80a", false},
		{"a port wildcard does not match a signed port", "http://localhost:+80", false},
		{"a port wildcard does not match two ports", "http://localhost:3000:4000", false},
		{"a port wildcard does not match a longer host", "http://localhost.evil.net:3000", false},
		{"a port wildcard does not match a subdomain", "http://evil.localhost:3000", false},
		{"a port wildcard does not match another scheme", "https://localhost:3000", false},
		{"a port wildcard does not match a path", "http://localhost:3000/", false},

		{"a regex matches the whole origin", "https://pr-7.preview.example.dev", true},
		{"a regex is anchored at the end", "https://pr-7.preview.example.dev.evil.net", false},
		{"a regex is anchored at the start", "https://evil.net/https://pr-7.preview.example.dev", false},
		{"a regex is anchored at the start even by one byte", "xhttps://pr-7.preview.example.dev", false},
		{"a regex's escaped dots are literal", "https://pr-7xpreviewxexample.dev", false},
		{"a regex does not match a trailing newline", "https://pr-7.preview.example.dev\n", false},
		{"each side of a regex alternation matches whole", "https://two.example.net", true},
		{"the first side of a regex alternation is anchored at the end", "https://one.example.net.evil.com", false},
		{"the second side of a regex alternation is anchored at the start", "https://evil.com/https://two.example.net", false},
	}
	// Chromium sends these host bytes verbatim; none may stand in a
	// wildcard label.
	for _, b := range []string{"`", "{", "}", ",", "!", "$", "&", "'", "+", "=", "~", "%2A", "%2a", "(", ")", ";", "*", "\"", "<", ">", "^", "|", "[", "]"} {
		cases = append(cases,
			decOriginCase{"a wildcard label with " + strconv.Quote(b) + " inside is denied", "https://a" + b + "b.example.org", false},
			decOriginCase{"a wildcard label that is only " + strconv.Quote(b) + " is denied", "https://" + b + ".example.org", false},
			decOriginCase{"a wildcard label with " + strconv.Quote(b) + " before an allowed label is denied", "https://x" + b + ".a.example.org", false},
		)
	}
	return cases
}

// TestAttackOriginGrammar: a request origin must be a serialized origin
// before any regex, port wildcard or subdomain wildcard may match it.
func TestAttackOriginGrammar(t *testing.T) {
	t.Parallel()
	t.Run("a django-style regex", func(t *testing.T) {
		t.Parallel()
		decRunOrigins(t, decPolicy(`allowed_origin_regexes: ['^https://.*\.example\.com$', 'https://[^.]+\.example\.net']`), []decOriginCase{
			{"a subdomain the regex names is allowed", "https://app.example.com", true},
			{"an origin with a path that ends like the domain is denied", "https://evil.net/x.example.com", false},
			{"an origin with a query that ends like the domain is denied", "https://evil.net?x.example.com", false},
			{"an origin with a fragment that ends like the domain is denied", "https://evil.net#x.example.com", false},
			{"an origin with user info that ends like the domain is denied", "https://evil.net@x.example.com", false},
			{"a port and a path inside a negated class are denied", "https://evil:8080/x.example.net", false},
			{"an upper-case host is denied even where the regex allows it", "https://APP.example.com", false},
			{"a host with an empty label is denied", "https://app..example.com", false},
		})
	})
	t.Run("a port wildcard", func(t *testing.T) {
		t.Parallel()
		decRunOrigins(t, decPolicy(`allowed_origins: ["http://localhost:*", "https://*.example.org:*"]`), []decOriginCase{
			{"port 3000 is allowed", "http://localhost:3000", true},
			{"port 65535 is allowed", "http://localhost:65535", true},
			{"port 1 is allowed", "http://localhost:1", true},
			{"port 0 is denied", "http://localhost:0", false},
			{"port 65536 is denied", "http://localhost:65536", false},
			{"port 99999 is denied", "http://localhost:99999", false},
			{"port 080 is denied: browsers drop leading zeros", "http://localhost:080", false},
			{"port 00080 is denied", "http://localhost:00080", false},
			{"a wildcard subdomain with port 0 is denied", "https://a.example.org:0", false},
			{"a wildcard subdomain with port 65536 is denied", "https://a.example.org:65536", false},
			{"a wildcard subdomain with port 0443 is denied", "https://a.example.org:0443", false},
			{"a wildcard subdomain with a 64-byte label is denied", "https://" + strings.Repeat("a", 64) + ".example.org", false},
		})
	})
}

func TestAttackNull(t *testing.T) {
	t.Parallel()
	t.Run("listed", func(t *testing.T) {
		t.Parallel()
		decRunOrigins(t, decPolicy(`allowed_origins: ["null", "https://example.com"]`), []decOriginCase{
			{"null is allowed when written out", "null", true},
			{"NULL is not null: origins compare byte for byte", "NULL", false},
			{"null with a trailing space is not null", "null ", false},
			{"a quoted null is not null", `"null"`, false},
		})
	})
	t.Run("allow-all", func(t *testing.T) {
		t.Parallel()
		decRunOrigins(t, decPolicy(`allow_all_origins: true`), []decOriginCase{
			{"allow_all_origins admits null", "null", true},
		})
	})
	t.Run("a wildcard or regex never admits null by accident", func(t *testing.T) {
		t.Parallel()
		decRunOrigins(t, decAttackPolicy, []decOriginCase{{"null is denied", "null", false}})
	})
	for _, creds := range []string{"false", "true"} {
		t.Run("a regex that matches null does not admit it, allow_credentials: "+creds, func(t *testing.T) {
			t.Parallel()
			decRunOrigins(t, decPolicy(`allowed_origin_regexes: ['https://[a-z]+\.example\.com|null']`, `allow_credentials: `+creds), []decOriginCase{
				{"null is denied", "null", false},
				{"an origin the regex names is allowed", "https://app.example.com", true},
			})
		})
	}
}

func TestAttackCredentialsNeverWithStar(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, policy string }{
		{"allow-all with credentials is refused when loading", decPolicy(`allow_all_origins: true`, `allow_credentials: true`)},
		{"null with credentials is refused when loading", decPolicy(`allowed_origins: ["null"]`, `allow_credentials: true`)},
		{"expose_headers * with credentials is refused when loading", decPolicy(`allowed_origins: ["https://example.com"]`, `expose_headers: ["*"]`, `allow_credentials: true`)},
		{"a regex as broad as .+ with credentials is refused when loading", decPolicy(`allowed_origin_regexes: ['.+']`, `allow_credentials: true`)},
		{"a regex of any https origin with credentials is refused when loading", decPolicy(`allowed_origin_regexes: ['https://.*']`, `allow_credentials: true`)},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if _, err := Parse("test.yaml", []byte(c.policy)); err == nil {
				t.Fatal("the policy loaded")
			}
		})
	}
	t.Run("an origin of * matched by a broad regex is never reflected beside credentials", func(t *testing.T) {
		t.Parallel()
		decRunOrigins(t, decPolicy(`allowed_origin_regexes: ['.+\.example\.com', '[*]']`, `allow_credentials: true`), []decOriginCase{
			{"* is no origin", "*", false},
			{"a real origin still matches", "https://app.example.com", true},
		})
	})
	t.Run("methods and headers * with credentials are answered by name, never *", func(t *testing.T) {
		t.Parallel()
		s := decSet(t, decPolicy(`allowed_origins: ["https://example.com"]`, `allow_credentials: true`,
			`allow_methods: ["*"]`, `allow_headers: ["*"]`, `expose_headers: [x-a]`))
		for _, c := range []struct {
			req   Request
			allow bool
		}{
			{decPreflight("https://example.com", "PURGE", "x-custom"), true},
			// "*" never covers authorization, credentials or not.
			{decPreflight("https://example.com", "PURGE", "x-custom, authorization"), false},
			{decPreflight("https://example.com", "GET"), true},
			{decActual("GET", "https://example.com"), true},
			// Echoed, a method or header named "*" would be "*" beside
			// credentials.
			{decPreflight("https://example.com", "*"), false},
			{decPreflight("https://example.com", "PUT", "x-a, *"), false},
		} {
			r := c.req
			d := s.Decide(&r)
			if got := d.Outcome == Allowed; got != c.allow {
				t.Errorf("%q %q: %v (%s), want allowed=%v", r.RequestMethod, r.RequestHeaders, d.Outcome, d.Message(), c.allow)
			}
			var e Edit
			d.Respond(&Upstream{}, &e)
			hs := d.Headers()
			if !d.Local {
				hs = e.Set(&d)
			}
			decInvariants(t, s, &r, hs)
		}
	})
}

// decManyHeaders returns n distinct header names.
func decManyHeaders(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "x-h" + strconv.Itoa(i)
	}
	return out
}

func TestAttackHugeInputs(t *testing.T) {
	t.Parallel()
	names := decManyHeaders(1000)
	listed := decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_headers: [`+strings.Join(names, ", ")+`]`, `preflight_max_age: 0`)
	star := decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_headers: ["*"]`, `allow_credentials: true`, `preflight_max_age: 0`)
	regex := decPolicy(`allowed_origin_regexes: ['https://.*', 'https://a+', '[a-z]+://a\.example']`)
	allowAll := decPolicy(`allow_all_origins: true`)
	long := "https://" + strings.Repeat("a", 10*1024)
	// A host is at most 253 bytes: a serialized origin this long needs a
	// long scheme.
	edge := strings.Repeat("a", MaxOriginLength-len("://a.example")) + "://a.example"
	flood := strings.Repeat(",", 1<<20)
	names1000 := strings.Join(names, ",")
	pre := func(extra ...string) []string {
		return append([]string{"access-control-allow-origin: " + decOrigin, "vary: " + decPreflightVary, "content-length: 0",
			"access-control-allow-methods: " + decDefaultMethods}, extra...)
	}
	decRun(t, []decCase{
		{
			name:   "a 10 KB origin is denied even when a regex would match it",
			policy: regex, req: decActual("GET", long),
			want: decActualWant(Denied, ReasonOriginTooLong, "vary: origin"),
		},
		{
			name:   "a 10 KB origin preflight is denied even when a regex would match it",
			policy: regex, req: decPreflight(long, "PUT"),
			want: decDenied(ReasonOriginTooLong, ""),
		},
		{
			name:   "a 10 KB origin is denied under allow-all too",
			policy: allowAll, req: decActual("GET", long),
			want: decActualWant(Denied, ReasonOriginTooLong, "vary: origin"),
		},
		{
			name:   "an origin of exactly the maximum length still reaches the regexes",
			policy: regex, req: decActual("GET", edge),
			want: decActualWant(Allowed, ReasonOriginAllowed, "access-control-allow-origin: "+edge, "vary: origin"),
		},
		{
			name:   "a preflight asking for 1,000 listed header names is allowed",
			policy: listed, req: decPreflight(decOrigin, "PUT", names1000),
			want: decAllowed(pre("access-control-allow-headers: " + strings.Join(names, ", "))),
		},
		{
			name:   "a preflight asking for 1,000 listed header names and one more is denied naming that one",
			policy: listed, req: decPreflight(decOrigin, "PUT", names1000+",x-extra"),
			want: decDenied(ReasonHeaderNotAllowed, "x-extra"),
		},
		{
			name:   "a preflight asking for 1,000 header names on 1,000 lines under * with credentials echoes them all",
			policy: star, req: decPreflight(decOrigin, "PUT", names...),
			want: decAllowed(pre("access-control-allow-credentials: true", "access-control-allow-headers: "+strings.Join(names, ", "))),
		},
		{
			name:   "16 empty elements in the request-headers list are tolerated",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "accept"+strings.Repeat(",", 16)),
			want: decAllowed(decAllowedPreflight()),
		},
		{
			name:   "16 empty elements over several lines are tolerated",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "accept,,,,,", "", ",content-type,,,,", ",,,,"), // 5+1+5+5 empty elements,
			want: decAllowed(decAllowedPreflight()),
		},
		{
			name:   "17 empty elements are a flood: the preflight is malformed (RFC 9110 §5.6.1.2)",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "accept"+strings.Repeat(",", 17)),
			want: decDenied(ReasonHeaderInvalid, ""),
		},
		{
			name:   "a flood of commas is refused before the unlisted header after it is read",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", flood+"x-api-key"+flood),
			want: decDenied(ReasonHeaderInvalid, ""),
		},
		{
			name:   "a flood of commas under * with credentials is refused, not echoed",
			policy: star, req: decPreflight(decOrigin, "PUT", flood, flood),
			want: decDenied(ReasonHeaderInvalid, ""),
		},
		{
			name:   "a flood of spaces around a name is read to its end",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", strings.Repeat(" ", 1<<20)+"content-type"+strings.Repeat("\t", 1<<20)),
			want: decAllowed(decAllowedPreflight()),
		},
		{
			name:   "a 1 MB header name is read to its end and refused",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "accept, x-"+strings.Repeat("a", 1<<20)),
			want: decDenied(ReasonHeaderNotAllowed, "x-"+strings.Repeat("a", 1<<20)),
		},
	})
	t.Run("a 10 KB origin's reason quotes only its start", func(t *testing.T) {
		t.Parallel()
		r := decActual("GET", long)
		d := decSet(t, regex).Decide(&r)
		if m := d.Message(); len(m) > 300 {
			t.Errorf("the message is %d bytes long", len(m))
		}
	})
}

// TestAttackLinearWork checks that the work on access-control-request-headers
// grows linearly with its size, by the bytes allocated rather than by time:
// doubling the input must not quadruple them. It does not run in parallel,
// so that other tests' allocations do not count.
func TestAttackLinearWork(t *testing.T) {
	star := decSet(t, decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_headers: ["*"]`, `allow_credentials: true`))
	listed := decSet(t, decBasic)
	inputs := map[string]func(n int) []string{
		"a flood of commas on one line": func(n int) []string { return []string{strings.Repeat(",", n)} },
		"a flood of commas and spaces":  func(n int) []string { return []string{strings.Repeat(" ,\t", n/3)} },
		"names on one line":             func(n int) []string { return []string{strings.Repeat("x-a,", n/4)} },
		"names on many lines":           func(n int) []string { return decManyHeaders(n / 6) },
		"one name per line, with commas": func(n int) []string {
			return strings.Split(strings.Repeat("accept,,", n/8), ",,")
		},
	}
	allocated := func(s *Set, lines []string) uint64 {
		r := decPreflight(decOrigin, "PUT", lines...)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range 4 {
			d := s.Decide(&r)
			_ = d.Headers()
		}
		runtime.ReadMemStats(&after)
		return (after.TotalAlloc - before.TotalAlloc) / 4
	}
	const n = 1 << 14
	for name, input := range inputs {
		for _, s := range []*Set{star, listed} {
			small, big := allocated(s, input(n)), allocated(s, input(4*n))
			// Linear work allocates at most about 4x for 4x the input (plus
			// a little slack); quadratic work would allocate 16x.
			if big > 6*small+64<<10 {
				t.Errorf("%s: %d bytes for %d bytes of input, %d bytes for %d: more than linear", name, small, n, big, 4*n)
			}
			if big > 8*4*n+64<<10 {
				t.Errorf("%s: %d bytes allocated for %d bytes of input", name, big, 4*n)
			}
		}
	}
}
