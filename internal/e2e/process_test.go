package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corsproc/corsproc/internal/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func policyAllowing(origin string) string {
	return "policies:\n  - name: all\n    allowed_origins: [\"" + origin + "\"]\n"
}

// preflightStatus is what a browser's preflight from origin gets.
func preflightStatus(t *testing.T, e interface{ URL() string }, origin string) int {
	t.Helper()
	req, err := http.NewRequest("OPTIONS", e.URL()+"/v1/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "api.example.com"
	req.Header.Set("origin", origin)
	req.Header.Set("access-control-request-method", "PUT")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func health(t *testing.T, addr string, opts ...grpc.DialOption) (healthpb.HealthCheckResponse_ServingStatus, error) {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	c, err := grpc.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience())
	defer cancel()
	r, err := healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{})
	return r.GetStatus(), err
}

// TestProcessStartsOnTheEmbeddedPolicy is the "done when":
// `corsproc serve` with no flag runs the development policy and answers a
// health check, and exits 0 on SIGTERM.
func TestProcessStartsOnTheEmbeddedPolicy(t *testing.T) {
	t.Parallel()
	p := startCorsproc(t)
	if st, err := health(t, p.grpcAddr); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", st, err)
	}
	e := startEnvoy(t, p.grpcAddr, startUpstream(t), nil)
	if got := preflightStatus(t, e, "http://localhost:5173"); got != 204 {
		t.Errorf("a localhost preflight: %d, want 204", got)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200} {
		if code, _ := p.get(t, path); code != want {
			t.Errorf("%s: %d, want %d", path, code, want)
		}
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
}

// TestProcessRefusesABadPolicy checks the nginx -t behaviour: every error
// printed, exit 1, nothing served.
func TestProcessRefusesABadPolicy(t *testing.T) {
	t.Parallel()
	path := testutil.WriteFile(t, t.TempDir(), "policy.yaml", "policies:\n  - name: a\n    allowed_origins: [\"https://a.example.com/\"]\n    allow_credentials: true\n    allow_all_origins: true\n")
	_, err := launch("--config", path)
	var exit *exitError
	if !errors.As(err, &exit) || exit.code != 1 {
		t.Fatalf("got %v, want exit 1", err)
	}
	for _, want := range []string{`allowed_origins[0] "https://a.example.com/"`, "allow_credentials", "refusing to start"} {
		if !strings.Contains(exit.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, exit.stderr)
		}
	}
}

