package policy

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Explanation is a decision laid out for people and scripts: what
// `corsproc explain` prints and the admin /explain endpoint returns.
type Explanation struct {
	// Policy is the matched policy, "" when none matched.
	Policy string `json:"policy"`
	// Mode is the matched policy's mode, "" when none matched.
	Mode string `json:"mode,omitempty"`
	// Class is preflight, actual, no_origin or unmatched.
	Class string `json:"class"`
	// Decision is allowed, denied or skipped.
	Decision string `json:"decision"`
	// Reason is the stable code; Message the sentence.
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Forwarded is false when corsproc answers the request itself.
	Forwarded bool `json:"forwarded"`
	// Status is the status of corsproc's own answer (0 when forwarded).
	Status int `json:"status,omitempty"`
	// Headers are the headers of corsproc's answer, or those it sets on the
	// service's response when the service sets no CORS headers itself.
	Headers []Header `json:"headers"`
	// RemovesUpstreamCORS is true when every access-control-* header the
	// service sets is removed from its response first.
	RemovesUpstreamCORS bool `json:"removes_upstream_cors"`
	// KeepsUpstreamCORS is true under upstream_cors_headers: keep: a
	// response on which the service sets access-control-allow-origin is
	// left exactly as the service sent it.
	KeepsUpstreamCORS bool `json:"keeps_upstream_cors,omitempty"`
	// ResponsePhase is false when the response headers need not reach
	// corsproc at all (mode_override SKIP).
	ResponsePhase bool `json:"response_phase"`
	// PassedOver lists, for each policy tried before the chosen one (every
	// policy when none was chosen), the first condition that failed.
	PassedOver []PassedOver `json:"passed_over,omitempty"`
}

// Explain decides r and lays the decision out, as if the service answered
// without CORS headers of its own.
func (s *Set) Explain(r *Request) Explanation {
	d := s.Decide(r)
	x := Explanation{
		Policy:        d.Policy,
		Class:         d.Class.String(),
		Decision:      d.Outcome.String(),
		Reason:        d.Reason.String(),
		Message:       d.Message(),
		Forwarded:     !d.Local,
		Status:        d.Status,
		Headers:       []Header{},
		ResponsePhase: !d.SkipResponse,
		PassedOver:    s.passedOver(r, d.c),
	}
	if d.c != nil {
		x.Mode = d.Mode.String()
	}
	if d.Local {
		x.Headers = append(x.Headers, d.Headers()...)
		return x
	}
	var e Edit
	d.Respond(&Upstream{}, &e)
	x.Headers = append(x.Headers, e.Set(&d)...)
	x.RemovesUpstreamCORS = d.c != nil && d.Mode == Enforce
	x.KeepsUpstreamCORS = x.RemovesUpstreamCORS && d.c.keep
	return x
}

// PassedOver says why one policy was not chosen for a request: the first
// of its match conditions that failed, and the request's value it was
// compared with. Conditions are tried in the order host, path_prefixes,
// path_regex, routes, as when a policy is selected.
type PassedOver struct {
	// Policy is the policy's name; Index its place in policies.
	Policy string `json:"policy"`
	Index  int    `json:"index"`
	// Key is the condition that failed: "match.hosts", "match.path_prefixes",
	// "match.path_regex" or "match.routes".
	Key string `json:"key"`
	// Want is the condition as written (the regex alone for path_regex);
	// Got the request's value (host without port, lower case; path
	// without query).
	Want []string `json:"want"`
	Got  string   `json:"got"`
	// Message says why in a sentence, with a hint when the miss looks like
	// a mistake in the policy.
	Message string `json:"message"`
}

// passedOver lists, for every policy tried before chosen (all of them when
// chosen is nil), the first condition that failed. It allocates freely:
// it serves explain, never the request path.
func (s *Set) passedOver(r *Request, chosen *compiled) []PassedOver {
	host, path := hostOf(r.Host), pathOnly(r.Path)
	var out []PassedOver
	for i, c := range s.policies {
		if c == chosen {
			break
		}
		if miss, ok := s.firstMiss(i, c, host, path, r.Route); ok {
			out = append(out, miss)
		}
	}
	return out
}

