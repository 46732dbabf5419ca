package deploy

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/corsproc/corsproc/extproc"
	"github.com/corsproc/corsproc/internal/envoytest"
)

// The traffic of issue 10's "Measured": 100 requests to the demo, 70
// without origin, 20 actual CORS requests and 10 preflights, each carrying
// what a browser or an API client sends (cookies, a bearer token, user
// agent, accept headers).
const (
	trafficNoOrigin   = 70
	trafficActual     = 20
	trafficPreflights = 10
	trafficOrigin     = "http://localhost:8080" // allowed by demo-policy.yaml
	trafficPath       = "/orders/"
)

// trafficTimeout bounds each ext_proc round trip in these runs: they count
// messages, and a loaded machine must not turn one into a 504.
const trafficTimeout = 10 * time.Second

var trafficCommon = [][2]string{
	{"Accept", "application/json, text/plain, */*"},
	{"Accept-Encoding", "gzip, deflate, br, zstd"},
	{"Accept-Language", "en-GB,en;q=0.9,fr;q=0.8"},
	{"Authorization", "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyLTQyIiwiaXNzIjoiaHR0cHM6Ly9pZC5leGFtcGxlLmNvbSJ9.c2lnbmF0dXJlLXBsYWNlaG9sZGVyLWZvci1hLXJlYWwtand0"},
	{"Cookie", "session=4f1c2a9e8b7d6c5e4f3a2b1c0d9e8f7a; csrftoken=Zk3sP0qL9mX2vB7nR4tY8wE1uI6oA5sD; theme=dark"},
	{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"},
}

// trafficRequests builds the 100 requests, interleaved the same way every
// time.
func trafficRequests(t *testing.T, base, host string) []*http.Request {
	t.Helper()
	var out []*http.Request
	add := func(method string, extra ...[2]string) {
		req, err := http.NewRequest(method, base+trafficPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		for _, h := range append(slices.Clone(trafficCommon), extra...) {
			req.Header.Set(h[0], h[1])
		}
		out = append(out, req)
	}
	for i := 0; i < 10; i++ { // ten rounds of 7 + 2 + 1
		for j := 0; j < trafficNoOrigin/10; j++ {
			add(http.MethodGet)
		}
		for j := 0; j < trafficActual/10; j++ {
			add(http.MethodGet, [2]string{"Origin", trafficOrigin})
		}
		for j := 0; j < trafficPreflights/10; j++ {
			add(http.MethodOptions, [2]string{"Origin", trafficOrigin},
				[2]string{"Access-Control-Request-Method", "PUT"}, [2]string{"Access-Control-Request-Headers", "content-type"})
		}
	}
	return out
}

// startCorsproc serves corsproc's ext_proc server with a policy file on
// loopback, as `corsproc serve` wires it; it returns the gRPC address.
func startCorsproc(t *testing.T, policyFile string) string {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	metrics := extproc.NewMetrics()
	policies, err := extproc.LoadPolicies(policyFile, metrics, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(gs, extproc.NewServer(policies, metrics, extproc.Options{Logger: log}))
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)
	return ln.Addr().String()
}

// trafficResult is what one configuration cost for the 100 requests.
type trafficResult struct {
	Name                     string
	Streams, RoundTrips      int64
	Bytes                    int64
	Rejected, FailureAllowed int64
}

// runTraffic sends the 100 requests through the Envoy stand-in configured
// from hcm (filters as loaded, routes to one fake orders service).
func runTraffic(t *testing.T, name, processor string, hcm *hcmv3.HttpConnectionManager) trafficResult {
	t.Helper()
	cfg := standInFilters(t, hcm)
	cfg.Processor = processor
	cfg.MessageTimeout = trafficTimeout
	cfg.FailureModeAllow = false // a processor failure must fail the run
	svc := httptest.NewServer(newFakeNginx(readRepoFile(t, "envoy/demo/orders.nginx.conf")))
	t.Cleanup(svc.Close)
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			cfg.Routes = append(cfg.Routes, envoytest.Route{Name: r.GetName(), PathPrefix: r.GetMatch().GetPrefix(), Upstream: svc.URL,
				ResponseHeadersToAdd: append(slices.Clone(r.GetResponseHeadersToAdd()), vh.GetResponseHeadersToAdd()...)})
		}
	}
	e, err := envoytest.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	client := &http.Client{}
	for i, req := range trafficRequests(t, e.URL(), "localhost:10000") {
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("%s: request %d (%s, origin %q) got %d", name, i, req.Method, req.Header.Get("Origin"), res.StatusCode)
		}
		if req.Header.Get("Origin") != "" && res.Header.Get("Access-Control-Allow-Origin") != trafficOrigin {
			t.Fatalf("%s: request %d (%s) lacks CORS headers: %v", name, i, req.Method, res.Header)
		}
		if !slices.Contains(headerList(res.Header, "Vary"), "origin") {
			t.Fatalf("%s: request %d (%s, origin %q) lacks vary: origin: %v", name, i, req.Method, req.Header.Get("Origin"), res.Header)
		}
	}
	st := e.Stats()
	return trafficResult{Name: name, Streams: st.StreamsStarted, RoundTrips: st.MessagesSent, Bytes: st.BytesSent,
		Rejected: st.RejectedHeaderMutations, FailureAllowed: st.FailureModeAllowed}
}

