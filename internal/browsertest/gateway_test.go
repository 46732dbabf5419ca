package browsertest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corsproc/corsproc/extproc"
	"github.com/corsproc/corsproc/internal/envoytest"
	"github.com/corsproc/corsproc/internal/runner"
	"github.com/corsproc/corsproc/internal/testutil"
	"github.com/corsproc/corsproc/policy"
)

// gateway is the real chain in front of a case's upstreams: corsproc as
// `corsproc serve` runs it (internal/runner: the product's listeners,
// options and policy watcher) on loopback ports, and the envoytest Envoy
// stand-in driving it over gRPC and forwarding to the upstreams by route.
type gateway struct {
	path     string // the policy file, watched
	policies *extproc.Policies
	metrics  *extproc.Metrics
	envoy    *envoytest.Envoy
	logs     *testutil.Buffer
}

// startGateway writes the (expanded) policy to a file, serves corsproc with
// it and puts the Envoy stand-in in front, with the filter settings of
// envoy/envoy.yaml (headers both ways, mode override allowed, the route
// name as an attribute) except failure_mode_allow: off here, so that a
// processor failure shows as an error instead of a request let through.
// Envoy's 200 ms message timeout becomes testutil.MessageTimeout: a
// timeout here would only make a case flaky, not prove anything about CORS.
func startGateway(t testing.TB, policyYAML string, routes []route, debug bool) *gateway {
	t.Helper()
	g := &gateway{path: filepath.Join(t.TempDir(), "policy.yaml"), logs: &testutil.Buffer{}}
	if err := os.WriteFile(g.path, []byte(policyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := runner.Defaults()
	cfg.PolicyFile = g.path
	cfg.GRPCAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.LogLevel, cfg.LogFormat = slog.LevelDebug, "text"
	cfg.DebugHeaders = debug
	cfg.SetLameduck(0) // nothing probes a case's corsproc: stop at once
	r, err := runner.New(cfg, runner.Options{Log: g.logs})
	if err != nil {
		t.Fatalf("corsproc refused the policy: %v\n%s", err, policyYAML)
	}
	g.policies, g.metrics = r.Policies(), r.Metrics()
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- r.Run(ctx) }()

	ecfg := envoytest.Config{
		Processor:         r.GRPCAddr().String(),
		MessageTimeout:    testutil.MessageTimeout(),
		AllowModeOverride: true,
		RequestAttributes: []string{"xds.route_name"},
	}
	for _, r := range routes {
		ecfg.Routes = append(ecfg.Routes, envoytest.Route{Name: r.Name, Host: r.Host, PathPrefix: r.PathPrefix, Upstream: r.Upstream})
	}
	g.envoy, err = envoytest.Start(ecfg)
	if err != nil {
		stop()
		<-ran
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = g.envoy.Close()
		stop()
		select {
		case err := <-ran:
			if err != nil {
				t.Errorf("corsproc: %v", err)
			}
		case <-time.After(testutil.Patience()):
			t.Errorf("corsproc did not stop within %v", testutil.Patience())
		}
	})
	return g
}

// Addr is the stand-in Envoy's listener, 127.0.0.1:PB.
func (g *gateway) Addr() string { return g.envoy.Addr() }

// LocalReplies counts the requests corsproc answered itself
// (ImmediateResponse: preflights in enforce mode).
func (g *gateway) LocalReplies() int64 { return g.envoy.Stats().ImmediateResponses }

// Problems lists what went wrong between the stand-in and corsproc: a
// healthy chain has none.
func (g *gateway) Problems() []string {
	s := g.envoy.Stats()
	var out []string
	for _, c := range []struct {
		name string
		n    int64
	}{
		{"message timeouts", s.MessageTimeouts},
		{"failed streams", s.StreamsFailed},
		{"streams closed by the processor", s.StreamsClosedByProcessor},
		{"spurious messages", s.SpuriousMessages},
		{"rejected header mutations", s.RejectedHeaderMutations},
		{"failures let through", s.FailureModeAllowed},
	} {
		if c.n != 0 {
			out = append(out, fmt.Sprintf("%d %s", c.n, c.name))
		}
	}
	if s.StreamsStarted != s.Requests {
		out = append(out, fmt.Sprintf("%d requests but %d ext_proc streams", s.Requests, s.StreamsStarted))
	}
	return out
}

// Reload replaces the policy file the way a Kubernetes ConfigMap update or
// an editor's save-by-rename does (a new inode renamed over it) and waits
// until corsproc's own watcher has swapped the new policy in or, for a file
// that does not load, has counted the failed reload.
func (g *gateway) Reload(t testing.TB, policyYAML string) {
	t.Helper()
	_, perr := policy.Parse(g.path, []byte(policyYAML))
	failures := g.reloadFailures(t)
	tmp := g.path + ".new"
	if err := os.WriteFile(tmp, []byte(policyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, g.path); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(policyYAML))
	want := hex.EncodeToString(sum[:])
	done := func() bool { return g.policies.Set().SHA256() == want }
	if perr != nil {
		done = func() bool { return g.reloadFailures(t) > failures }
	}
	start := time.Now()
	for !done() {
		if time.Since(start) > testutil.Patience() {
			t.Fatalf("corsproc did not act on the new %s within %v (the contract: 2 s); log:\n%s", g.path, testutil.Patience(), g.Logs())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("corsproc acted on the new policy file in %v", time.Since(start).Round(time.Millisecond))
}

// reloadFailures reads corsproc_config_reloads_total{result="failure"}.
func (g *gateway) reloadFailures(t testing.TB) int {
	v, _ := testutil.Sample(t, g.Metrics(), `corsproc_config_reloads_total{result="failure"}`)
	return int(v)
}

// Metrics returns corsproc's Prometheus exposition.
func (g *gateway) Metrics() string {
	rec := httptest.NewRecorder()
	g.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// Logs is what corsproc logged (debug level: every denial and its reason).
func (g *gateway) Logs() string { return strings.TrimRight(g.logs.String(), "\n") }
