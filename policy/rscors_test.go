package policy

// Differential test against github.com/rs/cors v1.11.1, the library many
// services behind corsproc used before. The same policy is written once for
// each; every request of a corpus goes through both, and what a browser
// acts on is compared: whether the request is allowed (an
// access-control-allow-origin is sent) and that header's exact value.
//
// Where they disagree, the disagreement must be one of decRSDifferences:
// deliberate, each with the reason and the side docs/contract.md §3 takes, and each
// seen at least once in the corpus so that this list stays true. Not in the
// corpus, because corsproc refuses the configuration: rs/cors with
// AllowedOrigins ["*"] and AllowCredentials sends "*" beside
// allow-credentials: true, which browsers reject (docs/contract.md §2 makes it an
// error).

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/rs/cors"
)

// decRSConfig is one policy, written for corsproc and for rs/cors.
type decRSConfig struct {
	name      string
	yaml      string
	opts      cors.Options
	methods   []string
	allowAll  bool
	wildcard  bool // has https://*.example.com
	anyHeader bool
}

func decRSConfigs() []decRSConfig {
	methods := []string{"GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}
	headers := []string{"accept", "content-type", "authorization", "x-requested-with"}
	return []decRSConfig{
		{
			name: "exact origins",
			yaml: decPolicy(`allowed_origins: ["https://app.example.com", "https://admin.example.com"]`,
				`allow_methods: [GET, POST, PUT, DELETE, PATCH, OPTIONS]`,
				`allow_headers: [accept, content-type, authorization, x-requested-with]`, `preflight_max_age: 600`),
			opts: cors.Options{AllowedOrigins: []string{"https://app.example.com", "https://admin.example.com"},
				AllowedMethods: methods, AllowedHeaders: headers, MaxAge: 600},
			methods: methods,
		},
		{
			name: "exact origins with credentials",
			yaml: decPolicy(`allowed_origins: ["https://app.example.com", "https://admin.example.com"]`,
				`allow_methods: [GET, POST, PUT, DELETE, PATCH, OPTIONS]`,
				`allow_headers: [accept, content-type, authorization, x-requested-with]`,
				`allow_credentials: true`, `expose_headers: [x-total-count]`),
			opts: cors.Options{AllowedOrigins: []string{"https://app.example.com", "https://admin.example.com"},
				AllowedMethods: methods, AllowedHeaders: headers, AllowCredentials: true, ExposedHeaders: []string{"x-total-count"}},
			methods: methods,
		},
		{
			name: "wildcard subdomains",
			yaml: decPolicy(`allowed_origins: ["https://*.example.com"]`, `allow_methods: [GET, PUT]`, `allow_headers: [content-type]`),
			opts: cors.Options{AllowedOrigins: []string{"https://*.example.com"},
				AllowedMethods: []string{"GET", "PUT"}, AllowedHeaders: []string{"content-type"}},
			methods:  []string{"GET", "PUT"},
			wildcard: true,
		},
		{
			name: "allow all origins",
			yaml: decPolicy(`allow_all_origins: true`, `allow_methods: [GET, POST, PUT, OPTIONS]`, `allow_headers: [content-type]`),
			opts: cors.Options{AllowedOrigins: []string{"*"},
				AllowedMethods: []string{"GET", "POST", "PUT", "OPTIONS"}, AllowedHeaders: []string{"content-type"}},
			methods:  []string{"GET", "POST", "PUT", "OPTIONS"},
			allowAll: true,
		},
		{
			name: "any header",
			yaml: decPolicy(`allowed_origins: ["https://app.example.com", "null"]`, `allow_methods: [GET, POST, PUT, OPTIONS]`, `allow_headers: ["*"]`),
			opts: cors.Options{AllowedOrigins: []string{"https://app.example.com", "null"},
				AllowedMethods: []string{"GET", "POST", "PUT", "OPTIONS"}, AllowedHeaders: []string{"*"}},
			methods:   []string{"GET", "POST", "PUT", "OPTIONS"},
			anyHeader: true,
		},
	}
}

// decRSRequests is the corpus: every origin in every request shape.
func decRSRequests() []Request {
	origins := []string{
		"https://app.example.com", "https://admin.example.com", "https://evil.example.net", "null",
		"https://a.example.com", "https://a.b.example.com", "https://example.com", "https://a_b.example.com",
		"https://.example.com", "https://a`b.example.com", "https://evil.net/.example.com", "https://a..example.com",
		"https://APP.example.com", "https://A.example.com", "https://app.example.com:8443", "http://app.example.com",
		"https://app.example.com.evil.net", "https://evilapp.example.com", "https://app.example.com\r\n",
		"https://" + strings.Repeat("a", 3000) + ".example.com", "",
	}
	var out []Request
	for _, o := range origins {
		for _, m := range []string{"GET", "POST", "PURGE", "OPTIONS"} {
			out = append(out, decActual(m, o))
		}
		two := decActual("GET", o)
		two.Origins = 2
		out = append(out, two)
		for _, p := range []struct {
			method  string
			headers []string
		}{
			{"PUT", nil},
			{"PUT", []string{"content-type"}},
			{"PUT", []string{"authorization,content-type"}},
			{"PUT", []string{"content-type,x-requested-with"}},
			{"PUT", []string{"x-requested-with,content-type"}},
			{"PUT", []string{"Content-Type"}},
			{"PUT", []string{"accept", "content-type"}},
			{"PUT", []string{"content-type , accept"}},
			{"PUT", []string{"  content-type"}},
			{"PUT", []string{"x-custom"}},
			{"PUT", []string{"authorization"}},
			{"PUT", []string{"x-a b"}},
			{"DELETE", nil},
			{"PATCH", []string{"content-type"}},
			{"patch", nil},
			{"POST", nil},
			{"OPTIONS", nil},
			{"PURGE", nil},
			{"", nil},
		} {
			out = append(out, decPreflight(o, p.method, p.headers...))
		}
		two = decPreflight(o, "PUT")
		two.Origins = 2
		out = append(out, two)
	}
	return out
}

// decRSDifference is a deliberate disagreement with rs/cors.
type decRSDifference struct {
	name string
	// why says what each does and why corsproc does otherwise.
	why string
	// applies says whether a request under a config is in this case.
	applies func(c decRSConfig, r Request) bool
	// corsprocAllows is what corsproc must do when they disagree.
	corsprocAllows bool
}

var decRSDifferences = []decRSDifference{
	{
		name: "request origins are compared byte for byte",
		why: "rs/cors lower-cases the request origin before comparing (and reflects it as sent); docs/contract.md §2 compares " +
			"request origins byte for byte with the normalised entries, as browsers send them lower case",
		applies: func(c decRSConfig, r Request) bool { return !c.allowAll && r.Origin != strings.ToLower(r.Origin) },
	},
	{
		name: "a wildcard stands for whole labels",
		why: `rs/cors's "*" matches any run of bytes, the empty one included ("https://.example.com", ` +
			`"https://evil.net/.example.com", "https://a..example.com"); docs/contract.md §2's stands for one or more labels of a-z0-9-_`,
		applies: func(c decRSConfig, r Request) bool {
			labels, ok := strings.CutSuffix(strings.TrimPrefix(r.Origin, "https://"), ".example.com")
			return c.wildcard && ok && !decRefMatch("https://*.example.com", "https://"+labels+".example.com")
		},
	},
	{
		name: "an actual request is judged on its origin only",
		why: "rs/cors withholds allow-origin from an actual request whose method is not in AllowedMethods; docs/contract.md §3 " +
			"answers an actual request on its origin (allow_methods is a preflight matter, and browsers preflight " +
			"every method but GET, HEAD and POST)",
		applies: func(c decRSConfig, r Request) bool {
			return !decIsPreflight(r) && r.Method != "OPTIONS" && !slices.Contains(c.methods, r.Method)
		},
		corsprocAllows: true,
	},
	{
		name: "GET, HEAD and POST are always allowed",
		why: "rs/cors refuses a preflight for POST when AllowedMethods does not list it; docs/contract.md §3 always allows " +
			"GET, HEAD and POST, as browsers do",
		applies: func(c decRSConfig, r Request) bool {
			return decIsPreflight(r) && (r.RequestMethod == "GET" || r.RequestMethod == "HEAD" || r.RequestMethod == "POST") &&
				!slices.Contains(c.methods, r.RequestMethod)
		},
		corsprocAllows: true,
	},
	{
		name: "OPTIONS is allowed only when listed",
		why:  "rs/cors allows a preflight for OPTIONS whatever AllowedMethods says; corsproc allows only the listed methods",
		applies: func(c decRSConfig, r Request) bool {
			return decIsPreflight(r) && r.RequestMethod == "OPTIONS" && !slices.Contains(c.methods, "OPTIONS")
		},
	},
	{
		name: "requested header names are a list in any form",
		why: "rs/cors accepts the requested names only lower case, sorted, unique, with at most one space around " +
			"each (what Chromium sends) and rejects anything else; docs/contract.md §3 compares names case-insensitively, " +
			"in any order, across several lines, tolerating odd whitespace and empty elements",
		applies:        func(c decRSConfig, r Request) bool { return decIsPreflight(r) && !decRSCanonical(r.RequestHeaders) },
		corsprocAllows: true,
	},
	{
		name: `"*" never covers authorization`,
		why: `rs/cors's AllowedHeaders ["*"] allows authorization; the Fetch standard and docs/contract.md §3 say "*" never ` +
			`covers it, so corsproc allows it only when named`,
		applies: func(c decRSConfig, r Request) bool {
			return c.anyHeader && decIsPreflight(r) && strings.Contains(strings.ToLower(strings.Join(r.RequestHeaders, ",")), "authorization")
		},
	},
	{
		name: "a requested header name must be a token",
		why: `rs/cors's AllowedHeaders ["*"] accepts any requested bytes and echoes them; docs/contract.md §3 denies a ` +
			`preflight whose requested header name is not a token`,
		applies: func(c decRSConfig, r Request) bool {
			_, bad, _ := (&compiled{headersAny: true}).checkHeaders(r.RequestHeaders)
			return c.anyHeader && decIsPreflight(r) && bad != ""
		},
	},
	{
		name: "several origin lines are malformed",
		why: "rs/cors reads the first origin line (and on an actual request reflects them all, which browsers " +
			"reject); docs/contract.md §3 denies a request with several origin lines",
		applies: func(c decRSConfig, r Request) bool { return r.Origins > 1 },
	},
	{
		name: "an empty access-control-request-method is a malformed preflight",
		why: "rs/cors treats an OPTIONS with an empty access-control-request-method as an actual request and, " +
			"for an allowed origin, answers it; docs/contract.md §3 denies it as a malformed preflight",
		applies: func(c decRSConfig, r Request) bool { return decIsPreflight(r) && r.RequestMethod == "" },
	},
	{
		name: "allow-all answers every response",
		why: `with allow-all and no credentials corsproc gives every response "*", with or without an origin ` +
			`(docs/contract.md §3: the answer is the same for everyone, so no vary is needed); rs/cors adds nothing without an origin`,
		applies:        func(c decRSConfig, r Request) bool { return c.allowAll && r.Origin == "" },
		corsprocAllows: true,
	},
	{
		name: "origins over 2048 bytes are denied",
		why: "rs/cors compares any origin, and its allow-all answers \"*\" to it; docs/contract.md §3 denies origins over " +
			"2048 bytes without running a pattern",
		applies: func(c decRSConfig, r Request) bool { return len(r.Origin) > MaxOriginLength },
	},
}

func decIsPreflight(r Request) bool {
	return r.Method == "OPTIONS" && r.HasRequestMethod && r.Origin != ""
}

// decRSCanonical reports whether the requested header lines are in the form
// rs/cors accepts: lower case, strictly sorted, at most one space or tab
// around each name.
func decRSCanonical(lines []string) bool {
	prev := ""
	for _, l := range lines {
		for _, el := range strings.Split(l, ",") {
			name := strings.Trim(el, " \t")
			if len(el)-len(name) > 2 || strings.HasPrefix(el, "  ") || strings.HasSuffix(el, "  ") {
				return false
			}
			if name == "" {
				continue
			}
			if name != strings.ToLower(name) || name <= prev {
				return false
			}
			prev = name
		}
	}
	return true
}

// decRSCorsproc returns corsproc's allow-origin for r ("" when none).
func decRSCorsproc(s *Set, r Request) string {
	d := s.Decide(&r)
	hs := d.Headers()
	if !d.Local {
		var e Edit
		d.Respond(&Upstream{}, &e)
		hs = e.Set(&d)
	}
	for _, h := range hs {
		if h.Name == hdrAllowOrigin {
			return h.Value
		}
	}
	return ""
}

// decRSHTTP builds the net/http request rs/cors sees for r.
func decRSHTTP(r Request) *http.Request {
	req := httptest.NewRequest(r.Method, "http://"+r.Host+r.Path, nil)
	if r.Origin != "" || r.Origins > 0 {
		n := max(r.Origins, 1)
		for range n {
			req.Header.Add("Origin", r.Origin)
		}
	}
	if r.HasRequestMethod {
		req.Header["Access-Control-Request-Method"] = []string{r.RequestMethod}
	}
	if r.RequestHeaders != nil {
		req.Header["Access-Control-Request-Headers"] = r.RequestHeaders
	}
	return req
}

// decRSAnswer returns rs/cors's allow-origin for r, lines joined.
func decRSAnswer(h http.Handler, r Request) string {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, decRSHTTP(r))
	return strings.Join(rec.Header().Values("Access-Control-Allow-Origin"), ", ")
}

