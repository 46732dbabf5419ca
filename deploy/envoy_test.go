package deploy

import (
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	matchingv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/matching/v3"
	compositev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/composite/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"

	// Registered for their typed_config types: a typed_config whose type is
	// not registered fails to decode, as it fails to load in Envoy.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/corsproc/corsproc/extproc"
	"github.com/corsproc/corsproc/internal/envoytest"
	"github.com/corsproc/corsproc/internal/runner"
)

const (
	extProcFilterName = "envoy.filters.http.ext_proc"
	routerFilterName  = "envoy.filters.http.router"
	hcmFilterName     = "envoy.filters.network.http_connection_manager"
	http2OptionsKey   = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	routeNameAttr     = "xds.route_name"
	grpcPort          = 9001
	adminPort         = 9002
)

// decodeEnvoyYAML decodes YAML into an Envoy proto the way Envoy loads its
// configuration: YAML to JSON to proto, unknown fields refused, every Any
// resolved to its registered type. Then every message, including those
// packed in each typed_config, passes its protoc-gen-validate rules.
func decodeEnvoyYAML(t *testing.T, name string, data []byte, m proto.Message) {
	t.Helper()
	if err := (protojson.UnmarshalOptions{}).Unmarshal(yamlToJSON(t, name, data), m); err != nil {
		t.Fatalf("%s: Envoy would refuse it: %v", name, err)
	}
	for _, err := range validateDeep(m) {
		t.Errorf("%s: %v", name, err)
	}
}

// validateDeep runs ValidateAll on m and on every message packed in an Any
// anywhere inside it (ValidateAll alone checks an Any's type URL, not its
// content).
func validateDeep(m proto.Message) []error {
	var errs []error
	if v, ok := m.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", m.ProtoReflect().Descriptor().FullName(), err))
		}
	}
	walkAnys(m.ProtoReflect(), func(a *anypb.Any) {
		inner, err := a.UnmarshalNew()
		if err != nil {
			errs = append(errs, fmt.Errorf("typed_config %s: %w", a.GetTypeUrl(), err))
			return
		}
		errs = append(errs, validateDeep(inner)...)
	})
	return errs
}

// walkAnys calls f for every Any directly or indirectly inside m, not
// descending into the Anys themselves.
func walkAnys(m protoreflect.Message, f func(*anypb.Any)) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind {
			return true
		}
		visit := func(msg protoreflect.Message) {
			if a, ok := msg.Interface().(*anypb.Any); ok {
				f(a)
				return
			}
			walkAnys(msg, f)
		}
		switch {
		case fd.IsList():
			for i := 0; i < v.List().Len(); i++ {
				visit(v.List().Get(i).Message())
			}
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					visit(mv.Message())
					return true
				})
			}
		default:
			visit(v.Message())
		}
		return true
	})
}

func unpack[T proto.Message](t *testing.T, a *anypb.Any, m T) T {
	t.Helper()
	if err := a.UnmarshalTo(m); err != nil {
		t.Fatalf("typed_config %s: %v", a.GetTypeUrl(), err)
	}
	return m
}

func loadBootstrap(t *testing.T, name string, data []byte) *bootstrapv3.Bootstrap {
	t.Helper()
	b := &bootstrapv3.Bootstrap{}
	decodeEnvoyYAML(t, name, data, b)
	return b
}

func clustersByName(b *bootstrapv3.Bootstrap) map[string]*clusterv3.Cluster {
	m := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		m[c.GetName()] = c
	}
	return m
}

func listenerByName(t *testing.T, b *bootstrapv3.Bootstrap, name string) *listenerv3.Listener {
	t.Helper()
	for _, l := range b.GetStaticResources().GetListeners() {
		if l.GetName() == name {
			return l
		}
	}
	t.Fatalf("no listener %q", name)
	return nil
}

