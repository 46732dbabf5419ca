package main

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/corsproc/corsproc/internal/testutil"
)

// openStream starts an Envoy-like stream and completes its request phase
// for an actual CORS request, leaving the response phase to come.
func openStream(t *testing.T, c *grpc.ClientConn) extprocv3.ExternalProcessor_ProcessClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := extprocv3.NewExternalProcessorClient(c).Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{EndOfStream: true, Headers: testutil.HeaderMap(":method", "GET", ":authority", "api.example.com", ":path", "/",
			"origin", "http://localhost:3000")}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatalf("request phase: %v", err)
	}
	return stream
}

// finishStream plays the response phase and the half-close; it returns the
// access-control-allow-origin corsproc set.
func finishStream(stream extprocv3.ExternalProcessor_ProcessClient) (string, error) {
	err := stream.Send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{
		ResponseHeaders: &extprocv3.HttpHeaders{Headers: testutil.HeaderMap(":status", "200")}}})
	if err != nil {
		return "", err
	}
	r, err := stream.Recv()
	if err != nil {
		return "", err
	}
	if err := stream.CloseSend(); err != nil {
		return "", err
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		return "", errors.New("want EOF after half-close, got " + errString(err))
	}
	for _, h := range r.GetResponseHeaders().GetResponse().GetHeaderMutation().GetSetHeaders() {
		if h.GetHeader().GetKey() == "access-control-allow-origin" {
			return string(h.GetHeader().GetRawValue()), nil
		}
	}
	return "", nil
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

// TestServeDrainsGracefullyOnSIGTERM follows a SIGTERM: NOT_SERVING and
// unready at once, new streams still served during the lameduck period, a
// stream in flight finishing during GracefulStop, then exit 0.
func TestServeDrainsGracefullyOnSIGTERM(t *testing.T) {
	t.Parallel()
	// The lameduck is long enough for the checks made during it on a
	// loaded machine under -race; the grace far longer than any test waits,
	// so that an exit at all shows GracefulStop ending with the last stream.
	s := startServe(t, nil, "--shutdown-grace", "1h", "--lameduck", testutil.Lameduck().String())
	c := s.conn(t)
	inFlight := openStream(t, c)

	s.signal(syscall.SIGTERM)
	signalled := time.Now()
	testutil.WaitUntil(t, "health to report NOT_SERVING", func() bool {
		st, err := healthStatus(t, c, "")
		return err == nil && st == healthpb.HealthCheckResponse_NOT_SERVING
	})
	if code, _ := s.get(t, "/readyz"); code != 503 {
		t.Errorf("/readyz while draining: %d, want 503", code)
	}
	if got := preflightReply(t, c, "api.example.com", "http://localhost:3000"); got != 204 {
		t.Errorf("a new stream during the lameduck period got %d, want 204", got)
	}
	if st, err := healthStatus(t, c, "envoy.service.ext_proc.v3.ExternalProcessor"); err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("ext_proc service health while draining: %v %v", st, err)
	}

	// GracefulStop closes the listener first; from then on it waits for us.
	testutil.WaitUntil(t, "GracefulStop to close the listener", func() bool {
		conn, err := net.DialTimeout("tcp", s.grpcAddr, testutil.Patience())
		if err != nil {
			return true
		}
		conn.Close()
		return false
	})
	acao, err := finishStream(inFlight)
	if err != nil {
		t.Fatalf("the stream in flight was not allowed to finish: %v", err)
	}
	if acao != "http://localhost:3000" {
		t.Errorf("the stream in flight got access-control-allow-origin %q", acao)
	}
	if code := s.wait(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	t.Logf("shutdown took %v with a 1h grace: GracefulStop ended with the last stream", time.Since(signalled))
}

// TestServeStopsStreamsLeftOpenPastTheGrace checks the bound: a stream that
// never ends is cut when --shutdown-grace is over, and serve exits 0.
func TestServeStopsStreamsLeftOpenPastTheGrace(t *testing.T) {
	t.Parallel()
	s := startServe(t, nil, "--shutdown-grace", "1s", "--lameduck", "200ms")
	stuck := openStream(t, s.conn(t))
	start := time.Now() // before the signal: serve's grace cannot start earlier
	s.signal(syscall.SIGTERM)
	if code := s.wait(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	// Never before the grace is over: the stream was cut by the bound,
	// not by anything else. (How long after is up to the machine's load.)
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("exited %v after SIGTERM, before the 1s grace was over", d)
	}
	if _, err := stuck.Recv(); err == nil {
		t.Errorf("the stuck stream got a reply instead of being closed")
	}
}

// TestServeStopsAtOnceOnASecondSignal checks that an impatient operator's
// second SIGINT skips the rest of the drain.
func TestServeStopsAtOnceOnASecondSignal(t *testing.T) {
	t.Parallel()
	// Both far longer than any test waits: exiting at all is skipping them.
	s := startServe(t, nil, "--shutdown-grace", "2h", "--lameduck", "1h")
	openStream(t, s.conn(t))
	start := time.Now()
	s.signal(syscall.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	s.signal(syscall.SIGINT)
	if code := s.wait(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	t.Logf("exited %v after the second signal", time.Since(start))
}

// TestServeShutsDownWhenTheContextEnds checks the path main takes: its
// NotifyContext cancels ctx on SIGTERM or SIGINT.
func TestServeShutsDownWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	s := startServe(t, nil, "--shutdown-grace", "1s", "--lameduck", "0s")
	c := s.conn(t)
	s.cancel()
	if code := s.wait(t); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if _, err := healthStatus(t, c, ""); err == nil {
		t.Errorf("health still answers after exit")
	}
}
