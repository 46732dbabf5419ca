package doctor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	xdsmatcherv3 "github.com/cncf/xds/go/xds/type/matcher/v3"
	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	compositev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/composite/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
)

// kind is what a filter does, as far as CORS is concerned.
type kind int

const (
	kindOther kind = iota
	kindUnknown
	kindExtProc
	kindComposite // ExtensionWithMatcher: its delegates are listed after it
	kindCORS
	kindRouter
	kindAuthn     // answers 401 to a request without credentials
	kindAuthz     // answers 403
	kindRateLimit // answers 429
)

// A filter is recognised by its typed_config's type; a filter whose type is
// unknown (or comes from ECDS) by its name, which Envoy Gateway and Istio
// start with the type's canonical filter name.
var filterKinds = []struct {
	typ, name string
	kind      kind
}{
	{"envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication", "envoy.filters.http.jwt_authn", kindAuthn},
	{"envoy.extensions.filters.http.basic_auth.v3.BasicAuth", "envoy.filters.http.basic_auth", kindAuthn},
	{"envoy.extensions.filters.http.oauth2.v3.OAuth2", "envoy.filters.http.oauth2", kindAuthn},
	{"envoy.extensions.filters.http.api_key_auth.v3.ApiKeyAuth", "envoy.filters.http.api_key_auth", kindAuthn},
	{"envoy.extensions.filters.http.ext_authz.v3.ExtAuthz", "envoy.filters.http.ext_authz", kindAuthz},
	{"envoy.extensions.filters.http.rbac.v3.RBAC", "envoy.filters.http.rbac", kindAuthz},
	{"envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit", "envoy.filters.http.local_ratelimit", kindRateLimit},
	{"envoy.extensions.filters.http.ratelimit.v3.RateLimit", "envoy.filters.http.ratelimit", kindRateLimit},
	{"envoy.extensions.filters.http.rate_limit_quota.v3.RateLimitQuotaFilterConfig", "envoy.filters.http.rate_limit_quota", kindRateLimit},
	{"envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor", "envoy.filters.http.ext_proc", kindExtProc},
	{"envoy.extensions.filters.http.cors.v3.Cors", "envoy.filters.http.cors", kindCORS},
	{"envoy.extensions.filters.http.router.v3.Router", "envoy.filters.http.router", kindRouter},
	{"envoy.extensions.common.matching.v3.ExtensionWithMatcher", "", kindComposite},
}

func kindOf(typ, name string) kind {
	for _, k := range filterKinds {
		if typ == k.typ {
			return k.kind
		}
	}
	if typ != "" {
		if _, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typ)); err == nil {
			return kindOther
		}
	}
	for _, k := range filterKinds {
		if k.name != "" && (name == k.name || strings.HasPrefix(name, k.name+"/") || strings.HasPrefix(name, k.name+".")) {
			return k.kind
		}
	}
	return kindUnknown
}

// filter is one HTTP filter of a chain, or a delegate of a composite one.
type filter struct {
	index    int    // position of the top-level filter in http_filters
	name     string // "outer > inner" for a delegate
	outer    string // the top-level filter's name: the typed_per_filter_config key
	typ      string // the typed_config's type name; "" when not given
	kind     kind
	msg      proto.Message // decoded typed_config; nil when unknown
	disabled bool          // HCM disabled: off unless a route enables it
	gate     *gate         // for a delegate or a matcher-wrapped filter
	from     string        // "ECDS" when the config came from discovery
}

// gate is the condition a matcher puts on a filter.
type gate struct {
	headers  []string // request headers the matcher reads
	anyValue bool     // every value match accepts any value
	other    bool     // the matcher reads something else too
	legacy   bool     // the deprecated matcher field, not inspected
}

func (g *gate) onOriginOnly() bool {
	return g != nil && !g.other && !g.legacy && g.anyValue && len(g.headers) == 1 && g.headers[0] == "origin"
}

