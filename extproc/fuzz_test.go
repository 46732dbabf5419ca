package extproc

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// fuzzPolicy is testPolicy and the policies whose answers depend most on
// what the request carries: wildcards, a regex, `*` lists with and without
// credentials.
var fuzzPolicy = testPolicy + `
  - name: wild
    match: {hosts: [wild.example.com]}
    allowed_origins: ["https://*.example.com", "http://localhost:*"]
    allowed_origin_regexes: ['^https://[a-z]+\.example\.org$']
    allow_credentials: true
    allow_methods: ["*"]
    allow_headers: ["*"]
    expose_headers: [x-total]
  - name: open
    match: {hosts: [open.example.com]}
    allow_all_origins: true
    allow_methods: ["*"]
    allow_headers: ["*"]
    allow_private_network: true
`

// encodeStream is the fuzz input for msgs: each message marshalled and
// prefixed with its length as a uvarint.
func encodeStream(tb testing.TB, msgs ...*extprocv3.ProcessingRequest) []byte {
	tb.Helper()
	var out []byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			tb.Fatal(err)
		}
		out = binary.AppendUvarint(out, uint64(len(b)))
		out = append(out, b...)
	}
	return out
}

// decodeStream splits fuzz bytes into the wire messages of one stream; a
// length past the end takes what is left.
func decodeStream(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 && len(out) < 16 {
		n, k := binary.Uvarint(data)
		if k <= 0 || n > uint64(len(data)-k) {
			out = append(out, data)
			break
		}
		out = append(out, data[k:k+int(n)])
		data = data[k+int(n):]
	}
	return out
}

// memStream is the server side of one Process stream in memory. Recv
// decodes each wire message as gRPC's codec does (an undecodable one ends
// the stream with Internal, as gRPC does); Send encodes the reply at once,
// as gRPC does inside Send, because the processor reuses its reply
// messages, and keeps a decoded copy for the checks.
type memStream struct {
	ctx     context.Context
	wire    [][]byte
	next    int
	msgs    []*extprocv3.ProcessingRequest // decoded so far; nil for an undecodable one
	replies map[int][]*extprocv3.ProcessingResponse
	sendErr error
}

func (s *memStream) Recv() (*extprocv3.ProcessingRequest, error) {
	if s.next == len(s.wire) {
		return nil, io.EOF
	}
	b := s.wire[s.next]
	s.next++
	m := new(extprocv3.ProcessingRequest)
	if err := proto.Unmarshal(b, m); err != nil {
		s.msgs = append(s.msgs, nil)
		return nil, status.Errorf(codes.Internal, "grpc: error unmarshalling request: %v", err)
	}
	s.msgs = append(s.msgs, m)
	return m, nil
}

func (s *memStream) Send(r *extprocv3.ProcessingResponse) error {
	b, err := proto.Marshal(r)
	if err != nil {
		s.sendErr = fmt.Errorf("reply to message %d cannot be encoded: %w", s.next-1, err)
		return status.Error(codes.Internal, err.Error())
	}
	c := new(extprocv3.ProcessingResponse)
	if err := proto.Unmarshal(b, c); err != nil {
		s.sendErr = fmt.Errorf("reply to message %d cannot be decoded: %w", s.next-1, err)
		return status.Error(codes.Internal, err.Error())
	}
	s.replies[s.next-1] = append(s.replies[s.next-1], c)
	return nil
}

func (s *memStream) Context() context.Context     { return s.ctx }
func (s *memStream) SetHeader(metadata.MD) error  { return nil }
func (s *memStream) SendHeader(metadata.MD) error { return nil }
func (s *memStream) SetTrailer(metadata.MD)       {}
func (s *memStream) SendMsg(m any) error          { return s.Send(m.(*extprocv3.ProcessingResponse)) }
func (s *memStream) RecvMsg(m any) error {
	r, err := s.Recv()
	if err == nil {
		proto.Merge(m.(proto.Message), r)
	}
	return err
}

// counterValue reads a counter without gathering the whole registry.
func counterValue(c prometheus.Counter) float64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		panic(err)
	}
	return d.GetCounter().GetValue()
}

