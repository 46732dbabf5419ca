package runner_test

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/corsproc/corsproc/internal/runner"
)

// TestEveryFlagIsDocumentedWithItsVariable checks the rule the README
// states (each flag is also CORSPROC_ and its name in upper case) and that
// its flag table lists every flag.
func TestEveryFlagIsDocumentedWithItsVariable(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cfg := runner.Defaults()
	for _, f := range cfg.Flags() {
		t.Run("--"+f.Name+" is in the README and read from "+f.Env, func(t *testing.T) {
			if want := "CORSPROC_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_")); f.Env != want {
				t.Errorf("variable %s, want %s", f.Env, want)
			}
			if !strings.Contains(string(readme), "`--"+f.Name) {
				t.Errorf("README's flag table does not list --%s", f.Name)
			}
		})
	}
}

// TestConfigParse checks that a flag wins over its variable and that the
// lameduck is worked out only when neither gives it.
func TestConfigParse(t *testing.T) {
	t.Parallel()
	env := map[string]string{"CORSPROC_GRPC_ADDR": "127.0.0.1:1", "CORSPROC_SHUTDOWN_GRACE": "30s"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cases := []struct {
		name     string
		args     []string
		grpc     string
		lameduck string
	}{
		{"the variable is read when no flag is given", nil, "127.0.0.1:1", "5s"},
		{"a flag wins over its variable", []string{"--grpc-addr", "127.0.0.1:2"}, "127.0.0.1:2", "5s"},
		{"the lameduck is a third of a short grace", []string{"--shutdown-grace", "3s"}, "127.0.0.1:1", "1s"},
		{"a lameduck of zero given is kept", []string{"--lameduck", "0s"}, "127.0.0.1:1", "0s"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := runner.Defaults()
			if err := cfg.Parse(c.args, lookup, nil); err != nil {
				t.Fatal(err)
			}
			if cfg.GRPCAddr != c.grpc || cfg.Lameduck.String() != c.lameduck {
				t.Errorf("grpc %s lameduck %v, want %s %s", cfg.GRPCAddr, cfg.Lameduck, c.grpc, c.lameduck)
			}
		})
	}
}

// TestObserveTopIsBounded: /observed's memory is fixed by --observe-top, so
// a value outside 1 to MaxObserveK is refused, naming what is accepted.
func TestObserveTopIsBounded(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"0", "1001", "many"} {
		t.Run("CORSPROC_OBSERVE_TOP="+v+" is refused", func(t *testing.T) {
			cfg := runner.Defaults()
			lookup := func(k string) (string, bool) { return v, k == "CORSPROC_OBSERVE_TOP" }
			err := cfg.Parse(nil, lookup, nil)
			if err == nil || !strings.Contains(err.Error(), "CORSPROC_OBSERVE_TOP") || !strings.Contains(err.Error(), "1 to 1000") {
				t.Errorf("got %v, want an error naming the variable and 1 to 1000", err)
			}
		})
	}
}

// TestKubernetesFlags: the namespaces are a comma list, from the flag or
// the variable, and the Kubernetes flags are refused without --kubernetes.
func TestKubernetesFlags(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		want    []string
		wantErr string
	}{
		{"a comma list of namespaces is read, blanks dropped", []string{"--kubernetes", "--kubernetes-namespaces", "team-a, team-b,,"}, nil, []string{"team-a", "team-b"}, ""},
		{"the namespaces are read from their variable", nil, map[string]string{"CORSPROC_KUBERNETES": "true", "CORSPROC_KUBERNETES_NAMESPACES": "team-a"}, []string{"team-a"}, ""},
		{"no namespaces means every namespace", []string{"--kubernetes"}, nil, nil, ""},
		{"--kubeconfig without --kubernetes is refused", []string{"--kubeconfig", "/k"}, nil, nil, "need --kubernetes"},
		{"--kubernetes-namespaces without --kubernetes is refused", []string{"--kubernetes-namespaces", "a"}, nil, nil, "need --kubernetes"},
		{"--kubernetes-lease-namespace without --kubernetes is refused", []string{"--kubernetes-lease-namespace", "corsproc"}, nil, nil, "need --kubernetes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := runner.Defaults()
			lookup := func(k string) (string, bool) { v, ok := c.env[k]; return v, ok }
			err := cfg.Parse(c.args, lookup, nil)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Errorf("got %v, want an error saying %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.KubernetesNamespaces, c.want) {
				t.Errorf("namespaces %q, want %q", cfg.KubernetesNamespaces, c.want)
			}
		})
	}
}
