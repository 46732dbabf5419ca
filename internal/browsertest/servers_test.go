package browsertest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// The page server: one listener on 127.0.0.1 serving the test page to every
// host name, so that http://app.example.test:PA, http://admin.example.test:PA
// and http://app.example.test.evil.test:PA are distinct origins on one port.
var (
	pageOnce sync.Once
	pagePort string
	pageErr  error
)

func pageServerPort(t testing.TB) string {
	t.Helper()
	pageOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			pageErr = err
			return
		}
		_, pagePort, _ = net.SplitHostPort(ln.Addr().String())
		srv := &http.Server{Handler: http.HandlerFunc(servePage), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }() // lives as long as the test binary
	})
	if pageErr != nil {
		t.Fatal(pageErr)
	}
	return pagePort
}

func servePage(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/favicon.ico" {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("content-type", "text/html; charset=utf-8")
	w.Header().Set("cache-control", "no-store")
	_, _ = io.WriteString(w, pageHTML)
}

// pageHTML defines probe(run), prepareSandboxed(src) and runSandboxed().
// probe awaits run() (a function returning a fetch promise) and reports what
// JavaScript can see: readable or the error, status, body and every readable
// response header. prepareSandboxed loads an iframe with
// sandbox="allow-scripts", whose origin is opaque (the browser sends origin:
// null), ready to probe src; runSandboxed starts it and returns its report.
// The two steps let the test attach to the iframe's own target (Chromium
// isolates sandboxed frames in their own process) before anything is sent.
const pageHTML = `<!doctype html>
<meta charset="utf-8">
<title>corsproc browser test</title>
<body>
<script>
async function probe(run) {
  const out = {readable: false, error: "", status: 0, body: "", headers: {}};
  try {
    const res = await run();
    out.status = res.status;
    for (const [k, v] of res.headers) out.headers[k] = v;
    out.body = await res.text();
    out.readable = true;
  } catch (e) {
    out.error = String(e);
  }
  return out;
}
let sandbox;
function prepareSandboxed(src) {
  return new Promise((resolve) => {
    const f = document.createElement("iframe");
    f.sandbox = "allow-scripts";
    let done;
    sandbox = {frame: f, result: new Promise((r) => { done = r; })};
    window.addEventListener("message", (ev) => {
      if (ev.source !== f.contentWindow) return;
      if (ev.data === "ready") resolve(true); else done(ev.data);
    });
    f.srcdoc = "<script>" + probe.toString() +
      ";window.addEventListener('message', () => probe(() => " + src + ").then((r) => parent.postMessage(r, '*')));" +
      "parent.postMessage('ready', '*');<\/script>";
    document.body.appendChild(f);
  });
}
function runSandboxed() {
  sandbox.frame.contentWindow.postMessage("go", "*");
  return sandbox.result;
}
</script>
`

// hit is one request an upstream received.
type hit struct {
	Method, Path, Origin, Cookie string
}

// upstream is a real HTTP service behind the gateway. It answers every
// request (preflights included, as a service without CORS code would) with
// the configured status and extra header lines, and a JSON echo of what it
// received; or, if asked, with a 301 to add a trailing slash, as many
// frameworks do. It records every request.
type upstream struct {
	name    string
	status  int
	slash   bool     // redirect paths without a trailing slash to path + "/"
	headers []string // "name: value" lines, added in order
	ln      net.Listener
	srv     *http.Server

	mu    sync.Mutex
	hits  []hit
	since int // Hits starts here
}

// echo is the upstream's JSON body.
type echo struct {
	Service string `json:"service"`
	Method  string `json:"method"`
	Path    string `json:"path"`
	Cookie  string `json:"cookie"`
	Custom  string `json:"x_custom"`
	Auth    string `json:"authorization"`
	Body    string `json:"body"`
}

func startUpstream(t testing.TB, name string, status int, headers []string, slash bool) *upstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if status == 0 {
		status = http.StatusOK
	}
	u := &upstream{name: name, status: status, headers: headers, slash: slash, ln: ln}
	u.srv = &http.Server{Handler: u, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = u.srv.Serve(ln) }()
	t.Cleanup(func() { _ = u.srv.Close() })
	return u
}

func (u *upstream) URL() string { return "http://" + u.ln.Addr().String() }

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<16))
	u.mu.Lock()
	u.hits = append(u.hits, hit{Method: r.Method, Path: r.URL.RequestURI(), Origin: r.Header.Get("origin"), Cookie: r.Header.Get("cookie")})
	u.mu.Unlock()
	for _, line := range u.headers {
		k, v, _ := strings.Cut(line, ":")
		w.Header().Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	if u.slash && !strings.HasSuffix(r.URL.Path, "/") {
		w.Header().Set("location", r.URL.Path+"/")
		w.WriteHeader(http.StatusMovedPermanently)
		return
	}
	w.Header().Set("content-type", "application/json")
	w.Header().Set("x-total-count", "42")
	w.Header().Set("cache-control", "no-store")
	w.WriteHeader(u.status)
	_ = json.NewEncoder(w).Encode(echo{
		Service: u.name, Method: r.Method, Path: r.URL.RequestURI(),
		Cookie: r.Header.Get("cookie"), Custom: r.Header.Get("x-custom"),
		Auth: r.Header.Get("authorization"), Body: string(body),
	})
}

// Hits returns what reached the upstream since the mark.
func (u *upstream) Hits() []hit {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]hit(nil), u.hits[u.since:]...)
}

// mark makes Hits start after what has been received so far.
func (u *upstream) mark() {
	u.mu.Lock()
	u.since = len(u.hits)
	u.mu.Unlock()
}

func (h hit) String() string { return fmt.Sprintf("%s %s", h.Method, h.Path) }
