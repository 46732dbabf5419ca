package extproc

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/corsproc/corsproc/policy"

	"github.com/corsproc/corsproc/internal/testutil"
)

// rawCodec sends bytes as they are, to put what no proto encoder would
// produce on the wire.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return proto.Marshal(v.(proto.Message))
}

func (rawCodec) Unmarshal(data []byte, v any) error { return proto.Unmarshal(data, v.(proto.Message)) }
func (rawCodec) Name() string                       { return "proto" }

// TestProcessorRefusesGarbage sends what Envoy never should: each is refused
// with a clean gRPC error, counted by reason, and the server goes on.
func TestProcessorRefusesGarbage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		msg    any // a message, or raw bytes
		code   codes.Code
		reason string
	}{
		{"a message with no headers, body or trailers", &extprocv3.ProcessingRequest{}, codes.InvalidArgument, "empty_message"},
		{"bytes that are no protobuf message", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, codes.Internal, "decode"},
		{"a header value that is not UTF-8 in the string field", invalidUTF8(), codes.Internal, "decode"},
	}
	for _, c := range cases {
		t.Run(c.name+" is refused cleanly", func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, testPolicy, Options{})
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience())
			defer cancel()
			stream, err := ts.client.Process(ctx, grpc.ForceCodec(rawCodec{}))
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.SendMsg(c.msg); err != nil {
				t.Fatal(err)
			}
			_, err = stream.Recv()
			if status.Code(err) != c.code {
				t.Fatalf("got %v, want code %v", err, c.code)
			}
			if v := metricValue(t, ts.metrics, "corsproc_stream_errors_total", "reason="+c.reason); v != 1 {
				t.Errorf("stream_errors_total{reason=%q} = %v, want 1", c.reason, v)
			}
			got := ts.exchange(t, preflight("api.example.com", app, "PUT"))
			if got[0].GetImmediateResponse().GetStatus().GetCode() != 204 {
				t.Errorf("the server does not answer normally afterwards: %s", describe(got[0]))
			}
			testutil.WaitUntil(t, "streams to close", func() bool {
				return metricValue(t, ts.metrics, "corsproc_streams_active") == 0
			})
		})
	}
}

// invalidUTF8 encodes request headers whose value string field holds bytes
// that are not UTF-8, which proto3 forbids.
func invalidUTF8() []byte {
	m := request("GET", "api.example.com")
	m.GetRequestHeaders().GetHeaders().Headers = append(m.GetRequestHeaders().GetHeaders().Headers, &corev3.HeaderValue{Key: "origin", Value: "MARK"})
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	i := strings.Index(string(b), "MARK")
	b[i], b[i+1] = 0xff, 0xfe
	return b
}

