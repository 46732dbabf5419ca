package envoytest

import (
	"context"
	"io"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
)

// streamResult is what one round trip produced: a reply, or the error that
// ended the stream (io.EOF for an OK status).
type streamResult struct {
	resp *extprocv3.ProcessingResponse
	err  error
}

// procStream is one Process stream. A goroutine owns the gRPC stream; the
// request's goroutine hands it one message at a time and waits for exactly
// one result (lockstep), so a late reply is never mistaken for the next one
// unless the processor really sent two.
type procStream struct {
	in       chan *extprocv3.ProcessingRequest
	out      chan streamResult
	cancel   context.CancelFunc
	finished bool
}

// openStream starts the goroutine that opens the stream lazily, on the
// first message, as Envoy does.
func (e *Envoy) openStream() *procStream {
	ctx, cancel := context.WithCancel(context.Background())
	s := &procStream{
		in:     make(chan *extprocv3.ProcessingRequest, 1),
		out:    make(chan streamResult, 1),
		cancel: cancel,
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer cancel()
		s.loop(ctx, e)
	}()
	return s
}

func (s *procStream) loop(ctx context.Context, e *Envoy) {
	var cs grpc.BidiStreamingClient[extprocv3.ProcessingRequest, extprocv3.ProcessingResponse]
	var failed error
	for msg := range s.in {
		if failed == nil && cs == nil {
			e.streamsStarted.Add(1)
			cs, failed = e.client.Process(ctx)
		}
		if failed == nil {
			// Send reports io.EOF when the server already ended the stream;
			// Recv then gives a pending reply or the real status.
			if err := cs.Send(msg); err != nil && err != io.EOF {
				failed = err
			} else if err == nil {
				e.msgsSent.Add(1)
			}
		}
		var resp *extprocv3.ProcessingResponse
		if failed == nil {
			resp, failed = cs.Recv()
		}
		s.out <- streamResult{resp: resp, err: failed}
	}
	if cs == nil || failed != nil {
		return
	}
	// Half-close and let the processor end the stream (it sees io.EOF);
	// cancel it if it does not within drainTimeout (it sees Canceled).
	_ = cs.CloseSend()
	t := time.AfterFunc(drainTimeout, s.cancel)
	defer t.Stop()
	for {
		if _, err := cs.Recv(); err != nil {
			return
		}
	}
}

// roundTrip sends msg and waits up to timeout for the result. On timeout the
// stream is cancelled and timedOut is true.
func (s *procStream) roundTrip(msg *extprocv3.ProcessingRequest, timeout time.Duration) (res streamResult, timedOut bool) {
	s.in <- msg
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case res = <-s.out:
		return res, false
	case <-t.C:
		s.cancel()
		return streamResult{}, true
	}
}

// finish tells the stream goroutine that no more messages come; it closes
// the stream in the background.
func (s *procStream) finish() {
	if !s.finished {
		s.finished = true
		close(s.in)
	}
}
