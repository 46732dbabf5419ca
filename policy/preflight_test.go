package policy

// Preflight decisions (docs/contract.md §3, first bullet): what an allowed preflight is
// answered with, header by header, and every way a preflight is denied.

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// decAllowedPreflight is the answer to an allowed preflight under decBasic,
// before the case's own changes.
func decAllowedPreflight(extra ...string) []string {
	return append([]string{
		"access-control-allow-origin: " + decOrigin,
		"access-control-allow-methods: " + decDefaultMethods,
		"access-control-allow-headers: " + decDefaultHeaders,
		"access-control-max-age: 86400",
		"vary: " + decPreflightVary,
		"content-length: 0",
	}, extra...)
}

// decDeniedPreflight is the answer to every denied preflight: 403, no
// access-control-* header, the same vary.
func decDeniedPreflight(vary string) []string {
	return []string{"vary: " + vary, "content-length: 0"}
}

func decAllowed(headers []string) decWant {
	return decWant{class: Preflight, outcome: Allowed, reason: ReasonOriginAllowed, local: true, status: 204, skip: true, headers: headers}
}

func decDenied(reason Reason, detail string) decWant {
	return decWant{class: Preflight, outcome: Denied, reason: reason, detail: detail, local: true, status: 403, skip: true,
		headers: decDeniedPreflight(decPreflightVary)}
}

