package policy

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"github.com/corsproc/corsproc/internal/httpgrammar"
)

// compiled is one policy ready for requests: every header value that does
// not depend on the request is computed here, once.
type compiled struct {
	name  string
	index int // in Set.Policies
	mode  Mode

	// selection
	hosts        map[string]struct{} // exact hosts, lower case
	hostSuffixes map[string]struct{} // "example.com" for "*.example.com"
	pathPrefixes []string
	pathRegex    *regexp.Regexp
	routes       []string
	never        bool // a match list written empty: the policy is never selected

	origins     origins
	credentials bool
	keep        bool // upstream_cors_headers: keep

	methodsAny bool
	methods    []string
	headersAny bool
	headers    map[string]struct{} // lower case; with headersAny only the ones listed beside "*"
	pna        bool
	status     int

	// precomputed header values
	allowMethods  string // "" when allowMethods is "*" with credentials (echo)
	allowHeaders  string // "" when allowHeaders is "*" with credentials (echo)
	maxAge        string // "" omits the header
	expose        string
	preflightVary string
}

func (m *Match) clone() *Match { return m.DeepCopy() }

// compile validates every policy against its effective settings and builds
// the matchers. Values a policy inherits from defaults are checked once,
// under defaults, so one bad default is one problem, not one per policy.
func compile(file string, f *File, list []Problem) ([]Policy, []*compiled, []Problem) {
	ps := &problems{file: file, list: list}
	defLoc := loc{ps: ps, policy: -1, key: "defaults"}
	checkValues(defLoc, &f.Defaults)

	var resolved []Policy
	var out []*compiled
	seen := map[string]int{}
	catchAll, catchWhy := -1, ""
	for i := range f.Policies {
		p := &f.Policies[i]
		l := loc{ps: ps, policy: i, name: p.Name}
		if ps.hasError(i, nil, "") {
			continue // not even a mapping: nothing more to say about it
		}
		if j, dup := seen[p.Name]; dup && p.Name != "" {
			l.child("name").valueError(p.Name, "duplicate name; policies["+strconv.Itoa(j)+"] already uses it, and names must be unique")
		} else {
			seen[p.Name] = i
		}
		if catchAll >= 0 {
			l.warnf("can never match: policies[%d] %q %s and catches every request first", catchAll, f.Policies[catchAll].Name, catchWhy)
		}
		checkValues(l, &p.Settings)
		eff, inherited := merge(&p.Settings, &f.Defaults)
		c := &compiled{name: p.Name, index: len(out)}
		compileMatch(l.child("match"), p.Match, c)
		if catchAll < 0 && !ps.hasError(i, nil, "match") { // a broken match block catches nothing
			if why := catchesAll(p.Match); why != "" {
				catchAll, catchWhy = i, why
			}
		}
		compileSettings(l, &eff, inherited, c)
		resolved = append(resolved, Policy{Name: p.Name, Match: p.Match.clone(), Settings: eff})
		out = append(out, c)
	}
	return resolved, out, ps.list
}

// catchesAll says why a match block holds for every request, or "".
func catchesAll(m *Match) string {
	switch {
	case m == nil || m.Hosts == nil && m.PathPrefixes == nil && m.PathRegex == "" && m.Routes == nil:
		return "has no match conditions"
	case m.Hosts == nil && m.PathRegex == "" && m.Routes == nil && slices.Contains(m.PathPrefixes, "/"):
		return `matches the path prefix "/"`
	}
	return ""
}

// isToken reports whether s is an RFC 9110 token: a header name or method.
func isToken(s string) bool { return httpgrammar.IsToken(s) }

func anchor(re string) string { return `^(?:` + re + `)$` }

// checkRegex returns what is wrong with an RE2 expression, or "". The
// expression is checked alone and anchored, so that "a)|(b" cannot escape
// the anchors.
func checkRegex(re string) string {
	if _, err := regexp.Compile(re); err != nil {
		if e, ok := err.(*syntax.Error); ok {
			return "not a valid RE2 expression: " + string(e.Code) + " in " + strconv.Quote(e.Expr)
		}
		return "not a valid RE2 expression: " + err.Error()
	}
	if _, err := regexp.Compile(anchor(re)); err != nil {
		return "not a valid RE2 expression on its own: " + err.Error()
	}
	return ""
}

// unescapedDot returns the index of the first "." that stands for a literal
// dot by mistake: not escaped, not in a class, and not followed by a
// quantifier (".*" and ".+" are deliberate). -1 when there is none.
func unescapedDot(re string) int {
	inClass := false
	for i := 0; i < len(re); i++ {
		switch c := re[i]; {
		case c == '\\':
			i++
		case c == '[':
			inClass = true
		case c == ']':
			inClass = false
		case c == '.' && !inClass:
			if i+1 < len(re) && strings.IndexByte("*+?{", re[i+1]) >= 0 {
				continue
			}
			return i
		}
	}
	return -1
}

