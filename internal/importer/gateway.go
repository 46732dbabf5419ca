package importer

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/corsproc/corsproc/policy"
)

// safelistedMethods are the methods a browser sends cross-origin without
// the server naming them: what a source that sends no
// access-control-allow-methods allows.
var safelistedMethods = []string{"GET", "HEAD", "POST"}

// ---- Istio VirtualService (networking.istio.io), field names from
// istio/api networking/v1alpha3/virtual_service.proto.

type stringMatch struct {
	Exact  *string `yaml:"exact"`
	Prefix *string `yaml:"prefix"`
	Regex  *string `yaml:"regex"`
}

type virtualService struct {
	Spec struct {
		Hosts []string `yaml:"hosts"`
		HTTP  []struct {
			Name  string `yaml:"name"`
			Match []struct {
				URI   *stringMatch   `yaml:"uri"`
				Other map[string]any `yaml:",inline"`
			} `yaml:"match"`
			CorsPolicy *struct {
				AllowOrigins     []stringMatch `yaml:"allowOrigins"`
				AllowOrigin      []string      `yaml:"allowOrigin"` // deprecated: exact origins
				AllowMethods     []string      `yaml:"allowMethods"`
				AllowHeaders     []string      `yaml:"allowHeaders"`
				ExposeHeaders    []string      `yaml:"exposeHeaders"`
				MaxAge           string        `yaml:"maxAge"`
				AllowCredentials *bool         `yaml:"allowCredentials"`
			} `yaml:"corsPolicy"`
		} `yaml:"http"`
	} `yaml:"spec"`
}

func (c *converter) istio(objs []*object) error {
	for _, o := range objs {
		if o.Kind != "VirtualService" {
			c.inform(o.where, "not a VirtualService; skipped")
			continue
		}
		var vs virtualService
		if err := decodeAs(o, &vs); err != nil {
			return err
		}
		found := false
		for i, r := range vs.Spec.HTTP {
			cp := r.CorsPolicy
			if cp == nil {
				continue
			}
			found = true
			route := r.Name
			if route == "" {
				route = strconv.Itoa(i)
			}
			where := fmt.Sprintf("%s http[%s]", o.where, route)
			d := &draft{name: c.uniqueName(o.id() + "/" + route), where: where, comments: []string{"From " + where + "."}}
			c.drafts = append(c.drafts, d)
			spec := corsSpec{credentials: cp.AllowCredentials != nil && *cp.AllowCredentials}
			for _, m := range cp.AllowOrigins {
				switch {
				case m.Exact != nil && *m.Exact == "*":
					spec.origins = append(spec.origins, originSpec{kind: originAll})
				case m.Exact != nil:
					spec.origins = append(spec.origins, originSpec{originExact, *m.Exact})
				case m.Prefix != nil:
					spec.origins = append(spec.origins, originSpec{originPrefix, *m.Prefix})
				case m.Regex != nil:
					spec.origins = append(spec.origins, originSpec{originRegex, *m.Regex})
				}
			}
			for _, og := range cp.AllowOrigin {
				kind := originExact
				if og == "*" {
					kind = originAll
				}
				spec.origins = append(spec.origins, originSpec{kind, og})
			}
			c.gatewayLists(d, &spec, cp.AllowMethods, cp.AllowHeaders, cp.ExposeHeaders, "Envoy")
			if cp.MaxAge != "" {
				if n, ok := seconds(cp.MaxAge); ok {
					spec.maxAge = n
				} else {
					return &InputError{where, fmt.Sprintf("corsPolicy.maxAge %q is not a duration such as \"24h\"", cp.MaxAge)}
				}
			} else {
				d.note("preflight_max_age", "maxAge is not set: Envoy sends no access-control-max-age")
			}
			c.apply(d, spec, `an exact "*" origin (Envoy answers every origin with itself)`)
			if len(vs.Spec.Hosts) > 0 && !slices.Contains(vs.Spec.Hosts, "*") {
				d.match = &policy.Match{}
				for _, h := range vs.Spec.Hosts {
					d.match.Hosts = append(d.match.Hosts, strings.ToLower(h))
					if !strings.Contains(h, ".") {
						d.note("match", "host %q is a short name: corsproc compares the :authority the client sent, so add the full name if clients use it", h)
					}
				}
			}
			var conds []pathCond
			for _, m := range r.Match {
				delete(m.Other, "uri")
				delete(m.Other, "name")
				if len(m.Other) > 0 {
					keys := slices.Sorted(maps.Keys(m.Other))
					c.warn(where, "match conditions other than uri (%s) are not carried over; the policy covers more requests than the route", strings.Join(keys, ", "))
				}
				switch u := m.URI; {
				case u == nil:
					conds = append(conds, pathCond{"prefix", "/"})
				case u.Prefix != nil:
					conds = append(conds, pathCond{"prefix", *u.Prefix})
				case u.Exact != nil:
					conds = append(conds, pathCond{"exact", *u.Exact})
				case u.Regex != nil:
					conds = append(conds, pathCond{"regex", *u.Regex})
				}
			}
			setPaths(d, conds)
		}
		if !found {
			c.inform(o.where, "no http route has a corsPolicy; skipped")
		}
	}
	return nil
}

