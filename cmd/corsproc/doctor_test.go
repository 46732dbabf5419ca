package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/corsproc/corsproc/internal/doctor/doctortest"
)

// doctorDumps are the config dumps the doctor goldens read: one per shipped
// configuration, built from the repository's files, and broken variants.
// They are golden files themselves: a change to a shipped configuration
// changes its dump, and -update shows the change for review.
var doctorDumps = []struct {
	file  string
	build func() (*adminv3.ConfigDump, error)
}{
	{"plain-envoy", func() (*adminv3.ConfigDump, error) { return doctortest.PlainEnvoy("../../envoy/envoy.yaml") }},
	{"plain-envoy-no-composite", func() (*adminv3.ConfigDump, error) {
		return doctortest.PlainEnvoy("../../envoy/envoy-no-composite.yaml")
	}},
	{"k8s-plain-envoy", func() (*adminv3.ConfigDump, error) {
		return doctortest.PlainEnvoy("../../k8s/overlays/plain-envoy/envoy.yaml")
	}},
	{"envoy-gateway", func() (*adminv3.ConfigDump, error) {
		return doctortest.EnvoyGateway("../../k8s/overlays/envoy-gateway")
	}},
	{"istio", func() (*adminv3.ConfigDump, error) { return doctortest.Istio("../../k8s/overlays/istio") }},
	{"plain-envoy-broken", func() (*adminv3.ConfigDump, error) {
		d, err := doctortest.PlainEnvoy("../../envoy/envoy.yaml")
		if err != nil {
			return nil, err
		}
		// JWT ahead of corsproc, origin not forwarded, CORS headers not
		// writable.
		doctortest.EachHCM(d, func(h *hcmv3.HttpConnectionManager) {
			doctortest.Prepend(h, &hcmv3.HttpFilter{Name: "envoy.filters.http.jwt_authn", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: doctortest.Pack(&jwtv3.JwtAuthentication{})}})
			doctortest.EachCorsproc(h, func(ep *extprocv3.ExternalProcessor) {
				ep.ForwardRules = &extprocv3.HeaderForwardingRules{DisallowedHeaders: &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "origin"}}}}}
				ep.RequestAttributes = nil
			})
		})
		return d, nil
	}},
}

func dumpPath(name string) string { return filepath.Join("testdata", "doctor", name+".dump.json") }

// TestDoctorDumps is not parallel: it (re)writes the dumps that TestDoctor,
// which is, reads once the sequential tests are done.
func TestDoctorDumps(t *testing.T) {
	for _, d := range doctorDumps {
		t.Run(d.file+" is built from the repository's configuration", func(t *testing.T) {
			dump, err := d.build()
			if err != nil {
				t.Fatal(err)
			}
			data, err := doctortest.Marshal(dump)
			if err != nil {
				t.Fatal(err)
			}
			compareGolden(t, dumpPath(d.file), string(data))
		})
	}
}