func (g *gate) String() string {
	switch {
	case g.legacy:
		return "a (deprecated) matcher doctor does not inspect"
	case g.onOriginOnly():
		return "the presence of an origin header"
	}
	var b strings.Builder
	if len(g.headers) > 0 {
		fmt.Fprintf(&b, "request headers %s", strings.Join(g.headers, ", "))
		if !g.anyValue {
			b.WriteString(" (specific values)")
		}
	}
	if g.other {
		if b.Len() > 0 {
			b.WriteString(" and ")
		}
		b.WriteString("other inputs")
	}
	return b.String()
}

// index files the dump's listeners, route configurations and ECDS
// filters.
func (a *analysis) index() {
	a.routes = map[string]*routev3.RouteConfiguration{}
	a.ecds = map[string]*anypb.Any{}
	for _, c := range a.dump.GetConfigs() {
		m, err := c.UnmarshalNew()
		if err != nil {
			continue // Decode keeps only the sections below; a hand-built dump may hold others
		}
		switch s := m.(type) {
		case *adminv3.ListenersConfigDump:
			for _, l := range s.GetStaticListeners() {
				a.addListener(l.GetListener())
			}
			for _, l := range s.GetDynamicListeners() {
				// The active state is what serves traffic; a listener
				// still warming will once it is ready.
				if st := cmpOrState(l.GetActiveState(), l.GetWarmingState()); st != nil {
					a.addListener(st.GetListener())
				}
			}
		case *adminv3.RoutesConfigDump:
			for _, r := range s.GetStaticRouteConfigs() {
				a.addRoutes(r.GetRouteConfig())
			}
			for _, r := range s.GetDynamicRouteConfigs() {
				a.addRoutes(r.GetRouteConfig())
			}
		case *adminv3.EcdsConfigDump:
			for _, f := range s.GetEcdsFilters() {
				var tc corev3.TypedExtensionConfig
				if f.GetEcdsFilter().UnmarshalTo(&tc) == nil {
					a.ecds[tc.GetName()] = tc.GetTypedConfig()
				}
			}
		}
	}
}

func (a *analysis) addListener(x *anypb.Any) {
	var l listenerv3.Listener
	if x == nil || x.UnmarshalTo(&l) != nil {
		return
	}
	a.listeners = append(a.listeners, &l)
}

func cmpOrState(active, warming *adminv3.ListenersConfigDump_DynamicListenerState) *adminv3.ListenersConfigDump_DynamicListenerState {
	if active != nil {
		return active
	}
	return warming
}

func (a *analysis) addRoutes(x *anypb.Any) {
	var rc routev3.RouteConfiguration
	if x != nil && x.UnmarshalTo(&rc) == nil {
		a.routes[rc.GetName()] = &rc
	}
}

// listener analyses every HTTP connection manager of l.
func (a *analysis) listener(l *listenerv3.Listener) {
	chains := l.GetFilterChains()
	names := make([]string, len(chains))
	for i, fc := range chains {
		names[i] = cmpOr(fc.GetName(), strconv.Itoa(i))
	}
	if d := l.GetDefaultFilterChain(); d != nil {
		chains = append(chains, d)
		names = append(names, cmpOr(d.GetName(), "default"))
	}
	for i, fc := range chains {
		for _, nf := range fc.GetFilters() {
			var hcm hcmv3.HttpConnectionManager
			if nf.GetTypedConfig() == nil || nf.GetTypedConfig().UnmarshalTo(&hcm) != nil {
				continue // not an HTTP connection manager
			}
			a.hcm(Where{Listener: l.GetName(), FilterChain: names[i]}, &hcm)
		}
	}
}

// chain lists the HTTP filters of hcm, composite delegates right after
// their composite filter.
func (a *analysis) chain(w Where, hcm *hcmv3.HttpConnectionManager) []*filter {
	var out []*filter
	for i, hf := range hcm.GetHttpFilters() {
		f := &filter{index: i, name: hf.GetName(), outer: hf.GetName(), disabled: hf.GetDisabled()}
		cfg := hf.GetTypedConfig()
		if cd := hf.GetConfigDiscovery(); cd != nil {
			f.from = "ECDS"
			cfg = a.ecds[hf.GetName()]
			if cfg == nil {
				cfg = cd.GetDefaultConfig()
			}
		}
		a.decodeFilter(f, cfg)
		out = append(out, f)
		if f.kind == kindComposite {
			out = append(out, a.delegates(w, f)...)
		}
	}
	return out
}