func TestDifferentialRSCors(t *testing.T) {
	t.Parallel()
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	seen := map[string]int{}
	agreed, total := 0, 0
	for _, c := range decRSConfigs() {
		s := decSet(t, c.yaml)
		h := cors.New(c.opts).Handler(noop)
		for _, r := range decRSRequests() {
			total++
			ours, theirs := decRSCorsproc(s, r), decRSAnswer(h, r)
			if ours == theirs {
				agreed++
				continue
			}
			i := slices.IndexFunc(decRSDifferences, func(d decRSDifference) bool { return d.applies(c, r) })
			desc := c.name + ": " + decRSDescribe(r)
			if i < 0 {
				t.Errorf("%s: corsproc answers allow-origin %q, rs/cors %q, and no documented difference explains it", desc, ours, theirs)
				continue
			}
			d := decRSDifferences[i]
			seen[d.name]++
			if (ours != "") != d.corsprocAllows {
				t.Errorf("%s: %q: corsproc answers allow-origin %q (rs/cors %q), but docs/contract.md §3 has it allowed=%v",
					desc, d.name, ours, theirs, d.corsprocAllows)
			}
		}
	}
	for _, d := range decRSDifferences {
		if seen[d.name] == 0 {
			t.Errorf("the documented difference %q never shows in the corpus: remove it or add a request that shows it", d.name)
		}
	}
	t.Logf("%d of %d requests answered the same; the rest: %v", agreed, total, seen)
	if agreed < total/2 {
		t.Errorf("only %d of %d agree: the corpus no longer tests shared semantics", agreed, total)
	}
}

func decRSDescribe(r Request) string {
	o := r.Origin
	if len(o) > 40 {
		o = o[:40] + "..."
	}
	if decIsPreflight(r) {
		return "preflight " + r.RequestMethod + " " + strings.Join(r.RequestHeaders, "|") + " from " + strings.ReplaceAll(o, "\r\n", `\r\n`)
	}
	return r.Method + " from " + strings.ReplaceAll(o, "\r\n", `\r\n`)
}
