package deploy

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"

	"github.com/corsproc/corsproc/extproc"
	"github.com/corsproc/corsproc/internal/envoytest"
)

// metadataKeys are the keys corsproc sets in its dynamic metadata
// namespace; every shipped access log prints each of them.
var metadataKeys = []string{
	extproc.MetadataPolicy, extproc.MetadataMode, extproc.MetadataClass,
	extproc.MetadataDecision, extproc.MetadataReason, extproc.MetadataReportMismatch,
}

// shippedAccessLogFormats returns every access log format the repository
// ships for a gateway in front of corsproc, by where it comes from.
func shippedAccessLogFormats(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, f := range []string{"envoy/envoy.yaml", "envoy/envoy-no-composite.yaml", "k8s/overlays/plain-envoy/envoy.yaml"} {
		cfg, err := envoytest.FromBootstrapFile(repoPath(f), "ingress")
		if err != nil {
			t.Fatal(err)
		}
		out[f] = cfg.AccessLogFormat
	}
	for _, p := range all[*egv1a1.EnvoyProxy](render(t, "k8s/overlays/envoy-gateway")) {
		name := "k8s/overlays/envoy-gateway EnvoyProxy " + p.Name
		out[name] = ""
		if p.Spec.Telemetry == nil || p.Spec.Telemetry.AccessLog == nil {
			continue
		}
		for _, s := range p.Spec.Telemetry.AccessLog.Settings {
			if s.Format != nil && s.Format.Text != nil {
				out[name] = *s.Format.Text
			}
		}
	}
	return out
}

// TestShippedAccessLogsPrintTheDecision checks that each shipped access log
// prints every key of corsproc's decision, in a format the Envoy stand-in
// can render (it refuses operators it does not know), and that Envoy
// Gateway lets corsproc write the namespace (the Envoy configurations'
// receiving_namespaces are checked with the rest of their ext_proc
// settings, in checkExtProc).
func TestShippedAccessLogsPrintTheDecision(t *testing.T) {
	for where, format := range shippedAccessLogFormats(t) {
		t.Run(where+" prints every decision key", func(t *testing.T) {
			if format == "" {
				t.Fatal("no text access log format: Envoy's default one prints no dynamic metadata")
			}
			for _, k := range metadataKeys {
				op := fmt.Sprintf("%%DYNAMIC_METADATA(%s:%s)%%", extproc.MetadataNamespace, k)
				if !strings.Contains(format, op) {
					t.Errorf("the format lacks %s", op)
				}
			}
			if _, err := (envoytest.AccessLogEntry{}).Format(format); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("the EnvoyExtensionPolicy lets corsproc write its namespace", func(t *testing.T) {
		for _, p := range all[*egv1a1.EnvoyExtensionPolicy](render(t, "k8s/overlays/envoy-gateway")) {
			for _, ep := range p.Spec.ExtProc {
				if ep.Metadata == nil || !contains(ep.Metadata.WritableNamespaces, extproc.MetadataNamespace) {
					t.Errorf("EnvoyExtensionPolicy %s: metadata.writableNamespaces lacks %q", p.Name, extproc.MetadataNamespace)
				}
			}
		}
	})
}

// TestAccessLogNamesWhyABrowserWasRefused runs corsproc with the demo
// policy behind the stand-in configured from envoy/envoy.yaml, and renders
// that file's access log format for each request: the line of a refused
// request names the policy and the reason, as an operator greps for it.
func TestAccessLogNamesWhyABrowserWasRefused(t *testing.T) {
	cfg, err := envoytest.FromBootstrapFile(repoPath("envoy/envoy.yaml"), "ingress")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Processor = startCorsproc(t, repoPath("envoy/demo-policy.yaml"))
	cfg.MessageTimeout = trafficTimeout
	svc := httptest.NewServer(newFakeNginx(readRepoFile(t, "envoy/demo/orders.nginx.conf")))
	t.Cleanup(svc.Close)
	for i := range cfg.Routes {
		cfg.Routes[i].Upstream = svc.URL
	}
	e, err := envoytest.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	cases := []struct {
		name   string
		method string
		header [][2]string
		want   []string
	}{{
		name:   "a preflight from a foreign origin is refused for that origin",
		method: http.MethodOptions,
		header: [][2]string{{"Origin", "https://evil.example.com"}, {"Access-Control-Request-Method", "PUT"}},
		want: []string{`"OPTIONS /orders/ HTTP/1.1"`, `origin="https://evil.example.com"`, "cors_policy=orders", "cors_mode=enforce",
			"cors_class=preflight", "cors_decision=denied", "cors_reason=origin_not_allowed", "cors_report_mismatch=-"},
	}, {
		name:   "a preflight for a method the policy refuses names the method",
		method: http.MethodOptions,
		header: [][2]string{{"Origin", "http://localhost:8080"}, {"Access-Control-Request-Method", "DELETE"}},
		want:   []string{"cors_policy=orders", "cors_decision=denied", "cors_reason=method_not_allowed"},
	}, {
		name:   "an allowed request says allowed",
		method: http.MethodGet,
		header: [][2]string{{"Origin", "http://localhost:8080"}},
		want:   []string{`"GET /orders/ HTTP/1.1" 200 via_upstream`, "cors_policy=orders", "cors_class=actual", "cors_decision=allowed", "cors_reason=origin_allowed"},
	}, {
		name:   "a request without origin never reaches corsproc, so every field is -",
		method: http.MethodGet,
		want:   []string{"cors_policy=- cors_mode=- cors_class=- cors_decision=- cors_reason=-"},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(e.AccessLog())
			req, err := http.NewRequest(c.method, e.URL()+"/orders/", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range c.header {
				req.Header.Set(h[0], h[1])
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			log := e.AccessLog()
			if len(log) != before+1 {
				t.Fatalf("%d new access log entries, want 1", len(log)-before)
			}
			line, err := log[before].Format(cfg.AccessLogFormat)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(line, w) {
					t.Errorf("the access log line lacks %q:\n%s", w, line)
				}
			}
		})
	}
}