func TestPreflightAllowed(t *testing.T) {
	t.Parallel()
	pna := func(r Request) Request { r.PrivateNetwork = true; return r }
	decRun(t, []decCase{
		{
			name:   "an allowed preflight is answered locally with exactly the headers the contract lists",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "content-type"),
			want: decAllowed(decAllowedPreflight()),
		},
		{
			name:   "an allowed preflight is never forwarded, so the service's own headers play no part",
			policy: decBasic, req: decPreflight(decOrigin, "DELETE"),
			up:   Upstream{AllowOrigin: "*", AllowOrigins: 1, CORSHeaders: []string{hdrAllowOrigin}},
			want: decAllowed(decAllowedPreflight()),
		},
		{
			name:   "an allowed preflight gets preflight_status 200 when the policy says so",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `preflight_status: 200`),
			req:    decPreflight(decOrigin, "PUT"),
			want:   func() decWant { w := decAllowed(decAllowedPreflight()); w.status = 200; return w }(),
		},
		{
			name:   "an allowed preflight with credentials says allow-credentials: true",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_credentials: true`),
			req:    decPreflight(decOrigin, "PATCH", "x-csrftoken"),
			want:   decAllowed(decAllowedPreflight("access-control-allow-credentials: true")),
		},
		{
			name:   "an allowed preflight omits max-age when preflight_max_age is 0",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `preflight_max_age: 0`),
			req:    decPreflight(decOrigin, "PUT"),
			want:   decAllowed(decAllowedPreflight()[:3:3]).with("vary: "+decPreflightVary, "content-length: 0"),
		},
		{
			name:   "an allowed preflight sends max-age 0 when preflight_max_age is -1, so browsers do not cache it",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `preflight_max_age: -1`),
			req:    decPreflight(decOrigin, "PUT"),
			want:   decAllowed(decAllowedPreflight()[:3:3]).with("access-control-max-age: 0", "vary: "+decPreflightVary, "content-length: 0"),
		},
		{
			name:   "an allowed preflight sends the configured max-age",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `preflight_max_age: 600`),
			req:    decPreflight(decOrigin, "PUT"),
			want:   decAllowed(decAllowedPreflight()[:3:3]).with("access-control-max-age: 600", "vary: "+decPreflightVary, "content-length: 0"),
		},
		{
			name: "an allowed preflight lists the methods and headers as configured",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_methods: [PUT, PATCH]`,
				`allow_headers: [X-Api-Key, content-type]`, `preflight_max_age: 0`),
			req: decPreflight(decOrigin, "PATCH", "x-api-key"),
			want: decAllowed([]string{
				"access-control-allow-origin: " + decOrigin, "access-control-allow-methods: PUT, PATCH",
				"access-control-allow-headers: x-api-key, content-type", "vary: " + decPreflightVary, "content-length: 0",
			}),
		},
		{
			name:   "an allow-all preflight without credentials answers allow-origin: *",
			policy: decPolicy(`allow_all_origins: true`, `preflight_max_age: 0`),
			req:    decPreflight(decEvil, "PUT"),
			want: func() decWant {
				w := decAllowed([]string{"access-control-allow-origin: *", "access-control-allow-methods: " + decDefaultMethods,
					"access-control-allow-headers: " + decDefaultHeaders, "vary: " + decPreflightVary, "content-length: 0"})
				w.reason = ReasonAllOriginsAllowed
				return w
			}(),
		},
		{
			name:   "a private network preflight is answered allow-private-network: true when the policy allows it",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_private_network: true`),
			req:    pna(decPreflight(decOrigin, "PUT")),
			want:   decAllowed(decAllowedPreflight()[:4:4]).with("access-control-allow-private-network: true", "vary: "+decPreflightVaryPNA, "content-length: 0"),
		},
		{
			name:   "a preflight that does not ask for private network gets no allow-private-network but the longer vary",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_private_network: true`),
			req:    decPreflight(decOrigin, "PUT"),
			want:   decAllowed(decAllowedPreflight()[:4:4]).with("vary: "+decPreflightVaryPNA, "content-length: 0"),
		},
		{
			name:   "a private network request is ignored when the policy does not allow it: judged on the rest, no allow-private-network",
			policy: decBasic, req: pna(decPreflight(decOrigin, "PUT")),
			want: decAllowed(decAllowedPreflight()),
		},
		{
			name:   "a denied private network preflight gets no allow-private-network",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_private_network: true`),
			req:    pna(decPreflight(decEvil, "PUT")),
			want: func() decWant {
				w := decDenied(ReasonOriginNotAllowed, decEvil)
				w.headers = decDeniedPreflight(decPreflightVaryPNA)
				return w
			}(),
		},
		{
			name:   "GET, HEAD and POST are allowed even when allow_methods does not list them",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_methods: [PUT]`, `preflight_max_age: 0`),
			req:    decPreflight(decOrigin, "POST", "content-type"),
			want: decAllowed([]string{"access-control-allow-origin: " + decOrigin, "access-control-allow-methods: PUT",
				"access-control-allow-headers: " + decDefaultHeaders, "vary: " + decPreflightVary, "content-length: 0"}),
		},
		{
			name:   "HEAD is allowed even when allow_methods does not list it",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_methods: [PUT]`, `preflight_max_age: 0`),
			req:    decPreflight(decOrigin, "HEAD"),
			want: decAllowed([]string{"access-control-allow-origin: " + decOrigin, "access-control-allow-methods: PUT",
				"access-control-allow-headers: " + decDefaultHeaders, "vary: " + decPreflightVary, "content-length: 0"}),
		},
		{
			name:   "a method written in lower case in allow_methods matches only in lower case",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_methods: [patch]`, `preflight_max_age: 0`),
			req:    decPreflight(decOrigin, "patch"),
			want: decAllowed([]string{"access-control-allow-origin: " + decOrigin, "access-control-allow-methods: patch",
				"access-control-allow-headers: " + decDefaultHeaders, "vary: " + decPreflightVary, "content-length: 0"}),
		},
	})
}

// with appends header lines to a copy of w's.
func (w decWant) with(lines ...string) decWant {
	w.headers = append(append([]string(nil), w.headers...), lines...)
	return w
}

// decManyHeadersLines returns n distinct header names, ten to a line.
func decManyHeadersLines(n int) []string {
	names := decManyHeaders(n)
	var out []string
	for i := 0; i < n; i += 10 {
		out = append(out, strings.Join(names[i:min(i+10, n)], ","))
	}
	return out
}

