package extprocwire

import (
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The encoder writes the replies corsproc sends (CONTINUE, a header
// mutation, an immediate response, a mode_override), byte for byte as
// proto.Marshal does: fields in number order, a oneof last, a set message
// field even when empty. proto.Size walks each message through the generic
// table-driven code, and was as costly as the marshal itself. Any field
// it does not know, unknown fields below the top level, a typed-nil oneof
// or a string that
// is not UTF-8 (which proto.Marshal refuses) make encodable report false,
// and the codec falls back to proto. FuzzEncode checks both claims.

// encodable reports whether appendResponse writes m as proto.Marshal
// would, and returns its size.
func encodable(m *extprocv3.ProcessingResponse) (int, bool) {
	if m.TypedDynamicMetadata != nil || m.RequestDrain || m.RequestDrainRequests || m.RequestDrainResponses ||
		m.OverrideMessageTimeout != nil || m.ServerWindowUpdate != nil {
		return 0, false
	}
	// A reply's own unknown fields are written last, verbatim, as
	// proto.Marshal writes them: that is how corsproc attaches its
	// pre-encoded dynamic metadata (extproc/metadata.go).
	n := len(m.ProtoReflect().GetUnknown())
	switch r := m.Response.(type) {
	case nil:
	case *extprocv3.ProcessingResponse_RequestHeaders:
		if r.RequestHeaders == nil || unknown(r.RequestHeaders) {
			return 0, false
		}
		s, ok := sizeCommon(r.RequestHeaders.Response, true)
		if !ok {
			return 0, false
		}
		n += msgSize(msgSize(s)) // a HeadersResponse or BodyResponse around it
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		if r.ResponseHeaders == nil || unknown(r.ResponseHeaders) {
			return 0, false
		}
		s, ok := sizeCommon(r.ResponseHeaders.Response, true)
		if !ok {
			return 0, false
		}
		n += msgSize(msgSize(s)) // a HeadersResponse or BodyResponse around it
	case *extprocv3.ProcessingResponse_RequestBody:
		if r.RequestBody == nil || unknown(r.RequestBody) {
			return 0, false
		}
		s, ok := sizeCommon(r.RequestBody.Response, true)
		if !ok {
			return 0, false
		}
		n += msgSize(msgSize(s)) // a HeadersResponse or BodyResponse around it
	case *extprocv3.ProcessingResponse_ResponseBody:
		if r.ResponseBody == nil || unknown(r.ResponseBody) {
			return 0, false
		}
		s, ok := sizeCommon(r.ResponseBody.Response, true)
		if !ok {
			return 0, false
		}
		n += msgSize(msgSize(s)) // a HeadersResponse or BodyResponse around it
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		s, ok := sizeImmediate(r.ImmediateResponse, true)
		if !ok {
			return 0, false
		}
		n += msgSize(s)
	default: // trailers and anything newer: proto's
		return 0, false
	}
	if m.DynamicMetadata != nil {
		n += msgSize(proto.Size(m.DynamicMetadata))
	}
	if m.ModeOverride != nil {
		s, ok := sizeMode(m.ModeOverride)
		if !ok {
			return 0, false
		}
		n += msgSize(s)
	}
	return n, true
}

// unknown reports whether m carries unknown fields.
func unknown(m proto.Message) bool { return len(m.ProtoReflect().GetUnknown()) > 0 }

// msgSize is the size of a length-delimited field of a one-byte tag.
func msgSize(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

func varintSize(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeVarint(v)
}

func boolSize(v bool) int {
	if v {
		return 2
	}
	return 0
}

func stringSize(s string, check bool) (int, bool) {
	if s == "" {
		return 0, true
	}
	return msgSize(len(s)), !check || utf8.ValidString(s)
}

// The size functions return a message's encoded size. With check they also
// report whether the encoder writes it as proto.Marshal would (no unknown
// fields, valid UTF-8), which is encodable's question; the appenders, run
// after encodable said yes, only need the sizes and pass false.
func sizeCommon(c *extprocv3.CommonResponse, check bool) (int, bool) {
	if c == nil {
		return 0, false // the field is absent: this is not a message proto would write the same way here
	}
	if c.BodyMutation != nil || c.Trailers != nil || check && unknown(c) {
		return 0, false
	}
	n := varintSize(uint64(c.Status)) + boolSize(c.ClearRouteCache)
	if c.HeaderMutation != nil {
		s, ok := sizeMutation(c.HeaderMutation, check)
		if !ok {
			return 0, false
		}
		n += msgSize(s)
	}
	return n, true
}

func sizeMutation(m *extprocv3.HeaderMutation, check bool) (int, bool) {
	if check && unknown(m) {
		return 0, false
	}
	n := 0
	for _, o := range m.SetHeaders {
		if o == nil || o.Append != nil || check && unknown(o) {
			return 0, false
		}
		s := varintSize(uint64(o.AppendAction)) + boolSize(o.KeepEmptyValue)
		if h := o.Header; h != nil {
			if check && unknown(h) {
				return 0, false
			}
			k, ok1 := stringSize(h.Key, check)
			v, ok2 := stringSize(h.Value, check)
			if !ok1 || !ok2 {
				return 0, false
			}
			hs := k + v
			if len(h.RawValue) > 0 {
				hs += msgSize(len(h.RawValue))
			}
			s += msgSize(hs)
		}
		n += msgSize(s)
	}
	for _, r := range m.RemoveHeaders {
		if check && !utf8.ValidString(r) {
			return 0, false
		}
		n += msgSize(len(r)) // repeated: written even when empty
	}
	return n, true
}

func sizeImmediate(r *extprocv3.ImmediateResponse, check bool) (int, bool) {
	if r == nil || r.GrpcStatus != nil || check && unknown(r) {
		return 0, false
	}
	n := 0
	if r.Status != nil {
		if check && unknown(r.Status) {
			return 0, false
		}
		n += msgSize(varintSize(uint64(r.Status.Code)))
	}
	if r.Headers != nil {
		s, ok := sizeMutation(r.Headers, check)
		if !ok {
			return 0, false
		}
		n += msgSize(s)
	}
	if len(r.Body) > 0 {
		n += msgSize(len(r.Body))
	}
	d, ok := stringSize(r.Details, check)
	return n + d, ok
}

func sizeMode(m *extprocfilterv3.ProcessingMode) (int, bool) {
	if unknown(m) {
		return 0, false
	}
	return varintSize(uint64(m.RequestHeaderMode)) + varintSize(uint64(m.ResponseHeaderMode)) +
		varintSize(uint64(m.RequestBodyMode)) + varintSize(uint64(m.ResponseBodyMode)) +
		varintSize(uint64(m.RequestTrailerMode)) + varintSize(uint64(m.ResponseTrailerMode)), true
}

// appendResponse appends m, for which encodable reported true.
func appendResponse(b []byte, m *extprocv3.ProcessingResponse) []byte {
	if m.DynamicMetadata != nil {
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(proto.Size(m.DynamicMetadata)))
		b, _ = proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m.DynamicMetadata) // sized above
	}
	if o := m.ModeOverride; o != nil {
		s, _ := sizeMode(o)
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(s))
		b = appendVarintField(b, 1, uint64(o.RequestHeaderMode))
		b = appendVarintField(b, 2, uint64(o.ResponseHeaderMode))
		b = appendVarintField(b, 3, uint64(o.RequestBodyMode))
		b = appendVarintField(b, 4, uint64(o.ResponseBodyMode))
		b = appendVarintField(b, 5, uint64(o.RequestTrailerMode))
		b = appendVarintField(b, 6, uint64(o.ResponseTrailerMode))
	}
	// proto.Marshal writes a oneof after the other fields.
	switch r := m.Response.(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		b = appendCommonIn(b, 1, r.RequestHeaders.Response)
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		b = appendCommonIn(b, 2, r.ResponseHeaders.Response)
	case *extprocv3.ProcessingResponse_RequestBody:
		b = appendCommonIn(b, 3, r.RequestBody.Response)
	case *extprocv3.ProcessingResponse_ResponseBody:
		b = appendCommonIn(b, 4, r.ResponseBody.Response)
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		b = appendImmediate(b, 7, r.ImmediateResponse)
	}
	return append(b, m.ProtoReflect().GetUnknown()...)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func appendBoolField(b []byte, num protowire.Number, v bool) []byte {
	if !v {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), 1)
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func appendStringField(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), v)
}