// TestProcessHotReloadThroughTheGateway changes the policy the way a
// Kubernetes ConfigMap update does, then breaks it, then sends SIGHUP, and
// watches what the browser gets.
func TestProcessHotReloadThroughTheGateway(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	version := func(name, content string) {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		testutil.WriteFile(t, filepath.Join(dir, name), "policy.yaml", content)
	}
	swap := func(name string) {
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", policyAllowing("https://one.example.com"))
	swap("..v1")
	if err := os.Symlink("..data/policy.yaml", filepath.Join(dir, "policy.yaml")); err != nil {
		t.Fatal(err)
	}
	p := startCorsproc(t, "--config", filepath.Join(dir, "policy.yaml"))
	e := startEnvoy(t, p.grpcAddr, startUpstream(t), nil)
	if got := preflightStatus(t, e, "https://one.example.com"); got != 204 {
		t.Fatalf("before: %d", got)
	}

	version("..v2", policyAllowing("https://two.example.com"))
	swap("..v2")
	testutil.WaitUntil(t, "the ConfigMap update to be served", func() bool {
		return preflightStatus(t, e, "https://two.example.com") == 204
	})
	if got := preflightStatus(t, e, "https://one.example.com"); got != 403 {
		t.Errorf("the old origin after the update: %d, want 403", got)
	}

	version("..v3", "policies:\n  - name: broken\n    allowed_origins: [\"https://three.example.com/\"]\n")
	swap("..v3")
	testutil.WaitUntil(t, "the failure to be counted", func() bool {
		return p.metric(t, `corsproc_config_reloads_total{result="failure"}`) == 1
	})
	if got := preflightStatus(t, e, "https://two.example.com"); got != 204 {
		t.Errorf("a broken update replaced the running policy: %d", got)
	}

	testutil.WriteFile(t, filepath.Join(dir, "..v3"), "policy.yaml", policyAllowing("https://three.example.com"))
	testutil.WaitUntil(t, "the fixed file to be served", func() bool {
		return preflightStatus(t, e, "https://three.example.com") == 204
	})

	// SIGHUP reloads even when nothing changed, as an operator expects.
	before := p.metric(t, `corsproc_config_reloads_total{result="success"}`)
	p.signal(t, syscall.SIGHUP)
	testutil.WaitUntil(t, "SIGHUP to reload", func() bool {
		return p.metric(t, `corsproc_config_reloads_total{result="success"}`) == before+1
	})
	noFailures(t, e)
}

// TestProcessDrainsWithRequestsInFlight sends SIGTERM while a request is
// at its service: corsproc reports NOT_SERVING and unready at once, the
// request's response still gets its CORS headers, then it exits 0.
func TestProcessDrainsWithRequestsInFlight(t *testing.T) {
	t.Parallel()
	// A lameduck long enough for the checks made during it on a loaded
	// machine under -race.
	// The grace is far longer than any test waits: an exit at all shows
	// GracefulStop ending with the request in flight.
	p := startCorsproc(t, "--shutdown-grace", "1h", "--lameduck", testutil.Lameduck().String())
	up := startUpstream(t)
	up.release = make(chan struct{})
	e := startEnvoy(t, p.grpcAddr, up, nil)

	type result struct {
		resp *http.Response
		err  error
	}
	done := make(chan result, 1)
	go func() { // not call: t.Fatal must not run off the test's goroutine
		req, err := http.NewRequest("GET", e.URL()+"/slow", nil)
		if err != nil {
			done <- result{err: err}
			return
		}
		req.Host = "api.example.com"
		req.Header.Set("origin", "http://localhost:3000")
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- result{resp, err}
	}()
	testutil.WaitUntil(t, "the request to reach the service", func() bool { return up.reached("/slow") == 1 })

	p.signal(t, syscall.SIGTERM)
	testutil.WaitUntil(t, "NOT_SERVING", func() bool {
		st, err := health(t, p.grpcAddr)
		return err == nil && st == healthpb.HealthCheckResponse_NOT_SERVING
	})
	if code, _ := p.get(t, "/readyz"); code != 503 {
		t.Errorf("/readyz while draining: %d, want 503", code)
	}
	if got := preflightStatus(t, e, "http://localhost:3000"); got != 204 {
		t.Errorf("a new request during the lameduck period: %d, want 204", got)
	}
	// GracefulStop closes the listener first; from then on it waits for
	// the stream in flight.
	testutil.WaitUntil(t, "GracefulStop to close the listener", func() bool {
		conn, err := net.DialTimeout("tcp", p.grpcAddr, testutil.Patience())
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
	close(up.release)
	var r result
	select {
	case r = <-done:
	case <-time.After(testutil.Patience()):
		t.Fatalf("the request in flight did not complete within %v of its release", testutil.Patience())
	}
	if r.err != nil {
		t.Fatalf("the request in flight failed: %v", r.err)
	}
	resp := r.resp
	if got := resp.Header.Get("access-control-allow-origin"); got != "http://localhost:3000" {
		t.Errorf("the request in flight lost its CORS answer: allow-origin %q, status %d", got, resp.StatusCode)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	noFailures(t, e)
}

// TestProcessAdminEndpoints checks /metrics moving with traffic through the
// gateway, and /explain and /config on the real process.
func TestProcessAdminEndpoints(t *testing.T) {
	t.Parallel()
	path := testutil.WriteFile(t, t.TempDir(), "policy.yaml", decisionsPolicy)
	p := startCorsproc(t, "--config", path)
	up := startUpstream(t)
	e := startEnvoy(t, p.grpcAddr, up, nil)
	call(t, e, "GET", "api.example.com", "/v1/a", "origin", app)
	call(t, e, "OPTIONS", "api.example.com", "/v1/a", "origin", evil, "access-control-request-method", "PUT")
	call(t, e, "GET", "report.example.com", "/v1/r?"+set("access-control-allow-origin", evil), "origin", evil)
	for series, want := range map[string]float64{
		`corsproc_requests_total{class="actual",decision="allowed",policy="shop"}`:   1,
		`corsproc_requests_total{class="preflight",decision="denied",policy="shop"}`: 1,
		`corsproc_denials_total{policy="shop",reason="origin_not_allowed"}`:          1,
		`corsproc_report_mismatches_total{policy="report-api"}`:                      1,
		`corsproc_phase_duration_seconds_count{phase="response_headers"}`:            2,
	} {
		if got := p.metric(t, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	_, body := p.get(t, "/explain?origin="+app+"&host=api.example.com&request_method=DELETE")
	var x struct {
		Decision string `json:"decision"`
		Status   int    `json:"status"`
		Config   string `json:"config"`
	}
	if err := json.Unmarshal([]byte(body), &x); err != nil || x.Decision != "allowed" || x.Status != 204 || x.Config != path {
		t.Errorf("/explain: %v\n%s", err, body)
	}
	_, body = p.get(t, "/config")
	if !strings.Contains(body, `"name": "report-api"`) || !strings.Contains(body, `"sha256"`) {
		t.Errorf("/config:\n%s", body)
	}
	noFailures(t, e)
}

// serve runs the collector at GOGC=200 for its small live heap
// (cmd/corsproc/serve.go), and says so; an operator's GOGC wins.
func TestProcessCollectsGarbageAt200UnlessGOGCIsSet(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"without GOGC, serve collects at 200 and logs it", nil, "200"},
		{"an operator's GOGC=100 is heeded and logged", []string{"GOGC=100"}, "100"},
		{"an operator's GOGC=off is heeded and logged", []string{"GOGC=off"}, "off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startCorsprocEnv(t, tt.env)
			var got string
			for line := range strings.Lines(p.stderr.String()) {
				var rec struct {
					Msg  string `json:"msg"`
					GOGC string `json:"gogc"`
				}
				if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "corsproc serving" {
					got = rec.GOGC
				}
			}
			if got != tt.want {
				t.Errorf("the serving line says gogc %q, want %q:\n%s", got, tt.want, p.stderr.String())
			}
		})
	}
}
