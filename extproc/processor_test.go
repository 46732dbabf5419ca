package extproc

import (
	"strings"
	"testing"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// reply is what one reply must be.
type reply struct {
	kind   string   // request_headers, response_headers, immediate, request_body, ...
	status int      // immediate: the status
	set    []string // sorted "name: value" lines set (or the immediate answer's headers)
	remove []string
	skip   bool // mode_override response_header_mode SKIP
}

const (
	app          = "https://app.example.com"
	preflightVar = "vary: origin, access-control-request-method, access-control-request-headers, access-control-request-private-network"
)

func preflight(host, origin, method string, kv ...string) *extprocv3.ProcessingRequest {
	return request("OPTIONS", host, append([]string{"origin", origin, "access-control-request-method", method}, kv...)...)
}

// TestProcessorFollowsSpecDecisions drives every branch of docs/contract.md §3 over a
// real gRPC stream, as Envoy does.
func TestProcessorFollowsSpecDecisions(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testPolicy, Options{})
	for _, c := range specCases() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := ts.exchange(t, c.msgs...)
			for i, w := range c.want {
				checkReply(t, i, got[i], w)
			}
		})
	}
}

// specCase is one stream of messages, as Envoy sends them for one request
// under testPolicy, and the replies it must get.
type specCase struct {
	name string
	msgs []*extprocv3.ProcessingRequest
	want []reply
}

// specCases are the streams of [TestProcessorFollowsSpecDecisions]; they
// seed [FuzzProcessStream] too.
func specCases() []specCase {
	longOrigin := "https://" + strings.Repeat("a", 2100) + ".example.com"
	return []specCase{{
		name: "an allowed preflight is answered locally with every header of the policy",
		msgs: []*extprocv3.ProcessingRequest{preflight("api.example.com", app, "PUT",
			"access-control-request-headers", "content-type", "access-control-request-private-network", "true")},
		want: []reply{{kind: "immediate", status: 204, set: []string{
			"access-control-allow-credentials: true",
			"access-control-allow-headers: content-type, authorization",
			"access-control-allow-methods: GET, POST, PUT, DELETE",
			"access-control-allow-origin: " + app,
			"access-control-allow-private-network: true",
			"access-control-max-age: 600",
			"content-length: 0",
			preflightVar,
		}}},
	}, {
		name: "a preflight from an origin not allowed is refused with 403 and no access-control header",
		msgs: []*extprocv3.ProcessingRequest{preflight("api.example.com", "https://evil.example.com", "PUT")},
		want: []reply{{kind: "immediate", status: 403, set: []string{"content-length: 0", preflightVar}}},
	}, {
		name: "a preflight asking for a method not allowed is refused",
		msgs: []*extprocv3.ProcessingRequest{preflight("api.example.com", app, "PATCH")},
		want: []reply{{kind: "immediate", status: 403, set: []string{"content-length: 0", preflightVar}}},
	}, {
		name: "a preflight asking for a header not allowed is refused",
		msgs: []*extprocv3.ProcessingRequest{preflight("api.example.com", app, "PUT", "access-control-request-headers", "x-api-key")},
		want: []reply{{kind: "immediate", status: 403, set: []string{"content-length: 0", preflightVar}}},
	}, {
		name: "a preflight with two origin lines is refused as malformed",
		msgs: []*extprocv3.ProcessingRequest{preflight("api.example.com", app, "PUT", "origin", app)},
		want: []reply{{kind: "immediate", status: 403, set: []string{"content-length: 0", preflightVar}}},
	}, {
		name: "a preflight whose origin is over 2048 bytes is refused",
		msgs: []*extprocv3.ProcessingRequest{preflight("api.example.com", longOrigin, "PUT")},
		want: []reply{{kind: "immediate", status: 403, set: []string{"content-length: 0", preflightVar}}},
	}, {
		name: "a preflight whose origin carries CR LF is refused and the origin never reflected",
		msgs: []*extprocv3.ProcessingRequest{preflight("api.example.com", app+"\r\nx-evil: 1", "PUT")},
		want: []reply{{kind: "immediate", status: 403, set: []string{"content-length: 0", preflightVar}}},
	}, {
		name: "an allowed actual request gets origin, credentials and expose headers, the service's removed, origin merged into vary",
		msgs: []*extprocv3.ProcessingRequest{
			request("GET", "api.example.com", "origin", app),
			respHeaders(":status", "200", "access-control-allow-origin", "*", "access-control-max-age", "5", "vary", "accept-encoding"),
		},
		want: []reply{{kind: "request_headers"}, {kind: "response_headers",
			remove: []string{"access-control-allow-origin", "access-control-max-age"},
			set: []string{
				"access-control-allow-credentials: true",
				"access-control-allow-origin: " + app,
				"access-control-expose-headers: x-request-id",
				"vary: accept-encoding, origin",
			}}},
	}, {
		name: "a denied actual request loses the service's CORS headers and gets vary: origin",
		msgs: []*extprocv3.ProcessingRequest{
			request("POST", "api.example.com", "origin", "https://evil.example.com"),
			respHeaders(":status", "200", "access-control-allow-origin", "https://evil.example.com"),
		},
		want: []reply{{kind: "request_headers"}, {kind: "response_headers",
			remove: []string{"access-control-allow-origin"}, set: []string{"vary: origin"}}},
	}, {
		name: "a request without origin gets vary: origin on its response",
		msgs: []*extprocv3.ProcessingRequest{request("GET", "api.example.com"), respHeaders(":status", "200")},
		want: []reply{{kind: "request_headers"}, {kind: "response_headers", set: []string{"vary: origin"}}},
	}, {
		name: "a service's vary: * is left alone",
		msgs: []*extprocv3.ProcessingRequest{request("GET", "api.example.com"), respHeaders(":status", "200", "vary", "*")},
		want: []reply{{kind: "request_headers"}, {kind: "response_headers"}},
	}, {
		name: "allow-all without credentials answers * even without origin, with no vary",
		msgs: []*extprocv3.ProcessingRequest{request("GET", "public.example.com"), respHeaders(":status", "200")},
		want: []reply{{kind: "request_headers"}, {kind: "response_headers", set: []string{
			"access-control-allow-origin: *", "access-control-expose-headers: x-total"}}},
	}, {
		name: "a request matching no policy skips the response phase and is untouched if it comes anyway",
		msgs: []*extprocv3.ProcessingRequest{
			request("GET", "other.example.com", "origin", app),
			respHeaders(":status", "200", "access-control-allow-origin", "*"),
		},
		want: []reply{{kind: "request_headers", skip: true}, {kind: "response_headers"}},
	}, {
		name: "a preflight matching no policy is forwarded",
		msgs: []*extprocv3.ProcessingRequest{preflight("other.example.com", app, "PUT")},
		want: []reply{{kind: "request_headers", skip: true}},
	}, {
		name: "a policy that is off behaves as if none matched",
		msgs: []*extprocv3.ProcessingRequest{preflight("off.example.com", app, "PUT"), respHeaders(":status", "204")},
		want: []reply{{kind: "request_headers", skip: true}, {kind: "response_headers"}},
	}, {
		name: "report mode forwards a preflight and changes nothing on its response",
		msgs: []*extprocv3.ProcessingRequest{
			preflight("report.example.com", "https://evil.example.com", "PUT"),
			respHeaders(":status", "204", "access-control-allow-origin", "*"),
		},
		want: []reply{{kind: "request_headers"}, {kind: "response_headers"}},
	}, {
		name: "report mode skips the response phase of a request without origin",
		msgs: []*extprocv3.ProcessingRequest{request("GET", "report.example.com")},
		want: []reply{{kind: "request_headers", skip: true}},
	}, {
		name: "keep leaves a response whose service set its own allow-origin exactly as it is",
		msgs: []*extprocv3.ProcessingRequest{
			request("GET", "keep.example.com", "origin", app),
			respHeaders(":status", "200", "access-control-allow-origin", "https://other.example.com", "access-control-max-age", "1"),
		},
		want: []reply{{kind: "request_headers"}, {kind: "response_headers"}},
	}, {
		name: "keep treats a response without the service's allow-origin as replace",
		msgs: []*extprocv3.ProcessingRequest{
			request("GET", "keep.example.com", "origin", app),
			respHeaders(":status", "200", "access-control-max-age", "1"),
		},
		want: []reply{{kind: "request_headers"}, {kind: "response_headers",
			remove: []string{"access-control-max-age"},
			set:    []string{"access-control-allow-origin: " + app, "vary: origin"}}},
	}, {
		name: "the xds.route_name attribute picks the policy",
		msgs: []*extprocv3.ProcessingRequest{
			withRoute(request("GET", "any.example.com", "origin", "https://route.example.com"), "special-route"),
			respHeaders(":status", "200"),
		},
		want: []reply{{kind: "request_headers"}, {kind: "response_headers", set: []string{
			"access-control-allow-origin: https://route.example.com", "vary: origin"}}},
	}, {
		name: "a header sent in value instead of raw_value is still read",
		msgs: []*extprocv3.ProcessingRequest{valueOnly(request("GET", "api.example.com", "origin", app)), respHeaders(":status", "200")},
		want: []reply{{kind: "request_headers"}, {kind: "response_headers", set: []string{
			"access-control-allow-credentials: true", "access-control-allow-origin: " + app,
			"access-control-expose-headers: x-request-id", "vary: origin"}}},
	}, {
		name: "a stream that starts with response_headers continues untouched",
		msgs: []*extprocv3.ProcessingRequest{respHeaders(":status", "200", "access-control-allow-origin", "*")},
		want: []reply{{kind: "response_headers"}},
	}, {
		name: "body and trailer messages each get the matching CONTINUE",
		msgs: []*extprocv3.ProcessingRequest{
			request("POST", "api.example.com", "origin", app),
			{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte("x")}}},
			{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: &extprocv3.HttpTrailers{}}},
			respHeaders(":status", "201"),
			{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte("y"), EndOfStream: true}}},
			{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{}}},
		},
		want: []reply{{kind: "request_headers"}, {kind: "request_body"}, {kind: "request_trailers"},
			{kind: "response_headers", set: []string{
				"access-control-allow-credentials: true", "access-control-allow-origin: " + app,
				"access-control-expose-headers: x-request-id", "vary: origin"}},
			{kind: "response_body"}, {kind: "response_trailers"}},
	}}
}