// appendCommonIn writes a HeadersResponse or BodyResponse (both are
// {CommonResponse response = 1}) as field num.
func appendCommonIn(b []byte, num protowire.Number, c *extprocv3.CommonResponse) []byte {
	s, _ := sizeCommon(c, false)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(msgSize(s)))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(s))
	b = appendVarintField(b, 1, uint64(c.Status))
	if c.HeaderMutation != nil {
		b = appendMutation(b, 2, c.HeaderMutation)
	}
	return appendBoolField(b, 5, c.ClearRouteCache)
}

func appendMutation(b []byte, num protowire.Number, m *extprocv3.HeaderMutation) []byte {
	s, _ := sizeMutation(m, false)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(s))
	for _, o := range m.SetHeaders {
		b = appendOption(b, o)
	}
	for _, r := range m.RemoveHeaders {
		b = protowire.AppendString(protowire.AppendTag(b, 2, protowire.BytesType), r)
	}
	return b
}

func appendOption(b []byte, o *corev3.HeaderValueOption) []byte {
	hs := 0
	if h := o.Header; h != nil {
		k, _ := stringSize(h.Key, false)
		v, _ := stringSize(h.Value, false)
		hs = k + v
		if len(h.RawValue) > 0 {
			hs += msgSize(len(h.RawValue))
		}
	}
	s := varintSize(uint64(o.AppendAction)) + boolSize(o.KeepEmptyValue)
	if o.Header != nil {
		s += msgSize(hs)
	}
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(s))
	if h := o.Header; h != nil {
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(hs))
		b = appendStringField(b, 1, h.Key)
		b = appendStringField(b, 2, h.Value)
		b = appendBytesField(b, 3, h.RawValue)
	}
	b = appendVarintField(b, 3, uint64(o.AppendAction))
	return appendBoolField(b, 4, o.KeepEmptyValue)
}

func appendImmediate(b []byte, num protowire.Number, r *extprocv3.ImmediateResponse) []byte {
	s, _ := sizeImmediate(r, false)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(s))
	if r.Status != nil {
		b = appendStatus(b, r.Status)
	}
	if r.Headers != nil {
		b = appendMutation(b, 2, r.Headers)
	}
	b = appendBytesField(b, 3, r.Body)
	return appendStringField(b, 5, r.Details)
}

func appendStatus(b []byte, st *typev3.HttpStatus) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(varintSize(uint64(st.Code))))
	return appendVarintField(b, 1, uint64(st.Code))
}
