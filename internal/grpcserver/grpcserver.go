// Package grpcserver holds the gRPC server options corsproc runs with next
// to Envoy. It is apart from internal/runner, which uses it, so that
// extproc's own tests (which runner's import of extproc keeps from
// importing runner) serve the processor with the product's options too.
package grpcserver

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/corsproc/corsproc/internal/extprocwire"
)

// MaxRecvMsgSize bounds one message from Envoy. Envoy accepts up to 8 MiB
// of request headers (max_request_headers_kb, and max_response_headers_kb,
// are at most 8192) and sends them all in one ProcessingRequest; the proto
// encoding adds a few bytes per header (tags and lengths) and the
// attributes. 16 MiB leaves room for that with Envoy's header count limits
// (max_headers_count), so no request Envoy lets in is refused with
// ResourceExhausted, which failure_mode_allow would let through untouched.
const MaxRecvMsgSize = 16 << 20

// Limits are the operator's bounds on connections.
type Limits struct {
	// MaxConcurrentStreams bounds the streams open at once on one
	// connection (--max-concurrent-streams).
	MaxConcurrentStreams uint32
	// HandshakeTimeout closes a connection that has not finished its TLS
	// and HTTP/2 handshake by then (--handshake-timeout).
	HandshakeTimeout time.Duration
	// KeepaliveTime is how long a connection may be silent before the
	// server pings it, and KeepaliveTimeout how long the ping may go
	// unanswered before the connection is closed: a vanished Envoy, or a
	// peer that went silent after its handshake, holds nothing for long.
	KeepaliveTime, KeepaliveTimeout time.Duration
}

// Options are the gRPC server's options for Envoy: one long-lived HTTP/2
// connection carrying a short stream per request, bounded. creds may be
// nil for plaintext.
func Options(l Limits, creds credentials.TransportCredentials) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		// Envoy pings only when its cluster asks (connection_keepalive);
		// tolerate pings every 5s, with or without streams, rather than
		// answering GOAWAY too_many_pings.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    l.KeepaliveTime,
			Timeout: l.KeepaliveTimeout,
			// Envoy keeps one connection per corsproc endpoint for ever;
			// ending it every 10 minutes (GOAWAY, streams finish within a
			// minute) lets new replicas behind a Service get their share.
			MaxConnectionAge:      10 * time.Minute,
			MaxConnectionAgeGrace: time.Minute,
		}),
		// A connection that never finishes its handshake is closed then,
		// not after grpc-go's default of 120 s.
		grpc.ConnectionTimeout(l.HandshakeTimeout),
		// Announced in SETTINGS. Envoy does not heed it (envoy#13933):
		// its cluster's max_concurrent_streams, at most this, is what
		// makes it open another connection; past the limit a stream
		// waits. High enough by default never to bite one connection.
		grpc.MaxConcurrentStreams(l.MaxConcurrentStreams),
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		// Stop and GracefulStop return only once every handler has.
		grpc.WaitForHandlers(true),
		// Decode only the headers corsproc reads, and encode replies into
		// pooled buffers: most of the CPU a request costs was protobuf and
		// garbage for headers nobody looks at (docs/benchmarks.md).
		grpc.ForceServerCodecV2(extprocwire.Codec{}),
	}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	return opts
}

// Defaults are the limits `corsproc serve` runs with when no flag says
// otherwise.
var Defaults = Limits{
	MaxConcurrentStreams: 4096,
	HandshakeTimeout:     10 * time.Second,
	KeepaliveTime:        30 * time.Second,
	KeepaliveTimeout:     10 * time.Second,
}