// gatewayLists sets methods, headers and expose headers as Envoy-based
// gateways answer: a list not given sends no header, and browsers then
// allow only the safelisted methods and headers.
func (c *converter) gatewayLists(d *draft, spec *corsSpec, methods, headers, expose []string, who string) {
	spec.methods = methods
	if len(methods) == 0 {
		spec.methods = safelistedMethods
		d.note("allow_methods", "allowMethods is not set: %s sends no access-control-allow-methods, so browsers allow only these", who)
	}
	spec.headers = headers
	if headers == nil {
		spec.headers = []string{}
	}
	spec.expose = expose
}

// ---- Gateway API HTTPRoute (gateway.networking.k8s.io), field names from
// kubernetes-sigs/gateway-api apis/v1 httproute_types.go (HTTPCORSFilter).

type corsFilter struct {
	AllowOrigins     []string `yaml:"allowOrigins"`
	AllowCredentials *bool    `yaml:"allowCredentials"`
	AllowMethods     []string `yaml:"allowMethods"`
	AllowHeaders     []string `yaml:"allowHeaders"`
	ExposeHeaders    []string `yaml:"exposeHeaders"`
	MaxAge           *int     `yaml:"maxAge"`
}

type httpRoute struct {
	Spec struct {
		Hostnames []string `yaml:"hostnames"`
		Rules     []struct {
			Name    string `yaml:"name"`
			Matches []struct {
				Path *struct {
					Type  string `yaml:"type"`
					Value string `yaml:"value"`
				} `yaml:"path"`
				Headers     any `yaml:"headers"`
				QueryParams any `yaml:"queryParams"`
				Method      any `yaml:"method"`
			} `yaml:"matches"`
			Filters []struct {
				Type string      `yaml:"type"`
				CORS *corsFilter `yaml:"cors"`
			} `yaml:"filters"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

// routeMatch sets d's match from an HTTPRoute's hostnames and the path
// matches of the given rules (all rules when rules is nil).
func (c *converter) routeMatch(d *draft, rt *httpRoute, rules []int, where string) {
	if len(rt.Spec.Hostnames) > 0 {
		d.match = &policy.Match{}
		for _, h := range rt.Spec.Hostnames {
			d.match.Hosts = append(d.match.Hosts, strings.ToLower(h))
		}
	}
	if rules == nil {
		for i := range rt.Spec.Rules {
			rules = append(rules, i)
		}
	}
	var conds []pathCond
	for _, i := range rules {
		r := rt.Spec.Rules[i]
		if len(r.Matches) == 0 {
			conds = append(conds, pathCond{"prefix", "/"}) // the API's default match
		}
		for _, m := range r.Matches {
			if m.Headers != nil || m.QueryParams != nil || m.Method != nil {
				c.warn(where, "header, query or method matches are not carried over; the policy covers more requests than the route")
			}
			switch {
			case m.Path == nil:
				conds = append(conds, pathCond{"prefix", "/"})
			case m.Path.Type == "Exact":
				conds = append(conds, pathCond{"exact", m.Path.Value})
			case m.Path.Type == "RegularExpression":
				conds = append(conds, pathCond{"regex", m.Path.Value})
			default: // PathPrefix, the default: whole path segments
				conds = append(conds, pathCond{"segments", m.Path.Value})
			}
		}
	}
	setPaths(d, conds)
}

// gatewayOrigins reads Gateway API and Envoy Gateway origins: "*" alone,
// or an origin with a "*" wildcard, which corsproc's grammar takes as is.
func gatewayOrigins(list []string) []originSpec {
	var out []originSpec
	for _, og := range list {
		switch {
		case og == "*":
			out = append(out, originSpec{kind: originAll})
		case strings.Contains(og, "*"):
			out = append(out, originSpec{originPattern, strings.ToLower(og)})
		default:
			out = append(out, originSpec{originExact, strings.ToLower(og)})
		}
	}
	return out
}

func (c *converter) gatewayAPI(objs []*object) error {
	for _, o := range objs {
		if o.Kind != "HTTPRoute" {
			c.inform(o.where, "not an HTTPRoute; skipped")
			continue
		}
		var rt httpRoute
		if err := decodeAs(o, &rt); err != nil {
			return err
		}
		found := false
		for i, r := range rt.Spec.Rules {
			for _, f := range r.Filters {
				if f.Type != "CORS" || f.CORS == nil {
					continue
				}
				found = true
				rule := r.Name
				if rule == "" {
					rule = strconv.Itoa(i)
				}
				where := fmt.Sprintf("%s rules[%s]", o.where, rule)
				d := &draft{name: c.uniqueName(o.id() + "/" + rule), where: where, comments: []string{"From " + where + "."}}
				c.drafts = append(c.drafts, d)
				cf := f.CORS
				spec := corsSpec{origins: gatewayOrigins(cf.AllowOrigins), credentials: cf.AllowCredentials != nil && *cf.AllowCredentials, maxAge: 5}
				c.gatewayLists(d, &spec, cf.AllowMethods, cf.AllowHeaders, cf.ExposeHeaders, "the gateway")
				if cf.MaxAge != nil {
					spec.maxAge = *cf.MaxAge
				} else {
					d.note("preflight_max_age", "maxAge is not set: the Gateway API default is 5 seconds")
				}
				c.apply(d, spec, `allowOrigins "*" (the gateway answers every origin with itself when credentials are allowed)`)
				c.routeMatch(d, &rt, []int{i}, where)
			}
		}
		if !found {
			c.inform(o.where, "no rule has a CORS filter; skipped")
		}
	}
	return nil
}

// ---- Envoy Gateway SecurityPolicy (gateway.envoyproxy.io/v1alpha1),
// field names from envoyproxy/gateway api/v1alpha1 cors_types.go and
// securitypolicy_types.go.

type targetRef struct {
	Group string `yaml:"group"`
	Kind  string `yaml:"kind"`
	Name  string `yaml:"name"`
}

type securityPolicy struct {
	Spec struct {
		TargetRef  *targetRef  `yaml:"targetRef"`
		TargetRefs []targetRef `yaml:"targetRefs"`
		CORS       *struct {
			AllowOrigins     []any    `yaml:"allowOrigins"` // strings; early releases wrote {type, value}
			AllowMethods     []string `yaml:"allowMethods"`
			AllowHeaders     []string `yaml:"allowHeaders"`
			ExposeHeaders    []string `yaml:"exposeHeaders"`
			MaxAge           string   `yaml:"maxAge"`
			AllowCredentials *bool    `yaml:"allowCredentials"`
		} `yaml:"cors"`
	} `yaml:"spec"`
}

func (c *converter) envoyGateway(objs []*object) error {
	routes := map[string]*httpRoute{}
	for _, o := range objs {
		if o.Kind == "HTTPRoute" {
			var rt httpRoute
			if err := decodeAs(o, &rt); err != nil {
				return err
			}
			routes[o.Metadata.Namespace+"/"+o.Metadata.Name] = &rt
		}
	}
	for _, o := range objs {
		if o.Kind == "HTTPRoute" {
			continue
		}
		if o.Kind != "SecurityPolicy" {
			c.inform(o.where, "neither a SecurityPolicy nor an HTTPRoute; skipped")
			continue
		}
		var sp securityPolicy
		if err := decodeAs(o, &sp); err != nil {
			return err
		}
		cors := sp.Spec.CORS
		if cors == nil {
			c.inform(o.where, "no cors; skipped")
			continue
		}
		spec := corsSpec{credentials: cors.AllowCredentials != nil && *cors.AllowCredentials}
		for _, v := range cors.AllowOrigins {
			switch x := v.(type) {
			case string:
				spec.origins = append(spec.origins, gatewayOrigins([]string{x})...)
			case map[string]any:
				// Early releases: {type: Exact | Prefix | RegularExpression, value}.
				value := fmt.Sprint(x["value"])
				switch x["type"] {
				case "Prefix":
					spec.origins = append(spec.origins, originSpec{originPrefix, value})
				case "RegularExpression":
					spec.origins = append(spec.origins, originSpec{originRegex, value})
				default:
					spec.origins = append(spec.origins, gatewayOrigins([]string{value})...)
				}
			}
		}
		refs := sp.Spec.TargetRefs
		if sp.Spec.TargetRef != nil {
			refs = append([]targetRef{*sp.Spec.TargetRef}, refs...)
		}
		if len(refs) == 0 {
			refs = []targetRef{{}}
		}
		for _, ref := range refs {
			name := o.id()
			if len(refs) > 1 {
				name += "/" + ref.Name
			}
			d := &draft{name: c.uniqueName(name), where: o.where, comments: []string{"From " + o.where + "."}}
			c.drafts = append(c.drafts, d)
			c.gatewayLists(d, &spec, cors.AllowMethods, cors.AllowHeaders, cors.ExposeHeaders, "Envoy")
			if cors.MaxAge != "" {
				n, ok := seconds(cors.MaxAge)
				if !ok {
					return &InputError{o.where, fmt.Sprintf("cors.maxAge %q is not a duration such as \"24h\"", cors.MaxAge)}
				}
				spec.maxAge = n
			} else {
				d.note("preflight_max_age", "maxAge is not set: Envoy sends no access-control-max-age")
			}
			c.apply(d, spec, `allowOrigins "*" (Envoy answers every origin with itself)`)
			switch rt := routes[o.Metadata.Namespace+"/"+ref.Name]; {
			case ref.Kind == "HTTPRoute" && rt != nil:
				d.comments = append(d.comments, "Matched as its target HTTPRoute "+ref.Name+" is.")
				c.routeMatch(d, rt, nil, o.where)
			case ref.Kind == "HTTPRoute" || ref.Kind == "GRPCRoute":
				d.note("match", "WARNING: the target %s %q is not in the input, so this policy matches every request:\nimport the route with the policy, or write match by hand", ref.Kind, ref.Name)
				c.warn(o.where, "target %s %q is not in the input; the policy matches every request: name the route's file too", ref.Kind, ref.Name)
			default:
				d.comments = append(d.comments, fmt.Sprintf("The target is %s %q: every route behind it, so no match block.", ref.Kind, ref.Name))
			}
		}
	}
	return nil
}
