package extproc

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/corsproc/corsproc/internal/testutil"
)

// TestAdminHandler checks the admin endpoints' answers, readiness while
// draining, and /explain's parameters.
func TestAdminHandler(t *testing.T) {
	t.Parallel()
	m := NewMetrics()
	path := testutil.WriteFile(t, t.TempDir(), "p.yaml", testPolicy)
	p, err := LoadPolicies(path, m, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	var draining atomic.Bool
	// The server's health answers /readyz once a policy is loaded; this one
	// fails while draining, as the runner's does.
	readyz := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if draining.Load() {
			text(w, http.StatusServiceUnavailable, "draining")
			return
		}
		text(w, http.StatusOK, "ready")
	})
	srv := httptest.NewServer(NewAdminHandler(p, m, AdminOptions{DebugHeaders: true, Readyz: readyz}))
	t.Cleanup(srv.Close)
	get := func(t *testing.T, path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	cases := []struct {
		name string
		path string
		code int
		want string
	}{
		{"the index lists the endpoints", "/", 200, "/explain"},
		{"healthz says alive", "/healthz", 200, "ok"},
		{"readyz says ready", "/readyz", 200, "ready"},
		{"metrics are Prometheus text", "/metrics", 200, "# TYPE corsproc_requests_total counter"},
		{"pprof is off by default", "/debug/pprof/", 404, ""},
		{"an unknown path is 404", "/nope", 404, ""},
		{"explain uses the server's --debug-headers", "/explain?origin=https://app.example.com&host=api.example.com&request_method=PATCH", 200, "x-corsproc-reason"},
		{"explain takes several request_headers lines", "/explain?origin=https://app.example.com&host=api.example.com&request_method=PUT&request_headers=content-type&request_headers=x-nope", 200, `"reason": "header_not_allowed"`},
		{"explain takes private_network", "/explain?origin=https://app.example.com&host=api.example.com&request_method=PUT&private_network=true", 200, "access-control-allow-private-network"},
		{"explain refuses a bad private_network", "/explain?private_network=maybe", 400, "want true or false"},
		{"explain of an empty origin is an empty origin header, not none", "/explain?origin=&host=api.example.com", 200, `"class": "actual"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, body := get(t, c.path)
			if code != c.code || !strings.Contains(body, c.want) {
				t.Errorf("GET %s: %d, want %d with %q:\n%s", c.path, code, c.code, c.want, body)
			}
		})
	}
	t.Run("readyz fails while draining", func(t *testing.T) {
		// Not parallel with the cases above: it flips the shared flag.
		draining.Store(true)
		defer draining.Store(false)
		if code, body := get(t, "/readyz"); code != 503 || !strings.Contains(body, "draining") {
			t.Errorf("GET /readyz while draining: %d %q", code, body)
		}
	})
}
