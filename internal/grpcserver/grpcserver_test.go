package grpcserver_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/corsproc/corsproc/internal/grpcserver"
	"github.com/corsproc/corsproc/internal/testutil"
)

// TestSilentConnectionsAreClosed is issue 8's item 9 after the handshake:
// a peer that completes the HTTP/2 handshake and then goes silent (never
// answers a ping) is closed once the keepalive ping goes unanswered. The
// timings are shortened here; the product's are 30 s and 10 s.
func TestSilentConnectionsAreClosed(t *testing.T) {
	t.Parallel()
	limits := grpcserver.Defaults
	limits.KeepaliveTime, limits.KeepaliveTimeout = time.Second, time.Second
	gs := grpc.NewServer(grpcserver.Options(limits, nil)...)
	healthpb.RegisterHealthServer(gs, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(ln) }()
	t.Cleanup(gs.Stop)

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(testutil.Patience()))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	// Read what the server sends, answering nothing (not even its
	// SETTINGS or PING), until it closes the connection.
	began := time.Now()
	sawPing := false
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("a silent connection was still open after %v", testutil.Patience())
			}
			break
		}
		if _, ok := f.(*http2.PingFrame); ok {
			sawPing = true
		}
	}
	if !sawPing {
		t.Errorf("the server closed the connection without pinging it first")
	}
	t.Logf("closed %v after the handshake", time.Since(began))
}