func TestDoctor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		golden string
		args   []string
		code   int
	}{
		{"doctor judges the plain Envoy demo", "doctor-plain-envoy", []string{"doctor", dumpPath("plain-envoy")}, 0},
		{"doctor checks the demo's route names against its policy", "doctor-plain-envoy-config", []string{"doctor", "--config", "../../envoy/demo-policy.yaml", dumpPath("plain-envoy")}, 0},
		{"doctor judges the plain Envoy demo without the composite filter", "doctor-plain-envoy-no-composite", []string{"doctor", "--config", "../../envoy/demo-policy.yaml", dumpPath("plain-envoy-no-composite")}, 0},
		{"doctor judges the Kubernetes plain Envoy", "doctor-k8s-plain-envoy", []string{"doctor", dumpPath("k8s-plain-envoy")}, 0},
		{"doctor judges Envoy Gateway's listener", "doctor-envoy-gateway", []string{"doctor", dumpPath("envoy-gateway")}, 0},
		{"doctor judges Istio's gateway listener", "doctor-istio", []string{"doctor", dumpPath("istio")}, 0},
		{"doctor lists every break of a broken chain", "doctor-broken", []string{"doctor", "--config", "../../envoy/demo-policy.yaml", dumpPath("plain-envoy-broken")}, 1},
		{"doctor prints JSON with --json after the file", "doctor-broken-json", []string{"doctor", dumpPath("plain-envoy-broken"), "--json", "--config", "../../envoy/demo-policy.yaml"}, 1},
		{"doctor with --cluster finds no corsproc under another name", "doctor-cluster", []string{"doctor", "--cluster", "cors", dumpPath("plain-envoy")}, 1},
		{"doctor without a dump is a usage error", "doctor-usage", []string{"doctor"}, 2},
		{"doctor with a dump and --admin is a usage error", "doctor-both", []string{"doctor", "--admin", "127.0.0.1:9901", dumpPath("plain-envoy")}, 2},
		{"doctor on a missing file is an error", "doctor-missing", []string{"doctor", "testdata/doctor/missing.json"}, 2},
		{"doctor on a file that is no dump is an error", "doctor-not-a-dump", []string{"doctor", "testdata/keep.yaml"}, 2},
		{"doctor with an invalid policy is an error", "doctor-invalid-config", []string{"doctor", "--config", "testdata/broken.yaml", dumpPath("plain-envoy")}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, code, _ := transcript(tt.args, "")
			if code != tt.code {
				t.Errorf("exit code %d, want %d\n%s", code, tt.code, got)
			}
			compareGolden(t, filepath.Join("testdata", tt.golden+".golden"), got)
		})
	}
}

// TestDoctorReadsStandardInput is not parallel: it swaps doctorStdin.
func TestDoctorReadsStandardInput(t *testing.T) {
	data, err := os.ReadFile(dumpPath("plain-envoy"))
	if err != nil {
		t.Fatal(err)
	}
	old := doctorStdin
	doctorStdin = bytes.NewReader(data)
	t.Cleanup(func() { doctorStdin = old })
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"doctor", "-"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "dump:   -\n") || !strings.Contains(stdout.String(), "\nclean: ") {
		t.Errorf("output:\n%s", stdout.String())
	}
}

func TestDoctorFetchesFromALiveAdminInterface(t *testing.T) {
	t.Parallel()
	dump, err := os.ReadFile(dumpPath("plain-envoy-broken"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config_dump", func(w http.ResponseWriter, _ *http.Request) { w.Write(dump) })
	srv := httptest.NewServer(mux) // 127.0.0.1
	t.Cleanup(srv.Close)

	t.Run("--admin with the admin address reads /config_dump and judges it", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"doctor", "--admin", strings.TrimPrefix(srv.URL, "http://")}, &stdout, &stderr)
		if code != 1 || !strings.Contains(stdout.String(), "dump:   "+srv.URL+"/config_dump\n") || !strings.Contains(stdout.String(), "auth-before-corsproc") {
			t.Errorf("exit code %d\n%s%s", code, stdout.String(), stderr.String())
		}
	})
	t.Run("--admin on an address that is no admin interface is an error", func(t *testing.T) {
		t.Parallel()
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"doctor", "--admin", srv.URL + "/nothing/"}, &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "404 Not Found") {
			t.Errorf("exit code %d\n%s%s", code, stdout.String(), stderr.String())
		}
	})
	t.Run("a body over the limit is refused", func(t *testing.T) {
		t.Parallel()
		_, err := fetchDump(context.Background(), srv.URL+"/config_dump", int64(len(dump)-1))
		if err == nil || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("err = %v", err)
		}
		if _, err := fetchDump(context.Background(), srv.URL+"/config_dump", int64(len(dump))); err != nil {
			t.Errorf("a body at the limit: %v", err)
		}
	})
}

func TestDumpURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"localhost:9901":                            "http://localhost:9901/config_dump",
		"http://127.0.0.1:9901/":                    "http://127.0.0.1:9901/config_dump",
		"http://[::1]:9901/config_dump?include_eds": "http://[::1]:9901/config_dump?include_eds",
	} {
		if got := dumpURL(in); got != want {
			t.Errorf("dumpURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDoctorHelp(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"doctor", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	out := stdout.String() + stderr.String()
	for _, want := range []string{"Usage: corsproc doctor", "-admin", "-cluster", "-config", "-json"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor --help lacks %q:\n%s", want, out)
		}
	}
}
