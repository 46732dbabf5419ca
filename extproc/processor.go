// Package extproc is corsproc's Envoy external processor: the gRPC
// ext_proc service that enforces a policy.Set on every request, the
// Prometheus metrics, the admin HTTP handler, and the holder that swaps in
// a new policy set when its file changes.
//
// Envoy opens one Process stream per HTTP request. On request_headers the
// processor decides; a preflight in enforce mode is answered with an
// ImmediateResponse, anything else continues, with the response phase
// skipped (mode_override) when it could change nothing. On
// response_headers it applies the decision kept for the stream: removes
// the service's access-control-* headers, sets its own, merges vary.
package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corsproc/corsproc/policy"
)

// Options configure a [Server].
type Options struct {
	// DebugHeaders decides as `serve --debug-headers` does: the
	// x-corsproc-* headers, and refused preflights that name their cause.
	DebugHeaders bool
	// Logger gets one debug line per denial and the stream errors; nil
	// means slog.Default().
	Logger *slog.Logger
}

// Server implements envoy.service.ext_proc.v3.ExternalProcessor.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer
	policies *Policies
	metrics  *Metrics
	log      *slog.Logger
	debug    bool
}

// NewServer returns a processor that judges requests with the policies'
// running set, whichever it is when each request arrives.
func NewServer(p *Policies, m *Metrics, o Options) *Server {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Server{policies: p, metrics: m, log: log, debug: o.DebugHeaders}
}

var statePool = sync.Pool{New: func() any { return new(streamState) }}

// Process serves one ext_proc stream, that is one HTTP request. It never
// panics out (a bug is recovered, counted and ends the stream with
// Internal) and starts no goroutine.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) (err error) {
	s.metrics.streams.Inc()
	defer s.metrics.streams.Dec()
	st := statePool.Get().(*streamState)
	defer func() {
		if r := recover(); r != nil {
			s.metrics.streamError(errPanic)
			s.log.Error("bug: an ext_proc stream panicked; it ends with an error and corsproc goes on",
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "corsproc: internal error")
			return // st may be inconsistent: let it go
		}
		st.clear()
		statePool.Put(st)
	}()
	ctx := stream.Context()
	for {
		// Received into the stream's own message, which the codec
		// decodes into without allocating (extprocwire.Request); the
		// strings read from it stay valid until st.clear.
		st.in.Next()
		if err := stream.RecvMsg(&st.in); err != nil {
			return s.recvEnded(err)
		}
		req := &st.in.ProcessingRequest
		resp, err := s.handle(ctx, st, req)
		if err != nil {
			return err
		}
		if req.GetObservabilityMode() {
			continue // Envoy ignores replies in observability mode
		}
		if err := stream.Send(resp); err != nil {
			return s.sendFailed(err)
		}
	}
}

// handle answers one message.
func (s *Server) handle(ctx context.Context, st *streamState, req *extprocv3.ProcessingRequest) (*extprocv3.ProcessingResponse, error) {
	setMetadata(&st.resp, nil) // only the phase that decides reports
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return s.requestHeaders(ctx, st, req, r.RequestHeaders)
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return s.responseHeaders(ctx, st, r.ResponseHeaders), nil
	case *extprocv3.ProcessingRequest_RequestBody:
		st.reqBody.RequestBody = st.continueBody()
		st.resp.Response = &st.reqBody
		return st.ready(), nil
	case *extprocv3.ProcessingRequest_ResponseBody:
		st.respBody.ResponseBody = st.continueBody()
		st.resp.Response = &st.respBody
		return st.ready(), nil
	case *extprocv3.ProcessingRequest_RequestTrailers:
		st.reqTrailers.RequestTrailers = &st.trailers
		st.resp.Response = &st.reqTrailers
		return st.ready(), nil
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		st.respTrailers.ResponseTrailers = &st.trailers
		st.resp.Response = &st.respTrailers
		return st.ready(), nil
	}
	s.metrics.streamError(errEmptyMessage)
	return nil, status.Error(codes.InvalidArgument, "corsproc: the ProcessingRequest carries no headers, body or trailers")
}

