package extprocwire

import (
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

func hv(k, v string) *corev3.HeaderValue { return &corev3.HeaderValue{Key: k, RawValue: []byte(v)} }

func headersMsg(resp bool, hs ...*corev3.HeaderValue) *extprocv3.ProcessingRequest {
	h := &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{Headers: hs}, EndOfStream: true}
	if resp {
		return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: h}}
	}
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: h}}
}

// browserRequest is what Envoy sends for a browser's request without
// forward_rules: 15 headers, four of which corsproc reads.
var browserRequest = headersMsg(false,
	hv(":authority", "api.example.com"), hv(":path", "/v1/cart"), hv(":method", "GET"), hv(":scheme", "https"),
	hv("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"),
	hv("accept", "application/json"), hv("accept-encoding", "gzip, deflate, br"), hv("accept-language", "en-GB,en;q=0.9"),
	hv("cookie", "session=0123456789abcdef"), hv("referer", "https://app.example.com/cart"), hv("x-forwarded-proto", "https"),
	hv("x-request-id", "4f1c2e8a"), hv("x-envoy-external-address", "203.0.113.7"), hv("origin", "https://app.example.com"),
	hv("x-forwarded-for", "203.0.113.7"))

func mustMarshal(t testing.TB, m proto.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeCases are messages Decode must read as proto.Unmarshal then Filter
// would. They seed FuzzDecode.
func decodeCases(t testing.TB) []struct {
	name string
	b    []byte
} {
	withAttrs := headersMsg(false, hv("origin", "https://a.example"), hv("cookie", "x"))
	withAttrs.Attributes = map[string]*structpb.Struct{"envoy.filters.http.ext_proc": {Fields: map[string]*structpb.Value{
		"xds.route_name": structpb.NewStringValue("shop")}}}
	withAttrs.ProtocolConfig = &extprocv3.ProtocolConfiguration{SendBodyWithoutWaitingForHeaderResponse: true}
	plainValue := headersMsg(true, &corev3.HeaderValue{Key: "access-control-allow-origin", Value: "*"}, &corev3.HeaderValue{Key: "server", Value: "x"})
	many := headersMsg(true)
	for range maxSlab + 1 {
		many.GetResponseHeaders().Headers.Headers = append(many.GetResponseHeaders().Headers.Headers, hv("vary", "origin"))
	}
	b := mustMarshal(t, browserRequest)
	// HeaderValue{key: "x-\xff"} in a HeaderMap in request_headers, which
	// proto.Marshal refuses to write.
	badKey := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte("x-\xff"))
	for _, num := range []protowire.Number{1, 1, 2} {
		badKey = protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), badKey)
	}
	return []struct {
		name string
		b    []byte
	}{
		{"a browser's request keeps the four headers corsproc reads", b},
		{"a service's response keeps vary and its CORS headers", mustMarshal(t, headersMsg(true,
			hv(":status", "200"), hv("content-type", "text/html"), hv("vary", "accept-encoding"),
			hv("access-control-allow-origin", "*"), hv("access-control-max-age", "5"), hv("date", "today")))},
		{"upper-case CORS names are kept, as the processor folds their case", mustMarshal(t, headersMsg(true,
			hv("Vary", "origin"), hv("Access-Control-Allow-Origin", "*"), hv("Server", "x")))},
		{"attributes and protocol_config are kept", mustMarshal(t, withAttrs)},
		{"a header in value rather than raw_value is kept", mustMarshal(t, plainValue)},
		{"more kept headers than the slab holds", mustMarshal(t, many)},
		{"headers without a header map", mustMarshal(t, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{EndOfStream: true}}})},
		{"a body message is proto's", mustMarshal(t, &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte("x")}}})},
		{"an empty message", nil},
		{"two headers fields: the last wins", append(mustMarshal(t, headersMsg(true, hv("vary", "a"))), mustMarshal(t, headersMsg(false, hv("origin", "b")))...)},
		{"a cut message fails", b[:len(b)-3]},
		{"a key that is not UTF-8 fails", badKey},
		{"an unknown field in a header value", protowire.AppendVarint(protowire.AppendTag(mustMarshal(t, headersMsg(false, hv("origin", "x"))), 99, protowire.VarintType), 1)},
	}
}

// checkDecode is the equivalence: Decode fails exactly when proto.Unmarshal
// does, and otherwise yields proto.Unmarshal's message, filtered. The same
// holds for a Request that already decoded a message of its stream, and
// that message's strings are left as they were.
func checkDecode(t *testing.T, b []byte) {
	var want, got extprocv3.ProcessingRequest
	errWant := proto.Unmarshal(b, &want)
	errGot := Decode(b, &got)
	if (errWant == nil) != (errGot == nil) {
		t.Fatalf("Decode error %v, proto.Unmarshal error %v", errGot, errWant)
	}
	var r Request
	first := mustMarshal(t, browserRequest)
	if err := decodeInto(first, &r); err != nil {
		t.Fatal(err)
	}
	earlier := headerStrings(&r.ProcessingRequest)
	r.Next()
	errReused := decodeInto(b, &r)
	if (errWant == nil) != (errReused == nil) {
		t.Fatalf("decoding into a Request: error %v, proto.Unmarshal error %v", errReused, errWant)
	}
	if again := headerStrings(mustUnmarshalFiltered(t, first)); !slices.Equal(earlier, again) {
		t.Fatalf("the stream's earlier message read %q, want %q", earlier, again)
	}
	if errWant != nil {
		return
	}
	Filter(&want)
	if !proto.Equal(&want, &got) {
		t.Fatalf("Decode gave\n%v\nproto.Unmarshal then Filter gave\n%v", &got, &want)
	}
	if !proto.Equal(&want, &r.ProcessingRequest) {
		t.Fatalf("decoding into a Request gave\n%v\nproto.Unmarshal then Filter gave\n%v", &r.ProcessingRequest, &want)
	}
}

