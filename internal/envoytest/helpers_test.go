package envoytest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/corsproc/corsproc/internal/testutil"
)

// eventLog is an ordered record shared by a fake processor and an upstream,
// to pin the order in which things happen.
type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) add(format string, args ...any) {
	l.mu.Lock()
	l.events = append(l.events, fmt.Sprintf(format, args...))
	l.mu.Unlock()
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.events, ", ")
}

// step is one turn of a scripted processor: receive a message of kind want
// (none when want is ""), wait, then send reply (if any), or end the stream
// with ret when end is set.
type step struct {
	want  string
	wait  time.Duration
	reply *extprocv3.ProcessingResponse
	end   bool
	ret   error
}

// streamLog is what a fake processor saw on one stream.
type streamLog struct {
	msgs []*extprocv3.ProcessingRequest
	end  error // the error that ended the server's Recv loop, or what it returned
}

func (s *streamLog) kinds() string {
	var k []string
	for _, m := range s.msgs {
		k = append(k, kind(m))
	}
	return strings.Join(k, ",")
}

// fakeProc is an ext_proc server whose every stream follows one script.
type fakeProc struct {
	extprocv3.UnimplementedExternalProcessorServer
	t      *testing.T
	addr   string
	log    *eventLog
	script []step

	mu      sync.Mutex
	streams []*streamLog
	ended   chan struct{}
}

func startProc(t *testing.T, log *eventLog, script ...step) *fakeProc {
	t.Helper()
	if log == nil {
		log = &eventLog{}
	}
	p := &fakeProc{t: t, log: log, script: script, ended: make(chan struct{}, 100)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	srv := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(srv, p)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return p
}

func (p *fakeProc) Process(stream extprocv3.ExternalProcessor_ProcessServer) (err error) {
	sl := &streamLog{}
	p.mu.Lock()
	p.streams = append(p.streams, sl)
	p.mu.Unlock()
	// sl is read by waitStreams only after the signal on p.ended.
	record := func(m *extprocv3.ProcessingRequest) { sl.msgs = append(sl.msgs, m) }
	defer func() {
		if sl.end == nil {
			sl.end = err
		}
		p.log.add("proc:end")
		p.ended <- struct{}{}
	}()
	for _, s := range p.script {
		if s.want != "" {
			m, err := stream.Recv()
			if err != nil {
				sl.end = err
				return nil
			}
			record(m)
			p.log.add("proc:recv %s", kind(m))
			if got := kind(m); got != s.want {
				p.t.Errorf("processor received %s, script wants %s", got, s.want)
			}
		}
		if s.wait > 0 {
			select {
			case <-time.After(s.wait):
			case <-stream.Context().Done():
				sl.end = stream.Context().Err()
				return nil
			}
		}
		if s.end {
			return s.ret
		}
		if s.reply != nil {
			p.log.add("proc:reply %s", replyKind(s.reply))
			if err := stream.Send(s.reply); err != nil {
				sl.end = err
				return nil
			}
		}
	}
	for {
		m, err := stream.Recv()
		if err != nil {
			sl.end = err
			return nil
		}
		record(m)
		p.log.add("proc:recv %s", kind(m))
	}
}

// waitStreams waits until n streams have ended and returns their logs.
func (p *fakeProc) waitStreams(t *testing.T, n int) []*streamLog {
	t.Helper()
	for i := 0; i < n; i++ {
		select {
		case <-p.ended:
		case <-time.After(testutil.Patience()):
			t.Fatalf("only %d of %d processor streams ended", i, n)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*streamLog(nil), p.streams...)
}

func kind(m *extprocv3.ProcessingRequest) string {
	switch m.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return "request_headers"
	case *extprocv3.ProcessingRequest_RequestBody:
		return "request_body"
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return "response_headers"
	case *extprocv3.ProcessingRequest_ResponseBody:
		return "response_body"
	}
	return "other"
}

func replyKind(r *extprocv3.ProcessingResponse) string {
	switch r.GetResponse().(type) {
	case *extprocv3.ProcessingResponse_RequestHeaders:
		return "request_headers"
	case *extprocv3.ProcessingResponse_RequestBody:
		return "request_body"
	case *extprocv3.ProcessingResponse_ResponseHeaders:
		return "response_headers"
	case *extprocv3.ProcessingResponse_ResponseBody:
		return "response_body"
	case *extprocv3.ProcessingResponse_ImmediateResponse:
		return "immediate_response"
	}
	return "empty"
}

// upstream is an httptest server that records what reached it.
type upstream struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []*http.Request
	body []string
}

// startUpstream answers 200 "upstream body" with x-upstream: yes unless
// handler is given.
func startUpstream(t *testing.T, log *eventLog, handler http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	if handler == nil {
		handler = func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Upstream", "yes")
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "upstream body")
		}
	}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, r.Clone(r.Context()))
		u.body = append(u.body, string(b))
		u.mu.Unlock()
		if log != nil {
			log.add("upstream")
		}
		handler(w, r)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) bodies() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.body...)
}

func (u *upstream) requests() []*http.Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]*http.Request(nil), u.reqs...)
}

// startEnvoy starts a stand-in in front of p and u with one catch-all route
// named "default" unless cfg has routes.
func startEnvoy(t *testing.T, p *fakeProc, u *upstream, cfg Config) *Envoy {
	t.Helper()
	if cfg.Processor == "" {
		cfg.Processor = p.addr
	}
	if cfg.MessageTimeout == 0 {
		// Envoy's 200 ms default is about production latency; under load
		// it would only turn slow round trips into 504s.
		cfg.MessageTimeout = testutil.MessageTimeout()
	}
	if cfg.Routes == nil && u != nil {
		cfg.Routes = []Route{{Name: "default", Upstream: u.URL}}
	}
	e, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return e
}

var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// do sends a request; header lines are "Name: value" and may repeat.
func do(t *testing.T, method, url, body string, header ...string) (*http.Response, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range header {
		k, v, _ := strings.Cut(h, ": ")
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Add(k, v)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}

// Reply builders.

func hv(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, RawValue: []byte(v)}}
}

func hvAppend(k, v string, appendLine bool) *corev3.HeaderValueOption {
	o := hv(k, v)
	o.Append = wrapperspb.Bool(appendLine)
	return o
}

func mutation(remove []string, set ...*corev3.HeaderValueOption) *extprocv3.HeaderMutation {
	return &extprocv3.HeaderMutation{RemoveHeaders: remove, SetHeaders: set}
}

func reqHeadersReply(m *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{
		RequestHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: m}},
	}}
}

func respHeadersReply(m *extprocv3.HeaderMutation) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{
		ResponseHeaders: &extprocv3.HeadersResponse{Response: &extprocv3.CommonResponse{HeaderMutation: m}},
	}}
}

func immediateReply(code int, m *extprocv3.HeaderMutation, body, details string) *extprocv3.ProcessingResponse {
	ir := &extprocv3.ImmediateResponse{Headers: m, Body: []byte(body), Details: details}
	if code >= 0 {
		ir.Status = &typev3.HttpStatus{Code: typev3.StatusCode(code)}
	}
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: ir}}
}

// headerValues returns every value of key in m, in order.
func headerValues(m *corev3.HeaderMap, key string) []string {
	var out []string
	for _, h := range m.GetHeaders() {
		if h.GetKey() == key {
			out = append(out, string(h.GetRawValue()))
		}
	}
	return out
}

// isNormalEnd tells whether a server saw a normal end of stream.
func isNormalEnd(err error) bool {
	return errors.Is(err, io.EOF) || status.Code(err) == codes.Canceled
}
