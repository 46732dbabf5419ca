// Package extprocwire is corsproc's gRPC codec for ext_proc: it decodes a
// ProcessingRequest keeping only the headers corsproc reads, and encodes
// replies into pooled buffers.
//
// Envoy sends every request and response header in each headers message,
// 15 or more for a browser's request (cookies, user agent, ...), and
// proto.Unmarshal allocates three objects for each: most of corsproc's
// decoding and garbage went on headers it never looks at. Decode checks
// each header as proto.Unmarshal would (wire format, UTF-8 of string
// fields) and copies only the kept ones, all into one allocation.
//
// The equivalence, checked by FuzzDecode on arbitrary bytes: Decode fails
// exactly when proto.Unmarshal fails, and otherwise its message equals
// (proto.Equal) proto.Unmarshal's with [Filter] applied. Anything
// unusual in the headers part (unknown fields, a field repeated,
// deprecated attributes, more kept headers than fit) takes the slow path,
// proto.Unmarshal then Filter, so the fast path only has to be right for
// the shape Envoy sends.
package extprocwire

import (
	"strings"
	"unicode/utf8"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// keptNames are the names Kept accepts besides access-control-*.
var keptNames = [...]string{":method", ":authority", "host", ":path", ":status", "origin", "vary"}

// Kept reports whether corsproc reads the header named key: the ones
// extproc/headers.go reads, and :status. Envoy sends names lower case,
// but the processor folds the case of some (vary, access-control-*), so
// Kept folds it for all. A header read there must be kept here;
// TestKeptCoversReaders in extproc fails otherwise for the headers it
// lists.
func Kept(key string) bool {
	switch key {
	case ":method", ":authority", "host", ":path", ":status", "origin", "vary":
		return true
	}
	if key == "" {
		return false
	}
	switch key[0] {
	case ':', 'a', 'A', 'h', 'H', 'o', 'O', 'v', 'V':
	default:
		// No kept name begins otherwise, in any case: no rune but the
		// upper-case letter folds onto a, h, o or v.
		return false
	}
	const ac = "access-control-"
	if len(key) >= len(ac) && strings.EqualFold(key[:len(ac)], ac) {
		return true
	}
	if !hasUpper(key) {
		return false // Envoy's lower-case names: the switch above was exact
	}
	for _, k := range keptNames {
		if len(k) == len(key) && strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// hasUpper reports whether s has an ASCII upper-case letter. Without one,
// s case-folds onto a keptNames entry of its length only by being it: the
// runes that fold onto ASCII letters besides upper case (ſ, the Kelvin
// sign) take more than one byte.
func hasUpper(s string) bool {
	for i := range len(s) {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// internKey returns the constant for a kept key, so that it costs no
// copy; "" for the access-control-* names not listed.
func internKey(b []byte) string {
	switch string(b) { // no allocation: the conversion is only compared
	case ":method":
		return ":method"
	case ":authority":
		return ":authority"
	case "host":
		return "host"
	case ":path":
		return ":path"
	case ":status":
		return ":status"
	case "origin":
		return "origin"
	case "vary":
		return "vary"
	case "access-control-request-method":
		return "access-control-request-method"
	case "access-control-request-headers":
		return "access-control-request-headers"
	case "access-control-request-private-network":
		return "access-control-request-private-network"
	case "access-control-allow-origin":
		return "access-control-allow-origin"
	case "access-control-allow-credentials":
		return "access-control-allow-credentials"
	}
	return ""
}

// Filter removes from m's request or response headers the ones [Kept]
// rejects: what Decode's result is, applied to proto.Unmarshal's.
func Filter(m *extprocv3.ProcessingRequest) {
	var hm *corev3.HeaderMap
	switch r := m.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		hm = r.RequestHeaders.GetHeaders()
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		hm = r.ResponseHeaders.GetHeaders()
	}
	if hm == nil {
		return
	}
	kept := hm.Headers[:0]
	for _, h := range hm.Headers {
		if Kept(h.GetKey()) {
			kept = append(kept, h)
		}
	}
	clear(hm.Headers[len(kept):])
	hm.Headers = kept
}

// Field numbers, from envoy/service/ext_proc/v3/external_processor.proto
// and envoy/config/core/v3/base.proto.
const (
	fieldRequestHeaders   = 2 // ProcessingRequest, oneof request
	fieldResponseHeaders  = 3
	fieldResponseTrailers = 7 // the last of the oneof
	fieldHeaders          = 1 // HttpHeaders.headers, HeaderMap.headers
	fieldEndOfStream      = 3 // HttpHeaders
	fieldKey              = 1 // HeaderValue
	fieldValue            = 2
	fieldRawValue         = 3
)

// maxSlab is how many kept headers fit in the one allocation; more take
// the slow path.
const maxSlab = 8

// slab holds a headers message's parts in one allocation.
type slab struct {
	reqOneof  extprocv3.ProcessingRequest_RequestHeaders
	respOneof extprocv3.ProcessingRequest_ResponseHeaders
	headers   extprocv3.HttpHeaders
	hmap      corev3.HeaderMap
	ptrs      [maxSlab]*corev3.HeaderValue
	values    [maxSlab]corev3.HeaderValue
}

// span is a kept header's parts within the message.
type span struct {
	key, value, raw []byte
	hasRaw          bool
}

var mergeOpts = proto.UnmarshalOptions{Merge: true}

// Decode decodes b into m, which must be empty, keeping only the headers
// [Kept] accepts. m keeps no reference to b.
func Decode(b []byte, m *extprocv3.ProcessingRequest) error {
	return decode(b, m, nil)
}

// Request is a ProcessingRequest that a stream receives into again and
// again (grpc's RecvMsg with [Codec]), reusing its storage: the decoded
// headers live in one slab that the next message overwrites, and their
// keys and values in bytes that are only appended to until [Request.Release],
// so that a string read from an earlier message of the stream stays valid.
// Decoding it with [Codec] allocates nothing once the stream has decoded
// its first message.
//
// It embeds the message, so it is a proto.Message too: any other codec
// decodes into the embedded message as it would into a new one.
type Request struct {
	extprocv3.ProcessingRequest
	slab slab
	buf  []byte
}

// Next empties the message for the next receive; the strings of earlier
// messages stay valid.
func (r *Request) Next() { r.ProcessingRequest.Reset() }

// Release ends the stream: later messages reuse the bytes of this one's,
// so nothing read from them may be held after it. Bytes grown past
// maxKeptBuf by an unusual stream are let go rather than kept for the next.
func (r *Request) Release() {
	r.ProcessingRequest.Reset()
	if cap(r.buf) > maxKeptBuf {
		r.buf, r.slab = nil, slab{} // the slab's values view the old bytes
		return
	}
	r.buf = r.buf[:0]
}

// minBuf is the least a Request's bytes grow by: a stream's request and
// response headers fit, as Envoy sends them for a browser. maxKeptBuf is
// the most a Request keeps from one stream to the next.
const (
	minBuf     = 512
	maxKeptBuf = 64 << 10
)

// decode is Decode, into r's storage when r is not nil (then m is r's
// message).
func decode(b []byte, m *extprocv3.ProcessingRequest, r *Request) error {
	var hdrField protowire.Number
	var hdrBytes []byte
	oneofs := 0
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return slow(b, m)
		}
		l := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if l < 0 {
			return slow(b, m)
		}
		if num >= fieldRequestHeaders && num <= fieldResponseTrailers {
			oneofs++
			if (num == fieldRequestHeaders || num == fieldResponseHeaders) && typ == protowire.BytesType {
				hdrField = num
				hdrBytes, _ = protowire.ConsumeBytes(rest[n:])
			}
		}
		rest = rest[n+l:]
	}
	if hdrField == 0 || oneofs > 1 {
		// Not a headers message, or one proto merges in ways not worth
		// repeating here: the slow path.
		return slow(b, m)
	}
	var spans [maxSlab]span
	kept, size, eos, hasMap, ok := scanHeaders(hdrBytes, &spans)
	if !ok {
		return slow(b, m)
	}
	// The other fields (attributes, metadata, protocol_config, unknown
	// fields...) are proto's: merging them one by one is what decoding
	// them together does.
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		l := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if num != hdrField {
			if err := mergeOpts.Unmarshal(rest[:n+l], m); err != nil {
				return err
			}
		}
		rest = rest[n+l:]
	}
	var s *slab
	var buf []byte
	if r == nil {
		s, buf = new(slab), make([]byte, 0, size)
	} else {
		// Only the parts this message uses are cleared: the values past
		// kept are never reachable from it.
		s = &r.slab
		s.reqOneof, s.respOneof = extprocv3.ProcessingRequest_RequestHeaders{}, extprocv3.ProcessingRequest_ResponseHeaders{}
		s.headers, s.hmap = extprocv3.HttpHeaders{}, corev3.HeaderMap{}
		for i := range kept {
			s.values[i] = corev3.HeaderValue{}
		}
		if cap(r.buf)-len(r.buf) < size {
			// A new array, not a grown copy: strings of the stream's
			// earlier messages point into the old one.
			r.buf = make([]byte, 0, max(size, minBuf, 2*cap(r.buf)))
		}
		buf = r.buf[len(r.buf):len(r.buf):cap(r.buf)]
	}
	for i := range kept {
		sp := &spans[i]
		v := &s.values[i]
		if v.Key = internKey(sp.key); v.Key == "" {
			buf = append(buf, sp.key...)
			v.Key = view(buf[len(buf)-len(sp.key):])
		}
		if len(sp.value) > 0 {
			buf = append(buf, sp.value...)
			v.Value = view(buf[len(buf)-len(sp.value):])
		}
		if sp.hasRaw {
			buf = append(buf, sp.raw...)
			v.RawValue = buf[len(buf)-len(sp.raw) : len(buf) : len(buf)]
		}
		s.ptrs[i] = v
	}
	if r != nil {
		r.buf = r.buf[:len(r.buf)+len(buf)]
	}
	if kept > 0 {
		s.hmap.Headers = s.ptrs[:kept:kept]
	}
	if hasMap {
		s.headers.Headers = &s.hmap
	}
	s.headers.EndOfStream = eos
	if hdrField == fieldRequestHeaders {
		s.reqOneof.RequestHeaders = &s.headers
		m.Request = &s.reqOneof
	} else {
		s.respOneof.ResponseHeaders = &s.headers
		m.Request = &s.respOneof
	}
	return nil
}

// view is b as a string; b is never written again.
func view(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// slow is proto.Unmarshal then Filter.
func slow(b []byte, m *extprocv3.ProcessingRequest) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return err
	}
	Filter(m)
	return nil
}

