package deploy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// egDefaultOrder is Envoy Gateway's HTTP filter order without filterOrder
// (internal/xds/translator/httpfilters.go, newOrderedHTTPFilter; listed in
// EnvoyProxySpec.FilterOrder's doc): each filter exists only when a policy
// uses it. shared/notes/envoy-filter-chain.md §B.
var egDefaultOrder = []string{
	"envoy.filters.http.custom_response", "envoy.filters.http.health_check", "envoy.filters.http.fault",
	"envoy.filters.http.cors", "envoy.filters.http.csrf", "envoy.filters.http.header_mutation",
	"envoy.filters.http.ext_authz", "envoy.filters.http.api_key_auth", "envoy.filters.http.basic_auth",
	"envoy.filters.http.oauth2", "envoy.filters.http.jwt_authn", "envoy.filters.http.stateful_session",
	"envoy.filters.http.buffer", "envoy.filters.http.lua", "envoy.filters.http.ext_proc",
	"envoy.filters.http.wasm", "envoy.filters.http.dynamic_modules", "envoy.filters.http.geoip",
	"envoy.filters.http.rbac", "envoy.filters.http.local_ratelimit", "envoy.filters.http.ratelimit",
	"envoy.filters.http.bandwidth_limit", "envoy.filters.http.grpc_web", "envoy.filters.http.grpc_stats",
	"envoy.filters.http.credential_injector", "envoy.filters.http.compressor",
	"envoy.filters.http.dynamic_forward_proxy", "envoy.filters.http.router",
}

// authFilters are the filters that may refuse a request before corsproc
// has answered it: authentication, authorization, rate limits.
var authFilters = []string{
	"envoy.filters.http.ext_authz", "envoy.filters.http.api_key_auth", "envoy.filters.http.basic_auth",
	"envoy.filters.http.oauth2", "envoy.filters.http.jwt_authn", "envoy.filters.http.rbac",
	"envoy.filters.http.local_ratelimit", "envoy.filters.http.ratelimit",
}

// egSort applies filterOrder to a chain the way Envoy Gateway's
// sortHTTPFilters does (§B): entries in list order; a filter type matched
// by name prefix; before = just ahead of the first filter of the target
// type, after = just behind the last; nothing when the target (or the
// filter) is absent; the router never moves.
func egSort(chain []string, order []egv1a1.FilterPosition) []string {
	chain = slices.Clone(chain)
	is := func(name string, typ egv1a1.EnvoyFilter) bool { return strings.HasPrefix(name, string(typ)) }
	for _, p := range order {
		if p.Name == egv1a1.EnvoyFilterRouter {
			continue
		}
		var moving []string
		rest := chain[:0:0]
		for _, f := range chain {
			if is(f, p.Name) {
				moving = append(moving, f)
			} else {
				rest = append(rest, f)
			}
		}
		at := -1
		switch {
		case p.Before != nil:
			at = slices.IndexFunc(rest, func(f string) bool { return is(f, *p.Before) })
		case p.After != nil:
			for i, f := range rest {
				if is(f, *p.After) {
					at = i + 1
				}
			}
		}
		if len(moving) == 0 || at < 0 {
			continue
		}
		chain = slices.Concat(rest[:at], moving, rest[at:])
	}
	return chain
}

// checkEnvoyGatewayFilterOrder asserts that the overlay's EnvoyProxy, named
// by the GatewayClass, puts ext_proc ahead of every authentication,
// authorization and rate-limit filter, whichever of them a Gateway has.
func checkEnvoyGatewayFilterOrder(t *testing.T, r *rendering, crds string) {
	t.Helper()
	checkAgainstCRD(t, r, "EnvoyProxy", func(v string) *jsonschema.Schema {
		return crdSchema(t, filepath.Join(crds, "generated", "gateway.envoyproxy.io_envoyproxies.yaml"), "gateway.envoyproxy.io", "EnvoyProxy", v)
	})
	checkAgainstCRD(t, r, "GatewayClass", func(v string) *jsonschema.Schema {
		return crdSchema(t, filepath.Join(crds, "gatewayapi-crds.yaml"), "gateway.networking.k8s.io", "GatewayClass", v)
	})
	classes := all[*gwv1.GatewayClass](r)
	if len(classes) != 1 {
		t.Fatalf("%d GatewayClasses, want 1", len(classes))
	}
	gc := classes[0]
	var ep *egv1a1.EnvoyProxy
	t.Run("the GatewayClass names the EnvoyProxy, for Envoy Gateway's controller", func(t *testing.T) {
		ref := gc.Spec.ParametersRef
		if gc.Spec.ControllerName != "gateway.envoyproxy.io/gatewayclass-controller" || ref == nil ||
			ref.Group != "gateway.envoyproxy.io" || ref.Kind != "EnvoyProxy" || ref.Namespace == nil {
			t.Fatalf("GatewayClass %s: controller %q, parametersRef %+v", gc.Name, gc.Spec.ControllerName, ref)
		}
		var ok bool
		if ep, ok = find[*egv1a1.EnvoyProxy](r, string(*ref.Namespace), ref.Name); !ok {
			t.Fatalf("parametersRef names EnvoyProxy %s/%s, which is not rendered", *ref.Namespace, ref.Name)
		}
	})
	if ep == nil {
		return
	}
	t.Run("ext_proc runs before every authentication, authorization and rate limit filter present", func(t *testing.T) {
		// Every subset of the auth filters, with ext_proc and the rest.
		for mask := 0; mask < 1<<len(authFilters); mask++ {
			var chain []string
			for _, f := range egDefaultOrder {
				if i := slices.Index(authFilters, f); i >= 0 && mask&(1<<i) == 0 {
					continue
				}
				if f == "envoy.filters.http.ext_proc" {
					f += "/envoyextensionpolicy/default/corsproc/extproc/0"
				}
				chain = append(chain, f)
			}
			got := egSort(chain, ep.Spec.FilterOrder)
			ext := slices.IndexFunc(got, func(f string) bool { return strings.HasPrefix(f, "envoy.filters.http.ext_proc") })
			for i, f := range got {
				if slices.Contains(authFilters, f) && i < ext {
					t.Fatalf("with %v, %s runs before ext_proc: %v", presentAuth(mask), f, got)
				}
			}
			if got[len(got)-1] != "envoy.filters.http.router" {
				t.Fatalf("the router moved: %v", got)
			}
		}
	})
	t.Run("the simulation reproduces why one entry is not enough", func(t *testing.T) {
		got := egSort(egDefaultOrder, nil)
		if slices.Index(got, "envoy.filters.http.jwt_authn") > slices.Index(got, "envoy.filters.http.ext_proc") {
			t.Errorf("by default jwt_authn should run before ext_proc: %v", got)
		}
		one := []egv1a1.FilterPosition{{Name: egv1a1.EnvoyFilterExtProc, Before: ptr(egv1a1.EnvoyFilterJWTAuthn)}}
		got = egSort(egDefaultOrder, one)
		if slices.Index(got, "envoy.filters.http.ext_authz") > slices.Index(got, "envoy.filters.http.ext_proc") {
			t.Errorf("a single entry before jwt_authn should leave ext_authz ahead of ext_proc: %v", got)
		}
	})
}

func presentAuth(mask int) []string {
	var out []string
	for i, f := range authFilters {
		if mask&(1<<i) != 0 {
			out = append(out, strings.TrimPrefix(f, "envoy.filters.http."))
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }
