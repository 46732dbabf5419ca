package browsertest

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"

	"github.com/corsproc/corsproc/internal/envoytest"
	"github.com/corsproc/corsproc/internal/runner"
	"github.com/corsproc/corsproc/internal/testutil"
)

// authGateway is the chain of envoy/envoy.yaml with authentication: the
// corsproc server, then the Envoy stand-in with envoy.yaml's corsproc filter
// first (in a composite on origin, its forward and mutation rules),
// jwt_authn after it requiring "Bearer good-token", envoy.yaml's virtual
// host headers (vary: origin), and one upstream. skip makes local replies
// skip ext_proc, as Envoy 1.34-1.36 do.
func authGateway(t *testing.T, policyYAML string, skip bool) (*envoytest.Envoy, *upstream) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(path, []byte(policyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &testutil.Buffer{}
	rcfg := runner.Defaults()
	rcfg.PolicyFile = path
	rcfg.GRPCAddr, rcfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	rcfg.LogLevel, rcfg.LogFormat = slog.LevelDebug, "text"
	rcfg.SetLameduck(0)
	r, err := runner.New(rcfg, runner.Options{Log: logs})
	if err != nil {
		t.Fatalf("corsproc refused the policy: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- r.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		<-ran
	})
	up := startUpstream(t, "api", 0, nil, false)
	cfg, err := envoytest.FromBootstrapFile(filepath.Join("..", "..", "envoy", "envoy.yaml"), "ingress")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OnlyWithHeader != "origin" {
		t.Fatalf("envoy.yaml's corsproc filter is not in a composite on origin: %+v", cfg)
	}
	cfg.Processor = r.GRPCAddr().String()
	cfg.MessageTimeout = testutil.MessageTimeout()
	cfg.FailureModeAllow = false // a processor failure must show
	cfg.After = []envoytest.Filter{envoytest.JWTAuthn("good-token")}
	cfg.SkipLocalReplies = skip
	cfg.Routes = []envoytest.Route{{Name: "api", Upstream: up.URL(), ResponseHeadersToAdd: cfg.Routes[0].ResponseHeadersToAdd}}
	e, err := envoytest.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Close()
		if t.Failed() {
			t.Logf("corsproc log:\n%s", logs)
		}
	})
	return e, up
}

// Behind authentication: with corsproc first, Chromium's preflight (which
// carries no token) is answered by corsproc, and the 401 of the filter after
// it is readable by the page, status and body.
func TestBehindAuthentication(t *testing.T) {
	needBrowser(t)
	t.Parallel()
	const policy = `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_headers: [authorization]
`
	pagePort := pageServerPort(t)
	app := "http://" + pageHosts["{app}"] + ":" + pagePort
	expand := func(s, apiPort string) string {
		return strings.NewReplacer("{app}", app, "{api}", "http://"+apiHosts["{api}"]+":"+apiPort).Replace(s)
	}
	const withToken = `fetch("{api}/v1/me", {headers: {authorization: "Bearer good-token"}})`
	const noToken = `fetch("{api}/v1/me")`

	t.Run("Envoy >= 1.37: the 401 is readable and the preflight succeeds", func(t *testing.T) {
		s := acquireSlot(t)
		e, up := authGateway(t, expand(policy, ""), false)
		api := gwPort(e.Addr())
		tb := openPage(t, s, app, false)
		r := tb.fetch(expand(noToken, api), false)
		if !r.Readable || r.Status != 401 || !strings.Contains(r.Body, "Jwt is missing") {
			t.Errorf("without a token JavaScript saw %+v, want a readable 401 \"Jwt is missing\"\n%s", r, tb.transcript())
		}
		r = tb.fetch(expand(withToken, api), false)
		if !r.Readable || r.Status != 200 || !strings.Contains(r.Body, `"authorization":"Bearer good-token"`) {
			t.Errorf("with a token JavaScript saw %+v, want the service's 200\n%s", r, tb.transcript())
		}
		for _, f := range tb.corsFailures(":"+api+"/", 0) {
			if f.Cors != "" {
				t.Errorf("CORS failure %s %s: %s", f.Method, f.URL, f.Cors)
			}
		}
		st := e.Stats()
		if st.RejectedHeaderMutations+st.MessageTimeouts+st.StreamsFailed+st.SpuriousMessages != 0 {
			t.Errorf("the stand-in saw processor failures: %+v", st)
		}
		if st.ImmediateResponses != 1 || st.FilterReplies != 1 {
			t.Errorf("corsproc answered %d preflights, jwt_authn refused %d requests; want 1 and 1 (%+v)", st.ImmediateResponses, st.FilterReplies, st)
		}
		var methods []string
		for _, h := range up.Hits() {
			methods = append(methods, h.String())
		}
		if strings.Join(methods, ",") != "GET /v1/me" {
			t.Errorf("the service saw %v, want only the authenticated GET", methods)
		}
	})
	t.Run("Envoy 1.34-1.36: the 401 skips corsproc and the browser blocks it", func(t *testing.T) {
		s := acquireSlot(t)
		e, _ := authGateway(t, expand(policy, ""), true)
		api := gwPort(e.Addr())
		tb := openPage(t, s, app, false)
		r := tb.fetch(expand(noToken, api), false)
		if r.Readable || !strings.HasPrefix(r.Error, "TypeError") {
			t.Errorf("JavaScript saw %+v, want a TypeError", r)
		}
		found := false
		for _, f := range tb.corsFailures(":"+api+"/", 1) {
			found = found || f.Cors == network.CorsErrorMissingAllowOriginHeader
		}
		if !found {
			t.Errorf("Chromium did not report MissingAllowOriginHeader\n%s", tb.transcript())
		}
	})
}
