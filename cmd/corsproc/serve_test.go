package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/corsproc/corsproc/internal/runner"
	"github.com/corsproc/corsproc/internal/testutil"
)

// served is one `corsproc serve` running inside the test.
type served struct {
	grpcAddr  string // host:port, or unix:///path
	adminURL  string
	stderr    *testutil.Buffer
	signals   chan os.Signal
	cancel    context.CancelFunc
	exit      chan int
	exitCode  int
	exited    bool
	dialOpts  []grpc.DialOption
	unixLabel string
}

// startServe runs serve with args plus loopback listeners on free ports,
// and waits until it listens. env stands in for the environment; s.signal
// stands in for the process's signals, through the product's own
// [runner.Signals].
func startServe(t *testing.T, env map[string]string, args ...string) *served {
	t.Helper()
	s := &served{stderr: &testutil.Buffer{}, signals: make(chan os.Signal, 4), exit: make(chan int, 1)}
	addrs := make(chan [2]net.Addr, 1)
	parent, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	ctx, reload, force := runner.Signals(parent, s.signals)
	senv := serveEnv{
		lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		runner:    runner.Options{Reload: reload, Force: force},
		listening: func(g, a net.Addr) { addrs <- [2]net.Addr{g, a} },
	}
	full := append([]string{"--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--log-level", "debug", "--shutdown-grace", "1s"}, args...)
	go func() { s.exit <- runServe(ctx, full, io.Discard, s.stderr, senv) }()
	select {
	case a := <-addrs:
		if a[0].Network() == "unix" {
			s.grpcAddr = "unix://" + a[0].String()
		} else {
			s.grpcAddr = a[0].String()
		}
		s.adminURL = "http://" + a[1].String()
	case code := <-s.exit:
		cancel()
		t.Fatalf("serve exited with %d before listening:\n%s", code, s.stderr.String())
	case <-time.After(testutil.Patience()):
		cancel()
		t.Fatalf("serve did not listen within %v:\n%s", testutil.Patience(), s.stderr.String())
	}
	t.Cleanup(func() {
		s.cancel()
		s.wait(t)
		if t.Failed() {
			t.Logf("serve's log:\n%s", s.stderr.String())
		}
	})
	return s
}

// wait returns serve's exit code, failing the test if it hangs.
func (s *served) wait(t *testing.T) int {
	d := testutil.Patience()
	t.Helper()
	if s.exited {
		return s.exitCode
	}
	select {
	case s.exitCode = <-s.exit:
		s.exited = true
		return s.exitCode
	case <-time.After(d):
		t.Fatalf("serve did not exit within %v", d)
		return -1
	}
}

func (s *served) signal(sig os.Signal) { s.signals <- sig }

// conn dials the gRPC listener.
func (s *served) conn(t *testing.T, opts ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	if len(opts) == 0 {
		opts = []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	}
	c, err := grpc.NewClient(s.grpcAddr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func healthStatus(t *testing.T, c *grpc.ClientConn, service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience())
	defer cancel()
	r, err := healthpb.NewHealthClient(c).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	return r.GetStatus(), err
}

// get fetches an admin path and returns the status and body.
func (s *served) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.adminURL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// metric reads one sample from /metrics: series is the name with its
// labels exactly as exposed, e.g. `corsproc_config_reloads_total{result="success"}`.
func (s *served) metric(t *testing.T, series string) float64 {
	t.Helper()
	v, ok := testutil.Sample(t, testutil.Scrape(t, s.adminURL+"/metrics"), series)
	if !ok {
		t.Fatalf("no series %s in /metrics", series)
	}
	return v
}

// preflightReply sends one preflight, as Envoy does, and returns the status
// of corsproc's local answer (0 when it lets the request continue).
func preflightReply(t *testing.T, c *grpc.ClientConn, host, origin string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience())
	defer cancel()
	stream, err := extprocv3.NewExternalProcessorClient(c).Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{EndOfStream: true, Headers: testutil.HeaderMap(":method", "OPTIONS", ":authority", host, ":path", "/",
			"origin", origin, "access-control-request-method", "PUT")}}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := stream.Recv()
	if err != nil {
		t.Fatalf("recv: %v", err)
	}
	_ = stream.CloseSend()
	return int(r.GetImmediateResponse().GetStatus().GetCode())
}

// policyAllowing is a policy file that allows origin on every host.
func policyAllowing(origin string) string {
	return "policies:\n  - name: all\n    allowed_origins: [\"" + origin + "\"]\n"
}

