package doctor_test

import (
	"path/filepath"
	"strings"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/corsproc/corsproc/internal/doctor"
	"github.com/corsproc/corsproc/internal/doctor/doctortest"
)

func plainEnvoy(t *testing.T) *adminv3.ConfigDump {
	t.Helper()
	d, err := doctortest.PlainEnvoy(filepath.Join("testdata", "envoy-minimal.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func composite(hdr, regex string, vary bool) func(*adminv3.ConfigDump) {
	return func(d *adminv3.ConfigDump) {
		doctortest.EachHCM(d, func(h *hcmv3.HttpConnectionManager) { doctortest.WrapInComposite(h, hdr, regex) })
		if vary {
			doctortest.EachRouteConfig(d, doctortest.AddVaryOrigin)
		}
	}
}

func perRoute(level string, m func() *anypb.Any) func(*adminv3.ConfigDump) {
	return func(d *adminv3.ConfigDump) {
		name := doctortest.CorsprocFilterName(d)
		doctortest.EachRouteConfig(d, func(rc *routev3.RouteConfiguration) {
			for _, vh := range rc.GetVirtualHosts() {
				if level == "virtual host" {
					vh.TypedPerFilterConfig = map[string]*anypb.Any{name: m()}
					continue
				}
				for _, r := range vh.GetRoutes() {
					r.TypedPerFilterConfig = map[string]*anypb.Any{name: m()}
				}
			}
		})
	}
}

// firstRoute sets the first route's typed_per_filter_config for corsproc.
func firstRoute(m func() *anypb.Any) func(*adminv3.ConfigDump) {
	return func(d *adminv3.ConfigDump) {
		name := doctortest.CorsprocFilterName(d)
		doctortest.EachRouteConfig(d, func(rc *routev3.RouteConfiguration) {
			rc.GetVirtualHosts()[0].GetRoutes()[0].TypedPerFilterConfig = map[string]*anypb.Any{name: m()}
		})
	}
}

func TestGatingAndPerRouteSettings(t *testing.T) {
	t.Parallel()
	disabled := func() *anypb.Any {
		return doctortest.Pack(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: true}})
	}
	override := func(resp extprocv3.ProcessingMode_HeaderSendMode) func() *anypb.Any {
		return func() *anypb.Any {
			return doctortest.Pack(&extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Overrides{Overrides: &extprocv3.ExtProcOverrides{
				ProcessingMode: &extprocv3.ProcessingMode{ResponseHeaderMode: resp},
			}}})
		}
	}
	hostPolicy := "policies:\n  - name: all\n    allowed_origins: [\"https://app.example.com\"]\n"
	tests := []struct {
		name    string
		apply   []func(*adminv3.ConfigDump)
		policy  string
		want    []string // severity and check of every finding but the info ones
		wantAny string   // an info finding that must be there
	}{
		{"a composite filter running corsproc on any origin, with vary added by the routes, is clean",
			[]func(*adminv3.ConfigDump){composite("origin", ".*", true)}, "", nil, ""},
		{"a composite filter without vary: origin on the routes warns that caches can mix answers",
			[]func(*adminv3.ConfigDump){composite("origin", ".*", false)}, "", []string{"warning no-vary-origin"}, ""},
		{"a composite filter on another header warns that corsproc misses requests",
			[]func(*adminv3.ConfigDump){composite("x-cors", ".*", true)}, "", []string{"warning corsproc-gated"}, ""},
		{"a composite filter on one origin's value warns that corsproc misses requests",
			[]func(*adminv3.ConfigDump){composite("origin", `https://app\.example\.com`, true)}, "", []string{"warning corsproc-gated"}, ""},
		{"an authentication filter before a composite corsproc is still an error",
			[]func(*adminv3.ConfigDump){composite("origin", ".*", true), func(d *adminv3.ConfigDump) {
				doctortest.EachHCM(d, func(h *hcmv3.HttpConnectionManager) {
					doctortest.Prepend(h, filter("envoy.filters.http.jwt_authn", &jwtv3.JwtAuthentication{}))
				})
			}}, "", []string{"error auth-before-corsproc"}, ""},
		{"an authentication filter behind a matcher, before corsproc, is still an error",
			[]func(*adminv3.ConfigDump){func(d *adminv3.ConfigDump) {
				doctortest.EachHCM(d, func(h *hcmv3.HttpConnectionManager) {
					doctortest.Prepend(h, filter("jwt-unless-health", &matchingv3.ExtensionWithMatcher{
						ExtensionConfig: &corev3.TypedExtensionConfig{Name: "jwt", TypedConfig: doctortest.Pack(&jwtv3.JwtAuthentication{})},
					}))
				})
			}}, "", []string{"error auth-before-corsproc"}, ""},
		{"one route that disables corsproc, with no policy given, is only noted",
			[]func(*adminv3.ConfigDump){firstRoute(disabled)}, "", nil, "corsproc-off"},
		{"a corsproc no route enables is a warning",
			[]func(*adminv3.ConfigDump){perRoute("route", disabled)}, "", []string{"warning corsproc-never-runs"}, "corsproc-off"},
		{"routes that disable corsproc while a policy matches them are a warning",
			[]func(*adminv3.ConfigDump){perRoute("route", disabled)}, hostPolicy, []string{"warning route-disables-corsproc", "warning route-disables-corsproc", "warning route-disables-corsproc", "warning corsproc-never-runs"}, ""},
		{"a route's overrides beat its virtual host's disabled",
			[]func(*adminv3.ConfigDump){perRoute("virtual host", disabled), perRoute("route", override(extprocv3.ProcessingMode_SEND))}, hostPolicy, nil, ""},
		{"a route override that skips response headers is an error",
			[]func(*adminv3.ConfigDump){perRoute("route", override(extprocv3.ProcessingMode_SKIP))}, "", []string{"error route-override-skips-headers", "error route-override-skips-headers", "error route-override-skips-headers"}, ""},
		{"a FilterConfig disabling corsproc on the virtual host switches it off",
			[]func(*adminv3.ConfigDump){perRoute("virtual host", func() *anypb.Any { return doctortest.Pack(&routev3.FilterConfig{Disabled: true}) })}, "", []string{"warning corsproc-never-runs"}, "corsproc-off"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := plainEnvoy(t)
			for _, f := range tt.apply {
				f(d)
			}
			var o doctor.Options
			if tt.policy != "" {
				o.Policy = mustPolicy(t, tt.policy)
			}
			fs := analyse(t, d, o)
			var got []string
			for _, f := range fs {
				if f.Severity != doctor.Info {
					got = append(got, string(f.Severity)+" "+f.Check)
				}
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("got %q, want %q\n%s", got, tt.want, strings.Join(problems(fs), "\n"))
			}
			if tt.wantAny != "" && !has(fs, doctor.Info, tt.wantAny) {
				t.Errorf("no info %s in %v", tt.wantAny, fs)
			}
		})
	}
}