// firstMiss is the first failed condition of policy i, if one failed.
func (s *Set) firstMiss(i int, c *compiled, host, path, route string) (PassedOver, bool) {
	m := s.resolved[i].Match
	x := PassedOver{Policy: c.name, Index: i}
	if m == nil {
		return x, false
	}
	quoteList := func(l []string) string {
		q := make([]string, len(l))
		for i, v := range l {
			q[i] = strconv.Quote(v)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	switch {
	case m.Hosts != nil && len(m.Hosts) == 0:
		x.Key, x.Want, x.Message = "match.hosts", []string{}, "match.hosts is an empty list, which matches nothing"
	case m.PathPrefixes != nil && len(m.PathPrefixes) == 0:
		x.Key, x.Want, x.Message = "match.path_prefixes", []string{}, "match.path_prefixes is an empty list, which matches nothing"
	case m.Routes != nil && len(m.Routes) == 0:
		x.Key, x.Want, x.Message = "match.routes", []string{}, "match.routes is an empty list, which matches nothing"
	case (c.hosts != nil || c.hostSuffixes != nil) && !c.matchHost(host):
		x.Key, x.Want, x.Got = "match.hosts", slices.Clone(m.Hosts), host
		x.Message = "host " + strconv.Quote(host) + " is not in match.hosts " + quoteList(m.Hosts)
		if host == "" {
			x.Message = "the request has no host; match.hosts wants one of " + quoteList(m.Hosts)
		}
		if _, apex := c.hostSuffixes[host]; apex {
			x.Message += "; \"*." + host + "\" covers its subdomains only: add " + strconv.Quote(host) + " for the name itself"
		}
	case c.pathPrefixes != nil && !slices.ContainsFunc(c.pathPrefixes, func(p string) bool { return strings.HasPrefix(path, p) }):
		x.Key, x.Want, x.Got = "match.path_prefixes", slices.Clone(m.PathPrefixes), path
		x.Message = "path " + strconv.Quote(path) + " starts with none of match.path_prefixes " + quoteList(m.PathPrefixes)
		for _, p := range c.pathPrefixes {
			if strings.HasSuffix(p, "/") && path == strings.TrimSuffix(p, "/") {
				x.Message += "; " + strconv.Quote(p) + " needs the trailing slash: add " + strconv.Quote(path) + " to match the path itself"
				break
			}
		}
	case c.pathRegex != nil && !c.pathRegex.MatchString(path):
		x.Key, x.Want, x.Got = "match.path_regex", []string{m.PathRegex}, path
		x.Message = "path " + strconv.Quote(path) + " is not matched as a whole by match.path_regex " + strconv.Quote(m.PathRegex)
		if loc := regexp.MustCompile(`^(?:` + m.PathRegex + `)`).FindStringIndex(path); loc != nil { // valid: its anchored form compiled at load
			x.Message += "; it matches only the start " + strconv.Quote(path[:loc[1]]) + ": path_regex must match the whole path, so end it with .* (or use path_prefixes)"
		}
	case c.routes != nil && !slices.Contains(c.routes, route):
		x.Key, x.Want, x.Got = "match.routes", slices.Clone(m.Routes), route
		x.Message = "route " + strconv.Quote(route) + " is not in match.routes " + quoteList(m.Routes)
		if route == "" {
			x.Message = "the request has no route name; match.routes wants one of " + quoteList(m.Routes) + " (Envoy sends xds.route_name when the filter lists it in request_attributes)"
		}
	default:
		return x, false
	}
	return x, true
}

// BrowserOrigin checks an origin as a browser would send it in the origin
// header: "null", or scheme://host[:port] in lower case, IDN as punycode,
// without a default port, path, query, fragment or user info. When o is not
// such an origin, problem says why and sent is what a browser would send
// instead ("" when there is no telling).
func BrowserOrigin(o string) (sent, problem string) {
	if o == "null" {
		return o, ""
	}
	if strings.EqualFold(o, "null") {
		return "null", "browsers send the null origin in lower case"
	}
	guess := o
	if !strings.Contains(guess, "://") {
		guess = "https://" + guess
	}
	if i := strings.Index(guess, "://"); i >= 0 {
		rest := guess[i+3:]
		if at := strings.LastIndexByte(rest, '@'); at >= 0 && !strings.ContainsAny(rest[:at], "/?#") {
			rest = rest[at+1:]
		}
		if end := strings.IndexAny(rest, "/?#"); end >= 0 {
			rest = rest[:end]
		}
		guess = guess[:i+3] + rest
	}
	p, msg := parseOriginPattern(guess)
	switch {
	case msg != "":
		return "", "not an origin: " + msg
	case p.kind != exactOrigin:
		return "", "a browser never sends a wildcard: it sends the page's own origin, e.g. " + strconv.Quote(strings.Replace(strings.Replace(p.normalised, "*.", "app.", 1), ":*", "", 1))
	case p.normalised == o:
		return o, ""
	case !strings.Contains(o, "://"):
		return p.normalised, "it has no scheme, and an origin starts with one (https:// for a page served over TLS)"
	case guess != o:
		return p.normalised, "an origin is scheme://host[:port] alone, never with a path, query, fragment or user info"
	default:
		return p.normalised, "browsers send the scheme and host in lower case, an IDN as punycode, and no default port"
	}
}
