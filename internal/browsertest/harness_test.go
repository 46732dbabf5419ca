package browsertest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/network"
)

// browserCase is one row of a table: a policy, a page, a fetch, and what
// the browser and the upstream must show. Strings may hold placeholders:
// page origins {app} {admin} {deep} {preview} {evil} {evil2}, API origins
// {api} {other}, ports {pageport} {apiport}.
type browserCase struct {
	name string
	// policy is the corsproc policy file (YAML).
	policy string
	// services are the upstreams and routes; default one "api" service
	// taking every request.
	services []service
	// debug runs corsproc with --debug-headers: a preflight refused for its
	// method or headers names the origin, so Chromium names the cause.
	debug bool
	// page is the origin the page is served from; default "{app}".
	page string
	// sandboxed runs the fetch in an iframe with sandbox="allow-scripts":
	// origin null.
	sandboxed bool
	// cache keeps the tab's HTTP and preflight caches on; by default they
	// are off (as DevTools' "Disable cache"), so every fetch asks again.
	cache bool
	// cookie stores sid=s3cret (SameSite=Lax) for api.example.test first.
	cookie bool
	// fetch is a JavaScript expression returning a fetch() promise;
	// default `fetch("{api}/v1/items")`.
	fetch string
	want  want
	// then are further steps in the same tab and gateway, each judged on
	// its own (reached and local count from the step's start).
	then []step
}

// step is a later fetch of a case, optionally after a policy reload.
type step struct {
	// reload, when set, replaces the policy file first and waits until
	// corsproc has reloaded it (or, for a broken file, refused it).
	reload string
	// fetch as in browserCase; default `fetch("{api}/v1/items")`.
	fetch string
	want  want
}

// want is what a case expects.
type want struct {
	// cors is Chromium's CORS error (e.g. network.CorsErrorMissingAllowOriginHeader)
	// when the browser must block: JavaScript then sees a TypeError. Empty
	// means the response must be readable.
	cors network.CorsError
	// status is the readable status; 0 means 200.
	status int
	// body must occur in the readable body.
	body string
	// headers must be readable, with these values.
	headers map[string]string
	// hidden must not be readable.
	hidden []string
	// reached is exactly what the upstreams received, in order ("METHOD
	// /path", prefixed by the service name when there are several). nil
	// means nothing.
	reached []string
	// local is how many requests the gateway answered without the upstream
	// (preflights in enforce mode).
	local int64
	// cookie, when set, is the cookie header the upstream saw on the last
	// non-preflight request; "none" means it had none.
	cookie string
	// origin, when set, is the origin header the upstream saw on the last
	// non-preflight request.
	origin string
	// metrics are lines (placeholders expanded) that corsproc's /metrics
	// must contain, e.g. `corsproc_report_mismatches_total{policy="api"} 1`.
	metrics []string
}

const defaultFetch = `fetch("{api}/v1/items")`

// runCases runs each case as a subtest, as many at once as there are
// slots (t.Run from several goroutines: go test's -parallel, which defaults
// to the number of CPUs, does not bound these), all sharing the one browser.
func runCases(t *testing.T, cases []browserCase) {
	t.Helper()
	needBrowser(t)
	t.Parallel()
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Go(func() { t.Run(c.name, func(t *testing.T) { runCase(t, c) }) })
	}
	wg.Wait()
}

func runCase(t *testing.T, c browserCase) {
	t.Helper()
	s := acquireSlot(t)
	e := newEnv(t, c.policy, c.services, c.debug)
	page := c.page
	if page == "" {
		page = "{app}"
	}
	tb := openPage(t, s, e.expand(page), c.cache)
	if c.cookie {
		tb.setCookie(e.expand("{api}"), "sid", "s3cret")
	}
	steps := append([]step{{fetch: c.fetch, want: c.want}}, c.then...)
	for i, st := range steps {
		if st.reload != "" {
			e.reload(st.reload)
		}
		e.mark()
		tb.mark()
		expr := st.fetch
		if expr == "" {
			expr = defaultFetch
		}
		r := tb.fetch(e.expand(expr), c.sandboxed)
		label := ""
		if len(steps) > 1 {
			label = fmt.Sprintf("step %d (%s): ", i+1, e.expand(expr))
		}
		checkOutcome(t, label, e, tb, r, st.want)
	}
}

