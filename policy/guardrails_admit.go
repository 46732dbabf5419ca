package policy

import (
	"slices"
	"strconv"
	"strings"
)

// Holding a contributed policy to the guardrails (docs/contract.md §6):
// one check per guardrail, each naming the
// guardrail key and the spec key, every problem collected. The checks read
// the effective settings, defaults applied: what would run is what must
// keep to the rules, whoever wrote it.

// admission is one contribution being held to the guardrails.
type admission struct {
	top        loc // metadata keys
	spec       loc // spec keys
	file       string
	namespace  string
	match      *Match    // as written
	eff        *Settings // effective, not normalised
	inherited  map[string]bool
	routeHosts []string
	badMatch   bool     // the loader found match itself broken
	ofDefaults bool     // the file's own defaults are checked, not an object
	ns         *nsGuard // nil when the namespace is not listed
}

// admit runs every guardrail check; g nil (no guardrails section) admits
// nothing.
func (g *guardrails) admit(a *admission) {
	if g == nil {
		a.top.child("metadata").child("namespace").valueError(a.namespace, a.file+" has no guardrails section, so no namespace may declare CORSPolicy objects; "+
			"to admit this one, add guardrails.namespaces to "+a.file+" with {name: "+a.namespace+", hosts: [the hosts it may match]}")
		return
	}
	a.ns = g.namespaces[a.namespace]
	checkNamespaceListed(g, a)
	checkHostsWithin(a)
	checkPathsWithin(a)
	checkOriginsWithin(g, a)
	checkAllowAll(g, a)
	checkCredentialsWithWildcards(g, a)
	checkPrivateNetwork(g, a)
	checkRegexesAllowed(g, a)
}

// at is where a problem about element i (-1: the key) of a setting is
// reported: at the element when the spec sets the key, at the key when
// it is inherited from the file's defaults.
func (a *admission) at(key string, i int) loc {
	l := a.spec.child(key)
	if i >= 0 && !a.inherited[key] {
		l = l.index(i)
	}
	return l
}

// from notes after a value that it came from the file's defaults.
func (a *admission) from(key string) string {
	if a.inherited[key] && !a.ofDefaults {
		return " (inherited from the defaults of " + a.file + "; set " + key + " in the spec to override it)"
	}
	return ""
}

