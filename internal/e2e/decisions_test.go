package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/corsproc/corsproc/internal/envoytest"
	"github.com/corsproc/corsproc/internal/testutil"
)

// decisionsPolicy is the policy shared with extproc's tests.
var decisionsPolicy = testutil.Policy

const (
	app          = "https://app.example.com"
	evil         = "https://evil.example.com"
	preflightVar = "origin, access-control-request-method, access-control-request-headers"
)

// decisionCase is one request through the gateway and what the browser
// must see.
type decisionCase struct {
	name    string
	method  string
	host    string
	path    string   // the service's h= query parameters go here
	headers []string // request header lines
	status  int
	want    map[string]string // header -> all its lines joined by ", "
	absent  []string          // headers that must not be there
	noCORS  bool              // no access-control-* header at all
	reached bool              // the request got through to the service
}

func set(name, value string) string { return "h=" + url.QueryEscape(name+":"+value) }

var decisionCases = []decisionCase{{
	name: "an allowed preflight is answered by corsproc and never reaches the service", method: "OPTIONS", host: "api.example.com",
	headers: []string{"origin", app, "access-control-request-method", "PUT", "access-control-request-headers", "content-type"},
	status:  204,
	want: map[string]string{
		"access-control-allow-origin": app, "access-control-allow-credentials": "true",
		"access-control-allow-methods": "GET, POST, PUT, DELETE", "access-control-allow-headers": "content-type, authorization",
		"access-control-max-age": "600", "vary": preflightVar + ", access-control-request-private-network",
	},
	absent: []string{"access-control-allow-private-network"},
}, {
	name: "a private network preflight is allowed when the policy allows it", method: "OPTIONS", host: "api.example.com",
	headers: []string{"origin", "http://localhost:8080", "access-control-request-method", "GET", "access-control-request-private-network", "true"},
	status:  204, want: map[string]string{"access-control-allow-private-network": "true", "access-control-allow-origin": "http://localhost:8080"},
}, {
	name: "a private network request is ignored by a policy that does not allow it", method: "OPTIONS", host: "star.example.com",
	headers: []string{"origin", app, "access-control-request-method", "GET", "access-control-request-private-network", "true"},
	status:  204, want: map[string]string{"access-control-allow-origin": app, "vary": preflightVar}, absent: []string{"access-control-allow-private-network"},
}, {
	name: "a preflight from an origin not allowed gets 403 and no CORS header", method: "OPTIONS", host: "api.example.com",
	headers: []string{"origin", evil, "access-control-request-method", "PUT"},
	status:  403, noCORS: true, want: map[string]string{"vary": preflightVar + ", access-control-request-private-network"},
}, {
	name: "methods compare case-sensitively: patch is not PATCH, put is not PUT", method: "OPTIONS", host: "api.example.com",
	headers: []string{"origin", app, "access-control-request-method", "put"},
	status:  403, noCORS: true,
}, {
	name: "a preflight asking for a header not allowed gets 403", method: "OPTIONS", host: "api.example.com",
	headers: []string{"origin", app, "access-control-request-method", "PUT", "access-control-request-headers", "content-type,x-api-key"},
	status:  403, noCORS: true,
}, {
	name: "allow_headers * covers any header but authorization", method: "OPTIONS", host: "star.example.com",
	headers: []string{"origin", app, "access-control-request-method", "GET", "access-control-request-headers", "x-anything"},
	status:  204, want: map[string]string{"access-control-allow-headers": "*"},
}, {
	name: "allow_headers * never covers authorization", method: "OPTIONS", host: "star.example.com",
	headers: []string{"origin", app, "access-control-request-method", "GET", "access-control-request-headers", "authorization"},
	status:  403, noCORS: true,
}, {
	name: "a preflight with two origin lines is malformed and refused", method: "OPTIONS", host: "api.example.com",
	headers: []string{"origin", app, "origin", app, "access-control-request-method", "PUT"},
	status:  403, noCORS: true,
}, {
	name: "an origin over 2048 bytes is refused", method: "OPTIONS", host: "api.example.com",
	headers: []string{"origin", "https://" + strings.Repeat("a", 2050) + ".example.com", "access-control-request-method", "PUT"},
	status:  403, noCORS: true,
}, {
	name: "an allowed request gets origin, credentials and expose headers instead of the service's own", method: "GET", host: "api.example.com",
	path:    "?" + set("access-control-allow-origin", "*") + "&" + set("access-control-max-age", "5") + "&" + set("vary", "accept-encoding"),
	headers: []string{"origin", app},
	status:  200, reached: true,
	want: map[string]string{
		"access-control-allow-origin": app, "access-control-allow-credentials": "true",
		"access-control-expose-headers": "x-request-id", "vary": "accept-encoding, origin",
	},
	absent: []string{"access-control-max-age"},
}, {
	name: "a request from an origin not allowed loses the service's CORS headers", method: "POST", host: "api.example.com",
	path:    "?" + set("access-control-allow-origin", evil) + "&" + set("access-control-allow-credentials", "true"),
	headers: []string{"origin", evil},
	status:  200, reached: true, noCORS: true, want: map[string]string{"vary": "origin"},
}, {
	name: "a request without origin gets vary: origin", method: "GET", host: "api.example.com",
	status: 200, reached: true, noCORS: true, want: map[string]string{"vary": "origin"},
}, {
	name: "the service's vary: * is left alone", method: "GET", host: "api.example.com", path: "?" + set("vary", "*"),
	status: 200, reached: true, noCORS: true, want: map[string]string{"vary": "*"},
}, {
	name: "allow-all without credentials answers * to a request without origin, with no vary", method: "GET", host: "public.example.com",
	status: 200, reached: true, want: map[string]string{"access-control-allow-origin": "*", "access-control-expose-headers": "x-total"},
	absent: []string{"vary"},
}, {
	name: "allow-all without credentials answers * to any origin, null included", method: "GET", host: "public.example.com",
	headers: []string{"origin", "null"},
	status:  200, reached: true, want: map[string]string{"access-control-allow-origin": "*"}, absent: []string{"vary"},
}, {
	name: "a request matching no policy is not touched", method: "GET", host: "other.example.com",
	path:    "?" + set("access-control-allow-origin", "*"),
	headers: []string{"origin", app},
	status:  200, reached: true, want: map[string]string{"access-control-allow-origin": "*"}, absent: []string{"vary"},
}, {
	name: "a preflight matching no policy is forwarded to the service", method: "OPTIONS", host: "other.example.com",
	headers: []string{"origin", app, "access-control-request-method", "PUT"},
	status:  200, reached: true, noCORS: true,
}, {
	name: "a policy that is off behaves as if none matched", method: "OPTIONS", host: "off.example.com",
	headers: []string{"origin", app, "access-control-request-method", "PUT"},
	status:  200, reached: true, noCORS: true,
}, {
	name: "report mode forwards a preflight and leaves the service's answer as it is", method: "OPTIONS", host: "report.example.com",
	path:    "?" + set("access-control-allow-origin", evil),
	headers: []string{"origin", evil, "access-control-request-method", "PUT"},
	status:  200, reached: true, want: map[string]string{"access-control-allow-origin": evil}, absent: []string{"vary"},
}, {
	name: "keep leaves a service that sets its own allow-origin exactly as it is", method: "GET", host: "keep.example.com",
	path:    "?" + set("access-control-allow-origin", "https://other.example.com") + "&" + set("access-control-max-age", "1"),
	headers: []string{"origin", app},
	status:  200, reached: true,
	want: map[string]string{"access-control-allow-origin": "https://other.example.com", "access-control-max-age": "1"}, absent: []string{"vary"},
}, {
	name: "keep replaces the CORS headers of a response without the service's allow-origin", method: "GET", host: "keep.example.com",
	path:    "?" + set("access-control-max-age", "1"),
	headers: []string{"origin", app},
	status:  200, reached: true, want: map[string]string{"access-control-allow-origin": app, "vary": "origin"},
	absent: []string{"access-control-max-age"},
}, {
	name: "the route name Envoy sends picks the policy", method: "GET", host: "any.example.com", path: "/special/x",
	headers: []string{"origin", "https://route.example.com"},
	status:  200, reached: true, want: map[string]string{"access-control-allow-origin": "https://route.example.com", "vary": "origin"},
}}

