package extprocwire

import (
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Codec is the server codec for corsproc's gRPC server: ProcessingRequest
// through [Decode], ProcessingResponse written by hand (encode.go) into a
// pooled buffer (grpc's own codec pools only messages of 1 KiB or more,
// and corsproc's replies are smaller), anything else (health checks)
// through grpc's proto codec. Install it with grpc.ForceServerCodecV2.
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
	pool := mem.DefaultBufferPool()
	if n, ok := encodable(m); ok {
		buf := pool.Get(n)
		*buf = appendResponse((*buf)[:0], m)
		return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
	}
	buf := pool.Get(proto.Size(m))
	out, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend((*buf)[:0], m)
	if err != nil {
		pool.Put(buf)
		return nil, err
	}
	*buf = out
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
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
