package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/corsproc/corsproc/extproc"
)

// serveConfig is what `corsproc serve` was asked to do.
type serveConfig struct {
	config        string
	grpcAddr      string
	adminAddr     string
	tlsCert       string
	tlsKey        string
	tlsClientCA   string
	logLevel      slog.Level
	logFormat     string
	shutdownGrace time.Duration
	lameduck      time.Duration
	pprof         bool
	debugHeaders  bool
}

// serveHooks let tests run serve inside the test process: learn the bound
// addresses, send signals without signalling the process, and give the
// environment. Passed in the context, so the command's surface stays
// runServe(ctx, args, stdout, stderr).
type serveHooks struct {
	// listening is called once both listeners are bound and serving.
	listening func(grpcAddr, adminAddr net.Addr)
	// signals replaces the process's SIGHUP, SIGTERM and SIGINT.
	signals <-chan os.Signal
	// lookupEnv replaces os.LookupEnv.
	lookupEnv func(string) (string, bool)
}

type serveHooksKey struct{}

// The environment variable of each serve flag.
var serveEnv = []struct{ flag, env string }{
	{"config", "CORSPROC_CONFIG"},
	{"grpc-addr", "CORSPROC_GRPC_ADDR"},
	{"admin-addr", "CORSPROC_ADMIN_ADDR"},
	{"tls-cert", "CORSPROC_TLS_CERT"},
	{"tls-key", "CORSPROC_TLS_KEY"},
	{"tls-client-ca", "CORSPROC_TLS_CLIENT_CA"},
	{"log-level", "CORSPROC_LOG_LEVEL"},
	{"log-format", "CORSPROC_LOG_FORMAT"},
	{"shutdown-grace", "CORSPROC_SHUTDOWN_GRACE"},
	{"lameduck", "CORSPROC_LAMEDUCK"},
	{"pprof", "CORSPROC_PPROF"},
	{"debug-headers", "CORSPROC_DEBUG_HEADERS"},
}

// parseServeFlags reads the flags, each falling back to its environment
// variable; a flag on the command line wins. It returns an exit code >= 0
// when serve must stop there (2 for a usage error, 0 for --help).
func parseServeFlags(args []string, stderr io.Writer, lookupEnv func(string) (string, bool)) (serveConfig, int) {
	var c serveConfig
	fs := newFlagSet("serve", "serve [flags]", stderr)
	env := func(name string) string {
		for _, e := range serveEnv {
			if e.flag == name {
				return " (env " + e.env + ")"
			}
		}
		return ""
	}
	fs.StringVar(&c.config, "config", "", "the policy `file`, watched and hot-reloaded; default: an embedded development policy allowing http://localhost:* and http://127.0.0.1:*"+env("config"))
	fs.StringVar(&c.grpcAddr, "grpc-addr", ":9001", "ext_proc gRPC listener `address`, host:port or unix:///path"+env("grpc-addr"))
	fs.StringVar(&c.adminAddr, "admin-addr", ":9002", "admin HTTP listener `address` (/metrics, /healthz, /readyz, /config, /explain)"+env("admin-addr"))
	fs.StringVar(&c.tlsCert, "tls-cert", "", "serve gRPC over TLS with this PEM certificate `file` (reloaded when it changes)"+env("tls-cert"))
	fs.StringVar(&c.tlsKey, "tls-key", "", "the PEM private key `file` of --tls-cert"+env("tls-key"))
	fs.StringVar(&c.tlsClientCA, "tls-client-ca", "", "require client certificates signed by this PEM CA `file` (mTLS)"+env("tls-client-ca"))
	level := fs.String("log-level", "info", "log `level`: debug, info, warn or error; debug logs one line per denial"+env("log-level"))
	fs.StringVar(&c.logFormat, "log-format", "json", "log `format`: json or text"+env("log-format"))
	fs.DurationVar(&c.shutdownGrace, "shutdown-grace", 15*time.Second, "on SIGTERM: report NOT_SERVING at once, serve on for the lameduck part, then stop gracefully within the rest of this `duration`"+env("shutdown-grace"))
	var lameduck autoDuration
	fs.Var(&lameduck, "lameduck", "the `duration`, within --shutdown-grace, spent serving while NOT_SERVING, so Envoy and Kubernetes stop sending first (default a third of --shutdown-grace, at most 5s)"+env("lameduck"))
	fs.BoolVar(&c.pprof, "pprof", false, "serve /debug/pprof/ on the admin listener"+env("pprof"))
	fs.BoolVar(&c.debugHeaders, "debug-headers", false, "add x-corsproc-decision and x-corsproc-reason to responses, and name the refused item of a preflight (never in production)"+env("debug-headers"))

	for _, e := range serveEnv {
		v, ok := lookupEnv(e.env)
		if !ok || v == "" {
			continue
		}
		if err := fs.Set(e.flag, v); err != nil {
			fmt.Fprintf(stderr, "corsproc serve: %s=%q: %v\n", e.env, v, err)
			return c, 2
		}
	}
	if err := fs.Parse(args); err != nil {
		return c, flagExit(err)
	}
	usage := func(format string, a ...any) (serveConfig, int) {
		fmt.Fprintf(stderr, "corsproc serve: "+format+"\n", a...)
		return c, 2
	}
	if fs.NArg() > 0 {
		return usage("unexpected argument %q; the policy file is given with --config", fs.Arg(0))
	}
	if err := c.logLevel.UnmarshalText([]byte(*level)); err != nil {
		return usage("--log-level %q: want debug, info, warn or error", *level)
	}
	if c.logFormat != "json" && c.logFormat != "text" {
		return usage("--log-format %q: want json or text", c.logFormat)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return usage("--tls-cert and --tls-key go together")
	}
	if c.tlsClientCA != "" && c.tlsCert == "" {
		return usage("--tls-client-ca needs --tls-cert and --tls-key")
	}
	if c.grpcAddr == "" || c.adminAddr == "" {
		return usage("--grpc-addr and --admin-addr must not be empty")
	}
	if c.shutdownGrace < 0 {
		return usage("--shutdown-grace must not be negative")
	}
	c.lameduck = lameduck.d
	if !lameduck.set {
		c.lameduck = min(c.shutdownGrace/3, 5*time.Second)
	}
	if c.lameduck > c.shutdownGrace {
		return usage("--lameduck %v is longer than --shutdown-grace %v", c.lameduck, c.shutdownGrace)
	}
	return c, -1
}

