package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/corsproc/corsproc/internal/runner"
	"github.com/corsproc/corsproc/internal/testutil"
)

// running is a runner serving in the test, on loopback.
type running struct {
	r      *runner.Runner
	log    *testutil.Buffer
	cancel context.CancelFunc
	done   chan error
}

// start runs the product's server with cfg's listeners moved to free
// loopback ports; edit adjusts the rest of the configuration first.
func start(t *testing.T, edit func(*runner.Config)) *running {
	t.Helper()
	cfg := runner.Defaults()
	cfg.GRPCAddr, cfg.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.LogLevel = -4  // debug
	cfg.SetLameduck(0) // tests that check the lameduck set their own
	if edit != nil {
		edit(&cfg)
	}
	rs := &running{log: &testutil.Buffer{}, done: make(chan error, 1)}
	r, err := runner.New(cfg, runner.Options{Log: rs.log})
	if err != nil {
		t.Fatal(err)
	}
	rs.r = r
	ctx, cancel := context.WithCancel(context.Background())
	rs.cancel = cancel
	go func() { rs.done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		rs.wait(t)
		if t.Failed() {
			t.Logf("corsproc's log:\n%s", rs.log)
		}
	})
	return rs
}

// wait returns Run's result, failing the test if Run hangs.
func (rs *running) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-rs.done:
		rs.done <- err // for the next wait
		return err
	case <-time.After(testutil.Patience()):
		t.Fatalf("Run did not return within %v", testutil.Patience())
		return nil
	}
}

func (rs *running) conn(t *testing.T) *grpc.ClientConn {
	t.Helper()
	c, err := grpc.NewClient(rs.r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func requestHeaders(kv ...string) *extprocv3.ProcessingRequest {
	return &extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{
		RequestHeaders: &extprocv3.HttpHeaders{EndOfStream: true, Headers: testutil.HeaderMap(kv...)}}}
}

// TestRunEndsHealthWatchStreamsWhenTheLameduckEnds is issue 8's item 7: an
// open Watch stream gets NOT_SERVING and then ends, so that shutdown does
// not wait for it until the grace is over.
func TestRunEndsHealthWatchStreamsWhenTheLameduckEnds(t *testing.T) {
	t.Parallel()
	rs := start(t, func(c *runner.Config) {
		c.ShutdownGrace = time.Hour // far past any test's patience
		c.SetLameduck(100 * time.Millisecond)
	})
	w, err := healthpb.NewHealthClient(rs.conn(t)).Watch(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := w.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first status: %v %v, want SERVING", r.GetStatus(), err)
	}
	began := time.Now()
	rs.cancel()
	var seen []healthpb.HealthCheckResponse_ServingStatus
	var end error
	for {
		r, err := w.Recv()
		if err != nil {
			end = err
			break
		}
		seen = append(seen, r.GetStatus())
	}
	if len(seen) == 0 || seen[len(seen)-1] != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("statuses after the shutdown began: %v, want NOT_SERVING last", seen)
	}
	if status.Code(end) != codes.Unavailable {
		t.Errorf("the Watch stream ended with %v, want Unavailable", end)
	}
	if err := rs.wait(t); err != nil {
		t.Errorf("Run: %v", err)
	}
	t.Logf("shutdown with one Watch open took %v (grace 1h, lameduck 100ms)", time.Since(began))
}

// TestRunReceivesAllTheHeadersEnvoyCanSend is item 8: Envoy lets in up to
// 8 MiB of request headers (max_request_headers_kb is at most 8192) and
// sends them in one message; a 7 MiB one is answered, not refused with
// ResourceExhausted, and an oversized CORS header in it is still denied.
func TestRunReceivesAllTheHeadersEnvoyCanSend(t *testing.T) {
	t.Parallel()
	rs := start(t, nil)
	client := extprocv3.NewExternalProcessorClient(rs.conn(t))
	big := strings.Repeat("x", 1<<20)
	var filler []string
	for i := range 7 {
		filler = append(filler, "x-filler-"+string(rune('a'+i)), big)
	}
	cases := []struct {
		name   string
		msg    *extprocv3.ProcessingRequest
		status int // of the immediate response; 0 for CONTINUE
	}{
		{"an actual request with 7 MiB of other headers is processed",
			requestHeaders(append([]string{":method", "GET", ":authority", "api.example.com", ":path", "/", "origin", "http://localhost:3000"}, filler...)...), 0},
		{"a preflight with a 7 MiB access-control-request-headers is denied",
			requestHeaders(":method", "OPTIONS", ":authority", "api.example.com", ":path", "/", "origin", "http://localhost:3000",
				"access-control-request-method", "PUT", "access-control-request-headers", strings.Repeat("a,", 7<<19)), 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience())
			defer cancel()
			stream, err := client.Process(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := stream.Send(c.msg); err != nil {
				t.Fatal(err)
			}
			r, err := stream.Recv()
			if err != nil {
				t.Fatalf("recv: %v", err)
			}
			got := int(r.GetImmediateResponse().GetStatus().GetCode())
			if got != c.status || (c.status == 0 && r.GetRequestHeaders() == nil) {
				t.Errorf("reply %v, want status %d", r, c.status)
			}
			_ = stream.CloseSend()
		})
	}
}

