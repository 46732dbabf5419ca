package runner

import (
	"context"
	"net/http"
	"sync"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// health is the one readiness state behind grpc.health.v1 (what Envoy's
// and Kubernetes' gRPC probes ask) and /readyz (what HTTP probes ask):
// SERVING once a policy is loaded (and, with --kubernetes, once the
// CORSPolicy objects are listed and run), NOT_SERVING from the start of the
// drain. Watch streams end when the lameduck does, so that GracefulStop
// does not wait on them for the whole grace.
type health struct {
	healthpb.UnimplementedHealthServer

	mu       sync.Mutex
	draining bool
	starting string        // why it is not ready yet; "" once it is
	changed  chan struct{} // closed and replaced when draining changes
	ended    chan struct{} // closed when Watch streams must end
	endOnce  sync.Once
}

// services are the names health answers for: the server as a whole ("")
// and the ext_proc service.
var services = []string{"", extprocv3.ExternalProcessor_ServiceDesc.ServiceName}

func newHealth() *health {
	return &health{changed: make(chan struct{}), ended: make(chan struct{})}
}

// drain reports NOT_SERVING from now on.
func (h *health) drain() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.draining {
		h.draining = true
		close(h.changed)
		h.changed = make(chan struct{})
	}
}

// waitFor reports NOT_SERVING, saying why, until [health.started].
func (h *health) waitFor(why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.starting = why
}

// started ends what waitFor began.
func (h *health) started() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.starting != "" {
		h.starting = ""
		close(h.changed)
		h.changed = make(chan struct{})
	}
}

// endWatches ends every Watch stream, open or to come, after its last
// NOT_SERVING.
func (h *health) endWatches() { h.endOnce.Do(func() { close(h.ended) }) }

func (h *health) state() (healthpb.HealthCheckResponse_ServingStatus, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining || h.starting != "" {
		return healthpb.HealthCheckResponse_NOT_SERVING, h.changed
	}
	return healthpb.HealthCheckResponse_SERVING, h.changed
}

// why says why it is not serving.
func (h *health) why() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining {
		return "draining"
	}
	return h.starting
}

func known(service string) bool {
	for _, s := range services {
		if s == service {
			return true
		}
	}
	return false
}

// Check answers a probe: NotFound for a service corsproc does not serve,
// as grpc-go's health server does.
func (h *health) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if !known(req.GetService()) {
		return nil, status.Error(codes.NotFound, "unknown service")
	}
	st, _ := h.state()
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

// List answers every service's status.
func (h *health) List(context.Context, *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	st, _ := h.state()
	out := &healthpb.HealthListResponse{Statuses: map[string]*healthpb.HealthCheckResponse{}}
	for _, s := range services {
		out.Statuses[s] = &healthpb.HealthCheckResponse{Status: st}
	}
	return out, nil
}

// Watch sends the status now and on every change, until the client goes
// or the lameduck ends; an unknown service gets SERVICE_UNKNOWN.
func (h *health) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	last := healthpb.HealthCheckResponse_ServingStatus(-1)
	for {
		st, changed := h.state()
		if !known(req.GetService()) {
			st = healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		}
		if st != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		select {
		case <-changed:
		case <-h.ended:
			// The last status sent says NOT_SERVING (ended comes after
			// drain), so the client knows why the stream ends.
			if st, _ := h.state(); st != last && known(req.GetService()) {
				_ = stream.Send(&healthpb.HealthCheckResponse{Status: st})
			}
			return status.Error(codes.Unavailable, "corsproc is shutting down")
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
}

// ServeHTTP is /readyz: 200 while serving, 503 while starting or draining.
func (h *health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if st, _ := h.state(); st != healthpb.HealthCheckResponse_SERVING {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(h.why() + "\n"))
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}
