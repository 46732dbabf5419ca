package policy

import (
	"regexp"
	"strconv"
	"strings"
)

// Guardrails are the central file's rules for the policies teams declare
// as CORSPolicy objects (docs/contract.md §6):
// which namespaces may declare them, what each may match, which origins
// they may allow and what they may never set. A policy that breaks one is
// refused whole. Without this section no namespace may declare any.
type Guardrails struct {
	// Namespaces are the only namespaces whose CORSPolicy objects are
	// admitted, each with the hosts and paths its policies may match.
	Namespaces []NamespaceGuardrail `json:"namespaces"`
	// AllowedOrigins are the origins a team's policy may allow: each of its
	// allowed_origins must fall within one of these, as a set: an exact
	// origin, "https://*.example.com" for every subdomain, or ":*" for
	// every port. Unset, no team may allow an origin.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// AllowAllOrigins lets a team's policy set allow_all_origins: true.
	AllowAllOrigins *bool `json:"allow_all_origins,omitempty"`
	// CredentialsWithWildcards lets a team's policy set allow_credentials:
	// true with a wildcard origin ("*." or ":*") or an origin regex.
	CredentialsWithWildcards *bool `json:"credentials_with_wildcards,omitempty"`
	// PrivateNetwork lets a team's policy set allow_private_network: true.
	PrivateNetwork *bool `json:"private_network,omitempty"`
	// OriginRegexes lets a team's policy set allowed_origin_regexes, which
	// are then not held to allowed_origins: whether a regex stays within
	// a list of origins cannot be decided in general.
	OriginRegexes *bool `json:"origin_regexes,omitempty"`
	// Order places the teams' policies "after" the file's (the default:
	// the file's policies win) or "before" them.
	Order *string `json:"order,omitempty"`
}

// NamespaceGuardrail is one namespace that may declare CORSPolicy objects.
type NamespaceGuardrail struct {
	// Name is the namespace's name.
	Name string `json:"name"`
	// Hosts are the hosts its policies may match: each of a policy's
	// match.hosts must fall within one ("*.example.com" covers every
	// subdomain of example.com, and "*.api.example.com" within it).
	Hosts []string `json:"hosts,omitempty"`
	// HostsFromHTTPRoutes also lets its policies match the hostnames of
	// the namespace's HTTPRoutes.
	HostsFromHTTPRoutes *bool `json:"hosts_from_httproutes,omitempty"`
	// PathPrefixes, when set, require match.path_prefixes of its policies,
	// each starting with one of these.
	PathPrefixes []string `json:"path_prefixes,omitempty"`
	// AllowedOrigins, when set, replace the top-level allowed_origins for
	// this namespace.
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
}

var (
	guardrailKeys = []string{"namespaces", "allowed_origins", "allow_all_origins", "credentials_with_wildcards", "private_network", "origin_regexes", "order"}
	namespaceKeys = []string{"name", "hosts", "hosts_from_httproutes", "path_prefixes", "allowed_origins"}
)

// decodeGuardrails decodes the guardrails section strictly, as the rest
// of the file is: every unknown key and wrong type is a problem.
func decodeGuardrails(l loc, v any) *Guardrails {
	g := &Guardrails{}
	m, ok := asMap(l, v)
	if !ok {
		return g
	}
	sawNamespaces := false
	for _, kv := range m {
		k, _ := kv.Key.(string)
		kl := l.child(k)
		switch k {
		case "namespaces":
			sawNamespaces = true
			g.Namespaces = decodeNamespaces(kl, kv.Value)
		case "allowed_origins":
			g.AllowedOrigins = asStrings(kl, kv.Value)
		case "allow_all_origins":
			g.AllowAllOrigins = asBool(kl, kv.Value)
		case "credentials_with_wildcards":
			g.CredentialsWithWildcards = asBool(kl, kv.Value)
		case "private_network":
			g.PrivateNetwork = asBool(kl, kv.Value)
		case "origin_regexes":
			g.OriginRegexes = asBool(kl, kv.Value)
		case "order":
			g.Order = asEnum(kl, kv.Value, "after", "before")
		default:
			kl.errorf("unknown key; guardrails takes %s", strings.Join(guardrailKeys, ", "))
		}
	}
	if !sawNamespaces {
		l.child("namespaces").errorf("missing; list the namespaces that may declare CORSPolicy objects, e.g. namespaces: [{name: team-a, hosts: [a.example.com]}]")
	}
	return g
}