// TestServeStartsOnTheEmbeddedPolicyAndAnswersHealth is the issue's "done
// when": serve without --config runs the development policy, warns, and
// answers health checks SERVING.
func TestServeStartsOnTheEmbeddedPolicyAndAnswersHealth(t *testing.T) {
	t.Parallel()
	s := startServe(t, nil)
	c := s.conn(t)
	for _, svc := range []string{"", "envoy.service.ext_proc.v3.ExternalProcessor"} {
		st, err := healthStatus(t, c, svc)
		if err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q: %v %v, want SERVING", svc, st, err)
		}
	}
	if got := preflightReply(t, c, "any.example.com", "http://localhost:5173"); got != 204 {
		t.Errorf("a localhost preflight got %d, want 204 from the development policy", got)
	}
	if !strings.Contains(s.stderr.String(), "embedded development policy") {
		t.Errorf("no warning about the embedded policy in the log:\n%s", s.stderr.String())
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/debug/pprof/": 404} {
		if code, _ := s.get(t, path); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
	s.cancel()
	if code := s.wait(t); code != 0 {
		t.Errorf("exit code %d after a clean shutdown, want 0", code)
	}
}

// TestServeUsage checks the flags: each mistake is a usage error (2), and
// --help is not one.
func TestServeUsage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want int
		says string // on stderr
	}{
		{"an unknown flag is a usage error", nil, []string{"--nope"}, 2, "-nope"},
		{"a positional argument is a usage error", nil, []string{"policy.yaml"}, 2, "--config"},
		{"an unknown log level is a usage error", nil, []string{"--log-level", "verbose"}, 2, "want debug, info, warn or error"},
		{"an unknown log format is a usage error", nil, []string{"--log-format", "xml"}, 2, "want json or text"},
		{"a certificate without its key is a usage error", nil, []string{"--tls-cert", "c.pem"}, 2, "go together"},
		{"a client CA without a certificate is a usage error", nil, []string{"--tls-client-ca", "ca.pem"}, 2, "needs --tls-cert"},
		{"a lameduck longer than the grace is a usage error", nil, []string{"--shutdown-grace", "1s", "--lameduck", "2s"}, 2, "longer than --shutdown-grace"},
		{"no stream at all per connection is a usage error", nil, []string{"--max-concurrent-streams", "0"}, 2, "want a whole number from 1"},
		{"a handshake timeout of zero is a usage error", nil, []string{"--handshake-timeout", "0s"}, 2, "want a positive duration"},
		{"a bad value in an environment variable is a usage error", map[string]string{"CORSPROC_SHUTDOWN_GRACE": "soon"}, nil, 2, `CORSPROC_SHUTDOWN_GRACE="soon": want a duration`},
		{"a bad boolean in an environment variable names the variable and what it accepts", map[string]string{"CORSPROC_PPROF": "yes"}, nil, 2, `CORSPROC_PPROF="yes": want true or false`},
		{"--help is no error", nil, []string{"--help"}, 0, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var stderr testutil.Buffer
			env := serveEnv{lookupEnv: func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }}
			if got := runServe(t.Context(), c.args, io.Discard, &stderr, env); got != c.want {
				t.Errorf("exit %d, want %d; stderr:\n%s", got, c.want, stderr.String())
			}
			if !strings.Contains(stderr.String(), c.says) {
				t.Errorf("stderr does not say %q:\n%s", c.says, stderr.String())
			}
		})
	}
}

// TestServeHelpGoesToStdout checks --help prints every flag, with its
// variable, to stdout (so it pipes into a pager) and nothing to stderr.
func TestServeHelpGoesToStdout(t *testing.T) {
	t.Parallel()
	var stdout, stderr testutil.Buffer
	if code := runServe(t.Context(), []string{"--help"}, &stdout, &stderr, serveEnv{}); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if stderr.String() != "" {
		t.Errorf("--help wrote to stderr:\n%s", stderr.String())
	}
	cfg := runner.Defaults()
	for _, f := range cfg.Flags() {
		if !strings.Contains(stdout.String(), "-"+f.Name+" ") && !strings.Contains(stdout.String(), "-"+f.Name+"\n") {
			t.Errorf("--help does not list --%s", f.Name)
		}
		if !strings.Contains(stdout.String(), f.Env) {
			t.Errorf("--help does not name %s", f.Env)
		}
	}
}

