// Package doctortest builds Envoy admin config dumps from the repository's
// shipped configurations, and broken variants of them, for the tests of
// internal/doctor and of `corsproc doctor`. No Envoy runs here, so each
// dump is what the control plane would hand Envoy, built with
// go-control-plane's admin types:
//
//   - plain Envoy (envoy/envoy.yaml, k8s/overlays/plain-envoy/envoy.yaml):
//     the bootstrap's static listeners, as /config_dump lists them;
//   - Envoy Gateway (k8s/overlays/envoy-gateway): the listener Envoy Gateway
//     generates for the EnvoyExtensionPolicy, with the authentication
//     filters a SecurityPolicy (JWT and ext_authz) adds, in Envoy Gateway's
//     filter order, then the filterOrder of the EnvoyProxy that the
//     GatewayClass "eg" names in its parametersRef;
//   - Istio (k8s/overlays/istio): an ingress gateway listener with the
//     filters a RequestAuthentication, a CUSTOM AuthorizationPolicy and an
//     ALLOW AuthorizationPolicy add, in Istio's order, then the shipped
//     EnvoyFilter's HTTP_FILTER patches applied.
//
// Of an overlay, only the files its kustomization.yaml lists are read.
//
// The orders and naming rules are those of envoy-filter-chain.md (B, C).
// What the builders assume beyond the shipped objects (the Gateway's
// listener and route names, which authentication policies exist, Envoy
// Gateway's cluster names) is stated where it is built.
package doctortest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacconfigv3 "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	faultv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	grpcstatsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/grpc_stats/v3"
	jwtv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	rbacv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/goccy/go-yaml"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3" // the bootstraps' cluster options

	"github.com/corsproc/corsproc/internal/doctor" // its Resolver; it registers the filter types
)

// HCM is the network filter every builder's listeners hold.
const HCM = "envoy.filters.network.http_connection_manager"

// Marshal renders a dump as Envoy's admin interface does (JSON, proto field
// names). Types the registry lacks (Istio's own filters) are written as
// {"@type": URL}, as doctor must be able to read them.
func Marshal(d *adminv3.ConfigDump) ([]byte, error) {
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  ", UseProtoNames: true, Resolver: doctor.Resolver}.Marshal(d)
	if err != nil {
		return nil, err
	}
	// protojson's spacing is deliberately unstable; golden files need a
	// stable one.
	var out bytes.Buffer
	if err := json.Indent(&out, compact(b), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

func compact(b []byte) []byte {
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return b
	}
	return out.Bytes()
}

// Unknown returns an Any of a type no registry here knows, as Istio's own
// filters are to go-control-plane.
func Unknown(typeName string) *anypb.Any {
	return &anypb.Any{TypeUrl: "type.googleapis.com/" + typeName}
}

// Pack wraps m in an Any; m is always a registered type here.
func Pack(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err) // only on a nil message: a test bug
	}
	return a
}

// yamlToJSON converts one YAML document to JSON.
func yamlToJSON(name string, data []byte) ([]byte, error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return j, nil
}

// PlainEnvoy reads an Envoy bootstrap (YAML) and returns the config dump a
// running Envoy would serve for it: its static listeners.
func PlainEnvoy(path string) (*adminv3.ConfigDump, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	j, err := yamlToJSON(path, data)
	if err != nil {
		return nil, err
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(j, &b); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	ls := &adminv3.ListenersConfigDump{}
	for _, l := range b.GetStaticResources().GetListeners() {
		ls.StaticListeners = append(ls.StaticListeners, &adminv3.ListenersConfigDump_StaticListener{Listener: Pack(l)})
	}
	cs := &adminv3.ClustersConfigDump{}
	for _, c := range b.GetStaticResources().GetClusters() {
		cs.StaticClusters = append(cs.StaticClusters, &adminv3.ClustersConfigDump_StaticCluster{Cluster: Pack(c)})
	}
	return &adminv3.ConfigDump{Configs: []*anypb.Any{Pack(&adminv3.BootstrapConfigDump{Bootstrap: &b}), Pack(cs), Pack(ls)}}, nil
}

// objects reads the YAML documents of the overlay in dir that its
// kustomization.yaml lists as resources (files in dir; the shared base is
// not read), by kind: a file the kustomization leaves out is not applied.
func objects(dir string) (map[string][]map[string]any, error) {
	kdata, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		return nil, err
	}
	var k struct {
		Resources []string `yaml:"resources"`
	}
	if err := yaml.Unmarshal(kdata, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "kustomization.yaml"), err)
	}
	out := map[string][]map[string]any{}
	for _, r := range k.Resources {
		if strings.Contains(r, "/") || !strings.HasSuffix(r, ".yaml") {
			continue // the base, or a directory
		}
		f := filepath.Join(dir, r)
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		for {
			var m map[string]any
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if k, ok := m["kind"].(string); ok {
				out[k] = append(out[k], m)
			}
		}
	}
	return out, nil
}