func decodeNamespaces(l loc, v any) []NamespaceGuardrail {
	list, ok := v.([]any)
	if !ok {
		l.errorf("must be a list of namespaces, each with a name and hosts, not %s", kind(v))
		return nil
	}
	out := make([]NamespaceGuardrail, 0, len(list))
	for i, e := range list {
		el := l.index(i)
		var ns NamespaceGuardrail
		m, ok := asMap(el, e)
		if !ok {
			out = append(out, ns)
			continue
		}
		sawName := false
		for _, kv := range m {
			k, _ := kv.Key.(string)
			kl := el.child(k)
			switch k {
			case "name":
				sawName = true
				ns.Name, _ = asString(kl, kv.Value)
			case "hosts":
				ns.Hosts = asStrings(kl, kv.Value)
			case "hosts_from_httproutes":
				ns.HostsFromHTTPRoutes = asBool(kl, kv.Value)
			case "path_prefixes":
				ns.PathPrefixes = asStrings(kl, kv.Value)
			case "allowed_origins":
				ns.AllowedOrigins = asStrings(kl, kv.Value)
			default:
				kl.errorf("unknown key; a namespace entry takes %s", strings.Join(namespaceKeys, ", "))
			}
		}
		if !sawName {
			el.child("name").errorf("missing; name the namespace, e.g. name: team-a")
		}
		out = append(out, ns)
	}
	return out
}

// guardrails are the Guardrails, checked and compiled for Admit.
type guardrails struct {
	namespaces  map[string]*nsGuard
	origins     []originPattern
	originsText []string
	allowAll    bool
	credWild    bool
	pna         bool
	regexes     bool
	before      bool
}

// nsGuard is one namespace's entry, compiled.
type nsGuard struct {
	index        int
	name         string
	hosts        []hostPattern
	hostsText    []string
	fromRoutes   bool
	pathPrefixes []string
	origins      []originPattern // nil: the top-level list
	originsText  []string
}

// key is the guardrail key of the namespace entry, for messages.
func (n *nsGuard) key(k string) string {
	return "guardrails.namespaces[" + strconv.Itoa(n.index) + "]." + k
}

// dnsLabel is a Kubernetes namespace name (RFC 1123 label).
var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// checkGuardrails compiles the file's guardrails section, adding its
// problems to list.
func checkGuardrails(file string, f *File, list []Problem) (*guardrails, []Problem) {
	ps := &problems{file: file, list: list}
	out := compileGuardrails(loc{ps: ps, policy: -1, key: "guardrails"}, f.Guardrails)
	if out != nil {
		warnDefaultsRefused(loc{ps: ps, policy: -1, key: "defaults"}, out, &f.Defaults, file)
		warnCaughtFirst(loc{ps: ps, policy: -1, key: "guardrails"}, out, f)
	}
	return out, ps.list
}

// warnCaughtFirst warns when objects placed after the file's policies can
// never apply: a policy of the file catches every request before them.
func warnCaughtFirst(l loc, g *guardrails, f *File) {
	if g.before || len(g.namespaces) == 0 {
		return
	}
	for i, p := range f.Policies {
		if why := catchesAll(p.Match); why != "" {
			l.child("order").warnf("CORSPolicy objects run after the file's policies, and policies[%d] %q %s, so no object can ever apply; give it a match, or set order: before", i, p.Name, why)
			return
		}
	}
}

// warnDefaultsRefused warns about defaults the guardrails refuse: every
// CORSPolicy that does not set the key itself inherits the value and is
// refused, which the file's owners would otherwise learn from each team.
func warnDefaultsRefused(l loc, g *guardrails, defaults *Settings, file string) {
	eff, inherited := merge(&Settings{}, defaults)
	scratch := &problems{file: file}
	a := &admission{spec: loc{ps: scratch, policy: -1, key: "spec"}, file: file, eff: &eff, inherited: inherited, ofDefaults: true}
	if g.usesTopOrigins() {
		checkOriginsWithin(g, a)
	}
	checkAllowAll(g, a)
	checkCredentialsWithWildcards(g, a)
	checkPrivateNetwork(g, a)
	checkRegexesAllowed(g, a)
	for _, p := range scratch.list {
		key := strings.TrimPrefix(p.Key, "spec.")
		why, _, _ := strings.Cut(p.Message, "; ") // the object's fix is not the file's
		msg := "every CORSPolicy that does not set " + key + " inherits this, and the guardrails refuse it (" + why +
			"); change defaults or the guardrail, or set " + key + " in each object"
		if p.HasValue {
			l.child(key).valueWarning(p.Value, msg)
		} else {
			l.child(key).warnf("%s", msg)
		}
	}
}

// usesTopOrigins reports whether some namespace is held to the top-level
// allowed_origins (none has a list of its own).
func (g *guardrails) usesTopOrigins() bool {
	for _, n := range g.namespaces {
		if n.origins == nil {
			return true
		}
	}
	return len(g.namespaces) == 0
}

