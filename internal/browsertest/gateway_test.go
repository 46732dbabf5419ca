package browsertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/corsproc/corsproc/extproc"
	"github.com/corsproc/corsproc/internal/envoytest"
	"github.com/corsproc/corsproc/policy"
)

// gateway is the real chain in front of a case's upstreams: the corsproc
// ext_proc gRPC server (extproc, as `corsproc serve` wires it, watching its
// policy file) on a loopback port, and the envoytest Envoy stand-in driving
// it over gRPC and forwarding to the upstreams by route.
type gateway struct {
	path     string // the policy file, watched
	policies *extproc.Policies
	metrics  *extproc.Metrics
	envoy    *envoytest.Envoy
	logs     *syncBuffer
}

// messageTimeout is Envoy's message_timeout for the stand-in. envoy.yaml
// says 200 ms; a loaded 2-core machine running -race can exceed that, and a
// timeout here would only make a case flaky, not prove anything about CORS.
const messageTimeout = 5 * time.Second

// startGateway writes the (expanded) policy to a file, serves corsproc with
// it and puts the Envoy stand-in in front, with the filter settings of
// envoy/envoy.yaml (headers both ways, mode override allowed, the route
// name as an attribute) except failure_mode_allow: off here, so that a
// processor failure shows as an error instead of a request let through.
func startGateway(t testing.TB, policyYAML string, routes []route, debug bool) *gateway {
	t.Helper()
	g := &gateway{path: filepath.Join(t.TempDir(), "policy.yaml"), metrics: extproc.NewMetrics(), logs: &syncBuffer{}}
	if err := os.WriteFile(g.path, []byte(policyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, err := extproc.LoadPolicies(g.path, g.metrics, log)
	if err != nil {
		t.Fatalf("corsproc refused the policy: %v\n%s", err, policyYAML)
	}
	g.policies = p
	ctx, stopWatch := context.WithCancel(context.Background())
	var watching sync.WaitGroup
	watching.Go(func() { _ = p.Watch(ctx) })

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, extproc.NewServer(p, g.metrics, extproc.Options{DebugHeaders: debug, Logger: log}))
	served := make(chan struct{})
	go func() { defer close(served); _ = gs.Serve(ln) }()

	cfg := envoytest.Config{
		Processor:         ln.Addr().String(),
		MessageTimeout:    messageTimeout,
		AllowModeOverride: true,
		RequestAttributes: []string{"xds.route_name"},
	}
	for _, r := range routes {
		cfg.Routes = append(cfg.Routes, envoytest.Route{Name: r.Name, Host: r.Host, PathPrefix: r.PathPrefix, Upstream: r.Upstream})
	}
	g.envoy, err = envoytest.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = g.envoy.Close()
		gs.Stop()
		<-served
		stopWatch()
		watching.Wait()
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
	failures := g.reloadFailures()
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
		done = func() bool { return g.reloadFailures() > failures }
	}
	start := time.Now()
	for !done() {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("corsproc did not act on the new %s within 10s (SPEC: 2s); log:\n%s", g.path, g.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("corsproc acted on the new policy file in %v", time.Since(start).Round(time.Millisecond))
}

// reloadFailures reads corsproc_config_reloads_total{result="failure"}.
func (g *gateway) reloadFailures() int {
	const prefix = `corsproc_config_reloads_total{result="failure"} `
	for _, line := range strings.Split(g.Metrics(), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// Metrics returns corsproc's Prometheus exposition.
func (g *gateway) Metrics() string {
	rec := httptest.NewRecorder()
	g.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// Logs is what corsproc logged (debug level: every denial and its reason).
func (g *gateway) Logs() string { return g.logs.String() }

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimRight(s.b.String(), "\n")
}