// decodeFilter fills f's type, kind and message from its typed_config.
func (a *analysis) decodeFilter(f *filter, cfg *anypb.Any) {
	if cfg != nil {
		f.typ = typeName(cfg.GetTypeUrl())
	}
	f.kind = kindOf(f.typ, f.name)
	if cfg == nil {
		return
	}
	m, err := cfg.UnmarshalNew()
	if err != nil {
		if errors.Is(err, protoregistry.NotFound) {
			f.kind = kindOf("", f.name)
			if f.kind == kindOther {
				f.kind = kindUnknown
			}
		}
		return
	}
	f.msg = m
}

// delegates returns the filters a composite (or matcher-wrapped) filter
// runs, each with the matcher's condition.
func (a *analysis) delegates(w Where, f *filter) []*filter {
	ewm, ok := f.msg.(*matchingv3.ExtensionWithMatcher)
	if !ok {
		return nil
	}
	g := &gate{}
	if ewm.GetXdsMatcher() != nil {
		readGate(ewm.GetXdsMatcher(), g)
	} else {
		g.legacy = true
	}
	mk := func(tc *corev3.TypedExtensionConfig, dynamic string) *filter {
		d := &filter{index: f.index, outer: f.outer, disabled: f.disabled, gate: g}
		cfg := tc.GetTypedConfig()
		name := tc.GetName()
		if dynamic != "" {
			name, cfg, d.from = dynamic, a.ecds[dynamic], "ECDS"
		}
		d.name = f.outer + " > " + name
		a.decodeFilter(d, cfg)
		if d.kind == kindUnknown || d.kind == kindOther {
			d.kind = kindOf(d.typ, name)
		}
		return d
	}
	var out []*filter
	inner := ewm.GetExtensionConfig()
	if inner != nil && typeName(inner.GetTypedConfig().GetTypeUrl()) != "envoy.extensions.filters.http.composite.v3.Composite" {
		// A matcher around one filter (SkipFilter actions): the filter
		// itself runs unless the matcher skips it.
		return append(out, mk(inner, ""))
	}
	var matcher proto.Message
	switch {
	case ewm.GetXdsMatcher() != nil:
		matcher = ewm.GetXdsMatcher()
	case ewm.GetMatcher() != nil: // deprecated, still accepted by Envoy
		matcher = ewm.GetMatcher()
	}
	forEachAction(matcher, func(action *anypb.Any) {
		var efa compositev3.ExecuteFilterAction
		if action.UnmarshalTo(&efa) != nil {
			return
		}
		if efa.GetTypedConfig() != nil {
			out = append(out, mk(efa.GetTypedConfig(), ""))
		}
		if dc := efa.GetDynamicConfig(); dc != nil {
			out = append(out, mk(nil, dc.GetName()))
		}
		for _, tc := range efa.GetFilterChain().GetTypedConfig() {
			out = append(out, mk(tc, ""))
		}
	})
	return out
}

// forEachAction calls fn with every action a matcher can take. It walks
// the message by reflection, so that the xds matcher and the deprecated
// envoy.config.common.matcher one, which share their shape, are both
// read: an action is the typed_config of a field named "action".
func forEachAction(m proto.Message, fn func(*anypb.Any)) {
	if m == nil {
		return
	}
	var walk func(protoreflect.Message)
	walk = func(pm protoreflect.Message) {
		pm.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			if fd.Kind() != protoreflect.MessageKind {
				return true
			}
			visit := func(x protoreflect.Message) {
				if fd.Name() == "action" {
					if tc, ok := x.Interface().(interface{ GetTypedConfig() *anypb.Any }); ok {
						fn(tc.GetTypedConfig())
						return
					}
				}
				if _, isAny := x.Interface().(*anypb.Any); !isAny {
					walk(x)
				}
			}
			switch {
			case fd.IsList():
				for i := 0; i < v.List().Len(); i++ {
					visit(v.List().Get(i).Message())
				}
			case fd.IsMap():
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(mv.Message())
					return true
				})
			default:
				visit(v.Message())
			}
			return true
		})
	}
	walk(m.ProtoReflect())
}