// decodeInto decodes b into r as Codec does.
func decodeInto(b []byte, r *Request) error {
	return Codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, r)
}

func mustUnmarshalFiltered(t *testing.T, b []byte) *extprocv3.ProcessingRequest {
	var m extprocv3.ProcessingRequest
	if err := proto.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	Filter(&m)
	return &m
}

// headerStrings are the keys and values of m's request headers, as strings
// that view the decoded bytes.
func headerStrings(m *extprocv3.ProcessingRequest) []string {
	var out []string
	for _, h := range m.GetRequestHeaders().GetHeaders().GetHeaders() {
		out = append(out, h.GetKey(), h.GetValue(), string(h.GetRawValue()))
	}
	return out
}

func TestDecode(t *testing.T) {
	for _, c := range decodeCases(t) {
		t.Run(c.name, func(t *testing.T) { checkDecode(t, c.b) })
	}
}

func TestDecodeAllocatesThriceForBrowserRequest(t *testing.T) {
	b := mustMarshal(t, browserRequest)
	allocs := testing.AllocsPerRun(100, func() {
		if err := Decode(b, new(extprocv3.ProcessingRequest)); err != nil {
			t.Fatal(err)
		}
	})
	// The message (grpc allocates it in any case), the slab and the bytes
	// of the kept headers; proto.Unmarshal makes 54.
	if allocs > 3 {
		t.Errorf("Decode allocates %v times, want 3", allocs)
	}
}

// TestRequestStreamAllocatesNothing is a stream's two headers messages
// decoded into its Request, once the Request has its bytes.
func TestRequestStreamAllocatesNothing(t *testing.T) {
	// As grpc hands them to the codec, built before counting.
	msgs := []mem.BufferSlice{
		{mem.SliceBuffer(mustMarshal(t, browserRequest))},
		{mem.SliceBuffer(mustMarshal(t, headersMsg(true, hv(":status", "200"), hv("vary", "accept-encoding"), hv("server", "x"))))},
	}
	var r Request
	allocs := testing.AllocsPerRun(100, func() {
		for _, m := range msgs {
			r.Next()
			if err := (Codec{}).Unmarshal(m, &r); err != nil {
				t.Fatal(err)
			}
		}
		r.Release()
	})
	if allocs > 0 {
		t.Errorf("a stream's messages allocate %v times, want 0", allocs)
	}
}

// TestRequestLetsGoOfLargeBytes: a stream with headers far larger than a
// browser sends does not leave its bytes to every later stream.
func TestRequestLetsGoOfLargeBytes(t *testing.T) {
	var r Request
	big := mustMarshal(t, headersMsg(false, hv("origin", strings.Repeat("a", 2*maxKeptBuf))))
	if err := decodeInto(big, &r); err != nil {
		t.Fatal(err)
	}
	if got := r.GetRequestHeaders().GetHeaders().GetHeaders()[0].GetRawValue(); len(got) != 2*maxKeptBuf {
		t.Fatalf("decoded an origin of %d bytes, want %d", len(got), 2*maxKeptBuf)
	}
	r.Release()
	if cap(r.buf) != 0 || r.slab.values[0].RawValue != nil {
		t.Errorf("after Release the Request still holds %d bytes (slab value %d bytes)", cap(r.buf), len(r.slab.values[0].RawValue))
	}
	small := mustMarshal(t, browserRequest)
	if err := decodeInto(small, &r); err != nil {
		t.Fatal(err)
	}
	r.Release()
	if cap(r.buf) == 0 {
		t.Error("a browser request's bytes are not kept for the next stream")
	}
}

func FuzzDecode(f *testing.F) {
	for _, c := range decodeCases(f) {
		f.Add(c.b)
	}
	f.Fuzz(checkDecode)
}

func BenchmarkDecode(b *testing.B) {
	msg := mustMarshal(b, browserRequest)
	b.Run("impl=proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m extprocv3.ProcessingRequest
			if err := proto.Unmarshal(msg, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=extprocwire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var m extprocv3.ProcessingRequest
			if err := Decode(msg, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("impl=extprocwire-reused", func(b *testing.B) {
		b.ReportAllocs()
		var r Request
		data := mem.BufferSlice{mem.SliceBuffer(msg)}
		for b.Loop() {
			r.Next()
			if err := (Codec{}).Unmarshal(data, &r); err != nil {
				b.Fatal(err)
			}
			r.Release()
		}
	})
}

// TestKeptFoldsCase: the names corsproc reads are kept in any ASCII case,
// and only those: not a name where a rune that Unicode folds onto an ASCII
// letter (ſ, the Kelvin sign) stands for it.
func TestKeptFoldsCase(t *testing.T) {
	for _, c := range []struct {
		key  string
		want bool
	}{
		{"origin", true}, {"Origin", true}, {"VARY", true}, {"Host", true}, {":Authority", true},
		{"access-control-request-method", true}, {"Access-Control-Max-Age", true},
		{"accept", false}, {"user-agent", false}, {"hoſt", false}, {"\u212Aey", false}, {"", false},
		{"x-origin", false}, {"origins", false},
	} {
		if got := Kept(c.key); got != c.want {
			t.Errorf("Kept(%q) = %v, want %v", c.key, got, c.want)
		}
		// The definition: the names extproc reads, ASCII case folded.
		lower := asciiLower(c.key)
		want := slices.Contains(keptNames[:], lower) || strings.HasPrefix(lower, "access-control-")
		if want != c.want {
			t.Errorf("the table says %q is kept=%v, EqualFold says %v", c.key, c.want, want)
		}
	}
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
