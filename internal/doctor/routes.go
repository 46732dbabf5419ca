package doctor

import (
	"fmt"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	corsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// maxListed caps the route names a finding lists.
const maxListed = 5

// checkRoutes judges, route by route, whether corsproc runs, whether
// Envoy's CORS filter answers too, and whether vary: origin is added where
// corsproc is skipped.
func (a *analysis) checkRoutes(w Where, hcm *hcmv3.HttpConnectionManager, chain []*filter, cp *filter) {
	var rc *routev3.RouteConfiguration
	switch {
	case hcm.GetRouteConfig() != nil:
		rc = hcm.GetRouteConfig()
	case hcm.GetRds() != nil:
		name := hcm.GetRds().GetRouteConfigName()
		if rc = a.routes[name]; rc == nil {
			a.add(Info, "route-config-missing", w, fmt.Sprintf("route configuration %q is not in the dump", name),
				"route-level checks (per-route overrides, Envoy CORS policies, vary, policy coverage) are skipped for this chain",
				"save the whole /config_dump once RDS has delivered the route configuration")
			return
		}
	default:
		a.add(Info, "scoped-routes", w, "this chain uses scoped routes, which doctor does not follow",
			"route-level checks are skipped for this chain", "check the routes' typed_per_filter_config by hand")
		return
	}
	w.RouteConfig = rc.GetName()
	a.checkedRoutes = true
	var corsNames []string
	for _, f := range chain {
		if f.kind == kindCORS && f.gate == nil {
			corsNames = append(corsNames, f.outer)
		}
	}
	total, off := 0, 0
	defer func() {
		if total > 0 && off == total {
			a.add(Warning, "corsproc-never-runs", w, fmt.Sprintf("corsproc is off on every one of the %d routes of this chain", total),
				"its filter is in the chain but no route enables it: no request reaches corsproc",
				"enable it on the routes browsers call (Envoy Gateway: target them with the EnvoyExtensionPolicy), or drop disabled: true from its http_filters entry")
		}
	}()
	for _, vh := range rc.GetVirtualHosts() {
		vw := w
		vw.VirtualHost = vh.GetName()
		if p := a.opts.Policy; p != nil && !a.anyPolicyCovers(vh.GetDomains()) {
			a.add(Warning, "unmatched-virtual-host", vw,
				fmt.Sprintf("no policy of %s matches this virtual host's domains %s", p.File(), strings.Join(vh.GetDomains(), ", ")),
				"corsproc is asked about every request here and answers none: browsers calling these hosts cross-origin get no CORS headers (or the service's own)",
				"add a policy whose match.hosts covers these domains, or skip corsproc on this virtual host (typed_per_filter_config disabled)")
		}
		vhCORS := len(corsNames) > 0 && (corsActive(vh.GetCors()) || corsConfigured(rc.GetTypedPerFilterConfig(), corsNames) || corsConfigured(vh.GetTypedPerFilterConfig(), corsNames))
		if vhCORS {
			a.add(Error, "two-cors-answers", vw,
				fmt.Sprintf("Envoy's CORS filter (%s) has a policy on this virtual host besides corsproc", strings.Join(corsNames, ", ")),
				"two CORS answers: Envoy's filter answers preflights itself and overwrites access-control-allow-origin on responses (envoy-filter-chain.md A), so the browser gets whichever ran last, often a mix",
				"remove the cors policy from the virtual host and routes (Istio: VirtualService corsPolicy; Envoy Gateway: SecurityPolicy cors) and let corsproc's policy file decide")
		}
		var offRoutes, noVary []string
		for i, r := range vh.GetRoutes() {
			label := routeLabel(r, i)
			rw := vw
			rw.Route = label
			a.routeNames[r.GetName()] = true
			active, ov := perRoute(cp, rc, vh, r)
			total++
			if !active {
				off++
				if name := a.coveringPolicy(vh.GetDomains(), r); name != "" {
					a.add(Warning, "route-disables-corsproc", rw,
						fmt.Sprintf("corsproc is off on this route, but policy %q can match its requests", name),
						"requests on this route never reach corsproc: preflights go to the service and responses carry no CORS headers from the policy",
						"enable corsproc on the route (drop its disabled typed_per_filter_config, or add one for Envoy Gateway's disabled-by-default filter), or narrow the policy's match")
				} else {
					offRoutes = append(offRoutes, label)
				}
				continue
			}
			if pm := ov.GetProcessingMode(); pm != nil {
				if pm.GetRequestHeaderMode() == extprocv3.ProcessingMode_SKIP || pm.GetResponseHeaderMode() == extprocv3.ProcessingMode_SKIP {
					a.add(Error, "route-override-skips-headers", rw,
						fmt.Sprintf("ExtProcPerRoute overrides processing_mode with request headers %s, response headers %s", pm.GetRequestHeaderMode(), pm.GetResponseHeaderMode()),
						"an override replaces the whole mode: a skipped request phase means no preflight answers, a skipped response phase means no CORS headers",
						"send headers both ways in the override, or use ExtProcPerRoute disabled: true if the route truly needs no CORS")
				}
			}
			if !vhCORS && len(corsNames) > 0 && (corsActive(r.GetRoute().GetCors()) || corsConfigured(r.GetTypedPerFilterConfig(), corsNames)) {
				a.add(Error, "two-cors-answers", rw,
					fmt.Sprintf("Envoy's CORS filter (%s) has a policy on this route besides corsproc", strings.Join(corsNames, ", ")),
					"two CORS answers: Envoy's filter answers preflights itself and overwrites access-control-allow-origin on responses, so the browser gets whichever ran last",
					"remove the route's cors policy and let corsproc's policy file decide")
			}
			if cp.gate != nil && !addsVaryOrigin(rc.GetResponseHeadersToAdd()) && !addsVaryOrigin(vh.GetResponseHeadersToAdd()) && !addsVaryOrigin(r.GetResponseHeadersToAdd()) {
				noVary = append(noVary, label)
			}
		}
		if len(offRoutes) > 0 {
			a.add(Info, "corsproc-off", vw, fmt.Sprintf("corsproc is off on %d of %d routes: %s", len(offRoutes), len(vh.GetRoutes()), list(offRoutes)),
				"these routes get no CORS answers; fine for routes browsers do not call cross-origin",
				"enable corsproc on them if browsers call them cross-origin")
		}
		if len(noVary) > 0 {
			a.add(Warning, "no-vary-origin", vw,
				fmt.Sprintf("corsproc runs only for requests with an origin header, and %d routes add no vary: origin themselves: %s", len(noVary), list(noVary)),
				"a response to a request without origin never passes corsproc, so nothing says it varies by origin: a cache can serve it to a CORS request, which then fails (envoy-filter-chain.md E.3)",
				"add response_headers_to_add: [{header: {key: vary, value: origin}, append_action: APPEND_IF_EXISTS_OR_ADD}] to the virtual host or route configuration")
		}
	}
}

// perRoute returns whether corsproc runs on route r and the overrides that
// apply, from the least to the most specific typed_per_filter_config.
func perRoute(cp *filter, rc *routev3.RouteConfiguration, vh *routev3.VirtualHost, r *routev3.Route) (bool, *extprocv3.ExtProcOverrides) {
	active := !cp.disabled
	var ov *extprocv3.ExtProcOverrides
	for _, m := range []map[string]*anypb.Any{rc.GetTypedPerFilterConfig(), vh.GetTypedPerFilterConfig(), r.GetTypedPerFilterConfig()} {
		x := m[cp.outer]
		if x == nil {
			continue
		}
		// Any per-route entry enables a filter disabled in http_filters;
		// FilterConfig.disabled switches it off (Envoy's PerFilterConfigs).
		active = true
		msg, err := x.UnmarshalNew()
		if err != nil {
			continue
		}
		if fc, ok := msg.(*routev3.FilterConfig); ok {
			if fc.GetDisabled() {
				active, ov = false, nil
				continue
			}
			if msg, err = fc.GetConfig().UnmarshalNew(); fc.GetConfig() == nil || err != nil {
				continue
			}
		}
		if pr, ok := msg.(*extprocv3.ExtProcPerRoute); ok && cp.gate == nil {
			switch {
			case pr.GetDisabled():
				active, ov = false, nil
			case pr.GetOverrides() != nil:
				ov = pr.GetOverrides() // beats a less specific disabled
			}
		}
	}
	return active, ov
}

func (a *analysis) anyPolicyCovers(domains []string) bool {
	for _, p := range a.opts.Policy.Policies() {
		if policyCovers(p, domains, nil) {
			return true
		}
	}
	return false
}

// coveringPolicy names a policy, not off, that can match requests on r.
func (a *analysis) coveringPolicy(domains []string, r *routev3.Route) string {
	if a.opts.Policy == nil {
		return ""
	}
	ri := &routeInfo{name: r.GetName(), prefix: r.GetMatch().GetPrefix()}
	if p := r.GetMatch().GetPath(); p != "" {
		ri.prefix = p
	}
	for _, p := range a.opts.Policy.Policies() {
		if policyMode(p) != "off" && policyCovers(p, domains, ri) {
			return p.Name
		}
	}
	return ""
}

// corsActive reports whether a (deprecated, in-route) CORS policy is on.
func corsActive(c *routev3.CorsPolicy) bool {
	return c != nil && enabled(c.GetFilterEnabled())
}

func enabled(p *corev3.RuntimeFractionalPercent) bool {
	return p == nil || p.GetDefaultValue().GetNumerator() > 0 || p.GetRuntimeKey() != ""
}

// corsConfigured reports whether typed_per_filter_config gives one of the
// CORS filters an enabled CorsPolicy.
func corsConfigured(m map[string]*anypb.Any, names []string) bool {
	for _, n := range names {
		x := m[n]
		if x == nil {
			continue
		}
		msg, err := x.UnmarshalNew()
		if err != nil {
			continue
		}
		if fc, ok := msg.(*routev3.FilterConfig); ok {
			if fc.GetDisabled() || fc.GetConfig() == nil {
				continue
			}
			if msg, err = fc.GetConfig().UnmarshalNew(); err != nil {
				continue
			}
		}
		if cp, ok := msg.(*corsv3.CorsPolicy); ok && enabled(cp.GetFilterEnabled()) {
			return true
		}
	}
	return false
}

func addsVaryOrigin(hs []*corev3.HeaderValueOption) bool {
	for _, h := range hs {
		if !strings.EqualFold(h.GetHeader().GetKey(), "vary") {
			continue
		}
		for _, t := range strings.Split(h.GetHeader().GetValue(), ",") {
			if strings.EqualFold(strings.TrimSpace(t), "origin") {
				return true
			}
		}
	}
	return false
}

func routeLabel(r *routev3.Route, i int) string {
	if r.GetName() != "" {
		return r.GetName()
	}
	m := r.GetMatch()
	switch {
	case m.GetPrefix() != "":
		return "#" + strconv.Itoa(i) + " (prefix " + m.GetPrefix() + ")"
	case m.GetPath() != "":
		return "#" + strconv.Itoa(i) + " (path " + m.GetPath() + ")"
	}
	return "#" + strconv.Itoa(i)
}

func list(names []string) string {
	if len(names) <= maxListed {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:maxListed], ", ") + fmt.Sprintf(" and %d more", len(names)-maxListed)
}