// get walks a generic YAML tree: get(m, "spec", "extProc").
func get(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any) string { s, _ := v.(string); return s }

// checkKeys refuses keys a builder does not model, so that a shipped
// object gaining a field fails the build of its dump instead of being
// silently misjudged.
func checkKeys(where string, v any, known ...string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	for k := range m {
		if !slices.Contains(known, k) {
			return fmt.Errorf("%s: key %q is not modelled by doctortest; teach it what the control plane makes of it", where, k)
		}
	}
	return nil
}

// Names of the Envoy Gateway dump: the quickstart's Gateway "eg" with an
// HTTP listener "http" and one HTTPRoute "backend" for www.example.com.
const (
	EGListener = "default/eg/http"
	EGRoute    = "httproute/default/backend/rule/0/match/0/www_example_com"
)

// egFilter is an HTTP filter with Envoy Gateway's order number
// (httpfilters.go newOrderedHTTPFilter).
type egFilter struct {
	order  int
	filter *hcmv3.HttpFilter
}

// EnvoyGateway builds the listener Envoy Gateway generates from the
// overlay in dir.
func EnvoyGateway(dir string) (*adminv3.ConfigDump, error) {
	objs, err := objects(dir)
	if err != nil {
		return nil, err
	}
	eeps := objs["EnvoyExtensionPolicy"]
	if len(eeps) != 1 {
		return nil, fmt.Errorf("%s: want one EnvoyExtensionPolicy, found %d", dir, len(eeps))
	}
	eep := eeps[0]
	ns, name := str(get(eep, "metadata", "namespace")), str(get(eep, "metadata", "name"))
	if err := checkKeys("EnvoyExtensionPolicy spec", get(eep, "spec"), "targetRefs", "targetRef", "extProc"); err != nil {
		return nil, err
	}
	procs, _ := get(eep, "spec", "extProc").([]any)
	var filters []egFilter
	var perRoute = map[string]*anypb.Any{}
	for i, p := range procs {
		ep, err := egExtProc(p, ns, name, i)
		if err != nil {
			return nil, err
		}
		// irConfigNameForExtProc; the HCM filter is disabled and enabled
		// per route with an empty FilterConfig (extproc.go).
		fname := fmt.Sprintf("envoy.filters.http.ext_proc/envoyextensionpolicy/%s/%s/extproc/%d", ns, name, i)
		filters = append(filters, egFilter{100 + i, &hcmv3.HttpFilter{Name: fname, Disabled: true, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: Pack(ep)}}})
		perRoute[fname] = Pack(&routev3.FilterConfig{})
	}
	// Assumed: a SecurityPolicy with JWT and ext_authz on the same route,
	// the case issue 10 is about. Envoy Gateway never sets
	// bypass_cors_preflight.
	authz := "envoy.filters.http.ext_authz/securitypolicy/default/auth"
	filters = append(filters,
		egFilter{6, &hcmv3.HttpFilter{Name: authz, Disabled: true, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: Pack(&extauthzv3.ExtAuthz{
			Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: "securitypolicy/default/auth/0"}}}},
		})}}},
		egFilter{10, &hcmv3.HttpFilter{Name: "envoy.filters.http.jwt_authn", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: Pack(&jwtv3.JwtAuthentication{
			Providers: map[string]*jwtv3.JwtProvider{"httproute/default/backend/rule/0/match/0/www_example_com/example": {Issuer: "https://auth.example.com"}},
		})}}},
		egFilter{310, &hcmv3.HttpFilter{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: Pack(&routerv3.Router{})}}},
	)
	perRoute[authz] = Pack(&routev3.FilterConfig{})
	// newOrderedHTTPFilter's order, ties by name.
	sort.SliceStable(filters, func(i, j int) bool {
		if filters[i].order != filters[j].order {
			return filters[i].order < filters[j].order
		}
		return filters[i].filter.GetName() < filters[j].filter.GetName()
	})
	chain := make([]*hcmv3.HttpFilter, len(filters))
	for i, f := range filters {
		chain[i] = f.filter
	}
	for _, proxy := range egProxies(objs) {
		order, _ := get(proxy, "spec", "filterOrder").([]any)
		for _, o := range order {
			if err := checkKeys("EnvoyProxy filterOrder entry", o, "name", "before", "after"); err != nil {
				return nil, err
			}
			chain = egSortFilter(chain, str(get(o, "name")), str(get(o, "before")), str(get(o, "after")))
		}
	}
	rc := &routev3.RouteConfiguration{
		Name: EGListener,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "default/eg/http/www_example_com",
			Domains: []string{"www.example.com"},
			Routes: []*routev3.Route{{
				Name:                 EGRoute,
				Match:                &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action:               &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "httproute/default/backend/rule/0"}}},
				TypedPerFilterConfig: perRoute,
			}},
		}},
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     "http-10080",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: EGListener, ConfigSource: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}}},
		HttpFilters:    chain,
	}
	return dynamicDump(EGListener, 10080, hcm, rc), nil
}