// scanHeaders reads an HttpHeaders message of the shape Envoy sends (a
// header map, maybe end_of_stream), checking every header as
// proto.Unmarshal would, and fills spans with the kept ones. ok is false
// for anything else, valid or not, which the slow path then decides.
func scanHeaders(b []byte, spans *[maxSlab]span) (kept, size int, eos, sawMap, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return 0, 0, false, false, false
		}
		b = b[n:]
		switch {
		case num == fieldHeaders && typ == protowire.BytesType && !sawMap:
			hm, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return 0, 0, false, false, false
			}
			b = b[n:]
			sawMap = true
			if kept, size, ok = scanMap(hm, spans); !ok {
				return 0, 0, false, false, false
			}
		case num == fieldEndOfStream && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return 0, 0, false, false, false
			}
			b = b[n:]
			eos = v != 0
		default:
			return 0, 0, false, false, false
		}
	}
	return kept, size, eos, sawMap, true
}

func scanMap(b []byte, spans *[maxSlab]span) (kept, size int, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num != fieldHeaders || typ != protowire.BytesType {
			return 0, 0, false
		}
		b = b[n:]
		hv, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, 0, false
		}
		b = b[n:]
		var sp span
		if !scanValue(hv, &sp) {
			return 0, 0, false
		}
		if !Kept(string(sp.key)) {
			continue
		}
		if kept == maxSlab {
			return 0, 0, false
		}
		spans[kept] = sp
		kept++
		if internKey(sp.key) == "" {
			size += len(sp.key)
		}
		size += len(sp.value) + len(sp.raw)
	}
	return kept, size, true
}

// scanValue reads a HeaderValue: key and value are proto3 strings, which
// proto.Unmarshal refuses unless valid UTF-8; the last of a repeated field
// wins, as in proto.
func scanValue(b []byte, sp *span) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType || num < fieldKey || num > fieldRawValue {
			return false
		}
		b = b[n:]
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		switch num {
		case fieldKey:
			if !utf8.Valid(v) {
				return false
			}
			sp.key = v
		case fieldValue:
			if !utf8.Valid(v) {
				return false
			}
			sp.value = v
		case fieldRawValue:
			sp.raw, sp.hasRaw = v, true
		}
	}
	return true
}
