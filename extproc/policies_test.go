package extproc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corsproc/corsproc/policy"

	"github.com/corsproc/corsproc/internal/testutil"
)

// TestPoliciesLoadAndReload checks the holder: what it loads, when a
// reload replaces the running set and when it does not, and what it counts.
func TestPoliciesLoadAndReload(t *testing.T) {
	t.Parallel()
	t.Run("no path loads the embedded development policy with a warning", func(t *testing.T) {
		t.Parallel()
		logs := &testutil.Buffer{}
		p, err := LoadPolicies("", NewMetrics(), newTestLogger(logs))
		if err != nil {
			t.Fatal(err)
		}
		if p.Set().File() != policy.DefaultFile || !strings.Contains(logs.String(), "never run it in production") {
			t.Errorf("file %q, log:\n%s", p.Set().File(), logs.String())
		}
		if err := p.Reload(); err != nil {
			t.Errorf("reload with no file: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.Watch(ctx); err != nil {
			t.Errorf("watch with no file: %v", err)
		}
	})
	t.Run("a file that fails to load is an error listing every problem", func(t *testing.T) {
		t.Parallel()
		path := testutil.WriteFile(t, t.TempDir(), "p.yaml", "policies:\n  - name: a\n    nope: 1\n  - name: a\n")
		_, err := LoadPolicies(path, NewMetrics(), discardLogger())
		var perr *policy.Error
		if !errors.As(err, &perr) || len(errorLines(err)) < 2 {
			t.Errorf("got %v, want a *policy.Error with every problem", err)
		}
	})
	t.Run("warnings are logged and the file loads", func(t *testing.T) {
		t.Parallel()
		logs := &testutil.Buffer{}
		path := testutil.WriteFile(t, t.TempDir(), "p.yaml", "policies:\n  - name: a\n    allowed_origins: [\"null\"]\n")
		if _, err := LoadPolicies(path, NewMetrics(), newTestLogger(logs)); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(logs.String(), "policy warning") {
			t.Errorf("no warning logged:\n%s", logs.String())
		}
	})
	t.Run("an unchanged file is not reloaded by a file event, but is by SIGHUP", func(t *testing.T) {
		t.Parallel()
		m := NewMetrics()
		path := testutil.WriteFile(t, t.TempDir(), "p.yaml", testPolicy)
		p, err := LoadPolicies(path, m, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		first := p.LoadedAt()
		if err := p.reload(false); err != nil || p.LoadedAt() != first {
			t.Errorf("an unchanged file was reloaded (%v)", err)
		}
		if err := p.Reload(); err != nil || p.LoadedAt() == first {
			t.Errorf("a forced reload did not reload (%v)", err)
		}
		if v := metricValue(t, m, "corsproc_config_reloads_total", "result=success"); v != 1 {
			t.Errorf("reloads_total{success} = %v, want 1", v)
		}
	})
	t.Run("a broken file keeps the running set and is counted once however many events come", func(t *testing.T) {
		t.Parallel()
		m := NewMetrics()
		dir := t.TempDir()
		path := testutil.WriteFile(t, dir, "p.yaml", testPolicy)
		p, err := LoadPolicies(path, m, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		running := p.Set()
		testutil.WriteFile(t, dir, "p.yaml", "policies: [")
		for range 3 {
			_ = p.reload(false)
		}
		if p.Set() != running {
			t.Errorf("a broken file replaced the running set")
		}
		if v := metricValue(t, m, "corsproc_config_reloads_total", "result=failure"); v != 1 {
			t.Errorf("reloads_total{failure} = %v, want 1", v)
		}
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := p.reload(false); err == nil || p.Set() != running {
			t.Errorf("a missing file: err %v, running set kept %v", err, p.Set() == running)
		}
	})
	t.Run("a change made between the load and the watch is picked up when the watch starts", func(t *testing.T) {
		t.Parallel()
		m := NewMetrics()
		dir := t.TempDir()
		path := testutil.WriteFile(t, dir, "p.yaml", testPolicy)
		p, err := LoadPolicies(path, m, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		first := p.Set().SHA256()
		testutil.WriteFile(t, dir, "p.yaml", testPolicy+"\n# changed\n")
		ctx, cancel := context.WithCancel(context.Background())
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- watchFiles(ctx, discardLogger(), []string{path}, func() { _ = p.reload(false) }, func() { close(ready) })
		}()
		<-ready // no file event comes after this point
		if v := metricValue(t, m, "corsproc_config_reloads_total", "result=success"); v != 1 {
			t.Errorf("reloads_total{success} = %v once the watch started, want 1", v)
		}
		if v, ok := lookupMetric(t, m, "corsproc_config_info", "sha256="+p.Set().SHA256()); !ok || v != 1 {
			t.Errorf("config_info for the running set: %v %v, want 1", v, ok)
		}
		if _, ok := lookupMetric(t, m, "corsproc_config_info", "sha256="+first); ok {
			t.Errorf("config_info still has the replaced set's sha256")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("watchFiles: %v", err)
		}
	})
}

// TestWatchFilesFollowsSymlinkTargets checks the watcher on a file that is
// a symlink into another directory: a change there is seen too.
func TestWatchFilesFollowsSymlinkTargets(t *testing.T) {
	t.Parallel()
	linkDir, targetDir := t.TempDir(), t.TempDir()
	target := testutil.WriteFile(t, targetDir, "real.yaml", "a")
	link := filepath.Join(linkDir, "policy.yaml")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- watchFiles(ctx, discardLogger(), []string{link}, func() { changed <- struct{}{} }, func() { close(ready) })
	}()
	<-ready
	<-changed // the check made once the watches are set
	testutil.WriteFile(t, targetDir, "real.yaml", "b")
	select {
	case <-changed:
	case <-time.After(testutil.Patience()):
		t.Errorf("a change of the link's target was not seen within %v", testutil.Patience())
	}
	testutil.WriteFile(t, targetDir, "unrelated.yaml", "x")
	select {
	case <-changed:
		t.Error("an unrelated file in the target's directory was reported")
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("WatchFiles: %v", err)
	}
}

// TestPoliciesComposeWithContributions: with a Composer the running set is
// the file's set composed, a reload composes again against the new file,
// a recomposition that changes nothing swaps nothing, and /config and
// corsproc_policy_info say where each policy came from.
func TestPoliciesComposeWithContributions(t *testing.T) {
	t.Parallel()
	file := func(origin string) string {
		return "guardrails:\n  allowed_origins: [\"https://*.example.com\"]\n  namespaces:\n    - {name: team, hosts: [team.example.com]}\n" +
			"policies:\n  - name: central\n    match: {hosts: [central.example.com]}\n    allowed_origins: [\"" + origin + "\"]\n"
	}
	path := testutil.WriteFile(t, t.TempDir(), "p.yaml", file("https://central.example.com"))
	m := NewMetrics()
	p, err := LoadPolicies(path, m, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	spec := `{"match": {"hosts": ["team.example.com"]}, "allowed_origins": ["https://a.example.com"]}`
	var composed []*policy.Set // the central sets the Composer was given
	p.SetComposer(func(central *policy.Set) *policy.Set {
		composed = append(composed, central)
		a, err := central.Admit(policy.Contribution{Namespace: "team", Name: "api", Source: "CORSPolicy team/api", Spec: []byte(spec)})
		if err != nil {
			t.Errorf("admit: %v", err)
			return central
		}
		set, err := central.With([]*policy.Admitted{a})
		if err != nil {
			t.Errorf("with: %v", err)
			return central
		}
		return set
	})
	set := p.Set()
	if len(set.Policies()) != 2 || set.PolicySource(1) != "CORSPolicy team/api" || p.Central() == set {
		t.Fatalf("after SetComposer: %d policies, the second from %q; want the file's and team/api", len(set.Policies()), set.PolicySource(1))
	}
	p.Recompose()
	if p.Set() != set {
		t.Error("a recomposition that changed nothing swapped the running set")
	}
	testutil.WriteFile(t, filepath.Dir(path), "p.yaml", file("https://other.example.com"))
	if err := p.Reload(); err != nil {
		t.Fatal(err)
	}
	if got := composed[len(composed)-1]; got != p.Central() || got.SHA256() == composed[0].SHA256() {
		t.Error("a reload did not compose again against the new file")
	}
	if len(p.Set().Policies()) != 2 {
		t.Errorf("after the reload %d policies run, want 2", len(p.Set().Policies()))
	}
	rec := httptest.NewRecorder()
	NewAdminHandler(p, m, AdminOptions{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/config", nil))
	if !strings.Contains(rec.Body.String(), `"source": "CORSPolicy team/api"`) || !strings.Contains(rec.Body.String(), `"source": "`+path+`"`) {
		t.Errorf("/config does not give each policy its source:\n%s", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if _, ok := testutil.Sample(t, rec.Body.String(), `corsproc_policy_info{policy="team/api",source="CORSPolicy team/api"}`); !ok {
		t.Error("corsproc_policy_info does not list team/api")
	}
}
