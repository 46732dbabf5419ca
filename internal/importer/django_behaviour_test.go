package importer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/corsproc/corsproc/policy"
)

// answer is what a browser sees of a CORS answer, and what it concludes.
type answer struct {
	// allowed: the browser lets the page read the response (actual
	// request) or send the actual request (preflight).
	allowed      bool
	allowOrigin  string
	credentials  bool
	allowMethods string // preflight only
	allowHeaders string // preflight only
	maxAge       string // preflight only
	expose       string // actual request only
	pna          bool   // access-control-allow-private-network: true
}

// TestDjangoBehaviour runs requests through policies imported from
// django-cors-headers settings and compares corsproc's answer with the one
// django-cors-headers gives, as its source documents it:
// corsheaders/middleware.py (process_request answers every preflight 200
// with the lists below and leaves refusing to the browser;
// process_response echoes an allowed origin, or sends "*" for
// CORS_ALLOW_ALL_ORIGINS without credentials; origin_found_in_white_lists
// compares scheme and netloc, "null" only when listed, and regexes with
// re.match; is_enabled matches CORS_URLS_REGEX with re.match on
// path_info), corsheaders/conf.py (CORS_PREFLIGHT_MAX_AGE 86400,
// CORS_URLS_REGEX r"^.*$", default_headers and default_methods) and
// corsheaders/defaults.py.
//
// A case with a corsproc answer of its own is a deliberate difference; why
// says what it is and where it is documented.
func TestDjangoBehaviour(t *testing.T) {
	t.Parallel()
	const (
		plain    = "django-behaviour.py"
		creds    = "django-behaviour-credentials.py"
		all      = "django-behaviour-allow-all.py"
		allCreds = "django-behaviour-allow-all-credentials.py"
	)
	defaultMethods := "DELETE, GET, OPTIONS, PATCH, POST, PUT"
	plainHeaders := "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with, x-api-key"
	defaultHeaders := "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with"
	refusedByCorsproc := "corsproc refuses a preflight it would not allow itself (403, no CORS headers) where django-cors-headers answers 200 with its lists and leaves the refusal to the browser; the browser's conclusion is the same (README: Moving to corsproc)"

	tests := []struct {
		name     string
		settings string
		req      policy.Request
		django   answer
		corsproc *answer // nil: the same as django
		why      string
	}{
		{
			name: "a listed origin reads the response, with the expose headers", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/api/items", Origin: "https://app.example.com"},
			django: answer{allowed: true, allowOrigin: "https://app.example.com", expose: "x-request-id"},
		},
		{
			name: "an origin that is not listed gets no CORS headers", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/api/items", Origin: "https://evil.example"},
			django: answer{},
		},
		{
			name: "a listed origin on another port is a different origin", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/api/items", Origin: "http://localhost:8001"},
			django: answer{},
		},
		{
			name: "an origin in upper case does not match the listed one", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/api/items", Origin: "https://APP.example.com"},
			django: answer{},
		},
		{
			name: "the null origin is allowed when listed", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/api/items", Origin: "null"},
			django: answer{allowed: true, allowOrigin: "null", expose: "x-request-id"},
		},
		{
			name: "an origin a regex with $ matches is allowed", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/api/items", Origin: "https://pr42.preview.example.com"},
			django: answer{allowed: true, allowOrigin: "https://pr42.preview.example.com", expose: "x-request-id"},
		},
		{
			name: "a regex with $ does not admit a longer origin", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/api/items", Origin: "https://pr42.preview.example.com.evil.example"},
			django: answer{},
		},
		{
			name: "a regex without $ admits a longer origin, as re.match does", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/api/items", Origin: "https://shop.example.com.evil.example"},
			django: answer{allowed: true, allowOrigin: "https://shop.example.com.evil.example", expose: "x-request-id"},
		},
		{
			name: "a regex without $ admits the origin with a port", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/api/items", Origin: "https://shop.example.com:8443"},
			django: answer{allowed: true, allowOrigin: "https://shop.example.com:8443", expose: "x-request-id"},
		},
		{
			name: "a path outside CORS_URLS_REGEX gets no CORS headers", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/admin/", Origin: "https://app.example.com"},
			django: answer{},
		},
		{
			name: "CORS_URLS_REGEX matches from the start only, so /apix is outside it", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/apix", Origin: "https://app.example.com"},
			django: answer{},
		},
		{
			name: "a request without an origin gets no CORS headers", settings: plain,
			req:    policy.Request{Method: "GET", Path: "/api/items"},
			django: answer{},
		},
		{
			name: "a preflight for a listed method and an added header is answered with the lists", settings: plain,
			req:    policy.Request{Method: "OPTIONS", Path: "/api/items", Origin: "https://app.example.com", RequestMethod: "PUT", HasRequestMethod: true, RequestHeaders: []string{"content-type, x-api-key"}},
			django: answer{allowed: true, allowOrigin: "https://app.example.com", allowMethods: defaultMethods, allowHeaders: plainHeaders, maxAge: "600"},
		},
		{
			name: "a preflight for a header not listed is refused", settings: plain,
			req:      policy.Request{Method: "OPTIONS", Path: "/api/items", Origin: "https://app.example.com", RequestMethod: "GET", HasRequestMethod: true, RequestHeaders: []string{"x-secret"}},
			django:   answer{allowed: false, allowOrigin: "https://app.example.com", allowMethods: defaultMethods, allowHeaders: plainHeaders, maxAge: "600"},
			corsproc: &answer{},
			why:      refusedByCorsproc,
		},
		{
			name: "a preflight for a method not listed is refused", settings: plain,
			req:      policy.Request{Method: "OPTIONS", Path: "/api/items", Origin: "https://app.example.com", RequestMethod: "PROPFIND", HasRequestMethod: true},
			django:   answer{allowed: false, allowOrigin: "https://app.example.com", allowMethods: defaultMethods, allowHeaders: plainHeaders, maxAge: "600"},
			corsproc: &answer{},
			why:      refusedByCorsproc,
		},
		{
			name: "a preflight from an origin not listed is refused", settings: plain,
			req:    policy.Request{Method: "OPTIONS", Path: "/api/items", Origin: "https://evil.example", RequestMethod: "PUT", HasRequestMethod: true},
			django: answer{},
		},
		{
			name: "with credentials a listed origin is echoed with allow-credentials", settings: creds,
			req:    policy.Request{Method: "GET", Path: "/", Origin: "https://app.example.com"},
			django: answer{allowed: true, allowOrigin: "https://app.example.com", credentials: true},
		},
		{
			name: "a private network preflight is answered when CORS_ALLOW_PRIVATE_NETWORK is set", settings: creds,
			req:    policy.Request{Method: "OPTIONS", Path: "/", Origin: "https://app.example.com", RequestMethod: "GET", HasRequestMethod: true, PrivateNetwork: true},
			django: answer{allowed: true, allowOrigin: "https://app.example.com", credentials: true, allowMethods: defaultMethods, allowHeaders: defaultHeaders, maxAge: "86400", pna: true},
		},
		{
			name: "with credentials a regex without $ still admits the origin it names, with a port", settings: creds,
			req:    policy.Request{Method: "GET", Path: "/", Origin: "https://shop.example.com:8443"},
			django: answer{allowed: true, allowOrigin: "https://shop.example.com:8443", credentials: true},
		},
		{
			name: "with credentials a regex without $ no longer admits a look-alike host", settings: creds,
			req:      policy.Request{Method: "GET", Path: "/", Origin: "https://shop.example.com.evil.example"},
			django:   answer{allowed: true, allowOrigin: "https://shop.example.com.evil.example", credentials: true},
			corsproc: &answer{},
			why:      "an open-ended origin regex with credentials lets a look-alike host read users' data; import pins it and warns (README: Moving to corsproc)",
		},
		{
			name: "allow-all without credentials answers star, and max age 0 sends none", settings: all,
			req:    policy.Request{Method: "OPTIONS", Path: "/", Origin: "https://anyone.example", RequestMethod: "DELETE", HasRequestMethod: true},
			django: answer{allowed: true, allowOrigin: "*", allowMethods: defaultMethods, allowHeaders: defaultHeaders},
		},
		{
			name: "allow-all without credentials answers star to an actual request", settings: all,
			req:    policy.Request{Method: "GET", Path: "/", Origin: "https://anyone.example"},
			django: answer{allowed: true, allowOrigin: "*"},
		},
		{
			name: "allow-all with credentials is imported without credentials", settings: allCreds,
			req:      policy.Request{Method: "GET", Path: "/", Origin: "https://anyone.example"},
			django:   answer{allowed: true, allowOrigin: "https://anyone.example", credentials: true},
			corsproc: &answer{allowed: true, allowOrigin: "*"},
			why:      "every origin with credentials lets any site read users' data; corsproc refuses it and import drops the credentials with a warning (README: Moving to corsproc)",
		},
	}
	sets := map[string]*policy.Set{}
	for _, f := range []string{plain, creds, all, allCreds} {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		res, err := Convert("django", []Input{{Name: f, Data: data}}, Options{})
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		set, err := policy.Parse(f, res.YAML)
		if err != nil {
			t.Fatalf("%s: the imported policy does not load: %v", f, err)
		}
		sets[f] = set
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.corsproc != nil && tt.why == "" {
				t.Fatal("a deliberate difference needs its reason")
			}
			r := tt.req
			if r.Origin != "" {
				r.Origins = 1
			}
			got := corsprocAnswer(sets[tt.settings].Explain(&r), r.HasRequestMethod)
			want := tt.django
			if tt.corsproc != nil {
				want = *tt.corsproc
			}
			if got != want {
				t.Errorf("corsproc answers\n  %+v\nwant\n  %+v", got, want)
			}
		})
	}
}