// requestHeaders decides and answers: locally for a preflight in enforce
// mode, otherwise CONTINUE, skipping the response phase when it could
// change nothing.
func (s *Server) requestHeaders(ctx context.Context, st *streamState, req *extprocv3.ProcessingRequest, h *extprocv3.HttpHeaders) (*extprocv3.ProcessingResponse, error) {
	start := time.Now()
	snap := s.policies.snapshot()
	st.req = policy.Request{}
	readRequest(&st.req, st.lines[:], h.GetHeaders().GetHeaders())
	st.req.Route = routeName(req.GetAttributes())
	st.req.Debug = s.debug
	st.dec = snap.set.Decide(&st.req)
	st.snap, st.decided = snap, true
	d := &st.dec
	meta := snap.counters.decided(d)
	snap.counters.observe(&st.req, d)
	if d.Outcome == policy.Denied && s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.DebugContext(ctx, "cors denied", "policy", d.Policy, "mode", d.Mode.String(),
			"class", d.Class.String(), "reason", d.Reason.String(), "message", d.Message())
	}
	var resp *extprocv3.ProcessingResponse
	if d.Local {
		resp = st.immediate(d, s.invalidOutput)
		setMetadata(resp, meta.metadata())
	} else if resp = meta.continueReply(d.SkipResponse); resp == nil {
		resp = st.continueRequest(d.SkipResponse) // no metadata: cannot happen
	}
	s.metrics.phaseReq.Observe(time.Since(start).Seconds())
	return resp, nil
}

// responseHeaders applies the stream's decision to the service's response
// headers. A stream without a decision (Envoy skipped the request phase)
// continues untouched.
func (s *Server) responseHeaders(ctx context.Context, st *streamState, h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	if !st.decided {
		return st.continueResponse(nil)
	}
	start := time.Now()
	readUpstream(&st.up, st.vary[:], st.cors[:], h.GetHeaders().GetHeaders())
	d := &st.dec
	d.Respond(&st.up, &st.edit)
	st.snap.counters.observeService(&st.req, d, &st.up)
	if st.edit.Mismatch {
		st.snap.counters.mismatched(d)
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.DebugContext(ctx, "cors report mismatch: the service's own CORS headers disagree with the policy",
				"policy", d.Policy, "class", d.Class.String(), "decision", d.Outcome.String(),
				"reason", d.Reason.String(), "service_allow_origin", st.up.AllowOrigin)
		}
	}
	resp := st.continueResponse(st.mutation(st.edit.Set(d), st.edit.Remove, s.invalidOutput))
	if st.edit.Mismatch {
		setMetadata(resp, mismatchMetadata)
	}
	s.metrics.phaseResp.Observe(time.Since(start).Seconds())
	return resp
}

// invalidOutput reports a header the policy produced that Envoy would
// refuse; it is left out, which can only make the answer stricter.
func (s *Server) invalidOutput(name string) {
	s.metrics.streamError(errInvalidOutput)
	s.log.Error("bug: the policy produced an invalid response header; it is left out", "header", fmt.Sprintf("%q", name))
}

// recvEnded maps the end of the incoming side to the stream's result:
// Envoy half-closing (io.EOF) or resetting (Canceled) is a normal end.
func (s *Server) recvEnded(err error) error {
	if normalEnd(err) {
		return nil
	}
	switch status.Code(err) {
	case codes.Internal, codes.ResourceExhausted:
		s.metrics.streamError(errDecode) // grpc could not decode or size the message
	default:
		s.metrics.streamError(errRecv)
	}
	s.log.Debug("ext_proc stream broke while receiving", "error", err.Error())
	return err
}

func (s *Server) sendFailed(err error) error {
	if normalEnd(err) {
		return nil
	}
	s.metrics.streamError(errSend)
	s.log.Debug("ext_proc stream broke while sending", "error", err.Error())
	return err
}

func normalEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled
}
