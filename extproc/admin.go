package extproc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/pprof"
	"net/url"

	"strings"
	"time"

	"github.com/corsproc/corsproc/internal/buildinfo"
	"github.com/corsproc/corsproc/policy"
)

// AdminOptions configure the admin HTTP handler.
type AdminOptions struct {
	// Pprof serves /debug/pprof/.
	Pprof bool
	// DebugHeaders makes /explain decide as the processor does with
	// --debug-headers.
	DebugHeaders bool
	// Readyz answers /readyz once a policy is loaded: the server's health,
	// which fails while it drains. nil means ready whenever a policy is.
	Readyz http.Handler
}

// NewAdminHandler serves the admin endpoints: /metrics, /healthz (alive),
// /readyz (a policy is loaded and the server is not draining), /config
// (the running policy as JSON), /explain (a decision as JSON, as
// `corsproc explain --json` prints it), and /debug/pprof/ when asked.
func NewAdminHandler(p *Policies, m *Metrics, o AdminOptions) http.Handler {
	a := &admin{p: p, o: o}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { text(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", a.readyz)
	mux.HandleFunc("GET /config", a.config)
	mux.HandleFunc("GET /explain", a.explain)
	mux.Handle("GET /observed", observedHandler(m))
	mux.HandleFunc("GET /{$}", a.index)
	if o.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

type admin struct {
	p *Policies
	o AdminOptions
}

func (a *admin) index(w http.ResponseWriter, _ *http.Request) {
	body := "corsproc admin\n\n/metrics  Prometheus metrics\n/healthz  alive\n/readyz   ready for traffic\n/config   the running policy\n/explain  ?origin=&method=&host=&path=&route=&request_method=&request_headers=&private_network=\n/observed  traffic seen per policy, for corsproc suggest\n"
	if a.o.Pprof {
		body += "/debug/pprof/\n"
	}
	text(w, http.StatusOK, body)
}

func (a *admin) readyz(w http.ResponseWriter, r *http.Request) {
	switch {
	case a.p.snapshot() == nil:
		text(w, http.StatusServiceUnavailable, "no policy loaded")
	case a.o.Readyz != nil:
		a.o.Readyz.ServeHTTP(w, r)
	default:
		text(w, http.StatusOK, "ready")
	}
}

// configView is what /config shows. File and SHA256 are those of the
// running set: with policies from Kubernetes, the digest covers them too.
type configView struct {
	File     string           `json:"file"`
	SHA256   string           `json:"sha256"`
	LoadedAt time.Time        `json:"loaded_at"`
	Embedded bool             `json:"embedded_development_policy"`
	Warnings []policy.Problem `json:"warnings"`
	Policies []policyView     `json:"policies"`
	Build    buildinfo.Info   `json:"build"`
}

// policyView is one running policy and where it came from: the policy
// file's name, or "CORSPolicy NAMESPACE/NAME" for one from Kubernetes.
type policyView struct {
	policy.Policy
	Source string `json:"source"`
}

func (a *admin) config(w http.ResponseWriter, _ *http.Request) {
	snap := a.p.snapshot()
	v := configView{
		File:     snap.set.File(),
		SHA256:   snap.set.SHA256(),
		LoadedAt: snap.loadedAt.UTC(),
		Embedded: a.p.Path() == "",
		Warnings: snap.set.Warnings(),
		Policies: []policyView{},
		Build:    buildinfo.Get(),
	}
	if v.Warnings == nil {
		v.Warnings = []policy.Problem{}
	}
	for i, p := range snap.set.Policies() {
		v.Policies = append(v.Policies, policyView{p, snap.set.PolicySource(i)})
	}
	writeJSON(w, http.StatusOK, v)
}

// explainParams are the query parameters of /explain; "-" may stand for
// "_" as in the CLI's flags.
var explainParams = []string{"origin", "method", "host", "path", "route", "request_method", "request_headers", "private_network"}

func (a *admin) explain(w http.ResponseWriter, r *http.Request) {
	q := url.Values{}
	for k, vs := range r.URL.Query() {
		name := strings.ReplaceAll(k, "-", "_")
		if !contains(explainParams, name) {
			writeJSON(w, http.StatusBadRequest, map[string]string{
				"error": fmt.Sprintf("unknown parameter %q; known: %s", k, strings.Join(explainParams, ", ")),
			})
			return
		}
		q[name] = append(q[name], vs...)
	}
	req := policy.Request{
		Method:         q.Get("method"),
		Host:           q.Get("host"),
		Path:           q.Get("path"),
		Route:          q.Get("route"),
		Origin:         q.Get("origin"),
		RequestMethod:  q.Get("request_method"),
		RequestHeaders: q["request_headers"],
		Debug:          a.o.DebugHeaders,
	}
	req.Origins = len(q["origin"]) // origin= present but empty is an empty origin header
	req.HasRequestMethod = q.Has("request_method")
	if req.Method == "" {
		req.Method = "GET"
		if req.HasRequestMethod {
			req.Method = "OPTIONS"
		}
	}
	if req.Path == "" {
		req.Path = "/"
	}
	switch pn := q.Get("private_network"); pn {
	case "", "false", "0":
	case "true", "1":
		req.PrivateNetwork = true
	default:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf("private_network %q: want true or false", pn)})
		return
	}
	set := a.p.Set()
	writeJSON(w, http.StatusOK, struct {
		Config string `json:"config"`
		SHA256 string `json:"sha256"`
		policy.Explanation
	}{set.File(), set.SHA256(), set.Explain(&req)})
}

func text(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	_, _ = w.Write([]byte(s))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
