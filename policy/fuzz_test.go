package policy

// Fuzz tests. Their invariants come from docs/contract.md §3's "Never" list: never
// allow an origin that no rule matches (checked against decRef, a matcher
// written here from the pattern grammar of docs/contract.md §2, independently of
// origin.go), never "*" with credentials, never a header value with bytes
// outside visible ASCII, space and tab, never a panic.
//
//	go test -run '^$' -fuzz '^FuzzDecide$' -fuzztime 60s -fuzzminimizetime 3s ./policy
//	go test -run '^$' -fuzz '^FuzzOriginMatch$' -fuzztime 60s -fuzzminimizetime 3s ./policy
//
// (-fuzzminimizetime: the default minimises each new input for up to 60 s,
// during which a short run does almost nothing else.) The seeds are the
// tables of the decision tests; under testdata/fuzz only inputs that once
// failed are checked in, and they run with every go test.

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// decRef is a policy's origin rules as the reference matcher sees them:
// the normalised allowed_origins entries and the regexes.
type decRef struct {
	all     bool
	origins []string
	regexes []*regexp.Regexp
}

func decNewRef(all bool, origins []string, regexes ...string) decRef {
	r := decRef{all: all, origins: origins}
	for _, re := range regexes {
		r.regexes = append(r.regexes, regexp.MustCompile(`^(?:`+re+`)$`))
	}
	return r
}

// allows reports whether the contract admits origin o: not over 2048 bytes;
// then allow-all admits anything (it answers "*" and reflects nothing);
// otherwise only visible ASCII, and an exact entry byte for byte, a port
// wildcard, a subdomain wildcard or a whole-origin regex; null only when
// written out.
func (r decRef) allows(o string) bool {
	if len(o) > MaxOriginLength {
		return false
	}
	if r.all {
		return true
	}
	if o == "" || o == "*" {
		return false
	}
	for i := 0; i < len(o); i++ {
		if o[i] <= ' ' || o[i] >= 0x7f {
			return false
		}
	}
	for _, p := range r.origins {
		if !strings.ContainsAny(p, "*") && p == o {
			return true // an exact entry, null among them
		}
	}
	if !decRefSerialized(o) {
		return false // no pattern sees what is not a serialized origin
	}
	for _, p := range r.origins {
		if decRefMatch(p, o) {
			return true
		}
	}
	for _, re := range r.regexes {
		if re.MatchString(o) {
			return true
		}
	}
	return false
}

// decRefShape is docs/contract.md §2's serialized-origin grammar as a regular
// expression, written here apart from internal/httpgrammar: a lower-case
// scheme, "://", a host of DNS labels (1-63 bytes of a-z0-9-_, an optional
// final dot) or an IPv6 address in brackets, and a port of 1-5 digits
// without a leading zero.
var decRefShape = regexp.MustCompile(`^[a-z][a-z0-9+.-]*://((?:[a-z0-9_-]{1,63}\.)*[a-z0-9_-]{1,63}\.?|\[[0-9a-f:.]+\])(?::([1-9][0-9]{0,4}))?$`)

// decRefSerialized reports whether o is a serialized origin: the shape
// above, a port up to 65535, a name of at most 253 bytes, and a host whose
// last label is a number only as a dotted-decimal IPv4 address, an IPv6
// host only as a valid address.
func decRefSerialized(o string) bool {
	m := decRefShape.FindStringSubmatch(o)
	if m == nil {
		return false
	}
	host, port := m[1], m[2]
	if port != "" {
		if n, _ := strconv.Atoi(port); n > 65535 {
			return false
		}
	}
	if strings.HasPrefix(host, "[") {
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		return err == nil && a.Is6() && a.Zone() == ""
	}
	name := strings.TrimSuffix(host, ".")
	if len(name) > 253 {
		return false
	}
	last := name[strings.LastIndex(name, ".")+1:]
	number := decDigits(last) || strings.HasPrefix(last, "0x") && strings.Trim(last[2:], "0123456789abcdef") == ""
	if !number {
		return true // a name ("cafe" included: hex digits need their "0x")
	}
	a, err := netip.ParseAddr(name)
	return err == nil && a.Is4() && a.String() == host
}

