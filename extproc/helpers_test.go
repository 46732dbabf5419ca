package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sort"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/corsproc/corsproc/internal/grpcserver"
	"github.com/corsproc/corsproc/internal/testutil"
)

// testPolicy covers every kind of policy the processor must handle; the
// end-to-end suite decides against the same file.
var testPolicy = testutil.Policy

// testServer is a real processor behind a real gRPC server on loopback.
type testServer struct {
	client   extprocv3.ExternalProcessorClient
	conn     *grpc.ClientConn
	metrics  *Metrics
	policies *Policies
	logs     *testutil.Buffer
}

// startServer serves a processor with the policy in yaml ("" for the
// embedded development policy).
func startServer(t testing.TB, yaml string, opts Options) *testServer {
	t.Helper()
	ts := &testServer{metrics: NewMetrics(), logs: &testutil.Buffer{}}
	log := slog.New(slog.NewTextHandler(ts.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	path := ""
	if yaml != "" {
		path = testutil.WriteFile(t, t.TempDir(), "policy.yaml", yaml)
	}
	p, err := LoadPolicies(path, ts.metrics, log)
	if err != nil {
		t.Fatalf("load policy: %v", err)
	}
	ts.policies = p
	opts.Logger = log
	ts.serve(t, NewServer(p, ts.metrics, opts))
	return ts
}

func (ts *testServer) serve(t testing.TB, srv extprocv3.ExternalProcessorServer) {
	t.Helper()
	// The product's options (limits, keepalive, message size, codec); the
	// runner that sets them up imports this package, so they come from
	// grpcserver.
	ts.serveWith(t, srv, grpcserver.Options(grpcserver.Defaults, nil))
}

// serveWith serves srv with the given gRPC server options only.
func (ts *testServer) serveWith(t testing.TB, srv extprocv3.ExternalProcessorServer, opts []grpc.ServerOption) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(opts...)
	extprocv3.RegisterExternalProcessorServer(gs, srv)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(ln) }()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		<-done
	})
	ts.conn = conn
	ts.client = extprocv3.NewExternalProcessorClient(conn)
}

func reqHeaders(kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{Headers: testutil.HeaderMap(kv...), EndOfStream: true}}}
}

func respHeaders(kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: testutil.HeaderMap(kv...)}}}
}

// withRoute adds the xds.route_name attribute as Envoy sends it.
func withRoute(m *extprocv3.ProcessingRequest, route string) *extprocv3.ProcessingRequest {
	s, _ := structpb.NewStruct(map[string]any{"xds.route_name": route})
	m.Attributes = map[string]*structpb.Struct{"envoy.filters.http.ext_proc": s}
	return m
}

// writeFile is testutil.WriteFile, under the name this package's tests use.
func writeFile(t testing.TB, dir, name, content string) string {
	t.Helper()
	return testutil.WriteFile(t, dir, name, content)
}

// request is the pseudo-headers of a request to host, plus kv.
func request(method, host string, kv ...string) *extprocv3.ProcessingRequest {
	return reqHeaders(append([]string{":method", method, ":authority", host, ":path", "/v1/items", ":scheme", "https", "x-request-id", "abc"}, kv...)...)
}

// exchange plays Envoy's side of one stream in lockstep: each message, then
// its reply; then it half-closes and expects the server to end cleanly.
func (ts *testServer) exchange(t testing.TB, msgs ...*extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience())
	defer cancel()
	stream, err := ts.client.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*extprocv3.ProcessingResponse
	for _, m := range msgs {
		if err := stream.Send(m); err != nil {
			t.Fatalf("send: %v", err)
		}
		r, err := stream.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		out = append(out, r)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after half-close: got %v, want a clean end (EOF)", err)
	}
	return out
}

// lines renders a header mutation as sorted "name: value" lines, checking
// the wire conventions on the way: raw_value only, overwriting with
// append_action and not the deprecated append.
func lines(t testing.TB, m *extprocv3.HeaderMutation) []string {
	t.Helper()
	var out []string
	for _, o := range m.GetSetHeaders() {
		h := o.GetHeader()
		if h.GetValue() != "" {
			t.Errorf("header %s: value %q set; corsproc must send raw_value only", h.GetKey(), h.GetValue())
		}
		if o.GetAppend() != nil || o.GetAppendAction() != corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD {
			t.Errorf("header %s: append = %v, append_action = %v; want append unset, OVERWRITE_IF_EXISTS_OR_ADD", h.GetKey(), o.GetAppend(), o.GetAppendAction())
		}
		out = append(out, h.GetKey()+": "+string(h.GetRawValue()))
	}
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func hasPrefix(list []string, prefix string) bool {
	for _, l := range list {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// metricValue reads one series of a counter or gauge; labels as
// "k=v" pairs. It fails the test when the series does not exist.
func metricValue(t testing.TB, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	v, ok := lookupMetric(t, m, name, labels...)
	if !ok {
		t.Fatalf("metric %s%v not found", name, labels)
	}
	return v
}

func lookupMetric(t testing.TB, m *Metrics, name string, labels ...string) (float64, bool) {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, mt := range f.GetMetric() {
			if labelsMatch(mt.GetLabel(), labels) {
				switch {
				case mt.Counter != nil:
					return mt.Counter.GetValue(), true
				case mt.Gauge != nil:
					return mt.Gauge.GetValue(), true
				case mt.Histogram != nil:
					return float64(mt.Histogram.GetSampleCount()), true
				}
			}
		}
	}
	return 0, false
}

func labelsMatch(have []*dto.LabelPair, want []string) bool {
	for _, w := range want {
		k, v, _ := strings.Cut(w, "=")
		found := false
		for _, l := range have {
			if l.GetName() == k && l.GetValue() == v {
				found = true
			}
		}
		if !found && v != "" {
			return false
		}
	}
	return true
}

func describe(r *extprocv3.ProcessingResponse) string { return fmt.Sprintf("%v", r) }

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