// EGGatewayClass is the GatewayClass of the Gateway "eg" in Envoy
// Gateway's quickstart, which the shipped policy targets.
const EGGatewayClass = "eg"

// egProxies returns the EnvoyProxy objects that configure the Gateway: the
// one the GatewayClass's parametersRef names, as Envoy Gateway reads it.
func egProxies(objs map[string][]map[string]any) []map[string]any {
	var out []map[string]any
	for _, gc := range objs["GatewayClass"] {
		if str(get(gc, "metadata", "name")) != EGGatewayClass {
			continue
		}
		ref := get(gc, "spec", "parametersRef")
		if str(get(ref, "group")) != "gateway.envoyproxy.io" || str(get(ref, "kind")) != "EnvoyProxy" {
			continue
		}
		for _, p := range objs["EnvoyProxy"] {
			if str(get(p, "metadata", "name")) == str(get(ref, "name")) && str(get(p, "metadata", "namespace")) == str(get(ref, "namespace")) {
				out = append(out, p)
			}
		}
	}
	return out
}

// egExtProc is Envoy Gateway's extProcConfig for one extProc entry.
func egExtProc(p any, ns, name string, i int) (*extprocv3.ExternalProcessor, error) {
	if err := checkKeys("extProc entry", p, "backendRefs", "backendSettings", "processingMode", "messageTimeout", "failOpen", "metadata"); err != nil {
		return nil, err
	}
	// Assumed cluster name for a policy's backendRefs; it contains the
	// policy's name, which is how doctor recognises corsproc by default.
	ep := &extprocv3.ExternalProcessor{
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: fmt.Sprintf("envoyextensionpolicy/%s/%s/%d", ns, name, i)}},
			Timeout:         durationpb.New(10 * time.Second),
		},
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode: extprocv3.ProcessingMode_SKIP, ResponseHeaderMode: extprocv3.ProcessingMode_SKIP,
			RequestTrailerMode: extprocv3.ProcessingMode_SKIP, ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
	}
	pm := get(p, "processingMode")
	if err := checkKeys("processingMode", pm, "request", "response", "allowModeOverride"); err != nil {
		return nil, err
	}
	for _, dir := range []string{"request", "response"} {
		d, ok := get(pm, dir).(map[string]any)
		if !ok {
			continue
		}
		if err := checkKeys("processingMode."+dir, d, "attributes", "body"); err != nil {
			return nil, err
		}
		var attrs []string
		for _, a := range asList(d["attributes"]) {
			attrs = append(attrs, str(a))
		}
		if dir == "request" {
			ep.ProcessingMode.RequestHeaderMode = extprocv3.ProcessingMode_SEND
			ep.RequestAttributes = attrs
			ep.ProcessingMode.RequestBodyMode = egBody(d["body"])
		} else {
			ep.ProcessingMode.ResponseHeaderMode = extprocv3.ProcessingMode_SEND
			ep.ResponseAttributes = attrs
			ep.ProcessingMode.ResponseBodyMode = egBody(d["body"])
		}
	}
	if b, ok := get(pm, "allowModeOverride").(bool); ok {
		ep.AllowModeOverride = b
	}
	if s := str(get(p, "messageTimeout")); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("messageTimeout %q: %w", s, err)
		}
		ep.MessageTimeout = durationpb.New(d)
	}
	if b, ok := get(p, "failOpen").(bool); ok {
		ep.FailureModeAllow = b
	}
	if ns := asList(get(p, "metadata", "writableNamespaces")); len(ns) > 0 {
		ep.MetadataOptions = &extprocv3.MetadataOptions{ReceivingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{}}
		for _, n := range ns {
			ep.MetadataOptions.ReceivingNamespaces.Untyped = append(ep.MetadataOptions.ReceivingNamespaces.Untyped, str(n))
		}
	}
	return ep, nil
}

