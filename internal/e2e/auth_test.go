package e2e

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corsproc/corsproc/internal/envoytest"
	"github.com/corsproc/corsproc/internal/testutil"
)

// The gateway of envoy/envoy.yaml: corsproc first (in a composite on
// origin, only the headers it reads, only its own headers changed), then
// authentication, then the router; the virtual host adds vary: origin.
const goodToken = "good-token"

// authTimeout bounds each ext_proc round trip and each request of these
// tests: they are about what reaches the browser, and a loaded machine
// running -race must not turn a slow round trip into a 504.
const authTimeout = 10 * time.Second

// shipped is envoy/envoy.yaml's corsproc filter and routes, as Envoy
// loads them.
var shipped = sync.OnceValues(func() (envoytest.Config, error) {
	_, here, _, _ := runtime.Caller(0)
	return envoytest.FromBootstrapFile(filepath.Join(filepath.Dir(here), "..", "..", "envoy", "envoy.yaml"), "ingress")
})

// shippedFilter gives c envoy.yaml's corsproc filter and route headers,
// with a roomy message timeout and failure_mode_allow off, so that a
// processor failure shows.
func shippedFilter(t *testing.T, c *envoytest.Config) {
	t.Helper()
	s, err := shipped()
	if err != nil {
		t.Fatal(err)
	}
	if s.OnlyWithHeader != "origin" || s.ForwardRules == nil || s.MutationRules == nil {
		t.Fatalf("envoy.yaml's corsproc filter lost its composite or rules: %+v", s)
	}
	c.OnlyWithHeader, c.OnlyWithHeaderRegex = s.OnlyWithHeader, s.OnlyWithHeaderRegex
	c.ForwardRules, c.MutationRules = s.ForwardRules, s.MutationRules
	c.ProcessingMode, c.AllowModeOverride, c.RequestAttributes = s.ProcessingMode, s.AllowModeOverride, s.RequestAttributes
	c.MessageTimeout, c.FailureModeAllow = authTimeout, false
	for i := range c.Routes {
		c.Routes[i].ResponseHeadersToAdd = s.Routes[0].ResponseHeadersToAdd
	}
}

