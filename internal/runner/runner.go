// Package runner is `corsproc serve`: it owns the serve configuration
// ([Config], whose fields are the flags and CORSPROC_* variables), builds
// the ext_proc gRPC and admin HTTP listeners with the product's connection
// limits, health, policy and certificate reload, and runs until its
// context ends, then drains. package main parses and calls it; every test
// suite that needs a running corsproc starts it through here, so tests and
// production run the same server.
package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"k8s.io/klog/v2"

	"github.com/corsproc/corsproc/extproc"
	"github.com/corsproc/corsproc/internal/grpcserver"
	"github.com/corsproc/corsproc/internal/kube"
)

// Options are what a caller gives the runner beyond [Config]: where the log
// goes and how reload and a forced stop arrive (from [Signals] in the
// product; from the test in tests).
type Options struct {
	// Log receives the log lines; nil means os.Stderr.
	Log io.Writer
	// Reload, on each receive, reloads the policy file (SIGHUP).
	Reload <-chan struct{}
	// Force, once closed, skips the rest of the drain (a second SIGTERM).
	Force <-chan struct{}
	// ClientGoLogs sends the log lines of client-go (--kubernetes) to Log.
	// They go through klog, one logger for the whole process, which may
	// only be set before any client runs: the product sets it; tests that
	// run several servers in one process leave it on stderr.
	ClientGoLogs bool
}

// Runner is a loaded policy and two bound listeners, ready to [Runner.Run].
type Runner struct {
	cfg      Config
	log      *slog.Logger
	opts     Options
	policies *extproc.Policies
	metrics  *extproc.Metrics
	certs    *certReloader
	grpcLn   net.Listener
	adminLn  net.Listener
	health   *health
	grpc     *grpc.Server
	admin    *http.Server
	kube     *kube.Controller // nil without --kubernetes
}

// New loads the policy file (and the TLS files), binds both listeners and
// builds the servers; nothing is served until Run. Its errors are meant
// for the operator as they are.
func New(cfg Config, o Options) (*Runner, error) {
	if err := cfg.Check(); err != nil {
		return nil, fmt.Errorf("corsproc serve: %w", err)
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	r := &Runner{cfg: cfg, opts: o, log: newLogger(cfg, o.Log), metrics: extproc.NewMetricsObserving(cfg.ObserveTop), health: newHealth()}
	var err error
	r.policies, err = extproc.LoadPolicies(cfg.PolicyFile, r.metrics, r.log)
	if err != nil {
		return nil, fmt.Errorf("%s\ncorsproc serve: refusing to start: the policy file %s failed to load", err, cfg.PolicyFile)
	}
	if cfg.Kubernetes {
		if o.ClientGoLogs {
			klog.SetSlogLogger(r.log.With("component", "client-go"))
		}
		if r.kube, err = newController(cfg, r.log); err != nil {
			return nil, fmt.Errorf("corsproc serve: --kubernetes: %w", err)
		}
		r.policies.SetComposer(r.kube.Compose)
		r.kube.Bind(r.policies.Recompose)
		r.health.waitFor("listing the CORSPolicy objects")
	}
	var creds credentials.TransportCredentials
	if cfg.TLSCert != "" {
		if r.certs, err = newCertReloader(cfg.TLSCert, cfg.TLSKey, cfg.TLSClientCA, r.log); err != nil {
			return nil, fmt.Errorf("corsproc serve: refusing to start: %w", err)
		}
		creds = credentials.NewTLS(r.certs.serverConfig())
	}
	if r.grpcLn, err = listenGRPC(cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("corsproc serve: gRPC listener: %w", err)
	}
	if r.adminLn, err = net.Listen("tcp", cfg.AdminAddr); err != nil {
		r.grpcLn.Close()
		return nil, fmt.Errorf("corsproc serve: admin listener: %w", err)
	}
	limits := grpcserver.Defaults
	limits.MaxConcurrentStreams, limits.HandshakeTimeout = cfg.MaxConcurrentStreams, cfg.HandshakeTimeout
	r.grpc = grpc.NewServer(grpcserver.Options(limits, creds)...)
	healthpb.RegisterHealthServer(r.grpc, r.health)
	extprocv3.RegisterExternalProcessorServer(r.grpc, extproc.NewServer(r.policies, r.metrics, extproc.Options{
		DebugHeaders: cfg.DebugHeaders, Logger: r.log,
	}))
	r.admin = &http.Server{
		Handler: extproc.NewAdminHandler(r.policies, r.metrics, extproc.AdminOptions{
			Pprof: cfg.Pprof, DebugHeaders: cfg.DebugHeaders, Readyz: r.health,
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}
	return r, nil
}

// GRPCAddr is the bound ext_proc listener's address.
func (r *Runner) GRPCAddr() net.Addr { return r.grpcLn.Addr() }

// AdminAddr is the bound admin listener's address.
func (r *Runner) AdminAddr() net.Addr { return r.adminLn.Addr() }

// Policies is the running policy set.
func (r *Runner) Policies() *extproc.Policies { return r.policies }

// Kubernetes is the CORSPolicy controller, nil without --kubernetes.
func (r *Runner) Kubernetes() *kube.Controller { return r.kube }

// Metrics are the server's metrics, as /metrics serves them.
func (r *Runner) Metrics() *extproc.Metrics { return r.metrics }

// Run serves until ctx is done, then drains: NOT_SERVING at once (gRPC
// health and /readyz), serving on for the lameduck, Watch streams ended,
// GracefulStop for the rest of the grace, then Stop. It returns nil after
// a clean shutdown, and an error when a listener failed.
func (r *Runner) Run(ctx context.Context) error {
	failed := make(chan error, 2)
	var servers sync.WaitGroup
	servers.Go(func() {
		if err := r.grpc.Serve(r.grpcLn); err != nil {
			failed <- fmt.Errorf("gRPC listener: %w", err)
		}
	})
	servers.Go(func() {
		if err := r.admin.Serve(r.adminLn); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("admin listener: %w", err)
		}
	})
	stopBackground := r.background()
	r.logServing()

	var runErr error
	select {
	case <-ctx.Done():
		cause := "context done"
		if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
			cause = c.Error()
		}
		r.log.Info("shutting down", "cause", cause)
	case err := <-failed:
		r.log.Error("a listener failed; shutting down", "error", err.Error())
		runErr = err
	}
	r.drain(runErr == nil)
	stopBackground()
	servers.Wait()
	r.log.Info("corsproc stopped")
	return runErr
}

// background starts the policy and certificate watchers and the SIGHUP
// reloads; the returned func stops them and waits.
func (r *Runner) background() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = r.policies.Watch(ctx) })
	if r.certs != nil {
		wg.Go(func() { r.certs.watch(ctx) })
	}
	if r.kube != nil {
		wg.Go(func() {
			if err := r.kube.Run(ctx); err != nil {
				r.log.Error("the Kubernetes controller stopped", "error", err.Error())
			}
		})
		wg.Go(func() {
			// Ready once the objects are listed and run: a replica that
			// served before would enforce the file's policies alone.
			t := time.NewTicker(50 * time.Millisecond)
			defer t.Stop()
			for !r.kube.Ready() {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
			r.health.started()
		})
	}
	if r.opts.Reload != nil {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-r.opts.Reload:
					r.log.Info("SIGHUP: reloading the policy file")
					_ = r.policies.Reload()
				}
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

func (r *Runner) logServing() {
	cfg, set := r.cfg, r.policies.Set()
	r.log.Info("corsproc serving", "grpc_addr", r.grpcLn.Addr().String(), "admin_addr", r.adminLn.Addr().String(),
		"policy_file", set.File(), "sha256", set.SHA256(), "policies", len(set.Policies()),
		"tls", r.certs != nil, "mtls", cfg.TLSClientCA != "", "debug_headers", cfg.DebugHeaders, "pprof", cfg.Pprof,
		"max_concurrent_streams", cfg.MaxConcurrentStreams, "handshake_timeout", cfg.HandshakeTimeout.String(),
		"gogc", gogc())
	if cfg.DebugHeaders {
		r.log.Warn("--debug-headers is on: responses carry x-corsproc-* headers and refused preflights name their cause; never in production")
	}
}

// gogc is the garbage collector's target as the runtime holds it: serve
// sets 200 unless GOGC is set (cmd/corsproc/serve.go), and an operator
// who set GOGC should see it was heeded.
func gogc() string {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return "unknown"
	}
	// GOGC=off reads as the largest uint64: no target at all.
	if p := s[0].Value.Uint64(); p <= math.MaxInt32 {
		return strconv.FormatUint(p, 10)
	}
	return "off"
}

