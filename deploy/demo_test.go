package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"

	"github.com/corsproc/corsproc/internal/envoytest"
	"github.com/corsproc/corsproc/internal/runner"
	"github.com/corsproc/corsproc/internal/testutil"
)

// demoButton is one request of the demo page, as its data-* attributes
// describe it.
type demoButton struct {
	Label, Method, Path, Credentials, Body, Expect, Status string
	Headers                                                map[string]string
}

func demoButtons(t *testing.T) []demoButton {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(string(readRepoFile(t, "envoy/demo/page/index.html"))))
	if err != nil {
		t.Fatal(err)
	}
	var out []demoButton
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode || n.Data != "button" || attr(n, "data-path") == "" {
			continue
		}
		b := demoButton{
			Method: attr(n, "data-method"), Path: attr(n, "data-path"), Credentials: attr(n, "data-credentials"),
			Body: attr(n, "data-body"), Expect: attr(n, "data-expect"), Status: attr(n, "data-status"), Headers: map[string]string{},
		}
		if n.FirstChild != nil {
			b.Label = n.FirstChild.Data
		}
		if h := attr(n, "data-headers"); h != "" {
			if err := json.Unmarshal([]byte(h), &b.Headers); err != nil {
				t.Fatalf("button %q: data-headers: %v", b.Label, err)
			}
		}
		if b.Expect != "allowed" && b.Expect != "blocked" {
			t.Fatalf("button %q: data-expect %q", b.Label, b.Expect)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		t.Fatal("the demo page has no buttons")
	}
	return out
}

// fakeNginx answers every request as the demo's nginx server block does:
// status 200, the add_header headers, a JSON body. Requests are recorded.
type fakeNginx struct {
	mu      sync.Mutex
	headers [][2]string
	seen    []string // "METHOD /path"
}

var addHeader = regexp.MustCompile(`(?m)^\s*add_header\s+(\S+)\s+(?:"([^"]*)"|(\S+?))(?:\s+always)?\s*;`)

func newFakeNginx(conf []byte) *fakeNginx {
	f := &fakeNginx{}
	for _, m := range addHeader.FindAllSubmatch(conf, -1) {
		v := string(m[2])
		if v == "" {
			v = string(m[3])
		}
		f.headers = append(f.headers, [2]string{string(m[1]), v})
	}
	return f
}

func (f *fakeNginx) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.seen = append(f.seen, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	for _, h := range f.headers {
		w.Header().Add(h[0], h[1])
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"method\":%q,\"path\":%q}\n", r.Method, r.URL.Path)
}

func (f *fakeNginx) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.seen)
}

// demoGateway runs the demo as docker compose would, on loopback: corsproc
// (the extproc server, as `corsproc serve` wires it) with demo-policy.yaml
// and the compose file's flags, the Envoy stand-in configured from
// envoy.yaml's routes and ext_proc filter, and a fake of each nginx demo
// service that sends the headers its conf adds.
type demoGateway struct {
	URL      string
	Host     string                // the Host the page's fetches carry
	Services map[string]*fakeNginx // by Envoy cluster
	Envoy    *envoytest.Envoy
}

