package extprocwire

import (
	"bytes"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
)

func set(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD}
}

// encodeCases are the replies corsproc sends, and a few it leaves to
// proto. They seed FuzzEncode.
func encodeCases() []struct {
	name      string
	m         *extprocv3.ProcessingResponse
	encodable bool
} {
	cont := &extprocv3.CommonResponse{Status: extprocv3.CommonResponse_CONTINUE}
	return []struct {
		name      string
		m         *extprocv3.ProcessingResponse
		encodable bool
	}{
		{"CONTINUE on request headers, skipping the response", &extprocv3.ProcessingResponse{
			Response:     &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: cont}},
			ModeOverride: &extprocfilterv3.ProcessingMode{ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP}}, true},
		{"CONTINUE on response headers with CORS headers set and removed", &extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{
					SetHeaders: []*corev3.HeaderValueOption{set("access-control-allow-origin", "https://app.example.com"),
						set("access-control-allow-credentials", "true"), set("vary", "accept-encoding, origin")},
					RemoveHeaders: []string{"access-control-max-age", ""}}}}}}, true},
		{"an allowed preflight answered locally", &extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
				Status:  &typev3.HttpStatus{Code: typev3.StatusCode_NoContent},
				Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{set("access-control-allow-methods", "PUT")}},
				Details: "corsproc_preflight_allowed"}}}, true},
		{"a body chunk continued", &extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{Response: cont}}}, true},
		{"empty messages are still written", &extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
				Status: &typev3.HttpStatus{}, Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{}}}}}},
			ModeOverride: &extprocfilterv3.ProcessingMode{}}, true},
		{"dynamic metadata is written by proto inside", &extprocv3.ProcessingResponse{
			Response:        &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: cont}},
			DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{"corsproc": structpb.NewStringValue("allowed")}}}, true},
		{"metadata pre-encoded as the reply's unknown fields is written last, as proto does", withUnknownMetadata(&extprocv3.ProcessingResponse{
			Response:     &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{Response: cont}},
			ModeOverride: &extprocfilterv3.ProcessingMode{ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP}}), true},
		{"trailers are left to proto", &extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}, false},
		{"a key that is not UTF-8 is left to proto, which refuses it", &extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{
				HeaderMutation: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "\xff"}}}}}}}}, false},
		{"a typed-nil oneof is left to proto", &extprocv3.ProcessingResponse{
			Response: &extprocv3.ProcessingResponse_RequestHeaders{}}, false},
	}
}

// checkEncode: when encodable says yes, the encoding is proto.Marshal's,
// byte for byte (or, with dynamic metadata, whose map proto writes in any
// order, the same message), and its size is the one announced.
func checkEncode(t *testing.T, m *extprocv3.ProcessingResponse) bool {
	n, ok := encodable(m)
	if !ok {
		return false
	}
	got := appendResponse(nil, m)
	want, err := proto.Marshal(m)
	if err != nil {
		t.Fatalf("encodable, but proto.Marshal fails: %v", err)
	}
	if len(got) != n || n != len(want) {
		t.Fatalf("size %d, wrote %d, proto wrote %d", n, len(got), len(want))
	}
	if m.DynamicMetadata == nil && !bytes.Equal(got, want) {
		t.Fatalf("wrote\n%x\nproto wrote\n%x", got, want)
	}
	// Read back, not compared with m: unknown fields m carries read back
	// as the known fields they encode.
	var back, wantBack extprocv3.ProcessingResponse
	if err := proto.Unmarshal(want, &wantBack); err != nil {
		t.Fatalf("proto cannot read what it wrote: %v", err)
	}
	if err := proto.Unmarshal(got, &back); err != nil || !proto.Equal(&back, &wantBack) {
		t.Fatalf("what it wrote reads back as %v (%v), not %v", &back, err, &wantBack)
	}
	return true
}

// withUnknownMetadata attaches dynamic metadata to m the way
// extproc/metadata.go does: already encoded, as m's unknown fields.
func withUnknownMetadata(m *extprocv3.ProcessingResponse) *extprocv3.ProcessingResponse {
	md, err := proto.Marshal(&structpb.Struct{Fields: map[string]*structpb.Value{
		"corsproc": structpb.NewStructValue(&structpb.Struct{Fields: map[string]*structpb.Value{"decision": structpb.NewStringValue("allowed")}})}})
	if err != nil {
		panic(err)
	}
	raw := protowire.AppendBytes(protowire.AppendTag(nil, 8, protowire.BytesType), md)
	m.ProtoReflect().SetUnknown(protoreflect.RawFields(raw))
	return m
}

func TestEncode(t *testing.T) {
	for _, c := range encodeCases() {
		t.Run(c.name, func(t *testing.T) {
			if got := checkEncode(t, c.m); got != c.encodable {
				t.Errorf("encodable = %v, want %v", got, c.encodable)
			}
		})
	}
}

// FuzzEncode decodes arbitrary bytes into a reply, unknown fields and all,
// and checks any it encodes against proto.Marshal.
func FuzzEncode(f *testing.F) {
	for _, c := range encodeCases() {
		b, err := proto.Marshal(c.m)
		if err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m extprocv3.ProcessingResponse
		if proto.Unmarshal(b, &m) != nil {
			return
		}
		checkEncode(t, &m)
	})
}

func BenchmarkEncode(b *testing.B) {
	m := encodeCases()[1].m
	b.Run("impl=proto", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf, _ = proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(buf[:0], m)
			_ = proto.Size(m)
		}
	})
	b.Run("impl=extprocwire", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			if _, ok := encodable(m); !ok {
				b.Fatal("not encodable")
			}
			buf = appendResponse(buf[:0], m)
		}
	})
}