// FuzzProcessStream feeds streams of ProcessingRequest messages decoded
// from fuzz bytes through the real Server.Process, with and without debug
// headers, and checks what Envoy and browsers rely on: no panic and no
// header the policy got wrong (the last-line check counts those), one
// reply of the right type per message, valid header names and values in
// every mutation, no deprecated field, never `*` with credentials, and no
// origin reflected but the request's own.
//
//	go test -run '^$' -fuzz FuzzProcessStream -fuzztime 30s ./extproc
func FuzzProcessStream(f *testing.F) {
	for _, c := range specCases() {
		f.Add(false, encodeStream(f, c.msgs...))
		f.Add(true, encodeStream(f, c.msgs...))
	}
	for _, host := range []string{"wild.example.com", "open.example.com"} {
		for _, origin := range []string{"https://a.example.com", "https://abc.example.org", "http://localhost:8080", "null"} {
			f.Add(true, encodeStream(f,
				preflight(host, origin, "PATCH", "access-control-request-headers", "x-one, authorization", "access-control-request-private-network", "true"),
				request("PATCH", host, "origin", origin),
				respHeaders(":status", "200", "access-control-allow-origin", "*", "access-control-allow-credentials", "true", "vary", "accept")))
		}
	}
	f.Add(false, encodeStream(f, &extprocv3.ProcessingRequest{}))
	f.Add(false, []byte{5, 0xff, 0xff, 0xff, 0xff, 0x0f})

	fz := newFuzzTarget(f)
	f.Fuzz(func(t *testing.T, debug bool, data []byte) {
		fz.run(t, debug, decodeStream(data))
	})
}

// fuzzTarget is the processor the fuzz targets drive: fuzzPolicy, with
// and without debug headers, sharing one Metrics.
type fuzzTarget struct {
	m       *Metrics
	servers map[bool]*Server
}

func newFuzzTarget(f *testing.F) *fuzzTarget {
	m := NewMetrics()
	path := writeFile(f, f.TempDir(), "policy.yaml", fuzzPolicy)
	p, err := LoadPolicies(path, m, discardLogger())
	if err != nil {
		f.Fatal(err)
	}
	return &fuzzTarget{m: m, servers: map[bool]*Server{
		false: NewServer(p, m, Options{Logger: discardLogger()}),
		true:  NewServer(p, m, Options{Logger: discardLogger(), DebugHeaders: true}),
	}}
}

// run feeds the wire messages of one stream through Process and checks
// it. A panic is recovered by Process and an invalid header left out by
// its last check, so both are read from their counters.
func (fz *fuzzTarget) run(t *testing.T, debug bool, wire [][]byte) {
	t.Helper()
	s := &memStream{ctx: context.Background(), wire: wire, replies: map[int][]*extprocv3.ProcessingResponse{}}
	panics, invalid := counterValue(fz.m.errs[errPanic]), counterValue(fz.m.errs[errInvalidOutput])
	err := fz.servers[debug].Process(s)
	if counterValue(fz.m.errs[errPanic]) != panics {
		t.Fatalf("the stream panicked (recovered): %v", err)
	}
	if counterValue(fz.m.errs[errInvalidOutput]) != invalid {
		t.Fatalf("the policy produced a header the last check refused")
	}
	if s.sendErr != nil {
		t.Fatal(s.sendErr)
	}
	checkStream(t, s, err)
}