func startDemoGateway(t *testing.T) *demoGateway {
	t.Helper()
	project, err := loadCompose(t, repoPath(composeFile))
	if err != nil {
		t.Fatal(err)
	}
	cs := project.Services["corsproc"]
	args := []string(cs.Command)
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("corsproc's command %q does not start with serve", args)
	}
	cfgPath, ok := flagValue(args, "config")
	if !ok {
		t.Fatal("corsproc's command names no --config")
	}
	// corsproc as the compose file runs it, through the product's runner and
	// its own flag parsing; only the files and listeners are the host's.
	rcfg := runner.Defaults()
	if err := rcfg.Parse(args[1:], func(string) (string, bool) { return "", false }, io.Discard); err != nil {
		t.Fatalf("corsproc would refuse the compose file's flags %q: %v", args, err)
	}
	rcfg.PolicyFile = hostPathOf(t, cs, cfgPath)
	rcfg.GRPCAddr, rcfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	rcfg.LogLevel, rcfg.LogFormat = slog.LevelDebug, "text"
	rcfg.SetLameduck(0)
	logs := &testutil.Buffer{}
	r, err := runner.New(rcfg, runner.Options{Log: logs})
	if err != nil {
		t.Fatalf("corsproc refuses %s: %v", rcfg.PolicyFile, err)
	}
	runCtx, stopRunner := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- r.Run(runCtx) }()

	b := loadBootstrap(t, "envoy/envoy.yaml", readRepoFile(t, "envoy/envoy.yaml"))
	clusters := clustersByName(b)
	hcm := connectionManagers(t, listenerByName(t, b, "ingress"))[0]
	cfg := standInFilters(t, hcm)
	cfg.Processor = r.GRPCAddr().String()
	// envoy.yaml says 200 ms; -race on a loaded 2-core machine can take
	// longer, and a timeout here would prove nothing about CORS.
	cfg.MessageTimeout = testutil.MessageTimeout()
	// envoy.yaml fails open; here a processor failure must fail the test.
	cfg.FailureModeAllow = false
	g := &demoGateway{Host: pageGateway(t).Host, Services: map[string]*fakeNginx{}}
	upstreams := map[string]*httptest.Server{}
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			cluster := r.GetRoute().GetCluster()
			srv, ok := upstreams[cluster]
			if !ok {
				eps := clusterEndpoints(clusters[cluster])
				svc, ok := project.Services[eps[0].Host]
				if !ok {
					t.Fatalf("cluster %s points at %s, which is no compose service", cluster, eps[0])
				}
				f := newFakeNginx(readFile(t, hostPathOf(t, svc, "/etc/nginx/conf.d/default.conf")))
				g.Services[cluster] = f
				srv = httptest.NewServer(f)
				upstreams[cluster] = srv
			}
			if r.GetMatch().GetPrefix() == "" {
				t.Fatalf("route %s does not match by prefix; the stand-in knows prefixes only", r.GetName())
			}
			cfg.Routes = append(cfg.Routes, envoytest.Route{Name: r.GetName(), PathPrefix: r.GetMatch().GetPrefix(), Upstream: srv.URL,
				ResponseHeadersToAdd: append(slices.Clone(r.GetResponseHeadersToAdd()), vh.GetResponseHeadersToAdd()...)})
		}
	}
	g.Envoy, err = envoytest.Start(cfg)
	if err != nil {
		stopRunner()
		<-ran
		t.Fatal(err)
	}
	g.URL = g.Envoy.URL()
	t.Cleanup(func() {
		_ = g.Envoy.Close()
		stopRunner()
		if err := <-ran; err != nil {
			t.Errorf("corsproc: %v", err)
		}
		for _, u := range upstreams {
			u.Close()
		}
		if t.Failed() {
			t.Logf("corsproc's log:\n%s", logs.String())
		}
	})
	return g
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fetchResult is what a browser's fetch() makes of a cross-origin request.
type fetchResult struct {
	Allowed     bool
	Why         string // why the browser blocked it
	Preflighted bool
	Response    *http.Response
}

var safelistedMethods = []string{"GET", "HEAD", "POST"}

