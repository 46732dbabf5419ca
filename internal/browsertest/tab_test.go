package browsertest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"github.com/corsproc/corsproc/internal/testutil"
)

// tab is one case's use of its slot's tab: the page it loaded, and the
// network and console events recorded meanwhile.
type tab struct {
	t      testing.TB
	ctx    context.Context
	cache  bool
	frames map[target.ID]bool // iframe targets attached to (used by the test goroutine only)

	mu           sync.Mutex
	urls         map[network.RequestID]string
	methods      map[network.RequestID]string
	failures     []corsFailure
	since        int // corsFailures looks from here
	consoleSince int // consoleHas looks from here
	console      []string
	netlog       []string
}

// corsFailure is a request Chromium failed, with its CORS verdict if any.
type corsFailure struct {
	URL, Method, ErrorText string
	Cors                   network.CorsError
	FailedParameter        string
}

// result is what JavaScript saw, as probe() in the page reports it.
type result struct {
	Readable bool              `json:"readable"`
	Error    string            `json:"error"`
	Status   int               `json:"status"`
	Body     string            `json:"body"`
	Headers  map[string]string `json:"headers"`
}

// tabTimeout bounds one page load or fetch: about hangs, not speed.
var tabTimeout = testutil.Patience()

// openPage loads the test page from pageOrigin (e.g.
// http://app.example.test:PA) in the slot's tab, and records the tab's
// network and console for t until t ends. The HTTP and preflight caches are
// off unless cache is true.
func openPage(t testing.TB, s *slot, pageOrigin string, cache bool) *tab {
	t.Helper()
	tb := &tab{t: t, ctx: s.ctx, cache: cache, frames: map[target.ID]bool{},
		urls: map[network.RequestID]string{}, methods: map[network.RequestID]string{}}
	s.record(tb)
	t.Cleanup(func() { s.record(nil) })
	ctx, cancel := context.WithTimeout(s.ctx, tabTimeout)
	defer cancel()
	err := chromedp.Do(ctx,
		chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: !cache})
			return err
		}),
		chromedp.Navigate(pageOrigin+"/"),
	)
	if err != nil {
		t.Fatalf("load page %s: %v\n%s", pageOrigin, err, tb.transcript())
	}
	return tb
}

// event runs on chromedp's reader goroutine: record and return.
func (tb *tab) event(ev any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		tb.urls[ev.RequestID] = ev.Request.URL
		tb.methods[ev.RequestID] = ev.Request.Method
		tb.netlog = append(tb.netlog, fmt.Sprintf("-> %s %s (%s)", ev.Request.Method, ev.Request.URL, ev.Type))
	case *network.EventResponseReceived:
		var cors []string
		for k, v := range ev.Response.Headers {
			if k = strings.ToLower(k); strings.HasPrefix(k, "access-control-") || k == "vary" {
				cors = append(cors, fmt.Sprintf("%s: %v", k, v))
			}
		}
		slices.Sort(cors)
		tb.netlog = append(tb.netlog, fmt.Sprintf("<- %d %s (%s) %s", ev.Response.Status, ev.Response.URL, ev.Type, strings.Join(cors, "; ")))
	case *network.EventLoadingFailed:
		f := corsFailure{URL: tb.urls[ev.RequestID], Method: tb.methods[ev.RequestID], ErrorText: ev.ErrorText}
		if ev.CorsErrorStatus != nil {
			f.Cors, f.FailedParameter = ev.CorsErrorStatus.CorsError, ev.CorsErrorStatus.FailedParameter
		}
		tb.failures = append(tb.failures, f)
		tb.netlog = append(tb.netlog, fmt.Sprintf("xx %s %s: %s %s %s", f.Method, f.URL, f.ErrorText, f.Cors, f.FailedParameter))
	case *log.EventEntryAdded:
		tb.console = append(tb.console, fmt.Sprintf("[%s %s] %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text))
	}
}

// setCookie stores a SameSite=Lax session cookie for the origin's host, as
// if that site had set it.
func (tb *tab) setCookie(origin, name, value string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, tabTimeout)
	defer cancel()
	err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{
			Name: name, Value: value, URL: origin + "/", Path: "/",
			SameSite: network.CookieSameSiteLax,
		})
		return err
	}))
	if err != nil {
		tb.t.Fatalf("set cookie: %v", err)
	}
}