// valueOnly moves every header value from raw_value to value.
func valueOnly(m *extprocv3.ProcessingRequest) *extprocv3.ProcessingRequest {
	for _, h := range m.GetRequestHeaders().GetHeaders().GetHeaders() {
		h.Value, h.RawValue = string(h.RawValue), nil
	}
	return m
}

func checkReply(t *testing.T, i int, got *extprocv3.ProcessingResponse, w reply) {
	t.Helper()
	var mut *extprocv3.HeaderMutation
	var common *extprocv3.CommonResponse
	kind := ""
	switch r := got.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		kind = "immediate"
		if s := int(r.ImmediateResponse.GetStatus().GetCode()); s != w.status {
			t.Errorf("reply %d: status %d, want %d", i, s, w.status)
		}
		mut = r.ImmediateResponse.GetHeaders()
	case *extprocv3.ProcessingResponse_RequestHeaders:
		kind, common = "request_headers", r.RequestHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		kind, common = "response_headers", r.ResponseHeaders.GetResponse()
	case *extprocv3.ProcessingResponse_RequestBody:
		kind, common = "request_body", r.RequestBody.GetResponse()
	case *extprocv3.ProcessingResponse_ResponseBody:
		kind, common = "response_body", r.ResponseBody.GetResponse()
	case *extprocv3.ProcessingResponse_RequestTrailers:
		kind = "request_trailers"
	case *extprocv3.ProcessingResponse_ResponseTrailers:
		kind = "response_trailers"
	}
	if kind != w.kind {
		t.Fatalf("reply %d: %s, want %s: %s", i, kind, w.kind, describe(got))
	}
	if common != nil {
		if common.GetStatus() != extprocv3.CommonResponse_CONTINUE {
			t.Errorf("reply %d: status %v, want CONTINUE", i, common.GetStatus())
		}
		if common.GetBodyMutation() != nil || common.GetTrailers() != nil || common.GetClearRouteCache() {
			t.Errorf("reply %d: changes more than headers: %s", i, describe(got))
		}
		mut = common.GetHeaderMutation()
	}
	if set := lines(t, mut); !equal(set, w.set) {
		t.Errorf("reply %d sets\n  %q\nwant\n  %q", i, set, w.set)
	}
	if !equal(mut.GetRemoveHeaders(), w.remove) {
		t.Errorf("reply %d removes %q, want %q", i, mut.GetRemoveHeaders(), w.remove)
	}
	skip := got.GetModeOverride().GetResponseHeaderMode() == extprocfilterv3.ProcessingMode_SKIP
	if skip != w.skip {
		t.Errorf("reply %d: response phase skipped = %v, want %v", i, skip, w.skip)
	}
	if mo := got.GetModeOverride(); mo != nil && (mo.GetRequestBodyMode() != 0 || mo.GetResponseBodyMode() != 0) {
		t.Errorf("reply %d: mode_override asks for bodies: %v", i, mo)
	}
}

// TestProcessorDebugHeaders checks --debug-headers: the decision and reason
// on the answer, and a preflight refused for its headers that names them.
func TestProcessorDebugHeaders(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testPolicy, Options{DebugHeaders: true})
	got := ts.exchange(t, preflight("api.example.com", app, "PUT", "access-control-request-headers", "x-api-key"))
	imm := got[0].GetImmediateResponse()
	if imm == nil {
		t.Fatalf("want an immediate response, got %s", describe(got[0]))
	}
	set := lines(t, imm.GetHeaders())
	for _, want := range []string{"x-corsproc-decision: denied", "x-corsproc-reason: header_not_allowed", "access-control-allow-origin: " + app} {
		if !hasPrefix(set, want) {
			t.Errorf("debug answer lacks %q: %q", want, set)
		}
	}
	if hasPrefix(set, "access-control-allow-headers") && strings.Contains(strings.Join(set, "\n"), "x-api-key") {
		t.Errorf("the refused header is allowed: %q", set)
	}
}

// TestProcessorObservabilityMode checks that no reply is sent to a message
// in observability mode, which Envoy would ignore, while it is still judged.
func TestProcessorObservabilityMode(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testPolicy, Options{})
	m := request("GET", "api.example.com", "origin", app)
	m.ObservabilityMode = true
	ts.exchange(t) // warm the connection
	stream, err := ts.client.Process(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(m); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if r, err := stream.Recv(); err == nil {
		t.Fatalf("got a reply in observability mode: %s", describe(r))
	}
	if v := metricValue(t, ts.metrics, "corsproc_requests_total", "policy=shop", "class=actual", "decision=allowed"); v != 1 {
		t.Errorf("requests_total = %v, want 1", v)
	}
}