// readGate records what the matcher's predicates read.
func readGate(m *xdsmatcherv3.Matcher, g *gate) {
	g.anyValue = true
	var pred func(p *xdsmatcherv3.Matcher_MatcherList_Predicate)
	input := func(tc interface{ GetTypedConfig() *anypb.Any }) {
		var hi matcherv3.HttpRequestHeaderMatchInput
		if tc == nil || tc.GetTypedConfig().UnmarshalTo(&hi) != nil {
			g.other = true
			return
		}
		name := strings.ToLower(hi.GetHeaderName())
		for _, h := range g.headers {
			if h == name {
				return
			}
		}
		g.headers = append(g.headers, name)
	}
	pred = func(p *xdsmatcherv3.Matcher_MatcherList_Predicate) {
		if p == nil {
			return
		}
		if sp := p.GetSinglePredicate(); sp != nil {
			input(sp.GetInput())
			if vm := sp.GetValueMatch(); vm != nil {
				if !matchesAnything(vm) {
					g.anyValue = false
				}
			} else {
				g.other = true // a custom match
			}
		}
		for _, q := range p.GetOrMatcher().GetPredicate() {
			pred(q)
		}
		for _, q := range p.GetAndMatcher().GetPredicate() {
			pred(q)
		}
		pred(p.GetNotMatcher())
	}
	var walk func(m *xdsmatcherv3.Matcher)
	walk = func(m *xdsmatcherv3.Matcher) {
		if m == nil {
			return
		}
		for _, fm := range m.GetMatcherList().GetMatchers() {
			pred(fm.GetPredicate())
			walk(fm.GetOnMatch().GetMatcher())
		}
		if t := m.GetMatcherTree(); t != nil {
			input(t.GetInput())
			g.anyValue = false
		}
		walk(m.GetOnNoMatch().GetMatcher())
	}
	walk(m)
}

// matchesAnything reports whether a value matcher accepts every value of a
// present header: a regex such as ".*", or an empty prefix.
func matchesAnything(vm *xdsmatcherv3.StringMatcher) bool {
	if re := vm.GetSafeRegex(); re != nil {
		switch re.GetRegex() {
		case ".*", "^.*$", "(.*)", ".+", "^.+$", "[\\s\\S]*":
			return true
		}
		return false
	}
	return false
}

// corsprocConfig returns the ExternalProcessor of f when f is corsproc.
func (a *analysis) corsprocConfig(f *filter) (*extprocv3.ExternalProcessor, bool) {
	ep, ok := f.msg.(*extprocv3.ExternalProcessor)
	if !ok {
		return nil, false
	}
	return ep, a.isCorsproc(ep)
}

func (a *analysis) isCorsproc(ep *extprocv3.ExternalProcessor) bool {
	target := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	if g := ep.GetGrpcService().GetGoogleGrpc(); g != nil {
		target = g.GetTargetUri()
	}
	if a.opts.Cluster != "" {
		return target == a.opts.Cluster
	}
	return strings.Contains(strings.ToLower(target), "corsproc")
}

func extProcTarget(ep *extprocv3.ExternalProcessor) string {
	if g := ep.GetGrpcService().GetGoogleGrpc(); g != nil {
		return g.GetTargetUri()
	}
	if c := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName(); c != "" {
		return c
	}
	if h := ep.GetHttpService().GetHttpService().GetHttpUri().GetCluster(); h != "" {
		return h + " (HTTP service)"
	}
	return "(no service)"
}

// rejects reports whether an authentication, authorization or rate-limit
// filter can answer a request itself, and whether it lets preflights
// through.
func rejects(f *filter) (rejects, passesPreflights bool) {
	switch m := f.msg.(type) {
	case *rbacv3.RBAC:
		// Only shadow rules (Istio's CUSTOM action adds such a filter):
		// it logs, never denies.
		return m.GetRules() != nil, false
	case *jwtv3.JwtAuthentication:
		return true, m.GetBypassCorsPreflight()
	}
	return true, false
}

func cmpOr(s, def string) string {
	if s != "" {
		return s
	}
	return def
}