func asList(v any) []any { l, _ := v.([]any); return l }

func egBody(v any) extprocv3.ProcessingMode_BodySendMode {
	switch str(v) {
	case "Buffered":
		return extprocv3.ProcessingMode_BUFFERED
	case "BufferedPartial":
		return extprocv3.ProcessingMode_BUFFERED_PARTIAL
	case "Streamed":
		return extprocv3.ProcessingMode_STREAMED
	}
	return extprocv3.ProcessingMode_NONE
}

// egSortFilter applies one EnvoyProxy filterOrder entry (sortHTTPFilters):
// the filter whose name starts with name moves before the first filter
// starting with before, or after the last starting with after; nothing
// happens when either is absent; the router never moves.
func egSortFilter(chain []*hcmv3.HttpFilter, name, before, after string) []*hcmv3.HttpFilter {
	has := func(f *hcmv3.HttpFilter, prefix string) bool {
		return prefix != "" && strings.HasPrefix(f.GetName(), prefix)
	}
	from := slices.IndexFunc(chain, func(f *hcmv3.HttpFilter) bool { return has(f, name) })
	if from < 0 || strings.HasPrefix(name, "envoy.filters.http.router") {
		return chain
	}
	f := chain[from]
	rest := slices.Delete(slices.Clone(chain), from, from+1)
	to := -1
	if before != "" {
		to = slices.IndexFunc(rest, func(x *hcmv3.HttpFilter) bool { return has(x, before) })
	} else {
		for i, x := range rest {
			if has(x, after) {
				to = i + 1
			}
		}
	}
	if to < 0 {
		return chain
	}
	return slices.Insert(rest, to, f)
}

// Names of the Istio dump: the ingress gateway's port-8080 listener and a
// VirtualService http route named "app" for app.example.com.
const (
	IstioListener = "0.0.0.0_8080"
	IstioRoutes   = "http.8080"
	IstioRoute    = "app"
)

