package doctor_test

import (
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	commonmatcherv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/matcher/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	compositev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/composite/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/corsproc/corsproc/internal/doctor"
	"github.com/corsproc/corsproc/internal/doctor/doctortest"
)

func goodCorsproc() *extprocv3.ExternalProcessor {
	return &extprocv3.ExternalProcessor{
		GrpcService:       &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "corsproc"}}},
		AllowModeOverride: true, FailureModeAllow: true, MessageTimeout: durationpb.New(2e8),
	}
}

// listenerDump puts one HCM with filters in a dynamic listener, in its
// default filter chain when dflt is set.
func listenerDump(dflt bool, filters []*hcmv3.HttpFilter, extra ...*anypb.Any) *adminv3.ConfigDump {
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix: "x",
		RouteSpecifier: &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: &routev3.RouteConfiguration{Name: "r", VirtualHosts: []*routev3.VirtualHost{{
			Name: "v", Domains: []string{"*"}, Routes: []*routev3.Route{{Name: "all", Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}}},
		}}}},
		HttpFilters: filters,
	}
	fc := &listenerv3.FilterChain{Filters: []*listenerv3.Filter{{Name: doctortest.HCM, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: doctortest.Pack(hcm)}}}}
	l := &listenerv3.Listener{Name: "l"}
	if dflt {
		l.DefaultFilterChain = fc
	} else {
		l.FilterChains = []*listenerv3.FilterChain{fc}
	}
	return &adminv3.ConfigDump{Configs: append([]*anypb.Any{doctortest.Pack(&adminv3.ListenersConfigDump{DynamicListeners: []*adminv3.ListenersConfigDump_DynamicListener{{
		Name: "l", WarmingState: &adminv3.ListenersConfigDump_DynamicListenerState{Listener: doctortest.Pack(l)},
	}}})}, extra...)}
}

func TestFiltersFromDiscoveryAndDefaultChains(t *testing.T) {
	t.Parallel()
	router := &hcmv3.HttpFilter{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: doctortest.Pack(&routerv3.Router{})}}
	ecdsFilter := &hcmv3.HttpFilter{Name: "cors-ecds", ConfigType: &hcmv3.HttpFilter_ConfigDiscovery{ConfigDiscovery: &corev3.ExtensionConfigSource{
		ConfigSource: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}},
		TypeUrls:     []string{"type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor"},
	}}}
	ecds := doctortest.Pack(&adminv3.EcdsConfigDump{EcdsFilters: []*adminv3.EcdsConfigDump_EcdsFilterConfig{{
		EcdsFilter: doctortest.Pack(&corev3.TypedExtensionConfig{Name: "cors-ecds", TypedConfig: doctortest.Pack(goodCorsproc())}),
	}}})
	plain := &hcmv3.HttpFilter{Name: "envoy.filters.http.ext_proc", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: doctortest.Pack(goodCorsproc())}}
	for _, tt := range []struct {
		name  string
		dump  *adminv3.ConfigDump
		found bool
	}{
		{"corsproc delivered by ECDS is found", listenerDump(false, []*hcmv3.HttpFilter{ecdsFilter, router}, ecds), true},
		{"an ECDS filter missing from the dump is not taken for corsproc", listenerDump(false, []*hcmv3.HttpFilter{ecdsFilter, router}), false},
		{"corsproc in a warming listener's default filter chain is found", listenerDump(true, []*hcmv3.HttpFilter{plain, router}), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := analyse(t, tt.dump, doctor.Options{})
			if got := !has(fs, doctor.Error, "no-corsproc"); got != tt.found {
				t.Errorf("corsproc found %v, want %v: %v", got, tt.found, fs)
			}
		})
	}
}

func TestACompositeWithTheDeprecatedMatcherStillRunsCorsproc(t *testing.T) {
	t.Parallel()
	efa := doctortest.Pack(&compositev3.ExecuteFilterAction{TypedConfig: &corev3.TypedExtensionConfig{Name: "envoy.filters.http.ext_proc", TypedConfig: doctortest.Pack(goodCorsproc())}})
	ewm := &matchingv3.ExtensionWithMatcher{
		ExtensionConfig: &corev3.TypedExtensionConfig{Name: "composite", TypedConfig: doctortest.Pack(&compositev3.Composite{})},
		Matcher: &commonmatcherv3.Matcher{OnNoMatch: &commonmatcherv3.Matcher_OnMatch{OnMatch: &commonmatcherv3.Matcher_OnMatch_Action{
			Action: &corev3.TypedExtensionConfig{Name: "corsproc", TypedConfig: efa},
		}}},
	}
	d := listenerDump(false, []*hcmv3.HttpFilter{
		{Name: "composite", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: doctortest.Pack(ewm)}},
		{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: doctortest.Pack(&routerv3.Router{})}},
	})
	fs := analyse(t, d, doctor.Options{})
	if has(fs, doctor.Error, "no-corsproc") {
		t.Fatalf("corsproc behind the deprecated matcher was not found: %v", fs)
	}
	if !has(fs, doctor.Warning, "corsproc-gated") {
		t.Errorf("no warning that the matcher was not inspected: %v", fs)
	}
}
