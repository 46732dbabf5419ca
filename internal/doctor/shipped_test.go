package doctor_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	localrlv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/local_ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/corsproc/corsproc/internal/doctor"
	"github.com/corsproc/corsproc/internal/doctor/doctortest"
	"github.com/corsproc/corsproc/policy"
)

const root = "../.."

// base is a dump built from a shipped configuration, as a running control
// plane would serve it.
type base struct {
	name  string
	build func() (*adminv3.ConfigDump, error)
	route string // a route name in the dump, for route-matching policies
	host  string // a host its virtual host serves
}

func bases() []base {
	return []base{
		{"plain Envoy (envoy/envoy.yaml)", func() (*adminv3.ConfigDump, error) {
			return doctortest.PlainEnvoy(filepath.Join(root, "envoy", "envoy.yaml"))
		}, "orders", "localhost"},
		{"plain Envoy without the composite filter (envoy/envoy-no-composite.yaml)", func() (*adminv3.ConfigDump, error) {
			return doctortest.PlainEnvoy(filepath.Join(root, "envoy", "envoy-no-composite.yaml"))
		}, "orders", "localhost"},
		{"plain Envoy on Kubernetes (k8s/overlays/plain-envoy)", func() (*adminv3.ConfigDump, error) {
			return doctortest.PlainEnvoy(filepath.Join(root, "k8s", "overlays", "plain-envoy", "envoy.yaml"))
		}, "app", "api.example.com"},
		{"Envoy Gateway (k8s/overlays/envoy-gateway)", func() (*adminv3.ConfigDump, error) {
			return doctortest.EnvoyGateway(filepath.Join(root, "k8s", "overlays", "envoy-gateway"))
		}, doctortest.EGRoute, "www.example.com"},
		{"Istio (k8s/overlays/istio)", func() (*adminv3.ConfigDump, error) {
			return doctortest.Istio(filepath.Join(root, "k8s", "overlays", "istio"))
		}, doctortest.IstioRoute, "app.example.com"},
	}
}

func mustBuild(t *testing.T, b base) *adminv3.ConfigDump {
	t.Helper()
	d, err := b.build()
	if err != nil {
		t.Fatalf("building the dump: %v", err)
	}
	return d
}

// analyse marshals d to JSON as Envoy's admin interface would, reads it
// back with Decode and analyses it: the path the CLI takes.
func analyse(t *testing.T, d *adminv3.ConfigDump, o doctor.Options) []doctor.Finding {
	t.Helper()
	data, err := doctortest.Marshal(d)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	dump, notes, err := doctor.Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return append(doctor.Analyze(dump, o), notes...)
}

func problems(fs []doctor.Finding) []string {
	var out []string
	for _, f := range fs {
		if f.Severity != doctor.Info {
			out = append(out, fmt.Sprintf("%s %s at %s: %s", f.Severity, f.Check, f.Where, f.Message))
		}
	}
	return out
}

func has(fs []doctor.Finding, sev doctor.Severity, check string) bool {
	return slices.ContainsFunc(fs, func(f doctor.Finding) bool { return f.Severity == sev && f.Check == check })
}

func mustPolicy(t *testing.T, yaml string) *policy.Set {
	t.Helper()
	s, err := policy.Parse("test-policy.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	return s
}

// shippedProblems are the errors and warnings a shipped configuration may
// have: none. Notes are allowed (Envoy Gateway cannot set forward_rules).
var shippedProblems = map[string][]string{}

func TestShippedConfigurations(t *testing.T) {
	t.Parallel()
	for _, b := range bases() {
		t.Run(b.name+" has only the known problems", func(t *testing.T) {
			t.Parallel()
			fs := analyse(t, mustBuild(t, b), doctor.Options{})
			var got []string
			for _, f := range fs {
				if f.Severity != doctor.Info {
					got = append(got, string(f.Severity)+" "+f.Check)
				}
			}
			if want := shippedProblems[b.name]; !slices.Equal(got, want) {
				t.Errorf("problems %q, want %q\n%s", got, want, strings.Join(problems(fs), "\n"))
			}
			if has(fs, doctor.Error, "no-corsproc") {
				t.Errorf("corsproc not recognised in the shipped configuration")
			}
		})
	}
}

func corsproc(fn func(*extprocv3.ExternalProcessor)) func(*adminv3.ConfigDump) {
	return func(d *adminv3.ConfigDump) {
		doctortest.EachHCM(d, func(h *hcmv3.HttpConnectionManager) { doctortest.EachCorsproc(h, fn) })
	}
}

func eachHCM(fn func(*hcmv3.HttpConnectionManager)) func(*adminv3.ConfigDump) {
	return func(d *adminv3.ConfigDump) { doctortest.EachHCM(d, fn) }
}

// onCorsprocChains applies fn only to chains that hold corsproc.
func onCorsprocChains(fn func(*hcmv3.HttpConnectionManager)) func(*adminv3.ConfigDump) {
	return eachHCM(func(h *hcmv3.HttpConnectionManager) {
		found := false
		doctortest.EachCorsproc(h, func(*extprocv3.ExternalProcessor) { found = true })
		if found {
			fn(h)
		}
	})
}

func filter(name string, m proto.Message) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: doctortest.Pack(m)}}
}

