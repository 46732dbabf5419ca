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
	const why = "testdata/why.yaml"
	const central, teamA, teamB = "../../docs/examples/central.yaml", "../../docs/examples/team-a.yaml", "../../docs/examples/team-b.yaml"
	const mixedStdin = "apiVersion: corsproc.io/v1alpha1\nkind: CORSPolicy\nmetadata: {name: web}\nspec:\n  match: {hosts: [www.shop.example.com]}\n  allowed_origins: [\"https://www.example.com\"]\n" +
		"---\napiVersion: corsproc.io/v1alpha1\nkind: CORSPolicy\nmetadata: {name: api, namespace: team-b}\nspec:\n  match: {hosts: [api.example.com], path_prefixes: [/b/]}\n  allowed_origins: [\"https://b.example.com\"]\n"
	tests := []struct {
		name   string
		golden string
		args   []string
		code   int
		stdin  string
	}{
		{"validate accepts the example policy", "validate-example", []string{"validate", example}, 0, ""},
		{"validate lists every problem of a broken file and exits 1", "validate-broken", []string{"validate", "testdata/broken.yaml"}, 1, ""},
		{"validate reports each file, the bad one failing the run", "validate-several", []string{"validate", example, "testdata/broken.yaml", "testdata/missing.yaml"}, 1, ""},
		{"validate prints JSON with --json after the file", "validate-json", []string{"validate", "testdata/broken.yaml", "--json"}, 1, ""},
		{"validate without a file is a usage error", "validate-usage", []string{"validate"}, 2, ""},
		{"validate reads standard input for -", "validate-stdin", []string{"validate", "-"}, 1, "policies:\n  - name: p\n    allowed_origins: [\"https://app.example.com/\"]\n"},
		{"validate refuses standard input twice", "validate-stdin-twice", []string{"validate", "-", "-"}, 2, ""},
		{"validate warns about a path_regex that looks like a prefix", "validate-prefix-regex", []string{"validate", why}, 0, ""},
		{"validate refuses a binary file with a short escaped excerpt", "validate-binary", []string{"validate", "testdata/binary.yaml"}, 1, ""},
		{"validate --help prints to stdout", "validate-help", []string{"validate", "--help"}, 0, ""},
		{"validate checks CORSPolicy objects alone with the loader's checks", "validate-objects", []string{"validate", teamA}, 0, ""},
		{"validate holds CORSPolicy objects to the guardrails of --config", "validate-objects-central", []string{"validate", "--config", central, teamA, teamB}, 1, ""},
		{"validate prints objects held to guardrails as JSON", "validate-objects-json", []string{"validate", "--json", "--config", central, teamB}, 1, ""},
		{"validate refuses a document of another kind and an object without a namespace", "validate-objects-mixed", []string{"validate", "--config", central, "testdata/objects-mixed.yaml"}, 1, ""},
		{"validate gives objects without a namespace the one of --namespace", "validate-objects-namespace", []string{"validate", "--config", central, "--namespace", "team-a", "-"}, 0, mixedStdin},
		{"validate takes the hostnames of HTTPRoutes given beside the objects", "validate-objects-routes", []string{"validate", "--config", "testdata/routes-central.yaml", "testdata/objects-with-route.yaml"}, 1, ""},
		{"validate refuses an object given in two files", "validate-objects-twice", []string{"validate", teamA, teamA}, 1, ""},
		{"validate checks nothing against an invalid --config", "validate-objects-broken-central", []string{"validate", "--config", "testdata/broken.yaml", teamA}, 1, ""},
		{"explain --help prints to stdout", "explain-help", []string{"explain", "--help"}, 0, ""},
		{"version --help prints no empty flag list", "version-help", []string{"version", "--help"}, 0, ""},
		{"version with an argument is a usage error", "version-stray", []string{"version", "x"}, 2, ""},
		{"explain says which condition of each policy failed when none matched", "explain-why-none", []string{"explain", "--config", why, "--host", "api.example.com", "--path", "/v1/upload/123", "--origin", "https://app.example.com"}, 0, ""},
		{"explain prints the policies passed over in JSON too", "explain-why-json", []string{"explain", "--config", why, "--host", "api.example.com", "--path", "/v1/upload/123", "--origin", "https://app.example.com", "--json"}, 0, ""},
		{"explain names the policies passed over before the one chosen", "explain-why-chosen", []string{"explain", "--config", example, "--host", "catalog.example.com", "--path", "/v1/cart", "--origin", "https://app.example.com"}, 0, ""},
		{"explain refuses an origin without a scheme and says what a browser sends", "explain-origin-no-scheme", []string{"explain", "--origin", "app.example.com"}, 2, ""},
		{"explain refuses an origin in upper case", "explain-origin-upper", []string{"explain", "--origin", "https://APP.example.com"}, 2, ""},
		{"explain refuses an origin with a path", "explain-origin-path", []string{"explain", "--origin", "https://app.example.com/x"}, 2, ""},
		{"explain refuses request headers outside a preflight", "explain-headers-no-preflight", []string{"explain", "--origin", "https://app.example.com", "--request-headers", "x-api-key"}, 2, ""},
		{"explain refuses a preflight that is not OPTIONS", "explain-preflight-not-options", []string{"explain", "--origin", "https://app.example.com", "--method", "PUT", "--request-method", "PUT"}, 2, ""},
		{"explain refuses a path without a leading slash", "explain-path-no-slash", []string{"explain", "--host", "api.example.com", "--path", "v1/cart"}, 2, ""},
		{"explain refuses a URL as the path and splits it", "explain-path-url", []string{"explain", "--path", "https://api.example.com/v1/cart?x=1"}, 2, ""},
		{"explain refuses a URL as the host", "explain-host-url", []string{"explain", "--host", "https://api.example.com/v1"}, 2, ""},
		{"explain allows a preflight the policy covers", "explain-preflight-allowed", []string{"explain", "--config", example, "--host", "api.example.com", "--path", "/v1/cart", "--origin", "https://app.example.com", "--request-method", "PUT", "--request-headers", "content-type, x-csrftoken"}, 0, ""},
		{"explain names the header a preflight is denied for", "explain-preflight-denied", []string{"explain", "--config", example, "--host", "api.example.com", "--path", "/v1/cart", "--origin", "https://app.example.com", "--request-method", "PUT", "--request-headers", "content-type, x-api-key"}, 1, ""},
		{"explain denies a look-alike origin", "explain-actual-denied", []string{"explain", "--config", example, "--host", "api.example.com", "--path", "/v1/cart", "--origin", "https://app.example.com.evil.net"}, 1, ""},
		{"explain shows the headers set on an allowed actual request", "explain-actual-allowed", []string{"explain", "--config", example, "--host", "API.example.com:443", "--path", "/v1/cart?x=1", "--origin", "http://localhost:5173", "--method", "POST"}, 0, ""},
		{"explain shows allow-all answering star to a request without origin", "explain-no-origin", []string{"explain", "--config", example, "--host", "img.cdn.example.com"}, 0, ""},
		{"explain leaves an unmatched request untouched", "explain-unmatched", []string{"explain", "--config", example, "--host", "other.example.com", "--origin", "https://app.example.com"}, 0, ""},
		{"explain shows report mode forwarding a preflight", "explain-report", []string{"explain", "--config", example, "--route", "legacy-reports", "--origin", "https://evil.example.net", "--request-method", "DELETE"}, 1, ""},
		{"explain says a keep policy leaves the service's own CORS answer alone", "explain-keep", []string{"explain", "--config", "testdata/keep.yaml", "--origin", "https://app.example.com"}, 0, ""},
		{"explain prints JSON for scripts", "explain-json", []string{"explain", "--config", example, "--host", "api.example.com", "--path", "/v1/x", "--origin", "https://app.example.com", "--json"}, 0, ""},
		{"explain with debug headers answers a refused method with the origin", "explain-debug", []string{"explain", "--origin", "http://localhost:3000", "--request-method", "PROPFIND", "--debug-headers"}, 1, ""},
		{"explain on an invalid policy is an error", "explain-invalid-config", []string{"explain", "--config", "testdata/broken.yaml", "--origin", "https://app.example.com"}, 2, ""},
		{"explain rejects a stray argument", "explain-stray", []string{"explain", "https://app.example.com"}, 2, ""},
		{"explain runs admitted CORSPolicy objects beside the central file", "explain-objects-admitted", []string{"explain", "--config", central, "--corspolicies", teamA, "--corspolicies", teamB, "--host", "shop.example.com", "--origin", "https://www.example.com"}, 0, ""},
		{"explain lists refused objects and never runs them", "explain-objects-refused", []string{"explain", "--config", central, "--corspolicies", teamB, "--host", "api.example.com", "--path", "/b/v1/x", "--origin", "https://app.example.com"}, 0, ""},
		{"explain prints admitted and refused objects in JSON", "explain-objects-json", []string{"explain", "--config", central, "--corspolicies", teamA, "--corspolicies", teamB, "--host", "shop.example.com", "--origin", "https://www.example.com", "--json"}, 0, ""},
		{"explain refuses --corspolicies without --config", "explain-objects-no-config", []string{"explain", "--corspolicies", teamA}, 2, ""},
		{"explain refuses a policy file given as --corspolicies", "explain-objects-policy-file", []string{"explain", "--config", central, "--corspolicies", central}, 2, ""},
		{"explain refuses a file of objects with a document of another kind", "explain-objects-mixed", []string{"explain", "--config", central, "--corspolicies", "testdata/objects-mixed.yaml"}, 2, ""},
		{"an unknown command prints the usage", "unknown-command", []string{"frobnicate"}, 2, ""},
		{"help prints the usage", "help", []string{"help"}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, code, _ := transcript(tt.args, tt.stdin)
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

// TestEveryCommandHasHelp: help goes to stdout, so that it pipes into less.
func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"serve", "validate", "explain", "import", "suggest", "doctor", "version"} {
		t.Run(cmd+" --help exits 0 and prints its usage to stdout", func(t *testing.T) {
			t.Parallel()
			for _, flag := range []string{"--help", "-h"} {
				var stdout, stderr bytes.Buffer
				if code := run(context.Background(), []string{cmd, flag}, &stdout, &stderr); code != 0 {
					t.Fatalf("%s: exit code %d", flag, code)
				}
				if !strings.HasPrefix(stdout.String(), "Usage: corsproc "+cmd) {
					t.Errorf("%s: stdout does not start with the usage line:\n%s", flag, stdout.String())
				}
				if stderr.Len() > 0 {
					t.Errorf("%s: help wrote to stderr:\n%s", flag, stderr.String())
				}
			}
		})
	}
}

func TestValidateRefusesAHugeFileUnread(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	// A sparse 27 MB file: the size a user once fed validate by mistake.
	if err := f.Truncate(27_000_000); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"validate", path}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit code %d, want 1\n%s%s", code, stdout.String(), stderr.String())
	}
	want := path + ": 27000000 bytes, over the 16 MiB limit"
	if !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("output %q, want it to start with %q", stdout.String(), want)
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

// transcript runs corsproc with args and stdin and returns what a golden
// file holds: the command line, standard output, and standard error after
// a marker; with the exit code and the standard output alone.
func transcript(args []string, stdin string) (got string, code int, stdout string) {
	var out, errOut bytes.Buffer
	code = runWithStdin(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	got = "$ corsproc " + strings.Join(args, " ") + "\n" + out.String()
	if errOut.Len() > 0 {
		got += "--- stderr\n" + errOut.String()
	}
	return got, code, out.String()
}
