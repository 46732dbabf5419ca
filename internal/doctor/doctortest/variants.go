package doctortest

import (
	"strings"

	xdscorev3 "github.com/cncf/xds/go/xds/core/v3"
	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	compositev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/composite/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// repack unpacks an Any into m, lets fn change m, and packs it back.
func repack(a *anypb.Any, m proto.Message, fn func()) {
	if a == nil || a.UnmarshalTo(m) != nil {
		return
	}
	fn()
	b, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	a.Value = b.Value
}

// EachHCM calls fn with every HTTP connection manager of every listener in
// d, and stores what fn changed.
func EachHCM(d *adminv3.ConfigDump, fn func(*hcmv3.HttpConnectionManager)) {
	onListener := func(a *anypb.Any) {
		var l listenerv3.Listener
		repack(a, &l, func() {
			for _, fc := range l.GetFilterChains() {
				for _, f := range fc.GetFilters() {
					var h hcmv3.HttpConnectionManager
					repack(f.GetTypedConfig(), &h, func() { fn(&h) })
				}
			}
		})
	}
	for _, c := range d.GetConfigs() {
		var ls adminv3.ListenersConfigDump
		repack(c, &ls, func() {
			for _, s := range ls.GetStaticListeners() {
				onListener(s.GetListener())
			}
			for _, dl := range ls.GetDynamicListeners() {
				onListener(dl.GetActiveState().GetListener())
			}
		})
	}
}

// EachRouteConfig calls fn with every route configuration: inline in a
// connection manager or delivered by RDS.
func EachRouteConfig(d *adminv3.ConfigDump, fn func(*routev3.RouteConfiguration)) {
	EachHCM(d, func(h *hcmv3.HttpConnectionManager) {
		if rc := h.GetRouteConfig(); rc != nil {
			fn(rc)
		}
	})
	for _, c := range d.GetConfigs() {
		var rs adminv3.RoutesConfigDump
		repack(c, &rs, func() {
			for _, r := range rs.GetDynamicRouteConfigs() {
				var rc routev3.RouteConfiguration
				repack(r.GetRouteConfig(), &rc, func() { fn(&rc) })
			}
			for _, r := range rs.GetStaticRouteConfigs() {
				var rc routev3.RouteConfiguration
				repack(r.GetRouteConfig(), &rc, func() { fn(&rc) })
			}
		})
	}
}

// IsCorsproc tells corsproc's ext_proc config by its cluster name.
func IsCorsproc(ep *extprocv3.ExternalProcessor) bool {
	return strings.Contains(ep.GetGrpcService().GetEnvoyGrpc().GetClusterName(), "corsproc")
}

// EachCorsproc calls fn with corsproc's ExternalProcessor in h, whether a
// filter of its own or a composite filter's delegate, and stores the
// change.
func EachCorsproc(h *hcmv3.HttpConnectionManager, fn func(*extprocv3.ExternalProcessor)) {
	for _, f := range h.GetHttpFilters() {
		var ep extprocv3.ExternalProcessor
		repack(f.GetTypedConfig(), &ep, func() {
			if IsCorsproc(&ep) {
				fn(&ep)
			}
		})
		var ewm matchingv3.ExtensionWithMatcher
		repack(f.GetTypedConfig(), &ewm, func() {
			eachAction(ewm.GetXdsMatcher(), func(act *anypb.Any) {
				var efa compositev3.ExecuteFilterAction
				repack(act, &efa, func() {
					var ep extprocv3.ExternalProcessor
					repack(efa.GetTypedConfig().GetTypedConfig(), &ep, func() {
						if IsCorsproc(&ep) {
							fn(&ep)
						}
					})
				})
			})
			var ep extprocv3.ExternalProcessor
			repack(ewm.GetExtensionConfig().GetTypedConfig(), &ep, func() {
				if IsCorsproc(&ep) {
					fn(&ep)
				}
			})
		})
	}
}

func eachAction(m *xdsmatcherv3.Matcher, fn func(*anypb.Any)) {
	if m == nil {
		return
	}
	on := func(om *xdsmatcherv3.Matcher_OnMatch) {
		if om.GetAction() != nil {
			fn(om.GetAction().GetTypedConfig())
		}
		eachAction(om.GetMatcher(), fn)
	}
	for _, fm := range m.GetMatcherList().GetMatchers() {
		on(fm.GetOnMatch())
	}
	if m.GetOnNoMatch() != nil {
		on(m.GetOnNoMatch())
	}
}

// RemoveCorsproc drops corsproc's filter from h (with the composite filter
// that holds it).
func RemoveCorsproc(h *hcmv3.HttpConnectionManager) {
	var keep []*hcmv3.HttpFilter
	for _, f := range h.GetHttpFilters() {
		found := false
		single := &hcmv3.HttpConnectionManager{HttpFilters: []*hcmv3.HttpFilter{proto.Clone(f).(*hcmv3.HttpFilter)}}
		EachCorsproc(single, func(*extprocv3.ExternalProcessor) { found = true })
		if !found {
			keep = append(keep, f)
		}
	}
	h.HttpFilters = keep
}

// Prepend puts f first in h's chain.
func Prepend(h *hcmv3.HttpConnectionManager, f *hcmv3.HttpFilter) {
	h.HttpFilters = append([]*hcmv3.HttpFilter{f}, h.HttpFilters...)
}

// InsertBeforeRouter puts f just before the router.
func InsertBeforeRouter(h *hcmv3.HttpConnectionManager, f *hcmv3.HttpFilter) {
	n := len(h.HttpFilters)
	for i, x := range h.HttpFilters {
		if x.GetName() == "envoy.filters.http.router" {
			n = i
		}
	}
	h.HttpFilters = append(h.HttpFilters[:n:n], append([]*hcmv3.HttpFilter{f}, h.HttpFilters[n:]...)...)
}

// CorsprocFilterName returns the name of the http_filters entry that holds
// corsproc (the key of its typed_per_filter_config), or "".
func CorsprocFilterName(d *adminv3.ConfigDump) string {
	name := ""
	EachHCM(d, func(h *hcmv3.HttpConnectionManager) {
		for _, f := range h.GetHttpFilters() {
			single := &hcmv3.HttpConnectionManager{HttpFilters: []*hcmv3.HttpFilter{proto.Clone(f).(*hcmv3.HttpFilter)}}
			EachCorsproc(single, func(*extprocv3.ExternalProcessor) {
				if name == "" {
					name = f.GetName()
				}
			})
		}
	})
	return name
}

// WrapInComposite replaces a top-level corsproc filter with a composite
// filter that runs it only when request header hdr matches regex
// (envoy-filter-chain.md E.2).
func WrapInComposite(h *hcmv3.HttpConnectionManager, hdr, regex string) {
	for i, f := range h.GetHttpFilters() {
		var ep extprocv3.ExternalProcessor
		if f.GetTypedConfig().UnmarshalTo(&ep) != nil || !IsCorsproc(&ep) {
			continue
		}
		input := Pack(&matcherv3.HttpRequestHeaderMatchInput{HeaderName: hdr})
		action := Pack(&compositev3.ExecuteFilterAction{TypedConfig: &corev3.TypedExtensionConfig{Name: f.GetName(), TypedConfig: f.GetTypedConfig()}})
		ewm := &matchingv3.ExtensionWithMatcher{
			ExtensionConfig: &corev3.TypedExtensionConfig{Name: "composite", TypedConfig: Pack(&compositev3.Composite{})},
			XdsMatcher: &xdsmatcherv3.Matcher{MatcherType: &xdsmatcherv3.Matcher_MatcherList_{MatcherList: &xdsmatcherv3.Matcher_MatcherList{
				Matchers: []*xdsmatcherv3.Matcher_MatcherList_FieldMatcher{{
					Predicate: &xdsmatcherv3.Matcher_MatcherList_Predicate{MatchType: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate_{
						SinglePredicate: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate{
							Input:   &xdscorev3.TypedExtensionConfig{Name: hdr, TypedConfig: input},
							Matcher: &xdsmatcherv3.Matcher_MatcherList_Predicate_SinglePredicate_ValueMatch{ValueMatch: &xdsmatcherv3.StringMatcher{MatchPattern: &xdsmatcherv3.StringMatcher_SafeRegex{SafeRegex: &xdsmatcherv3.RegexMatcher{Regex: regex, EngineType: &xdsmatcherv3.RegexMatcher_GoogleRe2{GoogleRe2: &xdsmatcherv3.RegexMatcher_GoogleRE2{}}}}}},
						},
					}},
					OnMatch: &xdsmatcherv3.Matcher_OnMatch{OnMatch: &xdsmatcherv3.Matcher_OnMatch_Action{Action: &xdscorev3.TypedExtensionConfig{Name: "corsproc", TypedConfig: action}}},
				}},
			}}},
		}
		h.HttpFilters[i] = &hcmv3.HttpFilter{Name: "composite", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: Pack(ewm)}}
	}
}

// AddVaryOrigin adds vary: origin to every virtual host's responses, as a
// composite-gated corsproc needs.
func AddVaryOrigin(rc *routev3.RouteConfiguration) {
	for _, vh := range rc.GetVirtualHosts() {
		vh.ResponseHeadersToAdd = append(vh.ResponseHeadersToAdd, &corev3.HeaderValueOption{
			Header:       &corev3.HeaderValue{Key: "vary", Value: "origin"},
			AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
		})
	}
}