// checkStream checks the replies of one stream against its messages.
func checkStream(t *testing.T, s *memStream, err error) {
	t.Helper()
	last := len(s.msgs) - 1
	switch {
	case err == nil:
	case last >= 0 && s.msgs[last] == nil && status.Code(err) == codes.Internal:
		// an undecodable message: gRPC's own error, returned as it is
	case last >= 0 && s.msgs[last] != nil && s.msgs[last].GetRequest() == nil && status.Code(err) == codes.InvalidArgument:
	default:
		t.Fatalf("stream ended with %v after %d messages", err, len(s.msgs))
	}
	var st streamOrigin
	for i, m := range s.msgs {
		replies := s.replies[i]
		if m == nil || m.GetRequest() == nil || m.GetObservabilityMode() {
			if len(replies) != 0 {
				t.Fatalf("message %d (%v) got %d replies, want none", i, m, len(replies))
			}
			if m != nil && m.GetRequestHeaders() != nil {
				st.read(m.GetRequestHeaders().GetHeaders().GetHeaders())
			}
			continue
		}
		if len(replies) != 1 {
			t.Fatalf("message %d got %d replies, want 1: %v", i, len(replies), m)
		}
		r := replies[0]
		checkNoDeprecated(t, r.ProtoReflect())
		if want, got := phaseOf(m), replyKind(r); got != want && !(want == "request_headers" && got == "immediate") {
			t.Fatalf("message %d (%s) got a %s reply: %v", i, want, got, r)
		}
		if mo := r.GetModeOverride(); mo != nil && (phaseOf(m) != "request_headers" || mo.GetRequestBodyMode() != 0 || mo.GetResponseBodyMode() != 0) {
			t.Errorf("message %d (%s): mode_override %v; corsproc sends it only to skip the response phase", i, phaseOf(m), mo)
		}
		switch req := m.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			st.read(req.RequestHeaders.GetHeaders().GetHeaders())
			if imm := r.GetImmediateResponse(); imm != nil {
				if imm.GetStatus().GetCode() < 200 {
					t.Errorf("message %d: immediate status %d", i, imm.GetStatus().GetCode())
				}
				st.check(t, i, imm.GetHeaders(), nil)
			} else {
				st.check(t, i, r.GetRequestHeaders().GetResponse().GetHeaderMutation(), nil)
			}
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			st.check(t, i, r.GetResponseHeaders().GetResponse().GetHeaderMutation(), req.ResponseHeaders.GetHeaders().GetHeaders())
		default:
			if cr := commonOf(r); cr.GetHeaderMutation() != nil || cr.GetBodyMutation() != nil {
				t.Errorf("message %d: a body or trailer reply changes something: %v", i, r)
			}
		}
	}
}

// streamOrigin is what the last request_headers message said about the
// origin, as corsproc reads it: the first origin line, raw_value first.
type streamOrigin struct {
	seen    bool
	origin  string
	origins int
}

func (o *streamOrigin) read(hs []*corev3.HeaderValue) {
	*o = streamOrigin{seen: true}
	for _, h := range hs {
		if h.GetKey() == "origin" {
			o.origins++
			if o.origins == 1 {
				o.origin = value(h)
			}
		}
	}
}

// check checks one mutation: every name and value valid, and the CORS
// answer it leaves (applied, for a response, to the service's headers as
// Envoy applies it) neither `*` with credentials nor another origin.
func (o *streamOrigin) check(t *testing.T, i int, mut *extprocv3.HeaderMutation, upstream []*corev3.HeaderValue) {
	t.Helper()
	for _, name := range mut.GetRemoveHeaders() {
		if !rfcToken(name) {
			t.Errorf("message %d: removes %q, not an RFC 9110 token", i, name)
		}
	}
	final := map[string]string{}
	for _, h := range upstream {
		if _, ok := final[h.GetKey()]; !ok {
			final[h.GetKey()] = value(h)
		}
	}
	for _, name := range mut.GetRemoveHeaders() {
		delete(final, strings.ToLower(name))
	}
	set := map[string]string{}
	for _, opt := range mut.GetSetHeaders() {
		h := opt.GetHeader()
		name, v := h.GetKey(), string(h.GetRawValue())
		if !rfcToken(name) || name != strings.ToLower(name) {
			t.Errorf("message %d: sets %q, not a lower-case RFC 9110 token", i, name)
		}
		if !rfcFieldValue(v) {
			t.Errorf("message %d: sets %s: %q, not an RFC 9110 field-value", i, name, v)
		}
		if h.GetValue() != "" {
			t.Errorf("message %d: sets %s in value; corsproc sends raw_value only", i, name)
		}
		set[name], final[name] = v, v
	}
	acao, setOrigin := set["access-control-allow-origin"]
	if setOrigin && acao != "*" && (!o.seen || o.origins != 1 || acao != o.origin) {
		t.Errorf("message %d: allow-origin %q is not the request's own origin %q (%d origin lines)", i, acao, o.origin, o.origins)
	}
	_, setCreds := set["access-control-allow-credentials"]
	if (setOrigin || setCreds) && final["access-control-allow-origin"] == "*" && final["access-control-allow-credentials"] == "true" {
		t.Errorf("message %d: answers allow-origin * with allow-credentials true", i)
	}
}

