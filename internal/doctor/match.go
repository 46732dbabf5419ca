package doctor

import (
	"regexp"
	"strings"

	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/corsproc/corsproc/policy"
)

// regexps compiles each expression of a dump once: the same forward and
// mutation rules are checked against a dozen header names per chain, on
// every chain of a mesh.
type regexps map[string]*regexp.Regexp

// fullMatch is Envoy's safe_regex semantics: RE2, the whole string. A
// regex Go cannot compile matches nothing (Envoy would have refused it).
func (rx regexps) fullMatch(re, s string) bool {
	r, ok := rx[re]
	if !ok {
		r, _ = regexp.Compile(`^(?:` + re + `)$`)
		rx[re] = r
	}
	return r != nil && r.MatchString(s)
}

// matchString is StringMatcher on a header name.
func (rx regexps) matchString(m *matcherv3.StringMatcher, s string) bool {
	fold := func(x string) string {
		if m.GetIgnoreCase() {
			return strings.ToLower(x)
		}
		return x
	}
	switch x := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return fold(s) == fold(x.Exact)
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(fold(s), fold(x.Prefix))
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(fold(s), fold(x.Suffix))
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(fold(s), fold(x.Contains))
	case *matcherv3.StringMatcher_SafeRegex:
		return rx.fullMatch(x.SafeRegex.GetRegex(), s)
	}
	return false
}

func (rx regexps) matchList(l *matcherv3.ListStringMatcher, s string) bool {
	for _, m := range l.GetPatterns() {
		if rx.matchString(m, s) {
			return true
		}
	}
	return false
}

// mutationAllowed follows Envoy's HeaderMutationRules Checker::isAllowed
// for a header corsproc sets or removes (envoy-filter-chain.md D). The
// routing, system and x-envoy rules never concern corsproc's headers.
func (rx regexps) mutationAllowed(r *mutationv3.HeaderMutationRules, name string) bool {
	if re := r.GetDisallowExpression(); re != nil && rx.fullMatch(re.GetRegex(), name) {
		return false
	}
	if re := r.GetAllowExpression(); re != nil && rx.fullMatch(re.GetRegex(), name) {
		return true
	}
	if r.GetDisallowAll().GetValue() {
		return false
	}
	if strings.HasPrefix(name, ":") && r.GetDisallowSystem().GetValue() {
		return false
	}
	if strings.HasPrefix(name, "x-envoy-") && !r.GetAllowEnvoy().GetValue() {
		return false
	}
	return true
}

// routePolicies names the policies that match by route name.
func routePolicies(s *policy.Set) []string {
	var out []string
	for _, p := range s.Policies() {
		if p.Match != nil && len(p.Match.Routes) > 0 {
			out = append(out, p.Name)
		}
	}
	return out
}

// hostsOverlap reports whether a policy host ("api.example.com",
// "*.example.com": one or more labels) and an Envoy virtual-host domain
// ("*", "api.example.com", "*.example.com", "*-api.example.com",
// "api.*", any with a port) can name the same host.
func hostsOverlap(policyHost, domain string) bool {
	d := strings.ToLower(domain)
	if d == "*" {
		return true
	}
	if i := strings.LastIndexByte(d, ':'); i >= 0 && !strings.HasSuffix(d, "]") {
		d = d[:i]
	}
	h := strings.ToLower(policyHost)
	wild := strings.HasPrefix(h, "*.")
	switch {
	case strings.HasPrefix(d, "*"): // suffix wildcard: the host ends with d[1:] and is longer
		suf := d[1:]
		if wild {
			return strings.HasSuffix(h[1:], suf) || strings.HasSuffix(suf, h[1:])
		}
		return len(h) > len(suf) && strings.HasSuffix(h, suf)
	case strings.HasSuffix(d, "*"): // prefix wildcard
		pre := d[:len(d)-1]
		return wild || (len(h) > len(pre) && strings.HasPrefix(h, pre))
	case wild:
		return strings.HasSuffix(d, h[1:]) && len(d) > len(h)-1
	}
	return h == d
}

// policyCovers reports whether p can match a request on a virtual host with
// these domains, and (route non-nil) on that route.
func policyCovers(p policy.Policy, domains []string, route *routeInfo) bool {
	m := p.Match
	if m == nil {
		return true
	}
	if len(m.Hosts) > 0 {
		ok := false
		for _, h := range m.Hosts {
			for _, d := range domains {
				if hostsOverlap(h, d) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	if route == nil {
		return true
	}
	if len(m.Routes) > 0 {
		found := false
		for _, r := range m.Routes {
			if r == route.name {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	if len(m.PathPrefixes) > 0 && route.prefix != "" {
		ok := false
		for _, pp := range m.PathPrefixes {
			if strings.HasPrefix(pp, route.prefix) || strings.HasPrefix(route.prefix, pp) {
				ok = true
			}
		}
		return ok
	}
	return true
}

type routeInfo struct {
	name   string
	prefix string // the route's prefix or path match; "" for others (assumed to overlap)
}

func policyMode(p policy.Policy) string {
	if p.Mode == nil {
		return "enforce"
	}
	return *p.Mode
}
