package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestCLI runs each command in-process and compares what it prints with a
// golden file: the CLI's output is part of the contract users script
// against. Regenerate with: go test ./cmd/corsproc -run TestCLI -update
func TestCLI(t *testing.T) {
	t.Parallel()
	const example = "../../envoy/policy.yaml"
	tests := []struct {
		name   string
		golden string
		args   []string
		code   int
	}{
		{"validate accepts the example policy", "validate-example", []string{"validate", example}, 0},
		{"validate lists every problem of a broken file and exits 1", "validate-broken", []string{"validate", "testdata/broken.yaml"}, 1},
		{"validate reports each file, the bad one failing the run", "validate-several", []string{"validate", example, "testdata/broken.yaml", "testdata/missing.yaml"}, 1},
		{"validate prints JSON with --json after the file", "validate-json", []string{"validate", "testdata/broken.yaml", "--json"}, 1},
		{"validate without a file is a usage error", "validate-usage", []string{"validate"}, 2},
		{"explain allows a preflight the policy covers", "explain-preflight-allowed", []string{"explain", "--config", example, "--host", "api.example.com", "--path", "/v1/cart", "--origin", "https://app.example.com", "--request-method", "PUT", "--request-headers", "content-type, x-csrftoken"}, 0},
		{"explain names the header a preflight is denied for", "explain-preflight-denied", []string{"explain", "--config", example, "--host", "api.example.com", "--path", "/v1/cart", "--origin", "https://app.example.com", "--request-method", "PUT", "--request-headers", "content-type, x-api-key"}, 1},
		{"explain denies a look-alike origin", "explain-actual-denied", []string{"explain", "--config", example, "--host", "api.example.com", "--path", "/v1/cart", "--origin", "https://app.example.com.evil.net"}, 1},
		{"explain shows the headers set on an allowed actual request", "explain-actual-allowed", []string{"explain", "--config", example, "--host", "API.example.com:443", "--path", "/v1/cart?x=1", "--origin", "http://localhost:5173", "--method", "POST"}, 0},
		{"explain shows allow-all answering star to a request without origin", "explain-no-origin", []string{"explain", "--config", example, "--host", "img.cdn.example.com"}, 0},
		{"explain leaves an unmatched request untouched", "explain-unmatched", []string{"explain", "--config", example, "--host", "other.example.com", "--origin", "https://app.example.com"}, 0},
		{"explain shows report mode forwarding a preflight", "explain-report", []string{"explain", "--config", example, "--route", "legacy-reports", "--origin", "https://evil.example.net", "--request-method", "DELETE"}, 1},
		{"explain says a keep policy leaves the service's own CORS answer alone", "explain-keep", []string{"explain", "--config", "testdata/keep.yaml", "--origin", "https://app.example.com"}, 0},
		{"explain prints JSON for scripts", "explain-json", []string{"explain", "--config", example, "--host", "api.example.com", "--path", "/v1/x", "--origin", "https://app.example.com", "--json"}, 0},
		{"explain with debug headers answers a refused method with the origin", "explain-debug", []string{"explain", "--origin", "http://localhost:3000", "--request-method", "PROPFIND", "--debug-headers"}, 1},
		{"explain on an invalid policy is an error", "explain-invalid-config", []string{"explain", "--config", "testdata/broken.yaml", "--origin", "https://app.example.com"}, 2},
		{"explain rejects a stray argument", "explain-stray", []string{"explain", "https://app.example.com"}, 2},
		{"an unknown command prints the usage", "unknown-command", []string{"frobnicate"}, 2},
		{"help prints the usage", "help", []string{"help"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr)
			got := "$ corsproc " + strings.Join(tt.args, " ") + "\n" + stdout.String()
			if stderr.Len() > 0 {
				got += "--- stderr\n" + stderr.String()
			}
			if code != tt.code {
				t.Errorf("exit code %d, want %d\n%s", code, tt.code, got)
			}
			compareGolden(t, filepath.Join("testdata", tt.golden+".golden"), got)
		})
	}
}

func compareGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestVersionNamesTheGoToolchain(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d: %s", code, stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{"corsproc ", "commit: ", "go: go1."} {
		if !strings.Contains(out, want) {
			t.Errorf("version output lacks %q:\n%s", want, out)
		}
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"serve", "validate", "explain", "version"} {
		t.Run(cmd+" --help exits 0 and lists its flags", func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{cmd, "--help"}, &stdout, &stderr); code != 0 {
				t.Fatalf("exit code %d", code)
			}
			if !strings.Contains(stderr.String()+stdout.String(), "Usage: corsproc "+cmd) {
				t.Errorf("no usage line:\n%s%s", stdout.String(), stderr.String())
			}
		})
	}
}

func TestParseInterleaved(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args           []string
		wantPositional []string
		wantJSON       bool
	}{
		{[]string{"a.yaml", "--json", "b.yaml"}, []string{"a.yaml", "b.yaml"}, true},
		{[]string{"--json", "a.yaml"}, []string{"a.yaml"}, true},
		{[]string{"--", "--json"}, []string{"--json"}, false},
		{[]string{"a.yaml", "--", "b.yaml", "--json"}, []string{"a.yaml", "b.yaml", "--json"}, false},
		{[]string{"--json", "--", "-x", "--", "y"}, []string{"-x", "--", "y"}, true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		asJSON := fs.Bool("json", false, "")
		got, err := parseInterleaved(fs, c.args)
		if err != nil || !slices.Equal(got, c.wantPositional) || *asJSON != c.wantJSON {
			t.Errorf("%q: positional %q, json %v, err %v; want %q, json %v", c.args, got, *asJSON, err, c.wantPositional, c.wantJSON)
		}
	}
}