// autoDuration is a duration flag whose default is worked out from other
// flags when it is not given; its zero String keeps the help text from
// printing a made-up default.
type autoDuration struct {
	d   time.Duration
	set bool
}

func (a *autoDuration) String() string {
	if a == nil || !a.set {
		return ""
	}
	return a.d.String()
}

func (a *autoDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	if d < 0 {
		return errors.New("must not be negative")
	}
	a.d, a.set = d, true
	return nil
}

func newLogger(c serveConfig, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.logLevel}
	if c.logFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// runServe runs the ext_proc gRPC server and the admin HTTP server until
// ctx is done or SIGTERM/SIGINT, then drains. It returns 0 after a clean
// shutdown, 1 when the policy (or certificate) fails to load or a listener
// fails, 2 on a usage error.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	hooks, _ := ctx.Value(serveHooksKey{}).(*serveHooks)
	if hooks == nil {
		hooks = &serveHooks{}
	}
	lookupEnv := os.LookupEnv
	if hooks.lookupEnv != nil {
		lookupEnv = hooks.lookupEnv
	}
	cfg, code := parseServeFlags(args, stderr, lookupEnv)
	if code >= 0 {
		return code
	}
	log := newLogger(cfg, stderr)
	// Caught from here on: SIGHUP's default action is to exit, and one sent
	// while the policy loads (a config reloader, an eager operator) must
	// not kill the process. Acted on once serving.
	signals := hooks.signals
	if signals == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
		defer signal.Stop(ch)
		signals = ch
	}

	metrics := extproc.NewMetrics()
	policies, err := extproc.LoadPolicies(cfg.config, metrics, log)
	if err != nil {
		fmt.Fprintf(stderr, "%s\ncorsproc serve: refusing to start: the policy file %s failed to load\n", err, cfg.config)
		return 1
	}
	var creds credentials.TransportCredentials
	var certs *certReloader
	if cfg.tlsCert != "" {
		if certs, err = newCertReloader(cfg.tlsCert, cfg.tlsKey, cfg.tlsClientCA, log); err != nil {
			fmt.Fprintf(stderr, "corsproc serve: refusing to start: %v\n", err)
			return 1
		}
		creds = credentials.NewTLS(certs.serverConfig())
	}
	grpcLn, err := listenGRPC(cfg.grpcAddr)
	if err != nil {
		fmt.Fprintf(stderr, "corsproc serve: gRPC listener: %v\n", err)
		return 1
	}
	adminLn, err := net.Listen("tcp", cfg.adminAddr)
	if err != nil {
		grpcLn.Close()
		fmt.Fprintf(stderr, "corsproc serve: admin listener: %v\n", err)
		return 1
	}

	var draining atomic.Bool
	gs := newGRPCServer(creds)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	extprocv3.RegisterExternalProcessorServer(gs, extproc.NewServer(policies, metrics, extproc.Options{
		DebugHeaders: cfg.debugHeaders, Logger: log,
	}))
	// A policy is loaded: serving from the first connection on.
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(extprocv3.ExternalProcessor_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	admin := &http.Server{
		Handler: extproc.NewAdminHandler(policies, metrics, extproc.AdminOptions{
			Pprof: cfg.pprof, DebugHeaders: cfg.debugHeaders, Draining: draining.Load,
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}

	failed := make(chan error, 2)
	var servers sync.WaitGroup
	servers.Go(func() {
		if err := gs.Serve(grpcLn); err != nil {
			failed <- fmt.Errorf("gRPC listener: %w", err)
		}
	})
	servers.Go(func() {
		if err := admin.Serve(adminLn); !errors.Is(err, http.ErrServerClosed) {
			failed <- fmt.Errorf("admin listener: %w", err)
		}
	})
	watchCtx, stopWatching := context.WithCancel(context.Background())
	var watchers sync.WaitGroup
	watchers.Go(func() { _ = policies.Watch(watchCtx) })
	if certs != nil {
		watchers.Go(func() { certs.watch(watchCtx) })
	}

	set := policies.Set()
	log.Info("corsproc serving", "grpc_addr", grpcLn.Addr().String(), "admin_addr", adminLn.Addr().String(),
		"policy_file", set.File(), "sha256", set.SHA256(), "policies", len(set.Policies()),
		"tls", certs != nil, "mtls", cfg.tlsClientCA != "", "debug_headers", cfg.debugHeaders, "pprof", cfg.pprof)
	if cfg.debugHeaders {
		log.Warn("--debug-headers is on: responses carry x-corsproc-* headers and refused preflights name their cause; never in production")
	}
	if hooks.listening != nil {
		hooks.listening(grpcLn.Addr(), adminLn.Addr())
	}

	// force is closed by a second SIGTERM or SIGINT: stop at once. The first
	// one may arrive both here and through ctx (main's NotifyContext).
	force := make(chan struct{})
	stopSignals := make(chan struct{})
	shutdown := make(chan string, 1)
	go func() {
		terms := 0
		for {
			select {
			case <-stopSignals:
				return
			case sig := <-signals:
				if sig == syscall.SIGHUP {
					log.Info("SIGHUP: reloading the policy file")
					_ = policies.Reload()
					continue
				}
				terms++
				switch terms {
				case 1:
					shutdown <- sig.String()
				case 2:
					log.Warn("second signal: stopping now", "signal", sig.String())
					close(force)
				}
			}
		}
	}()

	code = 0
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", "context done")
	case sig := <-shutdown:
		log.Info("shutting down", "cause", sig)
	case err := <-failed:
		log.Error("a listener failed; shutting down", "error", err.Error())
		code = 1
	}

	// Drain: NOT_SERVING at once, serve on for the lameduck part, then
	// GracefulStop for the rest of the grace, then Stop.
	draining.Store(true)
	hs.Shutdown()
	log.Info("draining: health reports NOT_SERVING, serving on for the lameduck period",
		"lameduck", cfg.lameduck.String(), "shutdown_grace", cfg.shutdownGrace.String())
	if code == 0 {
		select {
		case <-time.After(cfg.lameduck):
		case <-force:
		}
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-force:
		gs.Stop()
	case <-time.After(cfg.shutdownGrace - cfg.lameduck):
		log.Warn("shutdown grace is over: closing the streams still open")
		gs.Stop()
	}
	<-stopped
	adminCtx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = admin.Shutdown(adminCtx)
	cancel()
	_ = admin.Close()
	stopWatching()
	watchers.Wait()
	close(stopSignals)
	servers.Wait()
	log.Info("corsproc stopped")
	return code
}

// newGRPCServer sets the server up for Envoy: one long-lived HTTP/2
// connection carrying a short stream per request.
func newGRPCServer(creds credentials.TransportCredentials) *grpc.Server {
	opts := []grpc.ServerOption{
		// Envoy pings only when its cluster asks (connection_keepalive);
		// tolerate pings every 5s, with or without streams, rather than
		// answering GOAWAY too_many_pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			// Ping an idle connection after 30s and drop it if no answer
			// within 10s, so a vanished Envoy does not hold resources.
			Time:    30 * time.Second,
			Timeout: 10 * time.Second,
			// Envoy keeps one connection per corsproc endpoint for ever;
			// ending it every 10 minutes (GOAWAY, streams finish within a
			// minute) lets new replicas behind a Service get their share.
			MaxConnectionAge:      10 * time.Minute,
			MaxConnectionAgeGrace: time.Minute,
		}),
		// Stop and GracefulStop return only once every handler has.
		grpc.WaitForHandlers(true),
	}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	return grpc.NewServer(opts...)
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