// Istio builds an ingress gateway listener with the overlay's EnvoyFilter
// patches applied.
func Istio(dir string) (*adminv3.ConfigDump, error) {
	objs, err := objects(dir)
	if err != nil {
		return nil, err
	}
	grpc := func(cluster string) *corev3.GrpcService {
		return &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster}}}
	}
	filter := func(name string, cfg *anypb.Any) *hcmv3.HttpFilter {
		return &hcmv3.HttpFilter{Name: name, ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: cfg}}
	}
	// listener_builder.go's order, with a CUSTOM AuthorizationPolicy
	// (shadow rbac + ext_authz), a RequestAuthentication (jwt_authn, which
	// Istio lets preflights through) and an ALLOW AuthorizationPolicy
	// requiring principals (rbac).
	chain := []*hcmv3.HttpFilter{
		filter("envoy.filters.http.rbac", Pack(&rbacv3.RBAC{ShadowRules: &rbacconfigv3.RBAC{Action: rbacconfigv3.RBAC_DENY}, ShadowRulesStatPrefix: "istio_ext_authz_"})),
		filter("envoy.filters.http.ext_authz", Pack(&extauthzv3.ExtAuthz{Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: grpc("outbound|9000||ext-authz.auth.svc.cluster.local")}})),
		filter("envoy.filters.http.jwt_authn", Pack(&jwtv3.JwtAuthentication{
			Providers:           map[string]*jwtv3.JwtProvider{"origins-0": {Issuer: "https://auth.example.com"}},
			BypassCorsPreflight: true,
		})),
		filter("envoy.filters.http.rbac", Pack(&rbacv3.RBAC{Rules: &rbacconfigv3.RBAC{Action: rbacconfigv3.RBAC_ALLOW, Policies: map[string]*rbacconfigv3.Policy{}}})),
		filter("envoy.filters.http.grpc_stats", Pack(&grpcstatsv3.FilterConfig{})),
		filter("istio.alpn", Unknown("istio.envoy.config.filter.http.alpn.v2alpha1.FilterConfig")),
		filter("envoy.filters.http.fault", Pack(&faultv3.HTTPFault{})),
		filter("envoy.filters.http.cors", Pack(&corsv3.Cors{})),
		filter("istio.stats", Unknown("stats.PluginConfig")),
		filter("envoy.filters.http.router", Pack(&routerv3.Router{})),
	}
	for _, ef := range objs["EnvoyFilter"] {
		patches := asList(get(ef, "spec", "configPatches"))
		for i, p := range patches {
			where := fmt.Sprintf("EnvoyFilter %s configPatches[%d]", str(get(ef, "metadata", "name")), i)
			if str(get(p, "applyTo")) != "HTTP_FILTER" {
				continue
			}
			if c := str(get(p, "match", "context")); c != "" && c != "GATEWAY" && c != "ANY" {
				continue
			}
			value, err := json.Marshal(get(p, "patch", "value"))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			var hf hcmv3.HttpFilter
			if err := protojson.Unmarshal(value, &hf); err != nil {
				return nil, fmt.Errorf("%s: patch.value: %w", where, err)
			}
			sub := str(get(p, "match", "listener", "filterChain", "filter", "subFilter", "name"))
			chain, err = istioPatch(chain, str(get(p, "patch", "operation")), sub, &hf)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
		}
	}
	rc := &routev3.RouteConfiguration{
		Name: IstioRoutes,
		VirtualHosts: []*routev3.VirtualHost{{
			Name:    "app.example.com:80",
			Domains: []string{"app.example.com", "app.example.com:*"},
			Routes: []*routev3.Route{{
				Name:   IstioRoute,
				Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "outbound|80||app.default.svc.cluster.local"}}},
			}},
		}},
	}
	hcm := &hcmv3.HttpConnectionManager{
		StatPrefix:     "outbound_0.0.0.0_8080",
		RouteSpecifier: &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: IstioRoutes, ConfigSource: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}}},
		HttpFilters:    chain,
	}
	return dynamicDump(IstioListener, 8080, hcm, rc), nil
}

// istioPatch applies one HTTP_FILTER patch (listener_patch.go
// patchHTTPFilters, envoy-filter-chain.md C).
func istioPatch(chain []*hcmv3.HttpFilter, op, sub string, hf *hcmv3.HttpFilter) ([]*hcmv3.HttpFilter, error) {
	at := slices.IndexFunc(chain, func(f *hcmv3.HttpFilter) bool { return f.GetName() == sub })
	switch op {
	case "INSERT_FIRST":
		return slices.Insert(chain, 0, hf), nil
	case "INSERT_BEFORE":
		if sub == "" {
			return slices.Insert(chain, 0, hf), nil
		}
		if at < 0 {
			return chain, nil
		}
		return slices.Insert(chain, at, hf), nil
	case "INSERT_AFTER":
		if sub == "" {
			return append(chain, hf), nil
		}
		if at < 0 {
			return chain, nil
		}
		return slices.Insert(chain, at+1, hf), nil
	case "ADD":
		return append(chain, hf), nil
	}
	return nil, fmt.Errorf("operation %q is not modelled by doctortest", op)
}

// dynamicDump wraps one listener and its route configuration as xDS
// delivered them.
func dynamicDump(name string, port uint32, hcm *hcmv3.HttpConnectionManager, rc *routev3.RouteConfiguration) *adminv3.ConfigDump {
	l := &listenerv3.Listener{
		Name: name,
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "0.0.0.0", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
		}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name: HCM, ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: Pack(hcm)},
		}}}},
	}
	return &adminv3.ConfigDump{Configs: []*anypb.Any{
		Pack(&adminv3.ListenersConfigDump{VersionInfo: "1", DynamicListeners: []*adminv3.ListenersConfigDump_DynamicListener{{
			Name: name, ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{VersionInfo: "1", Listener: Pack(l)},
		}}}),
		Pack(&adminv3.RoutesConfigDump{DynamicRouteConfigs: []*adminv3.RoutesConfigDump_DynamicRouteConfig{{VersionInfo: "1", RouteConfig: Pack(rc)}}}),
	}}
}
