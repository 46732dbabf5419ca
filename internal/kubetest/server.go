// Package kubetest runs a real Kubernetes API server for tests: etcd and
// kube-apiserver, built from module source by scripts/kube-test-binaries
// and started on 127.0.0.1, one pair per test package ([Main]). No
// controllers run beside them (no controller manager, no scheduler): an
// API server is all that CRDs, validation, watches, status, Leases, Events
// and RBAC need.
//
// Where the binaries are absent, tests that need the server skip with the
// command that builds them; with CI set they fail instead, as the browser
// suite does for chromium.
package kubetest

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/rest"

	"github.com/corsproc/corsproc/internal/testutil"
)

// AssetsEnv names the directory holding the kube-apiserver and etcd
// binaries, as controller-runtime's envtest calls it.
const AssetsEnv = "KUBEBUILDER_ASSETS"

// adminUser is the API server's superuser in tests (group system:masters).
const adminUser = "kubetest-admin"

// Server is etcd and kube-apiserver, running on loopback.
type Server struct {
	dir     string
	assets  string
	token   string
	etcdURL string
	apiPort int
	etcd    *process
	api     *process

	mu sync.Mutex // one restart at a time
}

// process is one child, with its output kept for when a test fails.
type process struct {
	name string
	cmd  *exec.Cmd
	out  *testutil.Buffer
	done chan struct{}
}

// stopGrace is how long a child has to stop after SIGTERM before it is
// killed: kube-apiserver may spend a minute draining its watches.
const stopGrace = 5 * time.Second

func (p *process) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(testutil.Scale(stopGrace)):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// Assets returns the directory of the binaries: $KUBEBUILDER_ASSETS, or
// the one scripts/kube-test-binaries has built and cached. It never builds:
// that takes tens of minutes.
func Assets() (string, error) {
	if dir := os.Getenv(AssetsEnv); dir != "" {
		return dir, checkAssets(dir)
	}
	script := filepath.Join(repoRoot(), "scripts", "kube-test-binaries")
	out, err := exec.Command(script, "--cached").Output()
	if err != nil {
		return "", errors.New("kube-apiserver and etcd are not built; build them once (10-40 minutes) with scripts/kube-test-binaries, or set " + AssetsEnv + " to a directory holding both")
	}
	dir := strings.TrimSpace(string(out))
	return dir, checkAssets(dir)
}

func checkAssets(dir string) error {
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
			return fmt.Errorf("%s=%s holds no %s; build both with scripts/kube-test-binaries", AssetsEnv, dir, b)
		}
	}
	return nil
}

// repoRoot is the module's root, found from this file's path.
func repoRoot() string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", "..")
}

// RepoFile is path (slash-separated, from the repository's root) made
// absolute, for the manifests the tests apply.
func RepoFile(path string) string { return filepath.Join(repoRoot(), filepath.FromSlash(path)) }

// Start starts etcd and then kube-apiserver from the binaries in assets,
// and waits until the API server is ready.
func Start(assets string) (*Server, error) {
	dir, err := os.MkdirTemp("", "kubetest-")
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, assets: assets, token: rand.Text()}
	if err := s.prepare(); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.startEtcd(); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.startAPI(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// prepare writes the service account signing key and the token file.
func (s *Server) prepare() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"sa.key":     pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"sa.pub":     pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}),
		"tokens.csv": fmt.Appendf(nil, "%s,%s,%s,\"system:masters\"\n", s.token, adminUser, adminUser),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return os.MkdirAll(filepath.Join(s.dir, "certs"), 0o700)
}

// freePort asks the kernel for a free loopback port. Another process may
// take it before the child binds it; start retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) startEtcd() error {
	var last error
	for range 3 {
		client, err1 := freePort()
		peer, err2 := freePort()
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		s.etcdURL = "http://127.0.0.1:" + strconv.Itoa(client)
		peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
		p, err := s.spawn("etcd", filepath.Join(s.assets, "etcd"),
			"--data-dir", filepath.Join(s.dir, "etcd"),
			"--listen-client-urls", s.etcdURL, "--advertise-client-urls", s.etcdURL,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL,
			"--initial-cluster", "default="+peerURL,
			"--unsafe-no-fsync", // a test's data need not survive a power cut
			"--log-level", "warn")
		if err != nil {
			return err
		}
		s.etcd = p
		last = s.waitReady(p, http.DefaultClient, s.etcdURL+"/health", "")
		if last == nil {
			return nil
		}
		p.stop()
	}
	return last
}

func (s *Server) apiArgs() []string {
	return []string{
		"--etcd-servers", s.etcdURL,
		"--bind-address", "127.0.0.1",
		"--advertise-address", "127.0.0.1",
		"--secure-port", strconv.Itoa(s.apiPort),
		"--cert-dir", filepath.Join(s.dir, "certs"),
		"--token-auth-file", filepath.Join(s.dir, "tokens.csv"),
		"--authorization-mode", "RBAC",
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", filepath.Join(s.dir, "sa.pub"),
		"--service-account-signing-key-file", filepath.Join(s.dir, "sa.key"),
		"--service-cluster-ip-range", "10.0.0.0/24",
		// The default reconciler refuses a loopback advertise address; the
		// tests need no kubernetes Service endpoints.
		"--endpoint-reconciler-type", "none",
		// No controller manager runs to create service account tokens.
		"--disable-admission-plugins", "ServiceAccount",
		// Tests make bursts of requests that priority and fairness would
		// queue, on a machine too small to need it.
		"--enable-priority-and-fairness=false",
	}
}