// corsprocAnswer reads what a browser sees in an explanation.
func corsprocAnswer(x policy.Explanation, preflight bool) answer {
	var a answer
	for _, h := range x.Headers {
		switch strings.ToLower(h.Name) {
		case "access-control-allow-origin":
			a.allowOrigin = h.Value
		case "access-control-allow-credentials":
			a.credentials = h.Value == "true"
		case "access-control-allow-methods":
			a.allowMethods = h.Value
		case "access-control-allow-headers":
			a.allowHeaders = h.Value
		case "access-control-max-age":
			a.maxAge = h.Value
		case "access-control-expose-headers":
			a.expose = h.Value
		case "access-control-allow-private-network":
			a.pna = h.Value == "true"
		}
	}
	a.allowed = x.Decision == policy.Allowed.String() && a.allowOrigin != ""
	if !preflight {
		a.allowMethods, a.allowHeaders, a.maxAge = "", "", ""
	}
	return a
}

// TestReadmeDjangoExample imports the settings.py the README shows and
// checks that the warning and policy lines the README prints are what
// import prints.
func TestReadmeDjangoExample(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "### A Django service\n")
	if !ok {
		t.Fatal("README has no \"A Django service\" section")
	}
	_, py, _ := strings.Cut(section, "```python\n")
	py, _, _ = strings.Cut(py, "```")
	_, console, _ := strings.Cut(section, "```console\n")
	console, _, _ = strings.Cut(console, "```")
	res, err := Convert("django", []Input{{Name: "settings.py", Data: []byte(py)}}, Options{Name: "shop-api", Hosts: []string{"api.example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	var printed []string
	for _, w := range res.Warnings {
		printed = append(printed, "WARNING: "+w.String())
	}
	printed = append(printed, strings.Split(string(res.YAML), "\n")...)
	checked := 0
	for line := range strings.SplitSeq(console, "\n") {
		if strings.HasPrefix(line, "$ ") || strings.HasPrefix(line, "corsproc import:") || strings.Contains(line, "...") || line == "" {
			continue
		}
		checked++
		if !slices.Contains(printed, line) {
			t.Errorf("the README shows a line import does not print:\n%s", line)
		}
	}
	if checked < 10 {
		t.Errorf("only %d README lines checked; is the console block still there?", checked)
	}
}