// TestServeRefusesToStart checks exit 1 for a policy that fails to load,
// with every error printed, and for a listener that cannot bind.
func TestServeRefusesToStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := testutil.WriteFile(t, dir, "bad.yaml", `policies:
  - name: a
    allowed_origins: ["https://a.example.com/"]
  - name: a
    allow_methods: [TRACE]
`)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	cases := []struct {
		name    string
		args    []string
		stderrs []string
	}{
		{"an invalid policy prints every error and exits 1", []string{"--config", bad},
			[]string{`policies[0] "a": allowed_origins[0]`, `policies[1] "a"`, "TRACE", "refusing to start"}},
		{"a missing policy file exits 1", []string{"--config", filepath.Join(dir, "missing.yaml")},
			[]string{"missing.yaml", "refusing to start"}},
		{"a gRPC address in use exits 1", []string{"--grpc-addr", busy.Addr().String(), "--admin-addr", "127.0.0.1:0"},
			[]string{"gRPC listener"}},
		{"an admin address in use exits 1", []string{"--grpc-addr", "127.0.0.1:0", "--admin-addr", busy.Addr().String()},
			[]string{"admin listener"}},
		{"a missing certificate exits 1", []string{"--grpc-addr", "127.0.0.1:0", "--tls-cert", filepath.Join(dir, "c.pem"), "--tls-key", filepath.Join(dir, "k.pem")},
			[]string{"--tls-cert", "refusing to start"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var stderr testutil.Buffer
			ctx, cancel := context.WithTimeout(t.Context(), testutil.Patience()) // serve would run on
			defer cancel()
			env := serveEnv{lookupEnv: func(string) (string, bool) { return "", false }}
			args := append([]string{"--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, c.args...)
			if got := runServe(ctx, args, io.Discard, &stderr, env); got != 1 {
				t.Fatalf("exit %d, want 1; stderr:\n%s", got, stderr.String())
			}
			for _, want := range c.stderrs {
				if !strings.Contains(stderr.String(), want) {
					t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
				}
			}
		})
	}
}

// TestServeReadsTheEnvironment checks that every address and the policy
// file come from CORSPROC_* when no flag is given, and that a flag wins.
func TestServeReadsTheEnvironment(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fromEnv := testutil.WriteFile(t, dir, "env.yaml", policyAllowing("https://env.example.com"))
	s := startServe(t, map[string]string{"CORSPROC_CONFIG": fromEnv, "CORSPROC_LOG_FORMAT": "text"})
	if _, body := s.get(t, "/config"); !strings.Contains(body, `"file": "`+fromEnv+`"`) {
		t.Errorf("/config does not run CORSPROC_CONFIG's file:\n%s", body)
	}
	// The "serving" line may come just after the listeners answer.
	testutil.WaitUntil(t, "a text log line (CORSPROC_LOG_FORMAT=text)", func() bool {
		return strings.Contains(s.stderr.String(), "level=INFO")
	})
	fromFlag := testutil.WriteFile(t, dir, "flag.yaml", policyAllowing("https://flag.example.com"))
	s2 := startServe(t, map[string]string{"CORSPROC_CONFIG": fromEnv}, "--config", fromFlag)
	if _, body := s2.get(t, "/config"); !strings.Contains(body, `"file": "`+fromFlag+`"`) {
		t.Errorf("--config did not win over CORSPROC_CONFIG:\n%s", body)
	}
}

// TestServeOnAUnixSocket checks --grpc-addr unix:///path, replacing a stale
// socket file left by a crash.
func TestServeOnAUnixSocket(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "corsproc") // short: socket paths are limited to ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "x.sock")
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close() // the file stays, nobody listens: as after a crash
	s := startServe(t, nil, "--grpc-addr", "unix://"+sock)
	if st, err := healthStatus(t, s.conn(t), ""); err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health over %s: %v %v", s.grpcAddr, st, err)
	}
	s.cancel()
	s.wait(t)
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket file is left behind: %v", err)
	}
}

func TestServeSetsItsGCTargetOnlyWhenGOGCIsUnset(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want int
		set  bool
	}{
		{"without GOGC, serve collects at 200%", nil, serveGCPercent, true},
		{"GOGC=100 keeps Go's default", map[string]string{"GOGC": "100"}, 0, false},
		{"GOGC=off is left to the runtime", map[string]string{"GOGC": "off"}, 0, false},
		{"an empty GOGC is still the operator's choice", map[string]string{"GOGC": ""}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, set := gcPercent(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if got != tt.want || set != tt.set {
				t.Errorf("gcPercent = %d, %v; want %d, %v", got, set, tt.want, tt.set)
			}
		})
	}
}