// startAPI starts kube-apiserver on s.apiPort, choosing it the first time;
// a restart keeps the port (and the serving certificate in certs/), so
// clients reconnect to the same address.
func (s *Server) startAPI() error {
	fixed := s.apiPort != 0
	var last error
	for range 3 {
		if !fixed {
			port, err := freePort()
			if err != nil {
				return err
			}
			s.apiPort = port
		}
		p, err := s.spawn("kube-apiserver", filepath.Join(s.assets, "kube-apiserver"), s.apiArgs()...)
		if err != nil {
			return err
		}
		s.api = p
		last = s.waitReady(p, s.httpClient(), s.URL()+"/readyz", s.token)
		if last == nil {
			return nil
		}
		p.stop()
	}
	return last
}

func (s *Server) spawn(name, bin string, args ...string) (*process, error) {
	p := &process{name: name, cmd: exec.Command(bin, args...), out: &testutil.Buffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Dir = s.dir
	// The children die with the test binary, even when it is killed.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	return p, nil
}

// waitReady polls url until it answers 200, the process exits, or
// patience (scaled: an API server's start-up under -race and load is
// slow) runs out.
func (s *Server) waitReady(p *process, c *http.Client, url, token string) error {
	deadline := time.Now().Add(2 * testutil.Patience())
	for {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if resp, err := c.Do(req); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			_ = body
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready:\n%s", p.name, tail(p.out.String()))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v:\n%s", p.name, 2*testutil.Patience(), tail(p.out.String()))
		}
	}
}

func tail(s string) string {
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

// URL is the API server's https URL.
func (s *Server) URL() string { return "https://127.0.0.1:" + strconv.Itoa(s.apiPort) }

// caFile is the API server's self-signed serving certificate chain, which
// it writes into --cert-dir on its first start.
func (s *Server) caFile() string { return filepath.Join(s.dir, "certs", "apiserver.crt") }

// httpClient is for readiness polls only: before the first start there is
// no certificate to trust yet, and the poll carries nothing secret but a
// token for a server the test itself started on loopback.
func (s *Server) httpClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // loopback readiness poll of our own child
	return &http.Client{Transport: t, Timeout: 5 * time.Second}
}

// Config is a client configuration with every right (system:masters),
// trusting the API server's own certificate.
func (s *Server) Config() *rest.Config {
	return &rest.Config{
		Host:            s.URL(),
		BearerToken:     s.token,
		TLSClientConfig: rest.TLSClientConfig{CAFile: s.caFile()},
		// Tests create objects in bursts; client-side throttling would
		// only slow them.
		QPS: 500, Burst: 1000,
	}
}

// As is [Server.Config] impersonating user in groups: the API server
// authorizes each request as that user, through RBAC.
func (s *Server) As(user string, groups ...string) *rest.Config {
	c := s.Config()
	c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	return c
}

// AsServiceAccount is [Server.As] for namespace/name's ServiceAccount,
// with the groups the API server gives a service account's token.
func (s *Server) AsServiceAccount(namespace, name string) *rest.Config {
	return s.As("system:serviceaccount:"+namespace+":"+name, "system:serviceaccounts", "system:serviceaccounts:"+namespace)
}

// Kubeconfig writes a kubeconfig file for [Server.Config] into dir and
// returns its path, for code that takes --kubeconfig.
func (s *Server) Kubeconfig(dir string) (string, error) {
	return writeKubeconfig(dir, s.Config(), "")
}

// KubeconfigAs writes a kubeconfig for cfg (from [Server.As] or
// [Server.AsServiceAccount]).
func (s *Server) KubeconfigAs(dir string, cfg *rest.Config) (string, error) {
	return writeKubeconfig(dir, cfg, cfg.Impersonate.UserName)
}

func writeKubeconfig(dir string, c *rest.Config, as string) (string, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Config\nclusters:\n- name: kubetest\n  cluster:\n    server: %s\n    certificate-authority: %s\n", c.Host, c.CAFile)
	fmt.Fprintf(&b, "users:\n- name: kubetest\n  user:\n    token: %s\n", c.BearerToken)
	if as != "" {
		fmt.Fprintf(&b, "    as: %q\n    as-groups:\n", as)
		for _, g := range c.Impersonate.Groups {
			fmt.Fprintf(&b, "    - %q\n", g)
		}
	}
	b.WriteString("contexts:\n- name: kubetest\n  context:\n    cluster: kubetest\n    user: kubetest\ncurrent-context: kubetest\n")
	f, err := os.CreateTemp(dir, "kubeconfig-")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Write(b.Bytes()); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// RestartAPIServer stops kube-apiserver and starts it again on the same
// port, over the same etcd: what a client sees of a control-plane upgrade.
func (s *Server) RestartAPIServer() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.api.stop()
	return s.startAPI()
}

// Logs are the last lines etcd and kube-apiserver wrote, for a failed
// test's report.
func (s *Server) Logs() string {
	var b strings.Builder
	for _, p := range []*process{s.etcd, s.api} {
		if p != nil {
			fmt.Fprintf(&b, "--- %s\n%s\n", p.name, tail(p.out.String()))
		}
	}
	return b.String()
}

// Stop stops the API server and etcd and removes their files.
func (s *Server) Stop() {
	s.api.stop()
	s.etcd.stop()
	_ = os.RemoveAll(s.dir)
}