// phaseOf is the reply kind a message asks for.
func phaseOf(m *extprocv3.ProcessingRequest) string {
	switch m.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return "request_headers"
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return "response_headers"
	case *extprocv3.ProcessingRequest_RequestBody:
		return "request_body"
	case *extprocv3.ProcessingRequest_ResponseBody:
		return "response_body"
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return "request_trailers"
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return "response_trailers"
	}
	return "none"
}

// replyKind is the kind of a reply, named as phaseOf names messages.
func replyKind(r *extprocv3.ProcessingResponse) string {
	switch r.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		return "immediate"
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return "request_headers"
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return "response_headers"
	case *extprocv3.ProcessingResponse_RequestBody:
		return "request_body"
	case *extprocv3.ProcessingResponse_ResponseBody:
		return "response_body"
	case *extprocv3.ProcessingResponse_RequestTrailers:
		return "request_trailers"
	case *extprocv3.ProcessingResponse_ResponseTrailers:
		return "response_trailers"
	}
	return "none"
}

// commonOf is the CommonResponse of a body reply, nil for others.
func commonOf(r *extprocv3.ProcessingResponse) *extprocv3.CommonResponse {
	if b := r.GetRequestBody(); b != nil {
		return b.GetResponse()
	}
	return r.GetResponseBody().GetResponse()
}

// checkNoDeprecated fails on any field set anywhere in m whose proto
// declares it deprecated: what Envoy has deprecated it may stop reading.
func checkNoDeprecated(t *testing.T, m protoreflect.Message) {
	t.Helper()
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if opts, ok := fd.Options().(*descriptorpb.FieldOptions); ok && opts.GetDeprecated() {
			t.Errorf("deprecated field %s is set", fd.FullName())
		}
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				checkNoDeprecated(t, v.List().Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				checkNoDeprecated(t, mv.Message())
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			checkNoDeprecated(t, v.Message())
		}
		return true
	})
}