// authCall sends a request and returns the response with its body.
func authCall(t *testing.T, e *envoytest.Envoy, method, path string, kv ...string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*authTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "api.example.com"
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func varyHas(resp *http.Response, token string) bool {
	for _, line := range resp.Header.Values("Vary") {
		for _, v := range strings.Split(line, ",") {
			if strings.EqualFold(strings.TrimSpace(v), token) {
				return true
			}
		}
	}
	return false
}

// TestAuthenticationAfterCorsproc runs the real corsproc binary behind the
// stand-in with an authentication filter after it: the preflight, which
// carries no token, is answered by corsproc; the 401/403/429 of the later
// filters carry corsproc's CORS headers and vary: origin.
func TestAuthenticationAfterCorsproc(t *testing.T) {
	t.Parallel()
	p := startCorsproc(t, "--config", testutil.WriteFile(t, t.TempDir(), "policy.yaml", decisionsPolicy))
	gateways := []struct {
		name   string
		edit   func(*envoytest.Config)
		status int
	}{
		{name: "jwt_authn answers 401", status: 401, edit: func(c *envoytest.Config) {
			c.After = []envoytest.Filter{envoytest.JWTAuthn(goodToken)}
		}},
		{name: "rbac answers 403", status: 403, edit: func(c *envoytest.Config) {
			c.After = []envoytest.Filter{envoytest.RBAC(func(h envoytest.RequestHeaders) bool {
				v, _ := h.Get("authorization")
				return v == "Bearer "+goodToken
			})}
		}},
	}
	for _, g := range gateways {
		for _, shipped := range []bool{true, false} {
			name := g.name + ", plain ext_proc"
			if shipped {
				name = g.name + ", envoy.yaml's filter (composite, forward and mutation rules)"
			}
			t.Run(name, func(t *testing.T) {
				up := startUpstream(t)
				e := startEnvoy(t, p.grpcAddr, up, func(c *envoytest.Config) {
					c.MessageTimeout = authTimeout
					if shipped {
						shippedFilter(t, c)
					}
					g.edit(c)
				})
				t.Run("a preflight from an allowed origin is answered by corsproc", func(t *testing.T) {
					resp, _ := authCall(t, e, "OPTIONS", "/v1/me", "Origin", app,
						"Access-Control-Request-Method", "GET", "Access-Control-Request-Headers", "authorization")
					if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != app ||
						!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "authorization") {
						t.Errorf("got %d %v", resp.StatusCode, resp.Header)
					}
				})
				t.Run("the refusal carries CORS headers and vary: origin", func(t *testing.T) {
					resp, body := authCall(t, e, "GET", "/v1/me", "Origin", app)
					if resp.StatusCode != g.status || body == "" {
						t.Errorf("got %d %q, want %d with a body", resp.StatusCode, body, g.status)
					}
					if resp.Header.Get("Access-Control-Allow-Origin") != app || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
						t.Errorf("no CORS headers on the %d: %v", resp.StatusCode, resp.Header)
					}
					if !varyHas(resp, "origin") {
						t.Errorf("vary %q lacks origin", resp.Header.Values("Vary"))
					}
				})
				t.Run("a refusal for an origin not allowed carries none", func(t *testing.T) {
					resp, _ := authCall(t, e, "GET", "/v1/me", "Origin", evil)
					if resp.StatusCode != g.status || resp.Header.Get("Access-Control-Allow-Origin") != "" {
						t.Errorf("got %d %v", resp.StatusCode, resp.Header)
					}
				})
				t.Run("with the token the request reaches the service, CORS headers on", func(t *testing.T) {
					resp, _ := authCall(t, e, "GET", "/v1/ok", "Origin", app, "Authorization", "Bearer "+goodToken)
					if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != app || up.reached("/v1/ok") != 1 {
						t.Errorf("got %d %v", resp.StatusCode, resp.Header)
					}
				})
				t.Run("a request without origin is refused without CORS headers, with vary: origin", func(t *testing.T) {
					resp, _ := authCall(t, e, "GET", "/v1/me")
					if resp.StatusCode != g.status || resp.Header.Get("Access-Control-Allow-Origin") != "" || !varyHas(resp, "origin") {
						t.Errorf("got %d %v", resp.StatusCode, resp.Header)
					}
				})
				if up.reached("/v1/me") != 0 {
					t.Errorf("a refused request reached the service")
				}
				noFailures(t, e)
				if st := e.Stats(); shipped && st.StreamsStarted != 4 {
					t.Errorf("%d ext_proc streams for 4 requests with origin and 1 without", st.StreamsStarted)
				}
			})
		}
	}
	t.Run("local_ratelimit's 429 carries CORS headers", func(t *testing.T) {
		up := startUpstream(t)
		e := startEnvoy(t, p.grpcAddr, up, func(c *envoytest.Config) {
			shippedFilter(t, c)
			c.After = []envoytest.Filter{envoytest.LocalRateLimit(1)}
		})
		first, _ := authCall(t, e, "GET", "/v1/limited", "Origin", app)
		second, body := authCall(t, e, "GET", "/v1/limited", "Origin", app)
		if first.StatusCode != 200 || second.StatusCode != 429 || body != "local_rate_limited" ||
			second.Header.Get("Access-Control-Allow-Origin") != app || !varyHas(second, "origin") {
			t.Errorf("got %d then %d %q %v", first.StatusCode, second.StatusCode, body, second.Header)
		}
		noFailures(t, e)
	})
	t.Run("Envoy 1.34-1.36 (skip_ext_proc_on_local_reply) send the 401 without CORS headers", func(t *testing.T) {
		up := startUpstream(t)
		e := startEnvoy(t, p.grpcAddr, up, func(c *envoytest.Config) {
			shippedFilter(t, c)
			c.After = []envoytest.Filter{envoytest.JWTAuthn(goodToken)}
			c.SkipLocalReplies = true
		})
		pre, _ := authCall(t, e, "OPTIONS", "/v1/me", "Origin", app, "Access-Control-Request-Method", "GET",
			"Access-Control-Request-Headers", "authorization")
		resp, _ := authCall(t, e, "GET", "/v1/me", "Origin", app)
		if pre.StatusCode != 204 || resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight %d, then %d %v", pre.StatusCode, resp.StatusCode, resp.Header)
		}
		if !slices.Contains(resp.Header.Values("Vary"), "origin") {
			t.Errorf("vary %q: the route's vary: origin is added even then", resp.Header.Values("Vary"))
		}
	})
}