// compileGuardrails checks the section, one concern at a time, and
// compiles it; nil when the file has none.
func compileGuardrails(l loc, g *Guardrails) *guardrails {
	if g == nil {
		return nil
	}
	out := &guardrails{
		namespaces: map[string]*nsGuard{},
		allowAll:   g.AllowAllOrigins != nil && *g.AllowAllOrigins,
		credWild:   g.CredentialsWithWildcards != nil && *g.CredentialsWithWildcards,
		pna:        g.PrivateNetwork != nil && *g.PrivateNetwork,
		regexes:    g.OriginRegexes != nil && *g.OriginRegexes,
		before:     g.Order != nil && *g.Order == "before",
	}
	out.origins, out.originsText = compileGuardrailOrigins(l.child("allowed_origins"), g.AllowedOrigins)
	nl := l.child("namespaces")
	if g.Namespaces != nil && len(g.Namespaces) == 0 {
		nl.warnf("the list is empty: no namespace may declare CORSPolicy objects; add one, e.g. {name: team-a, hosts: [a.example.com]}")
	}
	for i := range g.Namespaces {
		if n := compileNamespace(nl.index(i), i, &g.Namespaces[i], out.namespaces); n != nil {
			out.namespaces[n.name] = n
		}
	}
	return out
}

// hasTopError reports whether an error was already found under one of
// the top-level key paths keys.
func (ps *problems) hasTopError(keys ...string) bool {
	for _, p := range ps.list {
		for _, k := range keys {
			if p.Severity == SeverityError && p.Policy == -1 && keyUnder(p.Key, k) {
				return true
			}
		}
	}
	return false
}

// compileGuardrailOrigins checks a guardrails allowed_origins list: each
// entry an origin pattern as in allowed_origins, regexes excluded.
func compileGuardrailOrigins(l loc, list []string) ([]originPattern, []string) {
	if list == nil {
		return nil, nil
	}
	out := make([]originPattern, 0, len(list))
	text := make([]string, 0, len(list))
	for i, o := range list {
		p, msg := parseOriginPattern(o)
		if msg != "" {
			if o == "*" {
				msg = `"*" is not an origin; set guardrails.allow_all_origins: true to let teams allow every origin`
			}
			l.index(i).valueError(o, msg)
			continue
		}
		out = append(out, p)
		text = append(text, p.normalised)
	}
	return out, text
}

// compileNamespace checks one namespace entry; nil when it cannot be
// used (its problems are reported).
func compileNamespace(l loc, i int, ns *NamespaceGuardrail, seen map[string]*nsGuard) *nsGuard {
	n := &nsGuard{index: i, name: ns.Name, fromRoutes: ns.HostsFromHTTPRoutes != nil && *ns.HostsFromHTTPRoutes}
	nameOK := true
	switch prev, dup := seen[ns.Name]; {
	case ns.Name == "":
		nameOK = false // missing (reported by the decoder) or empty
		if !l.ps.hasTopError(l.child("name").path()) {
			l.child("name").errorf("must not be empty; name the namespace, e.g. name: team-a")
		}
	case !dnsLabel.MatchString(ns.Name) || len(ns.Name) > 63:
		nameOK = false
		l.child("name").valueError(ns.Name, "not a Kubernetes namespace name: lower-case letters, digits and \"-\", at most 63, starting and ending with a letter or digit")
	case dup:
		nameOK = false
		l.child("name").valueError(ns.Name, "listed twice; guardrails.namespaces["+strconv.Itoa(prev.index)+"] already names it: merge the two entries")
	}
	for j, h := range ns.Hosts {
		hp, msg := parseHostPattern(h)
		if msg != "" {
			l.child("hosts").index(j).valueError(h, msg)
			continue
		}
		n.hosts = append(n.hosts, hp)
		n.hostsText = append(n.hostsText, h)
	}
	if len(ns.Hosts) == 0 && !n.fromRoutes && !l.ps.hasTopError(l.child("hosts").path(), l.child("hosts_from_httproutes").path()) {
		l.child("hosts").errorf("missing; without hosts (or hosts_from_httproutes: true) no policy of namespace %q can be admitted: list the hosts it may match, e.g. hosts: [a.example.com]", ns.Name)
	}
	for j, p := range ns.PathPrefixes {
		if !strings.HasPrefix(p, "/") {
			l.child("path_prefixes").index(j).valueError(p, `a path prefix starts with "/"`)
			continue
		}
		n.pathPrefixes = append(n.pathPrefixes, p)
	}
	if ns.PathPrefixes != nil && len(ns.PathPrefixes) == 0 {
		l.child("path_prefixes").errorf("an empty list admits no policy; remove the key to allow every path, or list the prefixes")
	}
	// Written, even empty, the list replaces the top-level one.
	n.origins, n.originsText = compileGuardrailOrigins(l.child("allowed_origins"), ns.AllowedOrigins)
	if !nameOK {
		return nil
	}
	return n
}