// drain is the shutdown sequence, in one place: NOT_SERVING, the lameduck
// (skipped when a listener failed, or when Force closes), Watch streams
// ended, GracefulStop bounded by the rest of the grace, then Stop.
func (r *Runner) drain(lameduck bool) {
	cfg := r.cfg
	force := r.opts.Force
	if force == nil {
		force = make(chan struct{})
	}
	r.health.drain()
	r.log.Info("draining: health reports NOT_SERVING, serving on for the lameduck period",
		"lameduck", cfg.Lameduck.String(), "shutdown_grace", cfg.ShutdownGrace.String())
	if lameduck {
		t := time.NewTimer(cfg.Lameduck)
		select {
		case <-t.C:
		case <-force:
			r.log.Warn("second signal: stopping now")
		}
		t.Stop()
	}
	// Health watchers have been told NOT_SERVING; keeping their streams
	// open would make GracefulStop wait for the whole grace.
	r.health.endWatches()
	stopped := make(chan struct{})
	go func() { r.grpc.GracefulStop(); close(stopped) }()
	grace := time.NewTimer(cfg.ShutdownGrace - cfg.Lameduck)
	select {
	case <-stopped:
	case <-force:
		r.grpc.Stop()
	case <-grace.C:
		r.log.Warn("shutdown grace is over: closing the streams still open")
		r.grpc.Stop()
	}
	grace.Stop()
	<-stopped
	adminCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = r.admin.Shutdown(adminCtx)
	cancel()
	_ = r.admin.Close()
}

func newLogger(c Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// listenGRPC listens on host:port, or on a unix socket for unix:///path
// (or unix:path). A stale socket file nobody listens on is replaced.
func listenGRPC(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok {
		path, ok = strings.CutPrefix(addr, "unix:")
	}
	if !ok {
		return net.Listen("tcp", addr)
	}
	if path == "" {
		return nil, fmt.Errorf("%q: no socket path", addr)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another server is listening there", path)
		}
		_ = os.Remove(path)
	}
	return net.Listen("unix", path)
}