// TestRunClosesConnectionsThatNeverHandshake is item 9: a connection that
// sends nothing is closed after --handshake-timeout (grpc-go's default
// held it 120 s).
func TestRunClosesConnectionsThatNeverHandshake(t *testing.T) {
	t.Parallel()
	rs := start(t, func(c *runner.Config) { c.HandshakeTimeout = 500 * time.Millisecond })
	conn, err := net.Dial("tcp", rs.r.GRPCAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	began := time.Now()
	_ = conn.SetReadDeadline(time.Now().Add(testutil.Patience()))
	_, err = io.ReadAll(conn) // whatever the server says, until it closes
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("a silent connection was still open after %v", testutil.Patience())
	}
	// The server's clock starts at accept, a little before began: only a
	// close well before the timeout means something else closed it.
	if d := time.Since(began); d < 250*time.Millisecond {
		t.Errorf("closed after %v, well before the 500ms handshake timeout", d)
	}
}

// TestRunLimitsStreamsPerConnection is item 9: the server announces its
// stream limit in its HTTP/2 SETTINGS, and a stream past it waits until
// one of the open ones ends.
func TestRunLimitsStreamsPerConnection(t *testing.T) {
	t.Parallel()
	rs := start(t, func(c *runner.Config) { c.MaxConcurrentStreams = 2 })

	t.Run("the limit is in the server's SETTINGS", func(t *testing.T) {
		conn, err := net.Dial("tcp", rs.r.GRPCAddr().String())
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
		for {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatalf("no SETTINGS from the server: %v", err)
			}
			if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
				v, ok := s.Value(http2.SettingMaxConcurrentStreams)
				if !ok || v != 2 {
					t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d (set: %v), want 2", v, ok)
				}
				return
			}
		}
	})

	t.Run("a stream past the limit waits for one to end", func(t *testing.T) {
		client := extprocv3.NewExternalProcessorClient(rs.conn(t))
		ctx, cancel := context.WithTimeout(context.Background(), testutil.Patience())
		defer cancel()
		actual := requestHeaders(":method", "GET", ":authority", "api.example.com", ":path", "/", "origin", "http://localhost:3000")
		open := func() extprocv3.ExternalProcessor_ProcessClient {
			s, err := client.Process(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Send(actual); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); err != nil {
				t.Fatal(err)
			}
			return s
		}
		first, _ := open(), open()
		var released atomic.Bool
		third := make(chan error, 1)
		go func() {
			s, err := client.Process(ctx)
			if err == nil {
				err = s.Send(actual)
			}
			if err == nil {
				_, err = s.Recv()
			}
			if err == nil && !released.Load() {
				err = errors.New("a third stream was answered while two were open")
			}
			third <- err
		}()
		time.Sleep(200 * time.Millisecond) // give a limit-less server the time to answer
		released.Store(true)
		_ = first.CloseSend()
		if _, err := first.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("first stream: %v", err)
		}
		if err := <-third; err != nil {
			t.Error(err)
		}
	})
}

// TestRunObservesTheTopKItsConfigSays is serve --observe-top: /observed,
// which corsproc suggest reads, keeps as many items per policy as asked.
func TestRunObservesTheTopKItsConfigSays(t *testing.T) {
	t.Parallel()
	rs := start(t, func(c *runner.Config) { c.ObserveTop = 7 })
	res, err := http.Get("http://" + rs.r.AdminAddr().String() + "/observed")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var doc struct {
		K int `json:"k"`
	}
	if err := json.NewDecoder(res.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || doc.K != 7 {
		t.Errorf("/observed answered %d with k=%d, want 200 with k=7", res.StatusCode, doc.K)
	}
}