// unsafeHeaderNames are the request's CORS-unsafe header names, sorted and
// lower-cased, as a browser lists them in access-control-request-headers
// (Fetch standard, "CORS-unsafe request-header names").
func unsafeHeaderNames(h map[string]string) []string {
	var out []string
	for name, value := range h {
		name = strings.ToLower(name)
		switch name {
		case "accept", "accept-language", "content-language":
			continue
		case "content-type":
			essence, _, _ := strings.Cut(strings.ToLower(value), ";")
			switch strings.TrimSpace(essence) {
			case "application/x-www-form-urlencoded", "multipart/form-data", "text/plain":
				continue
			}
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

func headerList(h http.Header, name string) []string {
	var out []string
	for _, line := range h.Values(name) {
		for _, v := range strings.Split(line, ",") {
			if v = strings.TrimSpace(v); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// corsCheck is the Fetch standard's CORS check of a response.
func corsCheck(res *http.Response, origin string, credentials bool) string {
	acao := res.Header.Values("Access-Control-Allow-Origin")
	switch {
	case len(acao) == 0:
		return "no access-control-allow-origin"
	case len(acao) > 1:
		return fmt.Sprintf("%d access-control-allow-origin headers", len(acao))
	case acao[0] == "*" && credentials:
		return "access-control-allow-origin * with credentials"
	case acao[0] != "*" && acao[0] != origin:
		return fmt.Sprintf("access-control-allow-origin %q is not %q", acao[0], origin)
	case credentials && res.Header.Get("Access-Control-Allow-Credentials") != "true":
		return "credentials without access-control-allow-credentials: true"
	}
	return ""
}

// browserFetch does what fetch(gateway + path, {mode: "cors", ...}) does in a
// page on origin, for the parts of the Fetch standard the demo exercises:
// a preflight when the method or a header is not safelisted, the
// preflight's CORS, method and header checks, then the actual request and
// its CORS check. No cookies exist, so credentials change only the checks.
func browserFetch(t *testing.T, g *demoGateway, origin string, b demoButton) fetchResult {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	credentials := b.Credentials == "include"
	unsafe := unsafeHeaderNames(b.Headers)
	var r fetchResult
	if !slices.Contains(safelistedMethods, b.Method) || len(unsafe) > 0 {
		r.Preflighted = true
		req, err := http.NewRequest(http.MethodOptions, g.URL+b.Path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = g.Host
		req.Header.Set("Origin", origin)
		req.Header.Set("Accept", "*/*")
		req.Header.Set("Access-Control-Request-Method", b.Method)
		if len(unsafe) > 0 {
			req.Header.Set("Access-Control-Request-Headers", strings.Join(unsafe, ","))
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode < 200 || res.StatusCode > 299 {
			return fetchResult{Preflighted: true, Why: fmt.Sprintf("preflight answered %d", res.StatusCode), Response: res}
		}
		if why := corsCheck(res, origin, credentials); why != "" {
			return fetchResult{Preflighted: true, Why: "preflight: " + why, Response: res}
		}
		methods := headerList(res.Header, "Access-Control-Allow-Methods")
		if !slices.Contains(methods, b.Method) && !slices.Contains(safelistedMethods, b.Method) &&
			(credentials || !slices.Contains(methods, "*")) {
			return fetchResult{Preflighted: true, Why: "method " + b.Method + " not in access-control-allow-methods " + fmt.Sprint(methods), Response: res}
		}
		allowed := headerList(res.Header, "Access-Control-Allow-Headers")
		for _, h := range unsafe {
			ok := slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(a, h) }) ||
				(!credentials && h != "authorization" && slices.Contains(allowed, "*"))
			if !ok {
				return fetchResult{Preflighted: true, Why: "header " + h + " not in access-control-allow-headers " + fmt.Sprint(allowed), Response: res}
			}
		}
	}
	var body io.Reader
	if b.Body != "" {
		body = strings.NewReader(b.Body)
	}
	req, err := http.NewRequest(b.Method, g.URL+b.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = g.Host
	req.Header.Set("Origin", origin)
	req.Header.Set("Accept", "*/*")
	for k, v := range b.Headers {
		req.Header.Set(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	r.Response = res
	if why := corsCheck(res, origin, credentials); why != "" {
		r.Why = why
		return r
	}
	r.Allowed = true
	return r
}

func outcome(allowed bool) string {
	if allowed {
		return "allowed"
	}
	return "blocked"
}

func TestDemoPageClaimsHoldThroughEnvoyAndCorsproc(t *testing.T) {
	g := startDemoGateway(t)
	project, err := loadCompose(t, repoPath(composeFile))
	if err != nil {
		t.Fatal(err)
	}
	_, pagePort := published(t, project.Services["page"], 80)
	origin := "http://localhost:" + strconv.Itoa(int(pagePort))

	for _, b := range demoButtons(t) {
		t.Run(fmt.Sprintf("%s is %s, as the page claims", b.Label, b.Expect), func(t *testing.T) {
			r := browserFetch(t, g, origin, b)
			t.Logf("%s %s: %s %s (preflighted %v)", b.Method, b.Path, outcome(r.Allowed), r.Why, r.Preflighted)
			if b.Status != "" && strconv.Itoa(r.Response.StatusCode) != b.Status {
				t.Errorf("the page reads status %d, the row claims %s", r.Response.StatusCode, b.Status)
			}
			if got := outcome(r.Allowed); got != b.Expect {
				why := r.Why
				if why == "" {
					why = "the CORS checks passed"
				}
				t.Errorf("the browser would say %s (%s); response %d %v", got, why, r.Response.StatusCode, r.Response.Header)
			}
			// The first row claims the page reads x-order-count.
			if r.Allowed && r.Response.Header.Get("X-Order-Count") != "" {
				if !slices.ContainsFunc(headerList(r.Response.Header, "Access-Control-Expose-Headers"),
					func(h string) bool { return strings.EqualFold(h, "x-order-count") }) {
					t.Errorf("x-order-count is not exposed: the page could not read it")
				}
			}
		})
	}
	t.Run("preflights are answered at the gateway and never reach a service", func(t *testing.T) {
		for cluster, f := range g.Services {
			for _, r := range f.requests() {
				if strings.HasPrefix(r, "OPTIONS ") || strings.HasPrefix(r, "DELETE ") {
					t.Errorf("service %s received %s", cluster, r)
				}
			}
		}
	})
	t.Run("the stand-in saw no processor failure", func(t *testing.T) {
		s := g.Envoy.Stats()
		if s.MessageTimeouts+s.StreamsFailed+s.RejectedHeaderMutations+s.FailureModeAllowed+s.SpuriousMessages != 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestDemoPageFromAnotherOriginIsBlockedEverywhere(t *testing.T) {
	// The page says: open it at 127.0.0.1 instead, and every request is
	// blocked.
	g := startDemoGateway(t)
	for _, b := range demoButtons(t) {
		t.Run(b.Label+" is blocked from http://127.0.0.1:8080", func(t *testing.T) {
			if r := browserFetch(t, g, "http://127.0.0.1:8080", b); r.Allowed {
				t.Errorf("allowed")
			}
		})
	}
}
