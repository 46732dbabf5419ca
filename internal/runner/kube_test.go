package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// restConfig's order is what the README promises for --kubernetes:
// --kubeconfig, else the pod's service account, else $KUBECONFIG. Tests
// run outside a pod, so the in-cluster step fails here and is skipped
// over, as it is on a laptop.
func TestRestConfigTakesTheFlagThenThePodThenKUBECONFIG(t *testing.T) {
	dir := t.TempDir()
	kubeconfig := func(name, server string) string {
		p := filepath.Join(dir, name)
		data := "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: " + server + "}\n" +
			"users:\n- name: u\n  user: {token: t}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n"
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flag := kubeconfig("flag", "https://127.0.0.1:6443")
	env := kubeconfig("env", "https://127.0.0.1:7443")
	t.Setenv("KUBERNETES_SERVICE_HOST", "") // never in a pod here
	tests := []struct {
		name, flag, env string
		host, err       string
	}{
		{"--kubeconfig wins over $KUBECONFIG", flag, env, "https://127.0.0.1:6443", ""},
		{"outside a pod, $KUBECONFIG is read", "", env, "https://127.0.0.1:7443", ""},
		{"outside a pod without either, the error says what to set", "", "", "", "neither --kubeconfig nor $KUBECONFIG is set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("KUBECONFIG", tt.env)
			rc, err := restConfig(tt.flag)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to say %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if rc.Host != tt.host {
				t.Errorf("host = %q, want %q", rc.Host, tt.host)
			}
		})
	}
}
