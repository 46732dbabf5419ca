package browsertest

import (
	"net"
	"slices"
	"strings"
	"testing"
)

// Page origins, by placeholder. All are served by the one page server, on
// its port; the browser maps these names to 127.0.0.1.
var pageHosts = map[string]string{
	"{app}":     "app.example.test",           // the usual front end
	"{admin}":   "admin.example.test",         // another subdomain (wildcard cases)
	"{deep}":    "a.b.example.test",           // several labels deep
	"{preview}": "pr-42.preview.example.test", // regex cases
	"{evil}":    "app.example.test.evil.test", // the look-alike that must stay blocked
	"{evil2}":   "evilapp.example.test.evil.test",
}

// API hosts, by placeholder: both reach the one gateway, on its port.
var apiHosts = map[string]string{
	"{api}":   "api.example.test",
	"{other}": "other.example.test",
}

// service is one upstream behind the gateway and the route to it.
type service struct {
	// Name is the route name (xds.route_name) and labels the upstream's
	// hits when there are several services.
	Name string
	// Host and PathPrefix select the route; "" matches any.
	Host, PathPrefix string
	// Status is what the upstream answers (default 200).
	Status int
	// Headers are extra "name: value" lines the upstream sets on every
	// response, placeholders expanded (e.g. its own CORS headers).
	Headers []string
	// RedirectSlash makes the upstream answer 301 to path + "/" for every
	// path without a trailing slash (preflights included).
	RedirectSlash bool
}

// route is a service's route as the gateway sees it.
type route struct {
	Name, Host, PathPrefix, Upstream string
}

// env is one case's world: upstreams, the corsproc processor and the Envoy
// stand-in in front of them.
type env struct {
	t        testing.TB
	pagePort string
	apiPort  string
	repl     *strings.Replacer
	gw       *gateway

	localMark int64
	ups       []*upstream
}

// defaultServices is one service taking every request.
var defaultServices = []service{{Name: "api"}}

// newEnv starts the upstreams and the gateway with the policy (placeholders
// expanded). The policy and the upstreams' headers may name page origins
// only: the API's port is known once the gateway listens.
func newEnv(t testing.TB, policyYAML string, services []service, debug bool) *env {
	t.Helper()
	if len(services) == 0 {
		services = defaultServices
	}
	e := &env{t: t, pagePort: pageServerPort(t)}
	e.repl = e.replacer()
	var routes []route
	for _, s := range services {
		var hdrs []string
		for _, h := range s.Headers {
			hdrs = append(hdrs, e.expand(h))
		}
		u := startUpstream(t, s.Name, s.Status, hdrs, s.RedirectSlash)
		e.ups = append(e.ups, u)
		routes = append(routes, route{Name: s.Name, Host: s.Host, PathPrefix: s.PathPrefix, Upstream: u.URL()})
	}
	e.gw = startGateway(t, e.expand(policyYAML), routes, debug)
	e.apiPort = gwPort(e.gw.Addr())
	e.repl = e.replacer()
	return e
}

func gwPort(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func (e *env) replacer() *strings.Replacer {
	var pairs []string
	for k, h := range pageHosts {
		pairs = append(pairs, k, "http://"+h+":"+e.pagePort)
	}
	if e.apiPort != "" {
		for k, h := range apiHosts {
			pairs = append(pairs, k, "http://"+h+":"+e.apiPort)
		}
	}
	pairs = append(pairs, "{pageport}", e.pagePort, "{apiport}", e.apiPort)
	return strings.NewReplacer(pairs...)
}

// expand replaces the placeholders: page origins ({app}, {admin}, {deep},
// {preview}, {evil}, {evil2}), API origins ({api}, {other}) and the ports
// ({pageport}, {apiport}).
func (e *env) expand(s string) string {
	if e.apiPort == "" && (strings.Contains(s, "{api") || strings.Contains(s, "{other}")) {
		e.t.Fatalf("%q names the API before the gateway listens", s)
	}
	return e.repl.Replace(s)
}

// reload rewrites the policy file; corsproc's watcher picks it up.
func (e *env) reload(yaml string) {
	e.t.Helper()
	e.gw.Reload(e.t, e.expand(yaml))
}

// mark starts a new step: hits and local replies are counted from here.
func (e *env) mark() {
	for _, u := range e.ups {
		u.mark()
	}
	e.localMark = e.gw.LocalReplies()
}

// hits lists what reached the upstreams since the mark, in order per
// upstream: "METHOD /path", prefixed by the service name when there are
// several.
func (e *env) hits() []string {
	var out []string
	for _, u := range e.ups {
		for _, h := range u.Hits() {
			s := h.String()
			if len(e.ups) > 1 {
				s = u.name + " " + s
			}
			out = append(out, s)
		}
	}
	return out
}

// lastHit is the last non-OPTIONS request an upstream saw since the mark,
// and whether there was one.
func (e *env) lastHit() (hit, bool) {
	var all []hit
	for _, u := range e.ups {
		all = append(all, u.Hits()...)
	}
	all = slices.DeleteFunc(all, func(h hit) bool { return h.Method == "OPTIONS" })
	if len(all) == 0 {
		return hit{}, false
	}
	return all[len(all)-1], true
}

// localReplies counts the requests corsproc answered itself (preflights in
// enforce mode) since the mark.
func (e *env) localReplies() int64 { return e.gw.LocalReplies() - e.localMark }