// TestProcessorEndsQuietlyWhenEnvoyLeaves checks the normal ends of a
// stream: half-close or reset at any point is not an error, and leaves no
// stream open behind.
func TestProcessorEndsQuietlyWhenEnvoyLeaves(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		play func(stream extprocv3.ExternalProcessor_ProcessClient, cancel context.CancelFunc) error
	}{
		{"Envoy half-closes before sending anything", func(s extprocv3.ExternalProcessor_ProcessClient, _ context.CancelFunc) error {
			if err := s.CloseSend(); err != nil {
				return err
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				return errors.New("want EOF, got " + errString(err))
			}
			return nil
		}},
		{"Envoy resets the stream right after sending request headers", func(s extprocv3.ExternalProcessor_ProcessClient, cancel context.CancelFunc) error {
			if err := s.Send(request("GET", "api.example.com", "origin", app)); err != nil {
				return err
			}
			cancel()
			return nil
		}},
		{"Envoy resets the stream between the request and response phases", func(s extprocv3.ExternalProcessor_ProcessClient, cancel context.CancelFunc) error {
			if err := s.Send(request("GET", "api.example.com", "origin", app)); err != nil {
				return err
			}
			if _, err := s.Recv(); err != nil {
				return err
			}
			cancel()
			return nil
		}},
		{"Envoy half-closes after the local answer to a preflight", func(s extprocv3.ExternalProcessor_ProcessClient, _ context.CancelFunc) error {
			if err := s.Send(preflight("api.example.com", app, "PUT")); err != nil {
				return err
			}
			if _, err := s.Recv(); err != nil {
				return err
			}
			if err := s.CloseSend(); err != nil {
				return err
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				return errors.New("want EOF, got " + errString(err))
			}
			return nil
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, testPolicy, Options{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			stream, err := ts.client.Process(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.play(stream, cancel); err != nil {
				t.Fatal(err)
			}
			testutil.WaitUntil(t, "the stream to close", func() bool {
				return metricValue(t, ts.metrics, "corsproc_streams_active") == 0
			})
			for e := range numStreamErrors {
				if v := metricValue(t, ts.metrics, "corsproc_stream_errors_total", "reason="+e.String()); v != 0 {
					t.Errorf("stream_errors_total{reason=%q} = %v, want 0", e, v)
				}
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestProcessorRecoversFromPanic checks the last line of defence: a bug that
// panics ends its stream with Internal, is counted, and the server lives.
func TestProcessorRecoversFromPanic(t *testing.T) {
	t.Parallel()
	ts := &testServer{metrics: NewMetrics(), logs: &testutil.Buffer{}}
	broken := &Policies{metrics: ts.metrics} // no set loaded: deciding panics
	ts.serve(t, NewServer(broken, ts.metrics, Options{Logger: discardLogger()}))
	for range 2 {
		stream, err := ts.client.Process(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if err := stream.Send(request("GET", "api.example.com")); err != nil {
			t.Fatal(err)
		}
		if _, err := stream.Recv(); status.Code(err) != codes.Internal {
			t.Fatalf("got %v, want Internal", err)
		}
	}
	if v := metricValue(t, ts.metrics, "corsproc_stream_errors_total", "reason=panic"); v != 2 {
		t.Errorf("stream_errors_total{reason=panic} = %v, want 2", v)
	}
}

// TestMutationLeavesOutInvalidHeaders checks the final check on what corsproc
// sends: a header Envoy would refuse is dropped, never sent.
func TestMutationLeavesOutInvalidHeaders(t *testing.T) {
	t.Parallel()
	var st streamState
	var dropped []string
	mut := st.mutation([]policy.Header{
		{Name: "access-control-allow-origin", Value: "https://a.example\r\nx: y"},
		{Name: "bad name", Value: "1"},
		{Name: "vary", Value: "origin"},
	}, nil, func(n string) { dropped = append(dropped, n) })
	if got := lines(t, mut); !equal(got, []string{"vary: origin"}) {
		t.Errorf("sent %q, want only vary", got)
	}
	if !equal(dropped, []string{"access-control-allow-origin", "bad name"}) {
		t.Errorf("dropped %q", dropped)
	}
}

// FuzzRequestHeaders feeds arbitrary header lines through the request and
// response phases: nothing may panic, and nothing corsproc would send may
// be a header Envoy refuses.
func FuzzRequestHeaders(f *testing.F) {
	f.Add("OPTIONS", "api.example.com", app, "PUT", "content-type", "true", "vary", "accept")
	f.Add("GET", "public.example.com", "null", "", "", "", "access-control-allow-origin", "*")
	f.Add("OPTIONS", "api.example.com:443", "https://app.example.com\x00", "P\rUT", "a,,b, c", "TRUE", "Vary", "*")
	set, err := policy.Parse("fuzz.yaml", []byte(testPolicy))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, method, host, origin, reqMethod, reqHeaders, pna, respKey, respValue string) {
		hs := testutil.HeaderMap(":method", method, ":authority", host, "origin", origin,
			"access-control-request-method", reqMethod, "access-control-request-headers", reqHeaders,
			"access-control-request-private-network", pna).GetHeaders()
		var st streamState
		readRequest(&st.req, st.lines[:], hs)
		st.dec = set.Decide(&st.req)
		check := func(m *extprocv3.HeaderMutation) {
			for _, o := range m.GetSetHeaders() {
				if !validName(o.GetHeader().GetKey()) || !validValue(string(o.GetHeader().GetRawValue())) {
					t.Fatalf("would send %q: %q", o.GetHeader().GetKey(), o.GetHeader().GetRawValue())
				}
			}
		}
		fail := func(n string) { t.Fatalf("the policy produced an invalid header %q", n) }
		if st.dec.Local {
			check(st.immediate(&st.dec, fail).GetImmediateResponse().GetHeaders())
			return
		}
		readUpstream(&st.up, st.vary[:], st.cors[:], testutil.HeaderMap(respKey, respValue, "vary", respValue).GetHeaders())
		st.dec.Respond(&st.up, &st.edit)
		check(st.mutation(st.edit.Set(&st.dec), st.edit.Remove, fail))
	})
}

// TestProcessorDeniesOversizedCORSHeaders sends CORS request headers larger
// than any browser's. Each preflight is denied with a bare 403, never
// refused with a gRPC error: deployments run Envoy with failure_mode_allow,
// under which an error would let the preflight through to the service.
func TestProcessorDeniesOversizedCORSHeaders(t *testing.T) {
	t.Parallel()
	var manyLines []string
	for range maxRequestHeaderLines + 1 {
		manyLines = append(manyLines, "access-control-request-headers", "content-type")
	}
	cases := []struct {
		name   string
		msg    *extprocv3.ProcessingRequest
		reason string
	}{
		{"an origin over 64 KiB", preflight("api.example.com", "https://"+strings.Repeat("a", maxValueBytes)+".com", "PUT"), "origin_too_long"},
		{"an access-control-request-method over 64 KiB", preflight("api.example.com", app, strings.Repeat("P", maxValueBytes+1)), "request_too_large"},
		{"an access-control-request-headers line over 64 KiB", preflight("api.example.com", app, "PUT", "access-control-request-headers", strings.Repeat("a,", maxValueBytes/2+1)), "request_too_large"},
		{"more access-control-request-headers lines than any browser sends", preflight("api.example.com", app, "PUT", manyLines...), "request_too_large"},
	}
	for _, c := range cases {
		t.Run("a preflight with "+c.name+" is denied with a bare 403", func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, testPolicy, Options{})
			got := ts.exchange(t, c.msg)
			imm := got[0].GetImmediateResponse()
			if imm == nil {
				t.Fatalf("want an immediate 403, got %s", describe(got[0]))
			}
			if code := imm.GetStatus().GetCode(); code != 403 {
				t.Errorf("status %d, want 403", code)
			}
			for _, l := range lines(t, imm.GetHeaders()) {
				if strings.HasPrefix(l, "access-control-") {
					t.Errorf("a denied preflight carries %q", l)
				}
			}
			if v := metricValue(t, ts.metrics, "corsproc_denials_total", "policy=shop", "reason="+c.reason); v != 1 {
				t.Errorf("corsproc_denials_total{reason=%q} = %v, want 1", c.reason, v)
			}
		})
	}
}
