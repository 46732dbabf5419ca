package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corsproc/corsproc/internal/testutil"
)

// configSHA is the sha256 /config reports.
func (s *served) configSHA(t *testing.T) string {
	t.Helper()
	_, body := s.get(t, "/config")
	var v struct {
		SHA256 string `json:"sha256"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("/config: %v\n%s", err, body)
	}
	return v.SHA256
}

// TestServeReloadsAChangedPolicyFile changes the policy file in each way a
// file gets changed, and checks the new policy decides within 2 s.
func TestServeReloadsAChangedPolicyFile(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// setup lays the file out and returns the path to give --config.
		setup func(t *testing.T, dir string) string
		// change puts the new content in place.
		change func(t *testing.T, dir, content string)
	}{{
		name: "a file written in place is reloaded",
		setup: func(t *testing.T, dir string) string {
			return testutil.WriteFile(t, dir, "policy.yaml", policyAllowing("https://old.example.com"))
		},
		change: func(t *testing.T, dir, content string) {
			f, err := os.OpenFile(filepath.Join(dir, "policy.yaml"), os.O_WRONLY|os.O_TRUNC, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(content); err != nil {
				t.Fatal(err)
			}
			f.Close()
		},
	}, {
		name: "a file renamed over the old one (new inode) is reloaded",
		setup: func(t *testing.T, dir string) string {
			return testutil.WriteFile(t, dir, "policy.yaml", policyAllowing("https://old.example.com"))
		},
		change: func(t *testing.T, dir, content string) {
			tmp := testutil.WriteFile(t, dir, ".policy.yaml.tmp", content)
			if err := os.Rename(tmp, filepath.Join(dir, "policy.yaml")); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name: "a Kubernetes ConfigMap symlink swap is reloaded",
		setup: func(t *testing.T, dir string) string {
			configMapVersion(t, dir, "..2026_01_01_00_00_00.1", policyAllowing("https://old.example.com"))
			mustSymlink(t, "..2026_01_01_00_00_00.1", filepath.Join(dir, "..data"))
			mustSymlink(t, filepath.Join("..data", "policy.yaml"), filepath.Join(dir, "policy.yaml"))
			return filepath.Join(dir, "policy.yaml")
		},
		change: func(t *testing.T, dir, content string) {
			// What the kubelet's atomic writer does: a new timestamped
			// directory, a new ..data_tmp link renamed over ..data, the old
			// directory removed. policy.yaml itself is never touched.
			old, err := os.Readlink(filepath.Join(dir, "..data"))
			if err != nil {
				t.Fatal(err)
			}
			version := fmt.Sprintf("..2026_01_01_00_0%d_00.%d", len(old), time.Now().UnixNano())
			configMapVersion(t, dir, version, content)
			mustSymlink(t, version, filepath.Join(dir, "..data_tmp"))
			if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
				t.Fatal(err)
			}
			if err := os.RemoveAll(filepath.Join(dir, old)); err != nil {
				t.Fatal(err)
			}
		},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := startServe(t, nil, "--config", c.setup(t, dir))
			conn := s.conn(t)
			if got := preflightReply(t, conn, "api.example.com", "https://old.example.com"); got != 204 {
				t.Fatalf("before the change: %d, want 204", got)
			}
			before := s.configSHA(t)
			for round, origin := range []string{"https://new.example.com", "https://newer.example.com"} {
				c.change(t, dir, policyAllowing(origin))
				start := time.Now()
				testutil.WaitUntil(t, "the new policy to run", func() bool { return s.configSHA(t) != before })
				t.Logf("round %d reloaded in %v", round, time.Since(start))
				before = s.configSHA(t)
				if got := preflightReply(t, conn, "api.example.com", origin); got != 204 {
					t.Errorf("round %d: %s got %d after the reload, want 204", round, origin, got)
				}
			}
			if v := s.metric(t, `corsproc_config_reloads_total{result="success"}`); v != 2 {
				t.Errorf("reloads_total{success} = %v, want 2", v)
			}
			if v := s.metric(t, `corsproc_config_reloads_total{result="failure"}`); v != 0 {
				t.Errorf("reloads_total{failure} = %v, want 0", v)
			}
			if v := s.metric(t, `corsproc_config_info{sha256="`+before+`"}`); v != 1 {
				t.Errorf("config_info for the running sha256 = %v, want 1", v)
			}
		})
	}
}

func configMapVersion(t *testing.T, dir, version, content string) {
	t.Helper()
	if err := os.Mkdir(filepath.Join(dir, version), 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WriteFile(t, filepath.Join(dir, version), "policy.yaml", content)
}

func mustSymlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestServeKeepsThePolicyWhenTheNewFileIsInvalid checks that a policy file
// that fails to load never replaces the running one: the old one decides
// on, the errors are logged and counted, and a later fix is picked up.
func TestServeKeepsThePolicyWhenTheNewFileIsInvalid(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := testutil.WriteFile(t, dir, "policy.yaml", policyAllowing("https://old.example.com"))
	s := startServe(t, nil, "--config", path)
	conn := s.conn(t)
	running := s.configSHA(t)
	testutil.WriteFile(t, dir, "policy.yaml", "policies:\n  - name: broken\n    allowed_origins: [\"https://x.example.com/\"]\n    bogus_key: 1\n")
	testutil.WaitUntil(t, "the failure to be counted", func() bool {
		return s.metric(t, `corsproc_config_reloads_total{result="failure"}`) == 1
	})
	if got := s.configSHA(t); got != running {
		t.Errorf("an invalid file replaced the running policy: sha256 %s, want %s", got, running)
	}
	if got := preflightReply(t, conn, "api.example.com", "https://old.example.com"); got != 204 {
		t.Errorf("the old policy no longer decides: %d", got)
	}
	if v := s.metric(t, "corsproc_config_last_reload_successful"); v != 0 {
		t.Errorf("config_last_reload_successful = %v, want 0", v)
	}
	logs := s.stderr.String()
	for _, want := range []string{"policy reload failed", `allowed_origins[0]`, "bogus_key"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}
	if got := s.get200(t, "/readyz"); got != "ready\n" {
		t.Errorf("/readyz = %q: a refused reload must not make corsproc unready", got)
	}

	testutil.WriteFile(t, dir, "policy.yaml", policyAllowing("https://fixed.example.com"))
	testutil.WaitUntil(t, "the fixed file to run", func() bool { return s.configSHA(t) != running })
	if got := preflightReply(t, conn, "api.example.com", "https://fixed.example.com"); got != 204 {
		t.Errorf("the fixed policy does not decide: %d", got)
	}
	if v := s.metric(t, "corsproc_config_last_reload_successful"); v != 1 {
		t.Errorf("config_last_reload_successful = %v, want 1", v)
	}
}

func (s *served) get200(t *testing.T, path string) string {
	t.Helper()
	code, body := s.get(t, path)
	if code != 200 {
		t.Errorf("GET %s: %d", path, code)
	}
	return body
}

// TestServeReloadsOnSIGHUP checks that SIGHUP reloads the file even when
// no change was seen, and that a refused file on SIGHUP keeps the old one.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := testutil.WriteFile(t, dir, "policy.yaml", policyAllowing("https://old.example.com"))
	s := startServe(t, nil, "--config", path)
	s.signal(syscall.SIGHUP)
	testutil.WaitUntil(t, "SIGHUP to reload", func() bool {
		return s.metric(t, `corsproc_config_reloads_total{result="success"}`) == 1
	})
	if !strings.Contains(s.stderr.String(), "SIGHUP") {
		t.Errorf("the reload is not logged as SIGHUP's:\n%s", s.stderr.String())
	}
	running := s.configSHA(t)

	// An invalid file put in place and SIGHUP at once: whichever sees it
	// first, the failure is counted and the old policy stays.
	testutil.WriteFile(t, dir, "policy.yaml", "policies: [")
	s.signal(syscall.SIGHUP)
	testutil.WaitUntil(t, "the failure to be counted", func() bool {
		return s.metric(t, `corsproc_config_reloads_total{result="failure"}`) >= 1
	})
	if got := s.configSHA(t); got != running {
		t.Errorf("an invalid file replaced the running policy on SIGHUP")
	}
}

// TestServeDoesNotReloadForUnrelatedFiles checks that other files changing
// in the policy's directory cause no reload.
func TestServeDoesNotReloadForUnrelatedFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := testutil.WriteFile(t, dir, "policy.yaml", policyAllowing("https://old.example.com"))
	s := startServe(t, nil, "--config", path)
	for i := range 5 {
		testutil.WriteFile(t, dir, "other.yaml", strings.Repeat("x", i))
	}
	// Touch the policy file itself without changing its content.
	now := time.Now()
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	for _, r := range []string{"success", "failure"} {
		if v := s.metric(t, `corsproc_config_reloads_total{result="`+r+`"}`); v != 0 {
			t.Errorf("reloads_total{%s} = %v after unrelated events, want 0", r, v)
		}
	}
}