func TestPreflightWildcards(t *testing.T) {
	t.Parallel()
	anyMethod := decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_methods: ["*"]`, `preflight_max_age: 0`)
	anyMethodCreds := decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_methods: ["*"]`, `preflight_max_age: 0`, `allow_credentials: true`)
	anyHeader := decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_headers: ["*"]`, `preflight_max_age: 0`)
	anyHeaderAuth := decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_headers: ["*", authorization]`, `preflight_max_age: 0`)
	anyHeaderCreds := decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_headers: ["*"]`, `preflight_max_age: 0`, `allow_credentials: true`)
	anyHeaderAuthCreds := decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_headers: ["*", authorization]`, `preflight_max_age: 0`, `allow_credentials: true`)
	base := func(methods, headers string, extra ...string) []string {
		out := []string{"access-control-allow-origin: " + decOrigin, "vary: " + decPreflightVary, "content-length: 0"}
		if methods != "" {
			out = append(out, "access-control-allow-methods: "+methods)
		}
		if headers != "" {
			out = append(out, "access-control-allow-headers: "+headers)
		}
		return append(out, extra...)
	}
	cred := "access-control-allow-credentials: true"
	decRun(t, []decCase{
		{
			name:   `allow_methods "*" without credentials answers "*" and allows any method token`,
			policy: anyMethod, req: decPreflight(decOrigin, "PURGE"),
			want: decAllowed(base("*", decDefaultHeaders)),
		},
		{
			name:   `allow_methods "*" allows a lower-case method too`,
			policy: anyMethod, req: decPreflight(decOrigin, "patch"),
			want: decAllowed(base("*", decDefaultHeaders)),
		},
		{
			name:   `allow_methods "*" with credentials echoes the requested method instead of "*"`,
			policy: anyMethodCreds, req: decPreflight(decOrigin, "PURGE"),
			want: decAllowed(base("PURGE", decDefaultHeaders, cred)),
		},
		{
			name:   `allow_methods "*" never allows CONNECT`,
			policy: anyMethod, req: decPreflight(decOrigin, "CONNECT"),
			want: decDenied(ReasonMethodNotAllowed, "CONNECT"),
		},
		{
			name:   `allow_methods "*" never allows TRACE`,
			policy: anyMethod, req: decPreflight(decOrigin, "TRACE"),
			want: decDenied(ReasonMethodNotAllowed, "TRACE"),
		},
		{
			name:   `allow_methods "*" never allows TRACK, in any case`,
			policy: anyMethod, req: decPreflight(decOrigin, "track"),
			want: decDenied(ReasonMethodNotAllowed, "track"),
		},
		{
			name:   `allow_methods "*" with credentials never echoes TRACE`,
			policy: anyMethodCreds, req: decPreflight(decOrigin, "TRACE"),
			want: decDenied(ReasonMethodNotAllowed, "TRACE"),
		},
		{
			name:   `allow_methods "*" still allows a method that only starts like a forbidden one`,
			policy: anyMethod, req: decPreflight(decOrigin, "TRACES"),
			want: decAllowed(base("*", decDefaultHeaders)),
		},
		{
			name:   `allow_methods "*" still refuses a method that is not a token`,
			policy: anyMethodCreds, req: decPreflight(decOrigin, "PURGE\r\nset-cookie: a=b"),
			want: decDenied(ReasonMethodInvalid, "PURGE\r\nset-cookie: a=b"),
		},
		{
			name:   `allow_headers "*" without credentials answers "*" for any header`,
			policy: anyHeader, req: decPreflight(decOrigin, "PUT", "x-api-key,x-trace-id"),
			want: decAllowed(base(decDefaultMethods, "*")),
		},
		{
			name:   `allow_headers "*" without credentials never covers authorization`,
			policy: anyHeader, req: decPreflight(decOrigin, "PUT", "authorization"),
			want: decDenied(ReasonHeaderNotAllowed, "authorization"),
		},
		{
			name:   `allow_headers "*" without credentials never covers Authorization in any case`,
			policy: anyHeader, req: decPreflight(decOrigin, "PUT", "content-type, Authorization"),
			want: decDenied(ReasonHeaderNotAllowed, "Authorization"),
		},
		{
			name:   `allow_headers "*" with authorization named allows it and answers "*, authorization"`,
			policy: anyHeaderAuth, req: decPreflight(decOrigin, "PUT", "authorization,x-api-key"),
			want: decAllowed(base(decDefaultMethods, "*, authorization")),
		},
		{
			name:   `allow_headers "*" with credentials never covers authorization`,
			policy: anyHeaderCreds, req: decPreflight(decOrigin, "PUT", "authorization,x-api-key"),
			want: decDenied(ReasonHeaderNotAllowed, "authorization"),
		},
		{
			name:   `allow_headers "*" with credentials never covers Authorization in any case`,
			policy: anyHeaderCreds, req: decPreflight(decOrigin, "PUT", "x-api-key", "AUTHORIZATION"),
			want: decDenied(ReasonHeaderNotAllowed, "AUTHORIZATION"),
		},
		{
			name:   `allow_headers "*" and authorization named with credentials echoes authorization`,
			policy: anyHeaderAuthCreds, req: decPreflight(decOrigin, "PUT", "authorization,x-api-key"),
			want: decAllowed(base(decDefaultMethods, "authorization,x-api-key", cred)),
		},
		{
			name:   `allow_headers "*" with credentials echoes each name once, whatever its case`,
			policy: anyHeaderCreds, req: decPreflight(decOrigin, "PUT", "x-a, X-A, x-b", "x-b,x-a", "X-B"),
			want: decAllowed(base(decDefaultMethods, "x-a, x-b", cred)),
		},
		{
			name:   `allow_headers "*" with credentials echoes one name sent 13,106 times once`,
			policy: anyHeaderCreds, req: decPreflight(decOrigin, "PUT", strings.Repeat("x-a,", 13105)+"x-a"),
			want: decAllowed(base(decDefaultMethods, "x-a", cred)),
		},
		{
			name:   `allow_headers "*" with credentials echoes names up to the bound`,
			policy: anyHeaderCreds, req: decPreflight(decOrigin, "PUT", strings.Repeat("x", MaxEchoBytes)),
			want: decAllowed(base(decDefaultMethods, strings.Repeat("x", MaxEchoBytes), cred)),
		},
		{
			name:   `allow_headers "*" with credentials denies names that come to more than the bound`,
			policy: anyHeaderCreds, req: decPreflight(decOrigin, "PUT", strings.Repeat("x", MaxEchoBytes+1)),
			want: decDenied(ReasonRequestTooLarge, "access-control-request-headers"),
		},
		{
			name:   `allow_headers "*" with credentials denies distinct names beyond the bound, on several lines`,
			policy: anyHeaderCreds, req: decPreflight(decOrigin, "PUT", decManyHeadersLines(1500)...),
			want: decDenied(ReasonRequestTooLarge, "access-control-request-headers"),
		},
		{
			name:   `allow_headers "*" with credentials echoes several request-headers lines joined`,
			policy: anyHeaderCreds, req: decPreflight(decOrigin, "PUT", "x-a", "", " x-b "),
			want: decAllowed(base(decDefaultMethods, "x-a, x-b", cred)),
		},
		{
			name:   `allow_headers "*" with credentials sends no allow-headers when none are requested`,
			policy: anyHeaderCreds, req: decPreflight(decOrigin, "PUT"),
			want: decAllowed(base(decDefaultMethods, "", cred)),
		},
		{
			name:   `allow_headers "*" with credentials refuses a header name that is not a token rather than echo it`,
			policy: anyHeaderCreds, req: decPreflight(decOrigin, "PUT", "x-a\r\nset-cookie: a=b"),
			want: decDenied(ReasonHeaderInvalid, "x-a\r\nset-cookie: a=b"),
		},
	})
}