// checkOutcome compares what the browser, the gateway and the upstreams saw
// with w.
func checkOutcome(t testing.TB, label string, e *env, tb *tab, r result, w want) {
	t.Helper()
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	api := ":" + e.apiPort + "/" // in every API URL of this env
	if w.cors == "" {
		if !r.Readable {
			fail("JavaScript got %q, want a readable response", r.Error)
		}
		status := w.status
		if status == 0 {
			status = 200
		}
		if r.Readable && r.Status != status {
			fail("status %d, want %d", r.Status, status)
		}
		if r.Readable && !strings.Contains(r.Body, w.body) {
			fail("body %q does not contain %q", r.Body, w.body)
		}
		for name, v := range w.headers {
			if got, ok := r.Headers[name]; !ok {
				fail("header %q not readable (readable: %v)", name, keys(r.Headers))
			} else if got != v {
				fail("header %q = %q, want %q", name, got, v)
			}
		}
		for _, name := range w.hidden {
			if got, ok := r.Headers[name]; ok {
				fail("header %q readable (%q), want hidden", name, got)
			}
		}
		for _, f := range tb.corsFailures(api, 0) {
			if f.Cors != "" {
				fail("unexpected CORS failure %s %s: %s %s", f.Method, f.URL, f.Cors, f.FailedParameter)
			}
		}
	} else {
		if r.Readable {
			fail("response readable (status %d, headers %v), want blocked with %s", r.Status, r.Headers, w.cors)
		} else if !strings.HasPrefix(r.Error, "TypeError") {
			fail("JavaScript got %q, want a TypeError", r.Error)
		}
		var got []string
		for _, f := range tb.corsFailures(api, 1) {
			if f.Cors != "" {
				got = append(got, string(f.Cors))
			}
		}
		if !slices.Contains(got, string(w.cors)) {
			fail("Chromium's CORS errors %v, want %s", got, w.cors)
		}
		if !tb.consoleHas("has been blocked by CORS policy") {
			fail("no console message says the request was blocked by CORS policy")
		}
	}
	if got := e.hits(); !slices.Equal(got, w.reached) {
		fail("upstream reached by %q, want %q", got, w.reached)
	}
	if got := e.localReplies(); got != w.local {
		fail("gateway answered %d requests itself, want %d", got, w.local)
	}
	if w.cookie != "" || w.origin != "" {
		h, ok := e.lastHit()
		switch {
		case !ok:
			fail("no request reached the upstream to check its cookie or origin")
		case w.cookie == "none" && h.Cookie != "":
			fail("upstream got cookie %q, want none", h.Cookie)
		case w.cookie != "" && w.cookie != "none" && h.Cookie != w.cookie:
			fail("upstream got cookie %q, want %q", h.Cookie, w.cookie)
		case w.origin != "" && h.Origin != e.expand(w.origin):
			fail("upstream got origin %q, want %q", h.Origin, e.expand(w.origin))
		}
	}
	if len(w.metrics) > 0 {
		m := e.gw.Metrics()
		for _, line := range w.metrics {
			if line = e.expand(line); !slices.Contains(strings.Split(m, "\n"), line) {
				fail("corsproc's metrics lack %q", line)
			}
		}
	}
	for _, p := range e.gw.Problems() {
		fail("Envoy stand-in and corsproc: %s", p)
	}
	if len(errs) > 0 {
		t.Errorf("%s%s\nJavaScript saw: %+v\n%scorsproc log:\n%s", label, strings.Join(errs, "\n"), r, tb.transcript(), e.gw.Logs())
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
