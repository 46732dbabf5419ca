package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/corsproc/corsproc/internal/envoytest"
	"github.com/corsproc/corsproc/internal/testutil"
)

// corsprocBin is the corsproc binary under test, built once by TestMain
// (with -race when the tests run with it).
var corsprocBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "corsproc-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	corsprocBin = filepath.Join(dir, "corsproc")
	args := []string{"build", "-o", corsprocBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), append(args, "github.com/corsproc/corsproc/cmd/corsproc")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building corsproc: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// corsproc is one `corsproc serve` child process.
type corsproc struct {
	cmd      *exec.Cmd
	grpcAddr string
	adminURL string
	stderr   *testutil.Buffer
	done     chan struct{}
	code     int
}

// startCorsproc runs `corsproc serve` with args, on loopback ports of its
// own choosing (read back from its "corsproc serving" log line).
func startCorsproc(t *testing.T, args ...string) *corsproc {
	t.Helper()
	return startCorsprocEnv(t, nil, args...)
}

// startCorsprocEnv is startCorsproc with env (KEY=VALUE) added to the
// process's environment.
func startCorsprocEnv(t *testing.T, env []string, args ...string) *corsproc {
	t.Helper()
	p, err := launchEnv(env, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(testutil.Patience()):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		if t.Failed() {
			t.Logf("corsproc's log:\n%s", p.stderr.String())
		}
	})
	return p
}

// markSourcesAsInputs reads the module's Go files once from inside a test,
// so that go test records them among the test's inputs. The binary is
// built by a child process, which go test cannot see: without this, a
// change to the product's code could be answered with a cached pass.
var markSourcesAsInputs = sync.OnceFunc(func() {
	_, here, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(here), "..", "..")
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil
		case d.IsDir() && path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "deploy"):
			return filepath.SkipDir
		case !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod" || d.Name() == "go.sum"):
			if data, err := os.ReadFile(path); err == nil {
				_ = data
			}
		}
		return nil
	})
})

func launch(args ...string) (*corsproc, error) { return launchEnv(nil, args...) }

// launchEnv starts corsproc with the test's environment less what would
// change its behaviour behind a test's back (CORSPROC_* variables, GOGC),
// plus env.
func launchEnv(env []string, args ...string) (*corsproc, error) {
	markSourcesAsInputs()
	full := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
		"--log-format", "json", "--log-level", "debug", "--shutdown-grace", "2s"}, args...)
	p := &corsproc{cmd: exec.Command(corsprocBin, full...), stderr: &testutil.Buffer{}, done: make(chan struct{})}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CORSPROC_") && !strings.HasPrefix(kv, "GOGC=") {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, env...)
	pipe, err := p.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(p.stderr, line)
			var rec struct {
				Msg   string `json:"msg"`
				GRPC  string `json:"grpc_addr"`
				Admin string `json:"admin_addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "corsproc serving" {
				ready <- [2]string{rec.GRPC, rec.Admin}
			}
		}
		err := p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		_ = err
		close(p.done)
	}()
	select {
	case a := <-ready:
		p.grpcAddr, p.adminURL = a[0], "http://"+a[1]
		return p, nil
	case <-p.done:
		return p, &exitError{code: p.code, stderr: p.stderr.String()}
	case <-time.After(testutil.Patience()):
		_ = p.cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("corsproc did not start within %v:\n%s", testutil.Patience(), p.stderr.String())
	}
}

type exitError struct {
	code   int
	stderr string
}

func (e *exitError) Error() string {
	return fmt.Sprintf("corsproc exited with %d:\n%s", e.code, e.stderr)
}

// wait returns the exit code, failing the test if corsproc hangs.
func (p *corsproc) wait(t *testing.T) int {
	t.Helper()
	d := testutil.Patience()
	select {
	case <-p.done:
		return p.code
	case <-time.After(d):
		t.Fatalf("corsproc did not exit within %v", d)
		return -1
	}
}

func (p *corsproc) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// get fetches an admin path.
func (p *corsproc) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(p.adminURL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric reads one series from /metrics, exactly as exposed; -1 if absent.
func (p *corsproc) metric(t *testing.T, series string) float64 {
	t.Helper()
	if v, ok := testutil.Sample(t, testutil.Scrape(t, p.adminURL+"/metrics"), series); ok {
		return v
	}
	return -1
}

// upstream is the service behind the gateway. Each response sets the
// headers named in the request's h query parameters ("name:value"), so a
// case can make the service send its own CORS headers; it counts hits.
type upstream struct {
	*httptest.Server
	hits    atomic.Int64
	paths   sync.Map      // path -> *atomic.Int64
	release chan struct{} // when not nil, /slow waits for it
}

// reached says how many requests for path got through to the service.
func (u *upstream) reached(path string) int64 {
	if n, ok := u.paths.Load(path); ok {
		return n.(*atomic.Int64).Load()
	}
	return 0
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		n, _ := u.paths.LoadOrStore(r.URL.Path, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
		if strings.HasPrefix(r.URL.Path, "/slow") && u.release != nil {
			<-u.release
		}
		for _, h := range r.URL.Query()["h"] {
			name, value, _ := strings.Cut(h, ":")
			w.Header().Add(name, value)
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "hello from the service\n")
	}))
	t.Cleanup(u.Close)
	return u
}

// startEnvoy puts the stand-in in front of up, talking to processor as a
// gateway would: route names sent as xds.route_name, mode_override
// honoured. edit adjusts the config.
func startEnvoy(t *testing.T, processor string, up *upstream, edit func(*envoytest.Config)) *envoytest.Envoy {
	t.Helper()
	cfg := envoytest.Config{
		Processor: processor,
		Routes: []envoytest.Route{
			{Name: "special-route", PathPrefix: "/special/", Upstream: up.URL},
			{Name: "default", Upstream: up.URL},
		},
		AllowModeOverride: true,
		RequestAttributes: []string{"xds.route_name"},
		MessageTimeout:    testutil.MessageTimeout(), // -race on 2 shared cores is slow; the default 200ms would flake
	}
	if edit != nil {
		edit(&cfg)
	}
	e, err := envoytest.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

// call sends one HTTP request through the stand-in; kv are request header
// lines (a name may repeat).
func call(t *testing.T, e *envoytest.Envoy, method, host, path string, kv ...string) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Add(kv[i], kv[i+1])
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// noFailures checks the stand-in saw corsproc behave: no failed stream, no
// out-of-phase reply, no refused header mutation.
func noFailures(t *testing.T, e *envoytest.Envoy) {
	t.Helper()
	st := e.Stats()
	if st.StreamsFailed != 0 || st.SpuriousMessages != 0 || st.RejectedHeaderMutations != 0 || st.MessageTimeouts != 0 {
		t.Errorf("the stand-in saw processor failures: %+v", st)
	}
}
