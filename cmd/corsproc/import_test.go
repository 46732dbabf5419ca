package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImport converts one source file per format and compares the policy
// and the messages with a golden file; every policy printed must then pass
// `corsproc validate` as a user would run it on the saved output.
// Regenerate with: go test ./cmd/corsproc -run TestImport -update
func TestImport(t *testing.T) {
	t.Parallel()
	const dir = "testdata/import/"
	tests := []struct {
		name   string
		golden string
		args   []string
		code   int
	}{
		{"django settings with default_headers additions, regexes and a URL regex convert", "django", []string{"import", "django", dir + "settings.py"}, 1},
		{"a minimal django settings file converts without a warning", "django-minimal", []string{"import", "--host", "api.example.com", "--name", "shop", "django", dir + "settings-minimal.py"}, 0},
		{"django's allow-all with credentials becomes allow-all without, loudly", "django-allow-all", []string{"import", "django", dir + "settings-allow-all.py"}, 1},
		{"django settings computed from code are reported by name and line", "django-computed", []string{"import", "django", dir + "settings-computed.py"}, 1},
		{"later django files override earlier ones", "django-two-files", []string{"import", "django", dir + "settings-allow-all.py", dir + "settings-minimal.py"}, 1},
		{"a settings file that is not Python is unreadable input", "django-broken", []string{"import", "django", dir + "settings-broken.py"}, 2},
		{"ingress-nginx annotations become one policy per Ingress, with its defaults", "ingress-nginx", []string{"import", "ingress-nginx", dir + "ingress.yaml"}, 1},
		{"an Istio corsPolicy becomes a policy per route", "istio", []string{"import", "istio", dir + "virtualservice.yaml"}, 1},
		{"an Envoy Gateway SecurityPolicy is matched as its target HTTPRoute", "envoy-gateway", []string{"import", "envoy-gateway", dir + "securitypolicy.yaml"}, 1},
		{"Gateway API CORS filters become a policy per rule", "gateway-api", []string{"import", "gateway-api", dir + "httproute.yaml"}, 1},
		{"YAML that does not parse is unreadable input", "yaml-broken", []string{"import", "istio", dir + "settings.py"}, 2},
		{"a file without the format's objects is unreadable input", "nothing-found", []string{"import", "gateway-api", dir + "ingress.yaml"}, 2},
		{"an unknown format is a usage error", "unknown-format", []string{"import", "nginx", dir + "ingress.yaml"}, 2},
		{"a missing file is unreadable input", "missing-file", []string{"import", "django", dir + "missing.py"}, 2},
		{"import without a file is a usage error", "usage", []string{"import", "django"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, code, stdout := transcript(tt.args, "")
			if code != tt.code {
				t.Errorf("exit code %d, want %d\n%s", code, tt.code, got)
			}
			compareGolden(t, filepath.Join(dir, tt.golden+".golden"), got)
			if code == 2 {
				if stdout != "" {
					t.Errorf("unreadable input printed a policy:\n%s", stdout)
				}
				return
			}
			saved := filepath.Join(t.TempDir(), "imported.yaml")
			if err := os.WriteFile(saved, []byte(stdout), 0o644); err != nil {
				t.Fatal(err)
			}
			var vout, verr bytes.Buffer
			if code := run(context.Background(), []string{"validate", saved}, &vout, &verr); code != 0 {
				t.Errorf("validate refuses the imported policy (exit %d):\n%s%s", code, vout.String(), verr.String())
			}
		})
	}
}

// TestImportReadsStandardInput reads "-" as kubectl get -o yaml | corsproc
// import does. Not parallel: it swaps the package's stdin.
func TestImportReadsStandardInput(t *testing.T) {
	data, err := os.ReadFile("testdata/import/ingress.yaml")
	if err != nil {
		t.Fatal(err)
	}
	old := stdin
	stdin = bytes.NewReader(data)
	t.Cleanup(func() { stdin = old })
	var fromStdin, fromFile, stderr bytes.Buffer
	code := run(context.Background(), []string{"import", "ingress-nginx", "-"}, &fromStdin, &stderr)
	if code != 1 {
		t.Fatalf("exit code %d, want 1 (the file's allow-all warning):\n%s", code, stderr.String())
	}
	run(context.Background(), []string{"import", "ingress-nginx", "testdata/import/ingress.yaml"}, &fromFile, &stderr)
	want := strings.Replace(fromFile.String(), "from testdata/import/ingress.yaml.", "from -.", 1)
	want = strings.ReplaceAll(want, "testdata/import/ingress.yaml:", "-:")
	if fromStdin.String() != want {
		t.Errorf("stdin and file give different policies:\n--- stdin\n%s\n--- file\n%s", fromStdin.String(), want)
	}
}