// trafficConfigs loads the three configurations measured: before (the
// plain ext_proc filter with no forward_rules, as shipped before issue
// 10), the shipped variant for Envoy < 1.36, and the shipped envoy.yaml.
func trafficConfigs(t *testing.T) (names []string, hcms []*hcmv3.HttpConnectionManager) {
	t.Helper()
	load := func(file string) *hcmv3.HttpConnectionManager {
		b := loadBootstrap(t, file, readRepoFile(t, file))
		return connectionManagers(t, listenerByName(t, b, "ingress"))[0]
	}
	before := load("envoy/envoy-no-composite.yaml")
	i, ep := corsprocFilter(t, before)
	ep.ForwardRules = nil
	if err := before.HttpFilters[i].GetTypedConfig().MarshalFrom(ep); err != nil {
		t.Fatal(err)
	}
	return []string{"before: ext_proc on every request, every header", "envoy-no-composite.yaml (forward_rules)", "envoy.yaml (composite + forward_rules)"},
		[]*hcmv3.HttpConnectionManager{before, load("envoy/envoy-no-composite.yaml"), load("envoy/envoy.yaml")}
}

func TestExtProcTrafficOfTheShippedConfiguration(t *testing.T) {
	processor := startCorsproc(t, repoPath("envoy/demo-policy.yaml"))
	names, hcms := trafficConfigs(t)
	var results []trafficResult
	for i := range names {
		results = append(results, runTraffic(t, names[i], processor, hcms[i]))
	}
	for _, r := range results {
		t.Logf("%-48s streams %3d  round trips %3d  bytes to corsproc %6d", r.Name, r.Streams, r.RoundTrips, r.Bytes)
		if r.Rejected+r.FailureAllowed != 0 {
			t.Errorf("%s: %d rejected mutations, %d failures let through", r.Name, r.Rejected, r.FailureAllowed)
		}
	}
	before, after := results[0], results[len(results)-1]
	if want := int64(2*trafficNoOrigin + 2*trafficActual + trafficPreflights); before.RoundTrips != want {
		t.Errorf("before: %d round trips, the issue counts %d", before.RoundTrips, want)
	}
	if after.RoundTrips > 50 {
		t.Errorf("envoy.yaml: %d round trips, target at most 50", after.RoundTrips)
	}
	if after.Bytes*4 > before.Bytes {
		t.Errorf("envoy.yaml: %d bytes to corsproc, target at most a quarter of %d", after.Bytes, before.Bytes)
	}
	if after.Streams != trafficActual+trafficPreflights {
		t.Errorf("envoy.yaml: %d streams, want one per request with an origin (%d)", after.Streams, trafficActual+trafficPreflights)
	}
}