// fetch evaluates a JavaScript expression that returns a fetch() promise,
// in the page or (sandboxed) in an iframe with an opaque origin, and reports
// what the script could see.
func (tb *tab) fetch(expr string, sandboxed bool) result {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, tabTimeout)
	defer cancel()
	js := "probe(() => " + expr + ")"
	if sandboxed {
		src, _ := json.Marshal(expr)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("prepareSandboxed("+string(src)+")", chromedp.EvalAwaitPromise)); err != nil {
			tb.t.Fatalf("load the sandboxed iframe: %v\n%s", err, tb.transcript())
		}
		tb.watchFrames(ctx)
		js = "runSandboxed()"
	}
	r, err := chromedp.Run(ctx, chromedp.Evaluate[result](js, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v\n%s", js, err, tb.transcript())
	}
	return r
}

// watchFrames attaches to the tab's out-of-process iframes (a sandboxed
// frame gets its own process, and its network events go to its own target)
// and records their events too.
func (tb *tab) watchFrames(ctx context.Context) {
	tb.t.Helper()
	infos, err := chromedp.Targets(ctx)
	if err != nil {
		tb.t.Fatalf("list targets: %v", err)
	}
	self := chromedp.FromContext(tb.ctx).Target.TargetID
	for _, in := range infos {
		if in.Type != "iframe" || in.ParentID != self || tb.frames[in.TargetID] {
			continue
		}
		tb.frames[in.TargetID] = true
		fctx, fcancel := chromedp.NewContext(tb.ctx, chromedp.WithTargetID(in.TargetID), chromedp.WithDetachOnCancel())
		tb.t.Cleanup(fcancel)
		if err := chromedp.Listen(fctx, tb.event); err != nil {
			tb.t.Fatalf("attach to iframe %s: %v", in.URL, err)
		}
		err := chromedp.Do(fctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			_, err := cdp.Call(ctx, tg, network.SetCacheDisabled, network.SetCacheDisabledParams{CacheDisabled: !tb.cache})
			return err
		}))
		if err != nil {
			tb.t.Fatalf("iframe %s: %v", in.URL, err)
		}
	}
}

// corsFailures waits up to a moment for at least want failures to be
// reported for URLs containing part, and returns those seen.
func (tb *tab) corsFailures(part string, want int) []corsFailure {
	deadline := time.Now().Add(testutil.Patience())
	for {
		var out []corsFailure
		tb.mu.Lock()
		for _, f := range tb.failures[tb.since:] {
			if strings.Contains(f.URL, part) {
				out = append(out, f)
			}
		}
		tb.mu.Unlock()
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mark makes corsFailures look only at failures from now on.
func (tb *tab) mark() {
	tb.mu.Lock()
	tb.since = len(tb.failures)
	tb.consoleSince = len(tb.console)
	tb.netlog = append(tb.netlog, "-- next step --")
	tb.mu.Unlock()
}

// transcript is the tab's network log and console, for failure messages.
func (tb *tab) transcript() string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var b strings.Builder
	b.WriteString("network:\n")
	for _, l := range tb.netlog {
		b.WriteString("  " + l + "\n")
	}
	b.WriteString("console:\n")
	for _, l := range tb.console {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

// consoleHas waits up to a moment for a console message containing text,
// logged since the mark.
func (tb *tab) consoleHas(text string) bool {
	deadline := time.Now().Add(testutil.Patience())
	for {
		tb.mu.Lock()
		found := slices.ContainsFunc(tb.console[tb.consoleSince:], func(l string) bool { return strings.Contains(l, text) })
		tb.mu.Unlock()
		if found || time.Now().After(deadline) {
			return found
		}
		time.Sleep(20 * time.Millisecond)
	}
}