func quoted(list []string) string {
	q := make([]string, len(list))
	for i, v := range list {
		q[i] = strconv.Quote(v)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// checkNamespaceListed refuses a namespace the guardrails do not list.
func checkNamespaceListed(g *guardrails, a *admission) {
	if a.ns != nil || a.namespace == "" {
		return
	}
	listed := make([]string, 0, len(g.namespaces))
	for name := range g.namespaces {
		listed = append(listed, name)
	}
	slices.Sort(listed)
	a.top.child("metadata").child("namespace").valueError(a.namespace, "not listed in guardrails.namespaces of "+a.file+" (which lists "+quoted(listed)+
		"), so its CORSPolicy objects are refused; apply it in a listed namespace, or add {name: "+a.namespace+", hosts: [...]} to guardrails.namespaces")
}

// checkHostsWithin requires match.hosts, each within the hosts the
// namespace may match: listed, or its HTTPRoutes' hostnames when the
// guardrail says so.
func checkHostsWithin(a *admission) {
	l := a.spec.child("match").child("hosts")
	if a.badMatch {
		return // not a mapping, or an unknown key: the loader's problem comes first
	}
	if a.match == nil || a.match.Hosts == nil {
		where := ""
		if a.ns != nil {
			where = ", within " + a.hostsAllowed()
		}
		l.errorf("missing; a CORSPolicy must name the hosts it matches (without match.hosts it would match every host)%s", where)
		return
	}
	if len(a.match.Hosts) == 0 {
		l.errorf("an empty list matches nothing; list the hosts this policy is for")
		return
	}
	if a.ns == nil {
		return // the namespace's own problem says it all
	}
	var routes []hostPattern
	if a.ns.fromRoutes {
		for _, h := range a.routeHosts {
			if hp, msg := parseHostPattern(h); msg == "" {
				routes = append(routes, hp)
			}
		}
	}
	for i, h := range a.match.Hosts {
		hp, msg := parseHostPattern(h)
		if msg != "" {
			continue // the loader's own check reports it
		}
		if slices.ContainsFunc(a.ns.hosts, func(g hostPattern) bool { return hostWithin(hp, g) }) ||
			slices.ContainsFunc(routes, func(g hostPattern) bool { return hostWithin(hp, g) }) {
			continue
		}
		hint := ""
		for _, g := range append(slices.Clone(a.ns.hosts), routes...) {
			if g.wild && hp.name == g.name {
				hint = "; \"*." + g.name + "\" covers the subdomains of " + g.name + ", not " + g.name + " itself"
				break
			}
		}
		l.index(i).valueError(h, "not within "+a.hostsAllowed()+hint+"; match only hosts these cover, or ask the owners of "+a.file+" to add it")
	}
}

// hostsAllowed names the hosts the namespace may match, for messages.
func (a *admission) hostsAllowed() string {
	s := "the hosts namespace " + a.namespace + " may match, " + a.ns.key("hosts") + " " + quoted(a.ns.hostsText)
	if a.ns.fromRoutes {
		if len(a.routeHosts) == 0 {
			s += ", and the hostnames of its HTTPRoutes (it has none)"
		} else {
			s += ", and the hostnames of its HTTPRoutes " + quoted(a.routeHosts)
		}
	}
	return s
}

// hostWithin reports whether every host t matches is matched by g.
func hostWithin(t, g hostPattern) bool {
	if !g.wild {
		return !t.wild && t.name == g.name
	}
	return t.wild && t.name == g.name || strings.HasSuffix(t.name, "."+g.name)
}

// checkPathsWithin requires match.path_prefixes, each under one of the
// namespace's path_prefixes, when the guardrail lists any.
func checkPathsWithin(a *admission) {
	if a.ns == nil || a.ns.pathPrefixes == nil {
		return
	}
	l := a.spec.child("match").child("path_prefixes")
	allowed := a.ns.key("path_prefixes") + " " + quoted(a.ns.pathPrefixes)
	if a.match == nil || len(a.match.PathPrefixes) == 0 {
		l.errorf("missing; namespace %s may match only paths under %s: set match.path_prefixes to some of them", a.namespace, allowed)
		return
	}
	for i, p := range a.match.PathPrefixes {
		if !strings.HasPrefix(p, "/") {
			continue // the loader's own check reports it
		}
		if !slices.ContainsFunc(a.ns.pathPrefixes, func(g string) bool { return strings.HasPrefix(p, g) }) {
			l.index(i).valueError(p, "not under "+allowed+"; match only paths that start with one of them")
		}
	}
}

// checkOriginsWithin holds each allowed origin to the guardrail's list:
// the namespace's own, else the top-level one.
func checkOriginsWithin(g *guardrails, a *admission) {
	if *a.eff.AllowAllOrigins && g.allowAll {
		return // the list is ignored, and every origin may be allowed
	}
	key, list, text := "guardrails.allowed_origins", g.origins, g.originsText
	if a.ns != nil && a.ns.origins != nil {
		key, list, text = a.ns.key("allowed_origins"), a.ns.origins, a.ns.originsText
	}
	for i, o := range a.eff.AllowedOrigins {
		t, msg := parseOriginPattern(o)
		if msg != "" {
			continue // the loader's own check reports it
		}
		if slices.ContainsFunc(list, func(g originPattern) bool { return originWithin(t, g) }) {
			continue
		}
		el := a.at("allowed_origins", i)
		if list == nil {
			el.valueError(o, "teams may allow no origin: "+key+" is not set in "+a.file+a.from("allowed_origins")+"; ask its owners to list the origins teams may allow")
			continue
		}
		hint := ""
		for _, g := range list {
			if g.kind == wildcardOrigin && t.scheme == g.scheme && t.host == g.host {
				hint = "; " + strconv.Quote(g.normalised) + " covers subdomains only, not " + g.host + " itself"
				break
			}
		}
		el.valueError(o, "not within "+key+" "+quoted(text)+" of "+a.file+a.from("allowed_origins")+hint+"; allow only origins these cover, or ask its owners to add it")
	}
}

// originWithin reports whether every origin t admits is admitted by g.
// As sets: an exact origin is one origin, ":*" adds every port of one
// host, "*." every host below a domain (one port, or every port with
// ":*").
func originWithin(t, g originPattern) bool {
	if t.normalised == "null" || g.normalised == "null" {
		return t.normalised == g.normalised
	}
	if t.scheme != g.scheme || g.port != "*" && t.port != g.port {
		return false
	}
	if g.kind != wildcardOrigin {
		return t.kind != wildcardOrigin && t.host == g.host
	}
	return t.kind == wildcardOrigin && t.host == g.host || strings.HasSuffix(t.host, "."+g.host)
}

// checkAllowAll refuses allow_all_origins unless the guardrail allows it.
func checkAllowAll(g *guardrails, a *admission) {
	if *a.eff.AllowAllOrigins && !g.allowAll {
		a.at("allow_all_origins", -1).errorf("true%s is not allowed: guardrails.allow_all_origins is not true in %s; list the origins in allowed_origins instead", a.from("allow_all_origins"), a.file)
	}
}

// checkCredentialsWithWildcards refuses credentials with a wildcard or
// regex origin unless the guardrail allows them.
func checkCredentialsWithWildcards(g *guardrails, a *admission) {
	if !*a.eff.AllowCredentials || g.credWild {
		return
	}
	why := " with allow_credentials: true" + a.from("allow_credentials") + " is not allowed: guardrails.credentials_with_wildcards is not true in " + a.file
	for i, o := range a.eff.AllowedOrigins {
		t, msg := parseOriginPattern(o)
		if msg != "" || t.kind == exactOrigin {
			continue
		}
		a.at("allowed_origins", i).valueError(o, "a wildcard origin"+a.from("allowed_origins")+why+"; list each origin, or drop allow_credentials")
	}
	if !g.regexes {
		return // checkRegexesAllowed refuses every regex already
	}
	for i, r := range a.eff.AllowedOriginRegexes {
		a.at("allowed_origin_regexes", i).valueError(r, "an origin regex"+a.from("allowed_origin_regexes")+why+"; list each origin in allowed_origins, or drop allow_credentials")
	}
}

// checkPrivateNetwork refuses allow_private_network unless the guardrail
// allows it.
func checkPrivateNetwork(g *guardrails, a *admission) {
	if *a.eff.AllowPrivateNetwork && !g.pna {
		a.at("allow_private_network", -1).errorf("true%s is not allowed: guardrails.private_network is not true in %s; remove it", a.from("allow_private_network"), a.file)
	}
}

// checkRegexesAllowed refuses origin regexes unless the guardrail allows
// them: whether a regex stays within allowed_origins cannot be decided.
func checkRegexesAllowed(g *guardrails, a *admission) {
	if len(a.eff.AllowedOriginRegexes) == 0 || g.regexes {
		return
	}
	for i, r := range a.eff.AllowedOriginRegexes {
		a.at("allowed_origin_regexes", i).valueError(r, "origin regexes"+a.from("allowed_origin_regexes")+" are not allowed: guardrails.origin_regexes is not true in "+a.file+
			" (whether a regex stays within the allowed origins cannot be checked); list the origins in allowed_origins, where wildcards such as \"https://*.a.example.com\" are checked")
		if a.inherited["allowed_origin_regexes"] {
			return // one problem for the inherited list
		}
	}
}

// matchBroken reports whether the loader found policy i's match block
// itself broken: not a mapping, or with an unknown key.
func (ps *problems) matchBroken(i int) bool {
	for _, p := range ps.list {
		if p.Severity != SeverityError || p.Policy != i || !keyUnder(p.Key, "match") {
			continue
		}
		if !slices.ContainsFunc(matchKeys, func(k string) bool { return keyUnder(p.Key, "match."+k) }) {
			return true
		}
	}
	return false
}
