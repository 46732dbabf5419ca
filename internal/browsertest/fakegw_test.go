package browsertest

// THROWAWAY: a gateway that calls policy directly, to debug the browser
// harness until extproc lands. Deleted once the real chain is wired.

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/corsproc/corsproc/policy"
)

type fakeGateway struct {
	mu     sync.Mutex
	set    *policy.Set
	routes []route
	local  atomic.Int64
	debug  bool
	ln     net.Listener
	srv    *http.Server
}

func startFakeGateway(t testing.TB, set *policy.Set, routes []route, debug bool) *fakeGateway {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGateway{set: set, routes: routes, ln: ln, debug: debug}
	g.srv = &http.Server{Handler: g, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = g.srv.Serve(ln) }()
	t.Cleanup(func() { _ = g.srv.Close() })
	return g
}

func (g *fakeGateway) Addr() string { return g.ln.Addr().String() }

func (g *fakeGateway) Swap(set *policy.Set) {
	g.mu.Lock()
	g.set = set
	g.mu.Unlock()
}

func (g *fakeGateway) LocalReplies() int64 { return g.local.Load() }

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	var rt *route
	for i := range g.routes {
		if (g.routes[i].Host == "" || strings.EqualFold(g.routes[i].Host, host)) && strings.HasPrefix(r.URL.Path, g.routes[i].PathPrefix) {
			rt = &g.routes[i]
			break
		}
	}
	if rt == nil {
		http.NotFound(w, r)
		return
	}
	g.mu.Lock()
	set := g.set
	g.mu.Unlock()
	req := policy.Request{
		Method: r.Method, Host: r.Host, Path: r.URL.RequestURI(), Route: rt.Name,
		Origin: r.Header.Get("origin"), Origins: len(r.Header.Values("origin")),
		RequestHeaders: r.Header.Values("access-control-request-headers"),
		Debug:          g.debug,
	}
	if v, ok := r.Header["Access-Control-Request-Method"]; ok {
		req.RequestMethod, req.HasRequestMethod = v[0], true
	}
	d := set.Decide(&req)
	if d.Local {
		g.local.Add(1)
		for _, h := range d.Headers() {
			w.Header().Add(h.Name, h.Value)
		}
		w.WriteHeader(d.Status)
		return
	}
	target, _ := url.Parse(rt.Upstream)
	p := httputil.NewSingleHostReverseProxy(target)
	p.ModifyResponse = func(res *http.Response) error {
		var up policy.Upstream
		up.AllowOrigins = len(res.Header.Values("access-control-allow-origin"))
		up.AllowOrigin = res.Header.Get("access-control-allow-origin")
		up.AllowCredentials = res.Header.Get("access-control-allow-credentials")
		up.Vary = res.Header.Values("vary")
		for k := range res.Header {
			if strings.HasPrefix(strings.ToLower(k), "access-control-") {
				up.CORSHeaders = append(up.CORSHeaders, strings.ToLower(k))
			}
		}
		var e policy.Edit
		d.Respond(&up, &e)
		for _, k := range e.Remove {
			res.Header.Del(k)
		}
		for _, h := range e.Set() {
			res.Header.Set(h.Name, h.Value)
		}
		return nil
	}
	p.ServeHTTP(w, r)
}