// decRefMatch matches o against one normalised allowed_origins entry:
// "null", "scheme://host[:port]", "scheme://host:*",
// "scheme://*.suffix[:port|:*]".
func decRefMatch(pattern, o string) bool {
	scheme, rest, ok := strings.Cut(pattern, "://")
	if !ok {
		return pattern == o // null
	}
	orest, ok := strings.CutPrefix(o, scheme+"://")
	if !ok {
		return false
	}
	// The pattern's port: "" (none), digits, or "*". A host is a name, or
	// an IPv6 address in brackets (which holds colons of its own).
	phost, pport := rest, ""
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.HasSuffix(rest, "]") {
		phost, pport = rest[:i], rest[i+1:]
	}
	ohost, oport, hasPort := orest, "", false
	if i := strings.LastIndex(orest, ":"); i >= 0 && !strings.HasSuffix(orest, "]") {
		ohost, oport, hasPort = orest[:i], orest[i+1:], true
	}
	switch {
	case pport == "*":
		if hasPort && !decDigits(oport) {
			return false
		}
	case hasPort != (pport != "") || oport != pport:
		return false
	}
	suffix, wild := strings.CutPrefix(phost, "*.")
	if !wild {
		return ohost == phost
	}
	labels, ok := strings.CutSuffix(ohost, "."+suffix)
	if !ok || labels == "" {
		return false
	}
	for _, l := range strings.Split(labels, ".") {
		if l == "" {
			return false
		}
		for _, c := range []byte(l) {
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func decDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func TestReferenceMatcherAgreesWithTheAttackTable(t *testing.T) {
	t.Parallel()
	ref := decFuzzPolicies(t)[0].ref
	for _, c := range decAttackOrigins() {
		if got := ref.allows(c.origin); got != c.allow {
			t.Errorf("reference matcher: %q allowed=%v, want %v", c.origin, got, c.allow)
		}
	}
}

// decFuzzPolicy is a policy file and its reference rules.
type decFuzzPolicy struct {
	set         *Set
	ref         decRef
	credentials bool
}

var decFuzzOnce struct {
	sync.Once
	policies []decFuzzPolicy
}

// decFuzzPolicies are the policies FuzzDecide picks from: every kind of
// origin rule, with and without credentials, in each mode.
func decFuzzPolicies(t testing.TB) []decFuzzPolicy {
	decFuzzOnce.Do(func() {
		regexes := []string{`https://[a-z0-9-]+\.preview\.example\.dev`, `https://one\.example\.net|https://two\.example\.net`}
		attack := []string{"https://example.com", "https://*.example.org", "https://*.ports.example.io:8443",
			"https://*.anyport.example.io:*", "http://localhost:*", "http://[::1]:*"}
		mk := func(yaml string, ref decRef, creds bool) decFuzzPolicy {
			s, err := Parse("fuzz.yaml", []byte(yaml))
			if err != nil {
				panic(err)
			}
			return decFuzzPolicy{s, ref, creds}
		}
		decFuzzOnce.policies = []decFuzzPolicy{
			mk(decAttackPolicy, decNewRef(false, attack, regexes...), false),
			mk(decPolicy(`allowed_origins: ["https://app.example.com", "https://*.example.com:*", "http://localhost:*"]`,
				`allowed_origin_regexes: ['https://[a-z]+\.preview\.example\.dev', '[a-z]+://.+\.example\.net']`,
				`allow_credentials: true`, `allow_methods: ["*"]`, `allow_headers: ["*"]`,
				`expose_headers: [x-total-count]`, `allow_private_network: true`),
				decNewRef(false, []string{"https://app.example.com", "https://*.example.com:*", "http://localhost:*"},
					`https://[a-z]+\.preview\.example\.dev`, `[a-z]+://.+\.example\.net`), true),
			mk(decPolicy(`allow_all_origins: true`, `allow_methods: ["*"]`, `allow_headers: ["*", authorization]`,
				`expose_headers: ["*"]`, `allow_private_network: true`, `preflight_status: 200`),
				decNewRef(true, nil), false),
			// A regex as broad as ".+" is refused with credentials, but
			// not without: it must still never see a non-origin.
			mk(decPolicy(`allowed_origins: ["null", "https://app.example.com", "https://*.example.com"]`,
				`allowed_origin_regexes: ['.+']`, `allow_headers: ["*"]`, `preflight_max_age: 0`),
				decNewRef(false, []string{"null", "https://app.example.com", "https://*.example.com"}, `.+`), false),
			mk(decPolicy(`mode: report`, `allowed_origins: ["https://app.example.com", "https://*.example.com"]`,
				`allow_credentials: true`), decNewRef(false, []string{"https://app.example.com", "https://*.example.com"}), true),
			mk(decPolicy(`upstream_cors_headers: keep`, `allowed_origins: ["https://*.example.com:8443"]`,
				`allow_credentials: true`, `allow_headers: ["*"]`, `allow_methods: [PATCH, patch]`),
				decNewRef(false, []string{"https://*.example.com:8443"}), true),
			mk("policies:\n  - name: off\n    mode: off\n    match: {hosts: [off.example.com]}\n"+
				"  - name: test\n    match: {hosts: ['*.example.com'], path_prefixes: [/v1/]}\n"+
				"    allowed_origins: [\"https://app.example.com\"]\n",
				decNewRef(false, []string{"https://app.example.com"}), false),
		}
	})
	return decFuzzOnce.policies
}

// decSplit turns one fuzzed string into header lines ("\n" separates them;
// other control bytes stay inside the values).
func decSplit(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func FuzzDecide(f *testing.F) {
	type seed struct {
		policy                   uint8
		method, origin, reqMeth  string
		hasReqMeth               bool
		reqHeaders               string
		pna, debug               bool
		origins                  uint8
		host, path, vary, upACAO string
	}
	seeds := []seed{
		{0, "OPTIONS", "https://example.com", "PUT", true, "content-type", false, false, 1, "api.example.com", "/v1/x", "", ""},
		{1, "OPTIONS", "https://a.example.com:8443", "*", true, "*,authorization", true, true, 1, "api.example.com", "/v1/x", "", ""},
		{1, "OPTIONS", "*", "PURGE", true, "x-a\r\nx-b", false, true, 1, "api.example.com", "/", "", ""},
		{2, "GET", "", "", false, "", false, false, 0, "api.example.com", "/", "accept-encoding", "*"},
		{3, "GET", "null", "", false, "", false, true, 1, "api.example.com", "/", "*", ""},
		{4, "OPTIONS", "https://app.example.com", "DELETE", true, "x-a", false, false, 1, "api.example.com", "/", "", "https://app.example.com"},
		{5, "GET", "https://a.example.com:8443", "", false, "", false, false, 1, "api.example.com", "/", "origin", "https://x"},
		{6, "OPTIONS", "https://app.example.com", "PUT", true, ",,,,", false, true, 2, "a.example.com:80", "/v1/?q", "", ""},
		{0, "OPTIONS", "https://example.com", "PUT\r\n", true, "accept\nx-h1, x-h2\n", false, true, 1, "API.EXAMPLE.COM", "/", "a\r\nb", ""},
	}
	for _, c := range decAttackOrigins() {
		seeds = append(seeds,
			seed{0, "GET", c.origin, "", false, "", false, false, 1, "api.example.com", "/", "", ""},
			seed{1, "OPTIONS", c.origin, "PATCH", true, "x-a", false, true, 1, "api.example.com", "/", "", ""})
	}
	for _, s := range seeds {
		f.Add(s.policy, s.method, s.origin, s.reqMeth, s.hasReqMeth, s.reqHeaders, s.pna, s.debug, s.origins, s.host, s.path, s.vary, s.upACAO)
	}
	f.Fuzz(func(t *testing.T, policy uint8, method, origin, reqMeth string, hasReqMeth bool, reqHeaders string,
		pna, debug bool, origins uint8, host, path, vary, upACAO string) {
		ps := decFuzzPolicies(t)
		p := ps[int(policy)%len(ps)]
		r := Request{
			Method: method, Host: host, Path: path, Origin: origin, Origins: int(origins % 4),
			RequestMethod: reqMeth, HasRequestMethod: hasReqMeth, RequestHeaders: decSplit(reqHeaders),
			PrivateNetwork: pna, Debug: debug,
		}
		d := p.set.Decide(&r)
		lines := r.Origins
		if lines == 0 && origin != "" {
			lines = 1
		}
		if d.Class == Actual || d.Class == Preflight {
			refOK := lines == 1 && p.ref.allows(origin)
			originOK := d.Reason != ReasonOriginNotAllowed && d.Reason != ReasonOriginInvalid &&
				d.Reason != ReasonOriginTooLong && d.Reason != ReasonMultipleOrigins
			if originOK != refOK {
				t.Errorf("origin %q (%d lines): %v %v (%s), but the reference matcher says allowed=%v",
					origin, lines, d.Outcome, d.Reason, d.Message(), refOK)
			}
		}
		up := Upstream{Vary: decSplit(vary), AllowOrigin: upACAO}
		if upACAO != "" {
			up.AllowOrigins = 1
			up.CORSHeaders = []string{hdrAllowOrigin}
		}
		var e Edit
		d.Respond(&up, &e)
		for _, hs := range [][]Header{d.Headers(), e.Set(&d)} {
			decInvariants(t, p.set, &r, hs)
			for _, h := range hs {
				if h.Name == hdrAllowOrigin && h.Value != "*" && !p.ref.allows(origin) {
					t.Errorf("reflected %q, which no rule matches", origin)
				}
				if p.credentials && (h.Name == hdrAllowOrigin || h.Name == hdrAllowMethods || h.Name == hdrAllowHeaders || h.Name == hdrExpose) && decHasStar(h.Value) {
					t.Errorf("%s: %q under a credentials policy", h.Name, h.Value)
				}
			}
		}
		if d.Outcome == Allowed && d.Class == Unmatched {
			t.Errorf("an unmatched request was allowed")
		}
		_ = d.Message()
		x := p.set.Explain(&r)
		for _, h := range x.Headers {
			if !decValidValue(h.Value) {
				t.Errorf("explain shows header %s with value %q", h.Name, h.Value)
			}
		}
	})
}

// FuzzOriginMatch compiles one allowed_origins entry and compares the
// compiled matcher with the reference on a request origin, both ways.
func FuzzOriginMatch(f *testing.F) {
	patterns := []string{"https://example.com", "https://*.example.org", "https://*.example.org:8443",
		"https://*.example.org:*", "http://localhost:*", "http://[::1]:*", "null", "https://EXAMPLE.com:443",
		"http://*.a_b.example.com", "https://[::1]:8080", "https://bücher.example", "https://*.example.com."}
	for _, c := range decAttackOrigins() {
		for _, p := range patterns {
			f.Add(p, c.origin)
		}
	}
	f.Fuzz(func(t *testing.T, pattern, origin string) {
		file := &File{Policies: []Policy{{Name: "p", Settings: Settings{AllowedOrigins: []string{pattern}}}}}
		resolved, compiled, problems := compile("fuzz.yaml", file, nil)
		for _, p := range problems {
			if p.Severity == SeverityError {
				return // not a valid entry: nothing to match
			}
		}
		norm := resolved[0].AllowedOrigins[0]
		if !isPrintableASCII(norm) {
			t.Fatalf("%q normalised to %q", pattern, norm)
		}
		ref := decNewRef(false, []string{norm})
		got := compiled[0].checkOrigin(origin, 1) == ReasonOriginAllowed
		if want := ref.allows(origin); got != want {
			t.Errorf("pattern %q (normalised %q), origin %q: allowed=%v, reference says %v", pattern, norm, origin, got, want)
		}
	})
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// TestVisibleASCIIEveryByte checks the word-at-a-time scan of visibleASCII
// against a byte loop: every byte value at every position of strings of
// every length up to two words and a bit, among neighbours at both edges
// of the allowed range (where borrows and carries could leak).
func TestVisibleASCIIEveryByte(t *testing.T) {
	t.Parallel()
	if visibleASCII("") {
		t.Error(`visibleASCII("") = true`)
	}
	for _, fill := range []byte{'!', '~', 'a'} {
		for n := 1; n <= 17; n++ {
			for pos := range n {
				for v := range 256 {
					b := []byte(strings.Repeat(string(fill), n))
					b[pos] = byte(v)
					want := isPrintableASCII(string(b))
					if got := visibleASCII(string(b)); got != want {
						t.Fatalf("visibleASCII(%q) = %v, want %v", b, got, want)
					}
				}
			}
		}
	}
}