// rfcToken is RFC 9110 §5.6.2 token: 1*tchar. Written here again, not
// taken from the product, so that the check is independent of it.
func rfcToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// rfcFieldValue is RFC 9110 §5.5 field-value: visible ASCII, obs-text
// (0x80-0xFF), and spaces or tabs only between them.
func rfcFieldValue(s string) bool {
	if s != strings.Trim(s, " \t") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// headerCase is the structured input of FuzzProcessHeaders: the CORS
// headers of one request and of the service's response to it.
type headerCase struct {
	host, route, origin, origin2, method, requestMethod, requestHeaders, privateNetwork string
	allowOrigin, allowCredentials, vary, serviceHeader                                  string
	flags                                                                               uint8
}

// The flags of a headerCase.
const (
	hcTwoOrigins    = 1 << iota // a second origin line, origin2
	hcRequestMethod             // access-control-request-method is sent
	hcValueOnly                 // values in value, not raw_value (older Envoy)
	hcResponse                  // a response_headers message follows
	hcObservability             // the request headers in observability mode
)

// headerCaseOf reads the seed of a contract table stream back into a
// headerCase.
func headerCaseOf(msgs []*extprocv3.ProcessingRequest) headerCase {
	var hc headerCase
	for _, m := range msgs {
		for _, h := range m.GetRequestHeaders().GetHeaders().GetHeaders() {
			v := value(h)
			switch h.GetKey() {
			case ":authority":
				hc.host = v
			case ":method":
				hc.method = v
			case "origin":
				if hc.origin == "" {
					hc.origin = v
				} else {
					hc.origin2, hc.flags = v, hc.flags|hcTwoOrigins
				}
			case "access-control-request-method":
				hc.requestMethod, hc.flags = v, hc.flags|hcRequestMethod
			case "access-control-request-headers":
				hc.requestHeaders = v
			case "access-control-request-private-network":
				hc.privateNetwork = v
			}
		}
		if a := m.GetAttributes(); a != nil {
			hc.route = routeName(a)
		}
		for _, h := range m.GetResponseHeaders().GetHeaders().GetHeaders() {
			hc.flags |= hcResponse
			switch v := value(h); h.GetKey() {
			case "access-control-allow-origin":
				hc.allowOrigin = v
			case "access-control-allow-credentials":
				hc.allowCredentials = v
			case "vary":
				hc.vary = v
			case ":status":
			default:
				hc.serviceHeader = h.GetKey()
			}
		}
	}
	return hc
}

// messages builds the stream hc describes, as Envoy sends it.
func (hc headerCase) messages() []*extprocv3.ProcessingRequest {
	kv := []string{"origin", hc.origin}
	if hc.flags&hcTwoOrigins != 0 {
		kv = append(kv, "origin", hc.origin2)
	}
	if hc.flags&hcRequestMethod != 0 {
		kv = append(kv, "access-control-request-method", hc.requestMethod)
	}
	kv = append(kv, "access-control-request-headers", hc.requestHeaders, "access-control-request-private-network", hc.privateNetwork)
	req := request(hc.method, hc.host, kv...)
	if hc.route != "" {
		req = withRoute(req, hc.route)
	}
	if hc.flags&hcValueOnly != 0 {
		req = valueOnly(req)
	}
	req.ObservabilityMode = hc.flags&hcObservability != 0
	msgs := []*extprocv3.ProcessingRequest{req}
	if hc.flags&hcResponse != 0 {
		msgs = append(msgs, respHeaders(":status", "200", "access-control-allow-origin", hc.allowOrigin,
			"access-control-allow-credentials", hc.allowCredentials, "vary", hc.vary, hc.serviceHeader, "1"))
	}
	return msgs
}

// FuzzProcessHeaders is FuzzProcessStream with the CORS headers of a
// request and its response as the fuzz input instead of wire bytes, so
// that the fuzzer spends its time on what the policy judges. Each stream
// still goes through the wire encoding, as gRPC would carry it.
//
//	go test -run '^$' -fuzz FuzzProcessHeaders -fuzztime 30s ./extproc
func FuzzProcessHeaders(f *testing.F) {
	add := func(debug bool, hc headerCase) {
		f.Add(debug, hc.host, hc.route, hc.origin, hc.origin2, hc.method, hc.requestMethod, hc.requestHeaders,
			hc.privateNetwork, hc.allowOrigin, hc.allowCredentials, hc.vary, hc.serviceHeader, hc.flags)
	}
	for _, c := range specCases() {
		add(false, headerCaseOf(c.msgs))
	}
	for _, host := range []string{"wild.example.com", "open.example.com", "api.example.com"} {
		add(true, headerCase{host: host, origin: "https://a.example.com", method: "OPTIONS", requestMethod: "PATCH",
			requestHeaders: "x-one, authorization", privateNetwork: "true", flags: hcRequestMethod})
		add(false, headerCase{host: host, origin: "http://localhost:8080", method: "GET", allowOrigin: "*",
			allowCredentials: "true", vary: "accept", serviceHeader: "access-control-expose-headers", flags: hcResponse})
	}

	fz := newFuzzTarget(f)
	f.Fuzz(func(t *testing.T, debug bool, host, route, origin, origin2, method, requestMethod, requestHeaders,
		privateNetwork, allowOrigin, allowCredentials, vary, serviceHeader string, flags uint8) {
		hc := headerCase{host, route, origin, origin2, method, requestMethod, requestHeaders, privateNetwork,
			allowOrigin, allowCredentials, vary, serviceHeader, flags}
		var wire [][]byte
		for _, msg := range hc.messages() {
			b, err := proto.Marshal(msg)
			if err != nil {
				return // a string field that is not UTF-8: gRPC cannot carry it, Envoy never sends it
			}
			wire = append(wire, b)
		}
		fz.run(t, debug, wire)
	})
}
