package extprocwire

import (
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Codec is the server codec for corsproc's gRPC server: ProcessingRequest
// through [Decode] (into a [Request] without allocating), ProcessingResponse
// written by hand (encode.go), anything else (health checks, and the
// replies encode.go does not write) through grpc's proto codec. Install it
// with grpc.ForceServerCodecV2.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// Name is the content subtype it serves, proto's.
func (Codec) Name() string { return protoenc.Name }

func fallback() encoding.CodecV2 { return encoding.GetCodecV2(protoenc.Name) }

// Marshal encodes v.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*extprocv3.ProcessingResponse)
	if !ok {
		return fallback().Marshal(v)
	}
	if n, ok := encodable(m); ok {
		if mem.IsBelowBufferPoolingThreshold(n) {
			// grpc never returns a buffer this small to its pool
			// (mem.NewBuffer), so taking one from it would only add a
			// pool miss to the allocation.
			return mem.BufferSlice{mem.SliceBuffer(appendResponse(make([]byte, 0, n), m))}, nil
		}
		pool := mem.DefaultBufferPool()
		buf := pool.Get(n)
		*buf = appendResponse((*buf)[:0], m)
		return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
	}
	return fallback().Marshal(v)
}

// Unmarshal decodes data into v.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	var m *extprocv3.ProcessingRequest
	var r *Request
	switch v := v.(type) {
	case *Request:
		m, r = &v.ProcessingRequest, v
	case *extprocv3.ProcessingRequest:
		m = v
	default:
		return fallback().Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	return decode(buf.ReadOnlyData(), m, r)
}
