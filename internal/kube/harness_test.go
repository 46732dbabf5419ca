package kube_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/util/retry"

	"github.com/corsproc/corsproc/internal/envoytest"
	"github.com/corsproc/corsproc/internal/kube"
	"github.com/corsproc/corsproc/internal/kubetest"
	"github.com/corsproc/corsproc/internal/runner"
	"github.com/corsproc/corsproc/internal/testutil"
)

func TestMain(m *testing.M) { kubetest.Main(m) }

// ready is the package's API server with the CORSPolicy CRD installed.
func ready(t testing.TB) *kubetest.Server {
	t.Helper()
	s := kubetest.Get(t)
	if err := s.InstallCRD(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// nsCounter makes every test's namespaces unique, so that tests run in
// parallel on one API server without seeing each other's objects.
var nsCounter atomic.Int64

// namespaces creates n fresh namespaces named after prefix.
func namespaces(t testing.TB, s *kubetest.Server, prefix string, n int) []string {
	t.Helper()
	var out []string
	for range n {
		ns := fmt.Sprintf("%s-%d", prefix, nsCounter.Add(1))
		if err := s.CreateNamespace(context.Background(), ns); err != nil {
			t.Fatal(err)
		}
		out = append(out, ns)
	}
	return out
}

// centralFor is the policy file of the tests: one policy of its own, for
// central.example.com, and guardrails that let each team namespace match
// TEAM.example.com (and its subdomains) and allow origins of example.com.
func centralFor(teams ...string) string {
	var b strings.Builder
	b.WriteString("guardrails:\n  allowed_origins: [\"https://*.example.com\"]\n  namespaces:\n")
	for _, ns := range teams {
		fmt.Fprintf(&b, "    - {name: %s, hosts: [%s.example.com, \"*.%s.example.com\"]}\n", ns, ns, ns)
	}
	b.WriteString("policies:\n  - name: central\n    match: {hosts: [central.example.com]}\n    allowed_origins: [\"https://central.example.com\"]\n")
	return b.String()
}

// spec is a team's CORSPolicy spec for host, allowing origin.
func spec(host, origin string) string {
	return fmt.Sprintf("match: {hosts: [%s]}\nallowed_origins: [%q]\n", host, origin)
}

// env is one test's part of the API server: team namespaces, corsproc's
// own namespace with the shipped RBAC, and a kubeconfig that acts as its
// ServiceAccount.
type env struct {
	server     *kubetest.Server
	admin      *client
	teams      []string
	own        string // corsproc's namespace: its ServiceAccount and Lease
	kubeconfig string // as corsproc's ServiceAccount
}

func newEnv(t testing.TB, prefix string, teams int) *env {
	t.Helper()
	s := ready(t)
	e := &env{server: s, admin: admin(t, s), teams: namespaces(t, s, prefix, teams), own: namespaces(t, s, prefix+"-corsproc", 1)[0]}
	sa, err := s.InstallRBAC(context.Background(), e.own)
	if err != nil {
		t.Fatal(err)
	}
	// Namespaces are never deleted (no controller manager runs to empty
	// them), so the objects are: a later corsproc watching every
	// namespace (the benchmarks) sees only its own.
	t.Cleanup(func() {
		for _, ns := range e.teams {
			_ = e.admin.dyn.Resource(kube.CORSPolicies).Namespace(ns).DeleteCollection(context.Background(), metav1.DeleteOptions{}, metav1.ListOptions{})
		}
	})
	if e.kubeconfig, err = s.KubeconfigAs(t.TempDir(), sa); err != nil {
		t.Fatal(err)
	}
	return e
}

// serve starts corsproc watching the env's team namespaces.
func (e *env) serve(t testing.TB, policyYAML string) *corsproc {
	t.Helper()
	return serve(t, e.kubeconfig, policyYAML, e.own, e.teams...)
}

// corsproc is a runner with --kubernetes, and the Envoy stand-in in front.
type corsproc struct {
	r     *runner.Runner
	envoy *envoytest.Envoy
	log   *testutil.Buffer
	path  string // the policy file
	stop  context.CancelFunc
	done  chan error
}

// serve starts corsproc serving the policy file policyYAML and the
// CORSPolicy objects of watched, its Lease in leaseNS, reaching the API
// server as kubeconfig says.
func serve(t testing.TB, kubeconfig, policyYAML, leaseNS string, watched ...string) *corsproc {
	t.Helper()
	c := start(t, kubeconfig, policyYAML, leaseNS, watched...)
	testutil.WaitUntil(t, "corsproc is ready (its watch has synced)", func() bool { return c.readyz(t) == http.StatusOK })
	return c
}

// start is serve without waiting until corsproc is ready.
func start(t testing.TB, kubeconfig, policyYAML, leaseNS string, watched ...string) *corsproc {
	t.Helper()
	dir := t.TempDir()
	c := &corsproc{log: &testutil.Buffer{}, path: filepath.Join(dir, "policy.yaml"), done: make(chan error, 1)}
	if err := os.WriteFile(c.path, []byte(policyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := runner.Defaults()
	cfg.PolicyFile = c.path
	cfg.GRPCAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.LogLevel, cfg.LogFormat = slog.LevelDebug, "text"
	cfg.SetLameduck(0)
	cfg.Kubernetes, cfg.Kubeconfig, cfg.LeaseNamespace, cfg.KubernetesNamespaces = true, kubeconfig, leaseNS, watched
	r, err := runner.New(cfg, runner.Options{Log: c.log})
	if err != nil {
		t.Fatal(err)
	}
	c.r = r
	ctx, stop := context.WithCancel(context.Background())
	c.stop = stop
	go func() { c.done <- r.Run(ctx) }()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "upstream") }))
	c.envoy, err = envoytest.Start(envoytest.Config{
		Processor:         r.GRPCAddr().String(),
		MessageTimeout:    testutil.MessageTimeout(),
		AllowModeOverride: true,
		Routes:            []envoytest.Route{{Name: "all", Upstream: upstream.URL}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.envoy.Close()
		upstream.Close()
		c.shutdown(t)
		if t.Failed() {
			t.Logf("corsproc's log:\n%s", c.log)
		}
	})
	return c
}

// shutdown stops corsproc, once.
func (c *corsproc) shutdown(t testing.TB) {
	t.Helper()
	c.stop()
	select {
	case err := <-c.done:
		c.done <- err
		if err != nil {
			t.Errorf("corsproc: %v", err)
		}
	case <-time.After(testutil.Patience()):
		t.Errorf("corsproc did not stop within %v", testutil.Patience())
	}
}

func (c *corsproc) admin(t testing.TB, path string) (int, []byte) {
	t.Helper()
	resp, err := http.Get("http://" + c.r.AdminAddr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func (c *corsproc) readyz(t testing.TB) int { code, _ := c.admin(t, "/readyz"); return code }

// allows sends a preflight from origin to host through the Envoy stand-in
// and says whether corsproc allowed it.
func (c *corsproc) allows(t testing.TB, host, origin string) bool {
	t.Helper()
	req, err := http.NewRequest(http.MethodOptions, c.envoy.URL()+"/api", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.Header.Get("Access-Control-Allow-Origin") == origin
}

// eventually waits until host allows origin, or not.
func (c *corsproc) eventually(t testing.TB, host, origin string, allowed bool) {
	t.Helper()
	testutil.WaitUntil(t, fmt.Sprintf("a preflight from %s to %s is allowed=%v", origin, host, allowed), func() bool {
		return c.allows(t, host, origin) == allowed
	})
}

// sha256 is the running set's digest, as corsproc_config_info says.
func (c *corsproc) sha256(t testing.TB) string {
	t.Helper()
	_, body := c.admin(t, "/metrics")
	for line := range strings.SplitSeq(string(body), "\n") {
		if rest, ok := strings.CutPrefix(line, `corsproc_config_info{sha256="`); ok {
			sum, _, _ := strings.Cut(rest, `"`)
			return sum
		}
	}
	t.Fatal("no corsproc_config_info in /metrics")
	return ""
}

// configPolicy is one policy of /config.
type configPolicy struct {
	Name   string `json:"name"`
	Source string `json:"source"`
}

func (c *corsproc) config(t testing.TB) []configPolicy {
	t.Helper()
	_, body := c.admin(t, "/config")
	var v struct {
		Policies []configPolicy `json:"policies"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatal(err)
	}
	return v.Policies
}

// client is the tests' hand on the API server, as an administrator.
type client struct {
	dyn    dynamic.Interface
	core   corev1client.CoreV1Interface
	server *kubetest.Server
}

func admin(t testing.TB, s *kubetest.Server) *client {
	t.Helper()
	dyn, err := dynamic.NewForConfig(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	core, err := corev1client.NewForConfig(s.Config())
	if err != nil {
		t.Fatal(err)
	}
	return &client{dyn: dyn, core: core, server: s}
}

// policyObject is a CORSPolicy with spec written as YAML.
func policyObject(t testing.TB, ns, name, specYAML string) *unstructured.Unstructured {
	t.Helper()
	objs, err := kubetest.Objects([]byte("apiVersion: corsproc.io/v1alpha1\nkind: CORSPolicy\nmetadata: {name: " + name + ", namespace: " + ns + "}\nspec:\n" + indent(specYAML)))
	if err != nil || len(objs) != 1 {
		t.Fatalf("the test's CORSPolicy %s/%s: %v", ns, name, err)
	}
	return objs[0]
}

func indent(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	return b.String()
}

// apply creates the CORSPolicy ns/name, or replaces its spec (again on a
// conflict: corsproc may write its status in between).
func (c *client) apply(t testing.TB, ns, name, specYAML string) *unstructured.Unstructured {
	t.Helper()
	obj := policyObject(t, ns, name, specYAML)
	r := c.dyn.Resource(kube.CORSPolicies).Namespace(ns)
	ctx := context.Background()
	var out *unstructured.Unstructured
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		old, err := r.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			out, err = r.Create(ctx, obj, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		old.Object["spec"] = obj.Object["spec"]
		out, err = r.Update(ctx, old, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("applying %s/%s: %v", ns, name, err)
	}
	return out
}

func (c *client) delete(t testing.TB, ns, name string) {
	t.Helper()
	if err := c.dyn.Resource(kube.CORSPolicies).Namespace(ns).Delete(context.Background(), name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (c *client) get(t testing.TB, ns, name string) *unstructured.Unstructured {
	t.Helper()
	u, err := c.dyn.Resource(kube.CORSPolicies).Namespace(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// accepted is what an object's status says: its Accepted condition and
// the generations.
type accepted struct {
	Observed, AcceptedGeneration, ConditionGeneration int64
	Status, Reason, Message                           string
	AcceptedSpec                                      map[string]any
}

func readStatus(u *unstructured.Unstructured) accepted {
	var a accepted
	a.Observed, _, _ = unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	a.AcceptedGeneration, _, _ = unstructured.NestedInt64(u.Object, "status", "acceptedGeneration")
	a.AcceptedSpec, _, _ = unstructured.NestedMap(u.Object, "status", "acceptedSpec")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == "Accepted" {
			a.Status, _ = m["status"].(string)
			a.Reason, _ = m["reason"].(string)
			a.Message, _ = m["message"].(string)
			a.ConditionGeneration, _, _ = unstructured.NestedInt64(m, "observedGeneration")
		}
	}
	return a
}

// statusOf waits until ns/name's status describes its current generation
// with reason, and returns it.
func (c *client) statusOf(t testing.TB, ns, name, reason string) accepted {
	t.Helper()
	var a accepted
	var gen int64
	testutil.WaitUntil(t, fmt.Sprintf("CORSPolicy %s/%s's status says %s", ns, name, reason), func() bool {
		u := c.get(t, ns, name)
		gen, a = u.GetGeneration(), readStatus(u)
		return a.Observed == gen && a.ConditionGeneration == gen && a.Reason == reason
	})
	return a
}

// events lists the Events about ns/name, oldest first.
func (c *client) events(t testing.TB, ns, name string) []corev1.Event {
	t.Helper()
	list, err := c.core.Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// waitEvents waits until there are n Events about ns/name and returns them.
func (c *client) waitEvents(t testing.TB, ns, name string, n int) []corev1.Event {
	t.Helper()
	var evs []corev1.Event
	testutil.WaitUntil(t, fmt.Sprintf("%d Events about %s/%s", n, ns, name), func() bool {
		evs = c.events(t, ns, name)
		return len(evs) >= n
	})
	return evs
}