func compileMatch(l loc, m *Match, c *compiled) {
	if m == nil {
		return
	}
	for i, h := range m.Hosts {
		el := l.child("hosts").index(i)
		hp, msg := parseHostPattern(h)
		switch {
		case h == "":
			el.errorf("%s", msg)
			continue
		case msg != "":
			el.valueError(h, msg)
			continue
		}
		if hp.wild {
			c.hostSuffixes = setAdd(c.hostSuffixes, hp.name)
		} else {
			c.hosts = setAdd(c.hosts, hp.name)
		}
	}
	for i, p := range m.PathPrefixes {
		if !strings.HasPrefix(p, "/") {
			l.child("path_prefixes").index(i).valueError(p, `a path prefix starts with "/"`)
			continue
		}
		c.pathPrefixes = append(c.pathPrefixes, p)
	}
	if m.PathRegex != "" {
		if msg := checkRegex(m.PathRegex); msg != "" {
			l.child("path_regex").valueError(m.PathRegex, msg)
		} else {
			c.pathRegex = regexp.MustCompile(anchor(m.PathRegex)) // checked just above
			if dot := unescapedDot(m.PathRegex); dot >= 0 {
				l.child("path_regex").valueWarning(m.PathRegex, `has an unescaped "." at byte `+strconv.Itoa(dot)+`, which matches any character (so "/v1.0/" also matches "/v1x0/"); write "\."`)
			}
			checkPathRegexPrefix(l.child("path_regex"), m.PathRegex)
		}
	}
	for i, r := range m.Routes {
		if r == "" {
			l.child("routes").index(i).errorf("a route name cannot be empty")
			continue
		}
		c.routes = append(c.routes, r)
	}
	if m.Hosts != nil && len(m.Hosts) == 0 || m.PathPrefixes != nil && len(m.PathPrefixes) == 0 || m.Routes != nil && len(m.Routes) == 0 {
		l.warnf("an empty list matches nothing, so this policy never applies; remove the key to match everything")
		c.never = true
	}
}

// hostPattern is a match.hosts entry, normalised: a host, or with wild
// the suffix after "*.", matching one or more labels before it.
type hostPattern struct {
	name string
	wild bool
}

// parseHostPattern normalises a match.hosts entry; msg says why it is
// invalid.
func parseHostPattern(h string) (hp hostPattern, msg string) {
	if h == "" {
		return hp, "a host cannot be empty"
	}
	lh := strings.ToLower(h)
	hp.wild = strings.HasPrefix(lh, "*.")
	name := strings.TrimPrefix(lh, "*.")
	if strings.Contains(name, ":") && !strings.HasPrefix(name, "[") {
		return hp, "hosts match :authority without its port; remove " + strconv.Quote(name[strings.LastIndexByte(name, ':'):])
	}
	norm, msg := normaliseHost(name, hp.wild)
	if msg != "" {
		return hp, msg
	}
	// hostOf drops the trailing dot of a fully qualified :authority; so
	// must the entry it is compared with.
	hp.name = strings.TrimSuffix(norm, ".")
	return hp, ""
}

func setAdd(m map[string]struct{}, k string) map[string]struct{} {
	if m == nil {
		m = map[string]struct{}{}
	}
	m[k] = struct{}{}
	return m
}

// compileSettings checks how the effective settings combine and precomputes
// the header values, one concern at a time, in the order their problems
// have always been reported.
func compileSettings(l loc, eff *Settings, inherited map[string]bool, c *compiled) {
	e := effective{l: l, Settings: eff, inherited: inherited}
	compileScalars(e, c)
	checkAllowAllOrigins(e, c)
	compileOrigins(e, c)
	compileOriginRegexes(e, c)
	checkSomeOriginAllowed(e, c)
	compileMethods(e, c)
	compileAllowHeaders(e, c)
	compileExposeHeaders(e, c)
	compileMaxAge(e, c)
	compilePreflightVary(c)
}

// effective is a policy's effective settings, with where it is and which
// values it inherited from defaults, for the combination checks' messages.
type effective struct {
	l loc
	*Settings
	inherited map[string]bool
}

// from notes, right after the value a message is about, that the value
// came from defaults.
func (e effective) from(key string) string {
	if e.inherited[key] {
		return " (inherited from defaults)"
	}
	return ""
}

// credentials names allow_credentials: true in a message.
func (e effective) credentials() string {
	return "allow_credentials: true" + e.from("allow_credentials")
}