// TestGatewayDecisions sends every case of docs/contract.md §3 from an HTTP client
// through the Envoy stand-in and corsproc to the service.
func TestGatewayDecisions(t *testing.T) {
	t.Parallel()
	p := startCorsproc(t, "--config", testutil.WriteFile(t, t.TempDir(), "policy.yaml", decisionsPolicy))
	up := startUpstream(t)
	e := startEnvoy(t, p.grpcAddr, up, nil)
	runDecisions(t, e, up, decisionCases)
	noFailures(t, e)
}

func runDecisions(t *testing.T, e *envoytest.Envoy, up *upstream, cases []decisionCase) {
	t.Helper()
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := fmt.Sprintf("/v1/case%d", i)
			if strings.HasPrefix(c.path, "/") {
				path = c.path
			} else {
				path += c.path
			}
			resp := call(t, e, c.method, c.host, path, c.headers...)
			checkResponse(t, resp, c)
			urlPath, _, _ := strings.Cut(path, "?")
			if got := up.reached(urlPath) > 0; got != c.reached {
				t.Errorf("reached the service: %v, want %v", got, c.reached)
			}
		})
	}
}

func checkResponse(t *testing.T, resp *http.Response, c decisionCase) {
	t.Helper()
	if resp.StatusCode != c.status {
		t.Errorf("status %d, want %d", resp.StatusCode, c.status)
	}
	for name, want := range c.want {
		if got := strings.Join(resp.Header.Values(name), ", "); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	for _, name := range c.absent {
		if v := resp.Header.Values(name); len(v) > 0 {
			t.Errorf("%s: %q, want none", name, v)
		}
	}
	if c.noCORS {
		for name, v := range resp.Header {
			if strings.HasPrefix(strings.ToLower(name), "access-control-") {
				t.Errorf("CORS header %s: %q, want none", name, v)
			}
		}
	}
}

// TestGatewayWithoutModeOverride checks the same answers when the filter
// does not allow mode_override: every response comes to corsproc, and those
// it has nothing to do with are left alone.
func TestGatewayWithoutModeOverride(t *testing.T) {
	t.Parallel()
	p := startCorsproc(t, "--config", testutil.WriteFile(t, t.TempDir(), "policy.yaml", decisionsPolicy))
	up := startUpstream(t)
	e := startEnvoy(t, p.grpcAddr, up, func(c *envoytest.Config) { c.AllowModeOverride = false })
	runDecisions(t, e, up, decisionCases)
	noFailures(t, e)
}

// TestGatewayDebugHeaders checks --debug-headers end to end: the decision
// and reason on every answer, and a preflight refused for its header that
// the browser can pin on that header.
func TestGatewayDebugHeaders(t *testing.T) {
	t.Parallel()
	p := startCorsproc(t, "--config", testutil.WriteFile(t, t.TempDir(), "policy.yaml", decisionsPolicy), "--debug-headers")
	up := startUpstream(t)
	e := startEnvoy(t, p.grpcAddr, up, nil)
	resp := call(t, e, "OPTIONS", "api.example.com", "/v1/debug", "origin", app,
		"access-control-request-method", "PUT", "access-control-request-headers", "x-api-key")
	if got := resp.Header.Get("x-corsproc-decision"); got != "denied" {
		t.Errorf("x-corsproc-decision %q, want denied", got)
	}
	if got := resp.Header.Get("x-corsproc-reason"); !strings.HasPrefix(got, "header_not_allowed") || !strings.Contains(got, "x-api-key") {
		t.Errorf("x-corsproc-reason %q does not name the header", got)
	}
	if got := resp.Header.Get("access-control-allow-origin"); got != app {
		t.Errorf("access-control-allow-origin %q: the debug answer should allow the origin so the browser names the header", got)
	}
	resp = call(t, e, "GET", "api.example.com", "/v1/debug", "origin", app)
	if got := resp.Header.Get("x-corsproc-decision"); got != "allowed" {
		t.Errorf("x-corsproc-decision on an allowed request %q", got)
	}
	if !strings.Contains(p.stderr.String(), `"msg":"cors denied"`) {
		t.Errorf("no debug line for the denial:\n%s", p.stderr.String())
	}
	noFailures(t, e)
}