func TestPreflightDenied(t *testing.T) {
	t.Parallel()
	twoOrigins := decPreflight(decOrigin, "PUT")
	twoOrigins.Origins = 2
	decRun(t, []decCase{
		{
			name:   "a preflight from an origin the policy does not list is a bare 403",
			policy: decBasic, req: decPreflight(decEvil, "PUT"),
			want: decDenied(ReasonOriginNotAllowed, decEvil),
		},
		{
			name:   "a preflight for a method the policy does not list is a bare 403",
			policy: decBasic, req: decPreflight(decOrigin, "PURGE"),
			want: decDenied(ReasonMethodNotAllowed, "PURGE"),
		},
		{
			name:   "a preflight for patch is refused when only PATCH is allowed: methods compare case-sensitively",
			policy: decBasic, req: decPreflight(decOrigin, "patch"),
			want: decDenied(ReasonMethodNotAllowed, "patch"),
		},
		{
			name:   "a preflight for get is refused: only GET, HEAD and POST in upper case are always allowed",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_methods: [PUT]`),
			req:    decPreflight(decOrigin, "get"),
			want:   decDenied(ReasonMethodNotAllowed, "get"),
		},
		{
			name:   "a preflight for a header the policy does not list is a bare 403 naming the header",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "content-type,x-api-key"),
			want: decDenied(ReasonHeaderNotAllowed, "x-api-key"),
		},
		{
			name:   "a preflight whose second request-headers line has an unlisted header is refused",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "content-type", "x-api-key"),
			want: decDenied(ReasonHeaderNotAllowed, "x-api-key"),
		},
		{
			name:   "a preflight with an empty access-control-request-method is malformed",
			policy: decBasic, req: decPreflight(decOrigin, ""),
			want: decDenied(ReasonMethodInvalid, ""),
		},
		{
			name:   "a preflight with a method that has a space is malformed",
			policy: decBasic, req: decPreflight(decOrigin, "PU T"),
			want: decDenied(ReasonMethodInvalid, "PU T"),
		},
		{
			name:   "a preflight with a method with trailing CR LF is malformed",
			policy: decBasic, req: decPreflight(decOrigin, "PUT\r\n"),
			want: decDenied(ReasonMethodInvalid, "PUT\r\n"),
		},
		{
			name:   "a preflight with a method of separators is malformed",
			policy: decBasic, req: decPreflight(decOrigin, "(PUT)"),
			want: decDenied(ReasonMethodInvalid, "(PUT)"),
		},
		{
			name:   "a preflight requesting a header name with a space is malformed",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "content type"),
			want: decDenied(ReasonHeaderInvalid, "content type"),
		},
		{
			name:   "a preflight requesting a header name with a semicolon is malformed",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "accept;q=1"),
			want: decDenied(ReasonHeaderInvalid, "accept;q=1"),
		},
		{
			name:   "a preflight requesting a header name with UTF-8 is malformed",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "x-é"),
			want: decDenied(ReasonHeaderInvalid, "x-é"),
		},
		{
			name:   "a preflight with two origin lines is malformed, even when each is allowed",
			policy: decBasic, req: twoOrigins,
			want: decDenied(ReasonMultipleOrigins, ""),
		},
		{
			name:   "a preflight with an empty origin line is denied",
			policy: decBasic, req: func() Request { r := decPreflight("", "PUT"); r.Origins = 1; return r }(),
			want: decDenied(ReasonOriginInvalid, ""),
		},
	})
}

func TestPreflightRequestHeadersList(t *testing.T) {
	t.Parallel()
	decRun(t, []decCase{
		{
			name:   "requested header names compare case-insensitively",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "Content-Type,X-CSRFToken,X-Requested-With"),
			want: decAllowed(decAllowedPreflight()),
		},
		{
			name:   "requested headers in any order are allowed",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", "x-requested-with,accept,content-type"),
			want: decAllowed(decAllowedPreflight()),
		},
		{
			name:   "empty elements and odd whitespace in the request-headers list are tolerated",
			policy: decBasic, req: decPreflight(decOrigin, "PUT", " accept ,, \tcontent-type\t,", ",", ""),
			want: decAllowed(decAllowedPreflight()),
		},
		{
			name:   "a header listed in allow_headers with capitals is allowed in lower case",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_headers: [X-Api-Key]`, `preflight_max_age: 0`),
			req:    decPreflight(decOrigin, "PUT", "x-api-key"),
			want: decAllowed([]string{"access-control-allow-origin: " + decOrigin, "access-control-allow-methods: " + decDefaultMethods,
				"access-control-allow-headers: x-api-key", "vary: " + decPreflightVary, "content-length: 0"}),
		},
		{
			name:   "a header name longer than 64 bytes with capitals compares case-insensitively too",
			policy: decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_headers: [x-`+decLong+`]`, `preflight_max_age: 0`),
			req:    decPreflight(decOrigin, "PUT", "X-"+decLongUpper),
			want: decAllowed([]string{"access-control-allow-origin: " + decOrigin, "access-control-allow-methods: " + decDefaultMethods,
				"access-control-allow-headers: x-" + decLong, "vary: " + decPreflightVary, "content-length: 0"}),
		},
	})
}

func TestPreflightRequestHeadersOrder(t *testing.T) {
	t.Parallel()
	listed := []string{"x-a", "x-ab", "x-b", "x-h1", "x-h10", "x-h2", "y"}
	s := decSet(t, decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_headers: [`+strings.Join(listed, ", ")+`]`))
	c := s.policies[0]
	cases := []struct {
		name    string
		request string
		bad     string // "" when allowed
	}{
		{"names in the listed order are allowed", "x-a,x-ab,x-b,x-h1,x-h10,x-h2,y", ""},
		{"names in reverse order are allowed", "y,x-h2,x-h10,x-h1,x-b,x-ab,x-a", ""},
		{"a sparse subset is allowed", "x-a,x-h2", ""},
		{"a sparse subset far apart is allowed", "x-a,y", ""},
		{"a repeated name is allowed", "x-b,x-b,x-b", ""},
		{"a name that is a prefix of a listed one is refused", "x-h", "x-h"},
		{"a listed name's prefix before it is refused", "x-a,x-h,x-h1", "x-h"},
		{"a name that extends a listed one is refused", "x-h100", "x-h100"},
		{"a name that extends the last listed one is refused", "yy", "yy"},
		{"a name between two listed ones is refused", "x-a,x-aa,x-ab", "x-aa"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reason, bad, ok := c.checkHeaders([]string{tc.request})
			if bad != tc.bad || (bad == "") != ok {
				t.Errorf("%q: %v %q, want refused name %q", tc.request, reason, bad, tc.bad)
			}
		})
	}
	t.Run("every order of every subset agrees with plain membership", func(t *testing.T) {
		t.Parallel()
		pool := append(slices.Clone(listed), "x-h", "x-aa", "z", "x-h100", "a")
		rng := rand.New(rand.NewPCG(1, 2))
		for range 20000 {
			names := make([]string, rng.IntN(6))
			want := ""
			for i := range names {
				names[i] = pool[rng.IntN(len(pool))]
				if want == "" && !slices.Contains(listed, names[i]) {
					want = names[i]
				}
			}
			if _, bad, _ := c.checkHeaders([]string{strings.Join(names, ", ")}); bad != want {
				t.Fatalf("%q: refused %q, want %q", names, bad, want)
			}
		}
	})
}

const (
	decLong      = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
	decLongUpper = "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