// compileScalars copies the keys that need no check of their own here.
func compileScalars(e effective, c *compiled) {
	switch *e.Mode {
	case "report":
		c.mode = Report
	case "off":
		c.mode = Off
	}
	c.credentials = *e.AllowCredentials
	c.keep = *e.UpstreamCORSHeaders == "keep"
	c.pna = *e.AllowPrivateNetwork
	c.status = *e.PreflightStatus
	c.origins.all = *e.AllowAllOrigins
}

// checkAllowAllOrigins refuses every origin with credentials, and warns
// when the policy's own origin lists are thereby ignored.
func checkAllowAllOrigins(e effective, c *compiled) {
	if c.origins.all && c.credentials {
		e.l.child("allow_all_origins").errorf("true%s cannot be combined with %s: that would let every site read your users' data; list the origins instead", e.from("allow_all_origins"), e.credentials())
	}
	ownOrigins := len(e.AllowedOrigins) > 0 && !e.inherited["allowed_origins"] || len(e.AllowedOriginRegexes) > 0 && !e.inherited["allowed_origin_regexes"]
	if c.origins.all && ownOrigins {
		e.l.child("allow_all_origins").warnf("allowed_origins and allowed_origin_regexes are ignored when allow_all_origins is true")
	}
}

// compileOrigins builds the origin matchers and checks each origin against
// the credentials it would be trusted with.
func compileOrigins(e effective, c *compiled) {
	// The effective list shows the origins as they are matched; it is a new
	// slice, since eff's may be the file's own or the defaults'.
	normalised := make([]string, len(e.AllowedOrigins))
	for i, o := range e.AllowedOrigins {
		normalised[i] = o
		p, msg := parseOriginPattern(o)
		if msg != "" {
			continue // reported by checkValues where it was written
		}
		normalised[i] = p.normalised
		addOrigin(&c.origins, p, len(e.AllowedOrigins))
		checkOriginTrust(e, e.l.child("allowed_origins").index(i), o, p, c.credentials)
	}
	e.AllowedOrigins = normalised
}

// addOrigin adds one parsed origin to its matcher; n sizes the exact set.
func addOrigin(os *origins, p originPattern, n int) {
	switch p.kind {
	case exactOrigin:
		if os.exact == nil {
			os.exact = make(map[string]struct{}, n)
		}
		os.exact[p.normalised] = struct{}{}
	case anyPortOrigin:
		os.anyPort = setAdd(os.anyPort, p.scheme+"://"+p.host)
	case wildcardOrigin:
		if os.wild == nil {
			os.wild = map[wildKey]struct{}{}
		}
		os.wild[wildKey{p.scheme, p.host, p.port}] = struct{}{}
	}
}

// checkOriginTrust says what an allowed origin risks: a wildcard over a
// public suffix always, and with credentials the null origin, wildcards
// and origins that are not https://.
func checkOriginTrust(e effective, el loc, o string, p originPattern, credentials bool) {
	note := e.from("allowed_origins") // after the origin the message names
	publicSuffix := p.kind == wildcardOrigin && isPublicSuffix(p.host)
	if !credentials {
		if publicSuffix {
			el.valueWarning(o, "a wildcard"+note+" over the public suffix "+strconv.Quote(p.host)+": anyone can register a site there")
		}
		return
	}
	switch {
	case p.normalised == "null":
		el.valueError(o, "the null origin"+note+" cannot be trusted with "+e.credentials()+": any site can send it from a sandboxed iframe")
	case publicSuffix:
		el.valueError(o, "a wildcard"+note+" over the public suffix "+strconv.Quote(p.host)+" with "+e.credentials()+": anyone can register a site there and read your users' data")
	case p.kind == wildcardOrigin:
		el.valueWarning(o, "a wildcard origin"+note+" with "+e.credentials()+": every subdomain, and whoever takes one over, can read users' data")
	}
	// Apart from the public-suffix error, an origin that is not
	// https:// is a second, separate risk, wildcard or not.
	switch {
	case p.scheme == "https" || p.normalised == "null" || isLocalhost(p.host) || publicSuffix:
	case p.scheme == "http":
		el.valueWarning(o, "a plain http:// origin"+note+" with "+e.credentials()+": anyone on the network path can impersonate it; use https://")
	default:
		el.valueWarning(o, "a "+p.scheme+":// origin"+note+" with "+e.credentials()+": it is not an https:// site, so nothing proves who sends it (another app or extension can claim the same origin); allow it only if you trust every client that can")
	}
}