// TestBrokenVariants breaks each shipped configuration in each way doctor
// knows, and checks that doctor names the break with its severity.
func TestBrokenVariants(t *testing.T) {
	t.Parallel()
	type variant struct {
		name   string
		apply  func(d *adminv3.ConfigDump, b base)
		policy func(b base) string
		sev    doctor.Severity
		check  string
	}
	exact := func(s string) *matcherv3.StringMatcher {
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
	}
	variants := []variant{
		{"an authentication filter runs first", func(d *adminv3.ConfigDump, _ base) {
			onCorsprocChains(func(h *hcmv3.HttpConnectionManager) {
				doctortest.Prepend(h, filter("envoy.filters.http.jwt_authn", &jwtv3.JwtAuthentication{}))
			})(d)
		}, nil, doctor.Error, "auth-before-corsproc"},
		{"a JWT filter letting preflights through runs first", func(d *adminv3.ConfigDump, _ base) {
			onCorsprocChains(func(h *hcmv3.HttpConnectionManager) {
				doctortest.Prepend(h, filter("jwt", &jwtv3.JwtAuthentication{BypassCorsPreflight: true}))
			})(d)
		}, nil, doctor.Warning, "auth-before-corsproc"},
		{"a rate limit runs first", func(d *adminv3.ConfigDump, _ base) {
			onCorsprocChains(func(h *hcmv3.HttpConnectionManager) {
				doctortest.Prepend(h, filter("envoy.filters.http.local_ratelimit", &localrlv3.LocalRateLimit{StatPrefix: "rl"}))
			})(d)
		}, nil, doctor.Warning, "ratelimit-before-corsproc"},
		{"a filter of unknown type runs first", func(d *adminv3.ConfigDump, _ base) {
			onCorsprocChains(func(h *hcmv3.HttpConnectionManager) {
				doctortest.Prepend(h, &hcmv3.HttpFilter{Name: "vendor.auth", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: doctortest.Unknown("vendor.auth.v1.Config")}})
			})(d)
		}, nil, doctor.Warning, "unknown-filter-before-corsproc"},
		{"forward_rules drop origin", func(d *adminv3.ConfigDump, _ base) {
			corsproc(func(ep *extprocv3.ExternalProcessor) {
				ep.ForwardRules = &extprocv3.HeaderForwardingRules{AllowedHeaders: &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{exact(":method"), exact(":authority"), exact(":path")}}}
			})(d)
		}, nil, doctor.Error, "forward-rules-drop-request"},
		{"forward_rules disallow access-control-* on responses", func(d *adminv3.ConfigDump, _ base) {
			corsproc(func(ep *extprocv3.ExternalProcessor) {
				ep.ForwardRules = &extprocv3.HeaderForwardingRules{DisallowedHeaders: &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "access-control-allow"}}}}}
			})(d)
		}, nil, doctor.Warning, "forward-rules-drop-response"},
		{"mutation_rules block access-control-*", func(d *adminv3.ConfigDump, _ base) {
			corsproc(func(ep *extprocv3.ExternalProcessor) {
				ep.MutationRules = &mutationv3.HeaderMutationRules{DisallowExpression: &matcherv3.RegexMatcher{Regex: "access-control-.*"}}
			})(d)
		}, nil, doctor.Error, "mutation-rules-block"},
		{"Envoy's CORS filter also has a policy", func(d *adminv3.ConfigDump, _ base) {
			onCorsprocChains(func(h *hcmv3.HttpConnectionManager) {
				if !slices.ContainsFunc(h.HttpFilters, func(f *hcmv3.HttpFilter) bool { return f.GetName() == "envoy.filters.http.cors" }) {
					doctortest.InsertBeforeRouter(h, filter("envoy.filters.http.cors", &corsv3.Cors{}))
				}
			})(d)
			doctortest.EachRouteConfig(d, func(rc *routev3.RouteConfiguration) {
				for _, vh := range rc.GetVirtualHosts() {
					if vh.TypedPerFilterConfig == nil {
						vh.TypedPerFilterConfig = map[string]*anypb.Any{}
					}
					vh.TypedPerFilterConfig["envoy.filters.http.cors"] = doctortest.Pack(&corsv3.CorsPolicy{AllowOriginStringMatch: []*matcherv3.StringMatcher{exact("https://app.example.com")}})
				}
			})
		}, nil, doctor.Error, "two-cors-answers"},
		{"corsproc is missing", func(d *adminv3.ConfigDump, _ base) { eachHCM(doctortest.RemoveCorsproc)(d) }, nil, doctor.Error, "no-corsproc"},
		{"the route attribute is missing while a policy matches routes", func(d *adminv3.ConfigDump, _ base) {
			corsproc(func(ep *extprocv3.ExternalProcessor) { ep.RequestAttributes = nil })(d)
		}, func(b base) string {
			return "policies:\n  - name: by-route\n    match: {routes: [" + b.route + "]}\n    allowed_origins: [\"https://app.example.com\"]\n"
		}, doctor.Error, "no-route-attribute"},
		{"response headers are skipped", func(d *adminv3.ConfigDump, _ base) {
			corsproc(func(ep *extprocv3.ExternalProcessor) {
				if ep.ProcessingMode == nil {
					ep.ProcessingMode = &extprocv3.ProcessingMode{}
				}
				ep.ProcessingMode.ResponseHeaderMode = extprocv3.ProcessingMode_SKIP
			})(d)
		}, nil, doctor.Error, "response-headers-skipped"},
		{"bodies are buffered", func(d *adminv3.ConfigDump, _ base) {
			corsproc(func(ep *extprocv3.ExternalProcessor) {
				if ep.ProcessingMode == nil {
					ep.ProcessingMode = &extprocv3.ProcessingMode{}
				}
				ep.ProcessingMode.RequestBodyMode = extprocv3.ProcessingMode_BUFFERED
			})(d)
		}, nil, doctor.Warning, "bodies-sent"},
		{"mode override is off", func(d *adminv3.ConfigDump, _ base) {
			corsproc(func(ep *extprocv3.ExternalProcessor) { ep.AllowModeOverride = false })(d)
		}, nil, doctor.Warning, "no-mode-override"},
		{"failure_mode_allow is left false", func(d *adminv3.ConfigDump, _ base) {
			corsproc(func(ep *extprocv3.ExternalProcessor) { ep.FailureModeAllow = false })(d)
		}, nil, doctor.Warning, "fails-closed"},
		{"a route disables corsproc while a policy matches its host", func(d *adminv3.ConfigDump, _ base) {
			name := doctortest.CorsprocFilterName(d)
			doctortest.EachRouteConfig(d, func(rc *routev3.RouteConfiguration) {
				for _, vh := range rc.GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						// FilterConfig, not ExtProcPerRoute: it also switches
						// off a composite filter that runs corsproc.
						r.TypedPerFilterConfig = map[string]*anypb.Any{name: doctortest.Pack(&routev3.FilterConfig{Disabled: true})}
					}
				}
			})
		}, func(b base) string {
			return "policies:\n  - name: host\n    match: {hosts: [" + b.host + "]}\n    allowed_origins: [\"https://app.example.com\"]\n"
		}, doctor.Warning, "route-disables-corsproc"},
		{"no policy matches a virtual host's domain", func(d *adminv3.ConfigDump, _ base) {
			doctortest.EachRouteConfig(d, func(rc *routev3.RouteConfiguration) {
				for _, vh := range rc.GetVirtualHosts() {
					vh.Domains = []string{"shop.example.net", "*.shop.example.net"}
				}
			})
		}, func(base) string {
			return "policies:\n  - name: elsewhere\n    match: {hosts: [elsewhere.example.org]}\n    allowed_origins: [\"https://app.example.com\"]\n"
		}, doctor.Warning, "unmatched-virtual-host"},
		{"a policy names a route that does not exist", func(*adminv3.ConfigDump, base) {}, func(base) string {
			return "policies:\n  - name: typo\n    match: {routes: [ordres]}\n    allowed_origins: [\"https://app.example.com\"]\n"
		}, doctor.Warning, "policy-route-not-found"},
	}
	for _, b := range bases() {
		for _, v := range variants {
			t.Run(b.name+": "+v.name+" gives "+string(v.sev)+" "+v.check, func(t *testing.T) {
				t.Parallel()
				d := mustBuild(t, b)
				v.apply(d, b)
				var o doctor.Options
				if v.policy != nil {
					o.Policy = mustPolicy(t, v.policy(b))
				}
				fs := analyse(t, d, o)
				if !has(fs, v.sev, v.check) {
					t.Errorf("no %s %s; got:\n%s", v.sev, v.check, strings.Join(problems(fs), "\n"))
				}
			})
		}
	}
}

// TestEnvoyGatewayFilterOrderNeedsTheGatewayClass unwires the shipped
// EnvoyProxy from the GatewayClass: Envoy Gateway then keeps its own order,
// authentication first, and doctor must say so.
func TestEnvoyGatewayFilterOrderNeedsTheGatewayClass(t *testing.T) {
	t.Parallel()
	src := filepath.Join(root, "k8s", "overlays", "envoy-gateway")
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(src, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "gatewayclass.yaml" {
			if !strings.Contains(string(data), "name: corsproc-first") {
				t.Fatalf("gatewayclass.yaml no longer names corsproc-first; update this test")
			}
			data = []byte(strings.Replace(string(data), "name: corsproc-first", "name: someone-else", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	d, err := doctortest.EnvoyGateway(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fs := analyse(t, d, doctor.Options{}); !has(fs, doctor.Error, "auth-before-corsproc") {
		t.Errorf("no auth-before-corsproc without the EnvoyProxy:\n%s", strings.Join(problems(fs), "\n"))
	}
}