// connectionManagers returns the HTTP connection managers of a listener.
func connectionManagers(t *testing.T, l *listenerv3.Listener) []*hcmv3.HttpConnectionManager {
	t.Helper()
	var out []*hcmv3.HttpConnectionManager
	for _, fc := range l.GetFilterChains() {
		for _, f := range fc.GetFilters() {
			if f.GetName() == hcmFilterName {
				out = append(out, unpack(t, f.GetTypedConfig(), &hcmv3.HttpConnectionManager{}))
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("listener %q has no %s", l.GetName(), hcmFilterName)
	}
	return out
}

// hostPort is one endpoint address of a cluster.
type hostPort struct {
	Host string
	Port uint32
}

func (h hostPort) String() string { return net.JoinHostPort(h.Host, strconv.Itoa(int(h.Port))) }

func clusterEndpoints(c *clusterv3.Cluster) []hostPort {
	var out []hostPort
	for _, e := range c.GetLoadAssignment().GetEndpoints() {
		for _, lb := range e.GetLbEndpoints() {
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			out = append(out, hostPort{sa.GetAddress(), sa.GetPortValue()})
		}
	}
	return out
}

// checkExtProc asserts the ext_proc settings corsproc is built for, and
// returns the gRPC cluster the filter names.
func checkExtProc(t *testing.T, ep *extprocv3.ExternalProcessor) string {
	t.Helper()
	pm := ep.GetProcessingMode()
	modes := []struct {
		what      string
		got, want fmt.Stringer
	}{
		{"request_header_mode", pm.GetRequestHeaderMode(), extprocv3.ProcessingMode_SEND},
		{"response_header_mode", pm.GetResponseHeaderMode(), extprocv3.ProcessingMode_SEND},
		{"request_body_mode", pm.GetRequestBodyMode(), extprocv3.ProcessingMode_NONE},
		{"response_body_mode", pm.GetResponseBodyMode(), extprocv3.ProcessingMode_NONE},
	}
	for _, m := range modes {
		if m.got != m.want {
			t.Errorf("processing_mode.%s is %v, want %v", m.what, m.got, m.want)
		}
	}
	for what, got := range map[string]extprocv3.ProcessingMode_HeaderSendMode{
		"request_trailer_mode":  pm.GetRequestTrailerMode(),
		"response_trailer_mode": pm.GetResponseTrailerMode(),
	} {
		if got != extprocv3.ProcessingMode_SKIP && got != extprocv3.ProcessingMode_DEFAULT {
			t.Errorf("processing_mode.%s is %v: corsproc never needs trailers", what, got)
		}
	}
	if !ep.GetAllowModeOverride() {
		t.Errorf("allow_mode_override is false: corsproc could not skip the response round trip")
	}
	if !contains(ep.GetRequestAttributes(), routeNameAttr) {
		t.Errorf("request_attributes %v lack %q: policies could not match routes", ep.GetRequestAttributes(), routeNameAttr)
	}
	if mt := ep.GetMessageTimeout(); mt == nil {
		t.Errorf("message_timeout is not set")
	} else if d := mt.AsDuration(); d <= 0 || d > time.Second {
		t.Errorf("message_timeout is %v, want a bound between 0 and 1s", d)
	}
	// The documented choice: fail open, which for CORS fails safe (no CORS
	// headers, so browsers block cross-origin reads).
	if !ep.GetFailureModeAllow() {
		t.Errorf("failure_mode_allow is false; the deployment docs promise it on")
	}
	if ep.GetObservabilityMode() {
		t.Errorf("observability_mode is on: Envoy would ignore corsproc's answers")
	}
	if ns := ep.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(); !contains(ns, extproc.MetadataNamespace) {
		t.Errorf("metadata_options.receiving_namespaces.untyped %v lacks %q: Envoy would drop the decision corsproc returns, and the access log could not print it", ns, extproc.MetadataNamespace)
	}
	checkForwardRules(t, ep)
	checkMutationRules(t, ep)
	cluster := ep.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	if cluster == "" {
		t.Errorf("grpc_service.envoy_grpc.cluster_name is empty")
	}
	return cluster
}

// checkGRPCCluster asserts that a cluster can carry gRPC: HTTP/2 upstream,
// gRPC health checks.
func checkGRPCCluster(t *testing.T, c *clusterv3.Cluster) {
	t.Helper()
	opts, ok := c.GetTypedExtensionProtocolOptions()[http2OptionsKey]
	if !ok {
		t.Fatalf("cluster %q has no %s: Envoy would speak HTTP/1.1 to a gRPC server", c.GetName(), http2OptionsKey)
	}
	po := unpack(t, opts, &httpv3.HttpProtocolOptions{})
	if po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		t.Errorf("cluster %q: explicit_http_config.http2_protocol_options is not set", c.GetName())
	} else if msg := streamLimitProblem(po, runner.Defaults().MaxConcurrentStreams); msg != "" {
		t.Errorf("cluster %q: %s", c.GetName(), msg)
	}
	var grpcHC bool
	for _, hc := range c.GetHealthChecks() {
		grpcHC = grpcHC || hc.GetGrpcHealthCheck() != nil
	}
	if !grpcHC {
		t.Errorf("cluster %q has no grpc_health_check: a draining corsproc would keep getting streams", c.GetName())
	}
}

// streamLimitProblem says why Envoy could open more streams on one
// connection than corsproc serves at once, or "". Envoy does not heed the
// server's SETTINGS_MAX_CONCURRENT_STREAMS (envoyproxy/envoy#13933; see
// --max-concurrent-streams in docs/contract.md): unless the cluster caps
// its own streams, a stream past corsproc's limit waits and spends its
// message_timeout instead of going to a new connection.
func streamLimitProblem(po *httpv3.HttpProtocolOptions, server uint32) string {
	got := po.GetExplicitHttpConfig().GetHttp2ProtocolOptions().GetMaxConcurrentStreams()
	switch {
	case got == nil:
		return fmt.Sprintf("http2_protocol_options.max_concurrent_streams is not set: Envoy's default (2147483647) ignores corsproc's limit of %d streams per connection; set it to at most %d", server, server)
	case got.GetValue() > server:
		return fmt.Sprintf("http2_protocol_options.max_concurrent_streams is %d, over corsproc's --max-concurrent-streams default of %d; set it to at most %d", got.GetValue(), server, server)
	}
	return ""
}

// checkHTTPFilters asserts that corsproc's filter (ext_proc, or a composite
// running ext_proc) comes first, before every authentication,
// authorization and rate-limit filter, and the router last; it returns the
// ext_proc config.
func checkHTTPFilters(t *testing.T, hcm *hcmv3.HttpConnectionManager) *extprocv3.ExternalProcessor {
	t.Helper()
	i, ep := corsprocFilter(t, hcm)
	filters := hcm.GetHttpFilters()
	if len(filters) == 0 || filters[len(filters)-1].GetName() != routerFilterName {
		t.Fatalf("the last HTTP filter must be %s", routerFilterName)
	}
	if i != 0 {
		t.Errorf("corsproc's filter is HTTP filter %d, after %s: it must come first, before any authentication, authorization or rate limit, or preflights and auth errors lose their CORS headers",
			i, filters[0].GetName())
	}
	if filters[i].GetDisabled() {
		t.Errorf("corsproc's filter %s is disabled", filters[i].GetName())
	}
	return ep
}

// corsprocFilter finds corsproc's filter: a plain ext_proc, or a composite
// whose matcher runs ext_proc.
func corsprocFilter(t *testing.T, hcm *hcmv3.HttpConnectionManager) (int, *extprocv3.ExternalProcessor) {
	t.Helper()
	for i, f := range hcm.GetHttpFilters() {
		a := f.GetTypedConfig()
		if a.MessageIs(&extprocv3.ExternalProcessor{}) {
			return i, unpack(t, a, &extprocv3.ExternalProcessor{})
		}
		if _, err := envoytest.FromHTTPFilter(f); err == nil {
			return i, compositeExtProc(t, f)
		}
	}
	t.Fatalf("no ext_proc filter, plain or in a composite")
	return 0, nil
}

// compositeExtProc digs the ext_proc config out of a composite filter that
// envoytest.FromHTTPFilter accepted.
func compositeExtProc(t *testing.T, f *hcmv3.HttpFilter) *extprocv3.ExternalProcessor {
	t.Helper()
	ewm := unpack(t, f.GetTypedConfig(), &matchingv3.ExtensionWithMatcher{})
	action := unpack(t, ewm.GetXdsMatcher().GetMatcherList().GetMatchers()[0].GetOnMatch().GetAction().GetTypedConfig(),
		&compositev3.ExecuteFilterAction{})
	if n := action.GetTypedConfig().GetName(); n != extProcFilterName {
		t.Errorf("the composite runs a filter named %q; name it %s (its attributes and stats use that name)", n, extProcFilterName)
	}
	return unpack(t, action.GetTypedConfig().GetTypedConfig(), &extprocv3.ExternalProcessor{})
}

// The headers corsproc reads (extproc/headers.go: readRequest and
// readUpstream, docs/contract.md §3), and credentials it must never receive.
var (
	corsprocReads = []string{":method", ":authority", ":path", "origin",
		"access-control-request-method", "access-control-request-headers", "access-control-request-private-network",
		"vary", "access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers"}
	neverForwarded = []string{"cookie", "authorization", "proxy-authorization", "set-cookie",
		"user-agent", "x-api-key", "x-forwarded-for", ":scheme", ":status"}
	// corsprocWrites are the headers corsproc changes in a response phase.
	corsprocWrites = []string{"access-control-allow-origin", "access-control-allow-credentials",
		"access-control-expose-headers", "access-control-allow-methods", "vary", "content-length",
		"x-corsproc-decision", "x-corsproc-reason"}
	neverWritten = []string{"set-cookie", "location", "content-type", "cache-control", ":status",
		"x-envoy-upstream-service-time", "www-authenticate"}
)

// checkForwardRules asserts that forward_rules send corsproc the headers it
// reads and nothing it does not need, credentials above all.
func checkForwardRules(t *testing.T, ep *extprocv3.ExternalProcessor) {
	t.Helper()
	if ep.GetForwardRules().GetAllowedHeaders() == nil {
		t.Errorf("forward_rules.allowed_headers is empty: every header, cookies and authorization included, goes to corsproc")
	}
	for _, h := range corsprocReads {
		if ok, err := envoytest.ForwardsHeader(ep.GetForwardRules(), h); err != nil || !ok {
			t.Errorf("forward_rules do not send %q, which corsproc reads (%v)", h, err)
		}
	}
	for _, h := range neverForwarded {
		if ok, err := envoytest.ForwardsHeader(ep.GetForwardRules(), h); err != nil || ok {
			t.Errorf("forward_rules send %q, which corsproc does not need (%v)", h, err)
		}
	}
}

// checkMutationRules asserts that mutation_rules let corsproc change its
// own headers and nothing else.
func checkMutationRules(t *testing.T, ep *extprocv3.ExternalProcessor) {
	t.Helper()
	for _, h := range corsprocWrites {
		if ok, err := envoytest.MutationAllowed(ep.GetMutationRules(), h); err != nil || !ok {
			t.Errorf("mutation_rules refuse %q, which corsproc sets (%v)", h, err)
		}
	}
	for _, h := range neverWritten {
		if ok, err := envoytest.MutationAllowed(ep.GetMutationRules(), h); err != nil || ok {
			t.Errorf("mutation_rules let the processor change %q (%v)", h, err)
		}
	}
}

// checkRoutes asserts every route is named and goes to a defined cluster;
// it returns the route names.
func checkRoutes(t *testing.T, hcm *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster) []string {
	t.Helper()
	rc := hcm.GetRouteConfig()
	if rc == nil {
		t.Fatalf("the connection manager has no static route_config")
	}
	var names []string
	for _, vh := range rc.GetVirtualHosts() {
		for i, r := range vh.GetRoutes() {
			if r.GetName() == "" {
				t.Errorf("virtual host %q route %d has no name: policies cannot match it by route", vh.GetName(), i)
			}
			names = append(names, r.GetName())
			if dr := r.GetDirectResponse(); dr != nil {
				continue
			}
			c := r.GetRoute().GetCluster()
			if c == "" {
				t.Errorf("route %q has no cluster", r.GetName())
			} else if _, ok := clusters[c]; !ok {
				t.Errorf("route %q goes to cluster %q, which is not defined", r.GetName(), c)
			}
		}
	}
	return names
}

func isLoopback(sa *corev3.SocketAddress) bool {
	ip := net.ParseIP(sa.GetAddress())
	return ip != nil && ip.IsLoopback()
}

// policyRoutes are the Envoy route names a policy file matches on.
func policyRoutes(t *testing.T, rel string) []string {
	t.Helper()
	f := loadPolicyFile(t, rel)
	var routes []string
	for _, p := range f.Policies {
		if p.Match != nil {
			routes = append(routes, p.Match.Routes...)
		}
	}
	return routes
}

// The demo's Envoy configurations: envoy.yaml (Envoy >= 1.36, corsproc in a
// composite filter) and its variant for older Envoy.
var demoEnvoyFiles = []string{"envoy/envoy.yaml", "envoy/envoy-no-composite.yaml"}

func TestDemoEnvoyBootstrap(t *testing.T) {
	for _, file := range demoEnvoyFiles {
		t.Run(file, func(t *testing.T) { checkDemoEnvoyBootstrap(t, file) })
	}
}

func checkDemoEnvoyBootstrap(t *testing.T, file string) {
	b := loadBootstrap(t, file, readRepoFile(t, file))
	clusters := clustersByName(b)
	l := listenerByName(t, b, "ingress")

	t.Run("the listener takes traffic on port 10000", func(t *testing.T) {
		if got := l.GetAddress().GetSocketAddress().GetPortValue(); got != 10000 {
			t.Errorf("listener port is %d, want 10000", got)
		}
	})
	t.Run("the admin interface listens on loopback only", func(t *testing.T) {
		if sa := b.GetAdmin().GetAddress().GetSocketAddress(); !isLoopback(sa) {
			t.Errorf("admin address is %q", sa.GetAddress())
		}
	})
	hcm := connectionManagers(t, l)[0]
	var routeNames []string
	t.Run("every route is named and goes to a defined cluster", func(t *testing.T) {
		routeNames = checkRoutes(t, hcm, clusters)
	})
	t.Run("the routes reach two demo services", func(t *testing.T) {
		for _, c := range []string{"orders", "legacy"} {
			if _, ok := clusters[c]; !ok {
				t.Errorf("no cluster %q", c)
			}
		}
	})
	t.Run("the demo policy matches only routes that exist", func(t *testing.T) {
		for _, r := range policyRoutes(t, "envoy/demo-policy.yaml") {
			if !contains(routeNames, r) {
				t.Errorf("demo-policy.yaml matches route %q, which envoy.yaml does not define (has %v)", r, routeNames)
			}
		}
	})
	t.Run("paths are normalised before corsproc matches them", func(t *testing.T) {
		if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() {
			t.Errorf("normalize_path and merge_slashes must be on, or path_prefixes can be dodged")
		}
	})
	var cluster string
	t.Run("corsproc's filter runs first, with corsproc's settings", func(t *testing.T) {
		cluster = checkExtProc(t, checkHTTPFilters(t, hcm))
	})
	t.Run("a real authentication stage runs after corsproc", func(t *testing.T) {
		checkDemoAuthentication(t, hcm)
	})
	t.Run("every response carries vary: origin, added by Envoy", func(t *testing.T) {
		checkVaryOrigin(t, hcm)
	})
	t.Run("the ext_proc cluster exists and speaks HTTP/2 with gRPC health checks", func(t *testing.T) {
		c, ok := clusters[cluster]
		if !ok {
			t.Fatalf("ext_proc names cluster %q, which is not defined", cluster)
		}
		checkGRPCCluster(t, c)
		for _, ep := range clusterEndpoints(c) {
			if ep.Port != grpcPort {
				t.Errorf("cluster %q endpoint %v: corsproc's gRPC port is %d", cluster, ep, grpcPort)
			}
		}
	})
}

func TestEnvoyBootstrapCheckCatchesMistakes(t *testing.T) {
	// The decoder must refuse what Envoy refuses, or the checks above prove
	// nothing.
	tests := []struct {
		name string
		yaml string
	}{
		{"an unknown field is refused", "static_resources: {clusterz: []}"},
		{"a typed_config of an unknown type is refused", `
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 0.0.0.0, port_value: 1}}
    filter_chains:
    - filters:
      - name: x
        typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.network.no_such.v3.Filter}`},
		{"an unknown field inside a typed_config is refused", `
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 0.0.0.0, port_value: 1}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: x
          route_config: {}
          http_filterz: []`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := yaml.YAMLToJSON([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if err := protojson.Unmarshal(j, &bootstrapv3.Bootstrap{}); err == nil {
				t.Errorf("decoded without error")
			}
		})
	}
	t.Run("a corsproc cluster without its own stream limit is found", func(t *testing.T) {
		limit := runner.Defaults().MaxConcurrentStreams
		for _, po := range []*httpv3.HttpProtocolOptions{
			{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{}}}}},
			{UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{
					MaxConcurrentStreams: wrapperspb.UInt32(limit + 1)}}}}},
		} {
			if streamLimitProblem(po, limit) == "" {
				t.Errorf("no problem found in %v", po)
			}
		}
	})
	t.Run("a rule violation inside a typed_config is found", func(t *testing.T) {
		// stat_prefix is required (min_len 1) in the connection manager.
		j, _ := yaml.YAMLToJSON([]byte(`
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 0.0.0.0, port_value: 1}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          route_config: {}`))
		b := &bootstrapv3.Bootstrap{}
		if err := protojson.Unmarshal(j, b); err != nil {
			t.Fatal(err)
		}
		if errs := validateDeep(b); len(errs) == 0 {
			t.Errorf("validateDeep found nothing")
		}
	})
}