// compileOriginRegexes checks where each regex pins the host and joins
// the valid ones into one matcher.
func compileOriginRegexes(e effective, c *compiled) {
	for i, r := range e.AllowedOriginRegexes {
		if checkRegex(r) != "" {
			continue // reported by checkValues where it was written
		}
		checkRegexPin(e.l.child("allowed_origin_regexes").index(i), r, c.credentials, e.from("allowed_origin_regexes"), e.credentials())
	}
	if len(e.AllowedOriginRegexes) == 0 {
		return
	}
	valid := make([]string, 0, len(e.AllowedOriginRegexes))
	for _, r := range e.AllowedOriginRegexes {
		if checkRegex(r) == "" {
			valid = append(valid, r)
		}
	}
	c.origins.regex = newRegexSet(valid)
}

// checkSomeOriginAllowed warns about an enforcing policy that admits no
// origin, unless a broken origin key already explains it.
func checkSomeOriginAllowed(e effective, c *compiled) {
	if !c.origins.all && len(e.AllowedOrigins) == 0 && len(e.AllowedOriginRegexes) == 0 && *e.Mode != "off" &&
		!e.l.ps.hasError(e.l.policy, e.inherited, "allowed_origins", "allowed_origin_regexes", "allow_all_origins") {
		e.l.warnf("allows no origin: every cross-origin request is denied; set allowed_origins, allowed_origin_regexes or allow_all_origins")
	}
}

// compileMethods: "*" answers "*" without credentials; with them the
// browser takes "*" literally, so the requested method is echoed instead.
func compileMethods(e effective, c *compiled) {
	if slices.Equal(e.AllowMethods, []string{"*"}) {
		c.methodsAny = true
		if !c.credentials {
			c.allowMethods = "*"
		}
		return
	}
	c.methods = slices.Clone(e.AllowMethods)
	c.allowMethods = strings.Join(e.AllowMethods, ", ")
}

// compileAllowHeaders builds the allowed request headers and the header
// value answering them; with "*" and credentials the requested headers are
// echoed, as the browser takes "*" literally then.
func compileAllowHeaders(e effective, c *compiled) {
	var listed []string
	for _, h := range e.AllowHeaders {
		if h == "*" {
			c.headersAny = true
			continue
		}
		listed = append(listed, strings.ToLower(h))
	}
	for _, h := range listed {
		c.headers = setAdd(c.headers, h)
	}
	switch {
	case c.headersAny && c.credentials:
		c.allowHeaders = "" // echo the requested headers
	case c.headersAny && slices.Contains(listed, "authorization"):
		c.allowHeaders = "*, authorization"
	case c.headersAny:
		c.allowHeaders = "*"
	default:
		c.allowHeaders = strings.Join(listed, ", ")
	}
}

// compileExposeHeaders refuses "*" with credentials and joins the list.
func compileExposeHeaders(e effective, c *compiled) {
	for i, h := range e.ExposeHeaders {
		if h == "*" && c.credentials {
			e.l.child("expose_headers").index(i).valueError(h, `"*"`+e.from("expose_headers")+` cannot expose headers with `+e.credentials()+`: browsers then read it as a header named "*"; list the headers`)
		}
	}
	c.expose = strings.Join(e.ExposeHeaders, ", ")
}

// compileMaxAge: 0 omits the header, as django-cors-headers does; -1 is
// the spelling of rs/cors and jub0bs/cors for "send 0", which turns
// caching off.
func compileMaxAge(e effective, c *compiled) {
	switch n := *e.PreflightMaxAge; {
	case n > 0:
		c.maxAge = strconv.Itoa(n)
	case n == -1:
		c.maxAge = "0"
	}
}

func compilePreflightVary(c *compiled) {
	c.preflightVary = "origin, access-control-request-method, access-control-request-headers"
	if c.pna {
		c.preflightVary += ", access-control-request-private-network"
	}
}

// checkRegexPin holds an origin regex to the rules of wildcard origins: a
// regex whose host is not pinned to a registrable domain can match any
// site, which is refused with credentials (as allow_all_origins is) and
// warned about without; a pinned regex with a wildcard in the host gets,
// with credentials, the warning a wildcard origin gets.
func checkRegexPin(el loc, r string, credentials bool, note, credentialsText string) {
	pinned, wildcard, why := regexPin(r)
	switch {
	case !pinned && credentials:
		el.valueError(r, "can match any site's origin"+note+": "+why+"; with "+credentialsText+" every such site could read your users' data. Write the host after the last wildcard down to your own domain, starting at a \".\"")
	case !pinned && unescapedDot(r) < 0: // else the dot's own warning says it, with the fix
		el.valueWarning(r, "can match any site's origin"+note+": "+why+"; anyone can set up a site it admits")
	case wildcard && credentials:
		el.valueWarning(r, "a wildcard origin"+note+" with "+credentialsText+": every subdomain, and whoever takes one over, can read users' data")
	}
}
