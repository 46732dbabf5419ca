package envoytest

import (
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/corsproc/corsproc/internal/testutil"
)

// testTimeout is the message timeout of the tests that make it fire.
var testTimeout = testutil.ObservedTimeout()

func TestProcessorFailuresFollowFailureModeAllow(t *testing.T) {
	t.Parallel()
	late := 3 * testTimeout
	tests := []struct {
		name   string
		script []step
		// outcome without failure_mode_allow, then with it
		status, statusAllowed     int
		upstream, upstreamAllowed int
		kinds                     string // what the processor received (both ways)
		details                   string // local reply details without failure_mode_allow
		stat                      func(Stats) int64
	}{
		{
			name:   "a request_headers reply later than message_timeout",
			script: []step{{want: "request_headers", wait: late, reply: reqHeadersReply(nil)}},
			status: 504, statusAllowed: 200, upstream: 0, upstreamAllowed: 1,
			kinds: "request_headers", details: "ext_proc_error_per-message_timeout_exceeded",
			stat: func(s Stats) int64 { return s.MessageTimeouts },
		},
		{
			name: "a response_headers reply later than message_timeout",
			script: []step{
				{want: "request_headers", reply: reqHeadersReply(mutation(nil, hv("x-req", "1")))},
				{want: "response_headers", wait: late, reply: respHeadersReply(mutation(nil, hv("x-resp", "1")))},
			},
			status: 504, statusAllowed: 200, upstream: 1, upstreamAllowed: 1,
			kinds: "request_headers,response_headers", details: "ext_proc_error_per-message_timeout_exceeded",
			stat: func(s Stats) int64 { return s.MessageTimeouts },
		},
		{
			name:   "a clean close before the reply lets the request through untouched",
			script: []step{{want: "request_headers", end: true}},
			status: 200, statusAllowed: 200, upstream: 1, upstreamAllowed: 1,
			kinds: "request_headers",
			stat:  func(s Stats) int64 { return s.StreamsClosedByProcessor },
		},
		{
			name:   "an error status before the reply",
			script: []step{{want: "request_headers", end: true, ret: status.Error(codes.Internal, "boom")}},
			status: 500, statusAllowed: 200, upstream: 0, upstreamAllowed: 1,
			kinds: "request_headers", details: "ext_proc_error_gRPC_error_13{boom}",
			stat: func(s Stats) int64 { return s.StreamsFailed },
		},
		{
			name: "an error status in the response phase",
			script: []step{
				{want: "request_headers", reply: reqHeadersReply(mutation(nil, hv("x-req", "1")))},
				{want: "response_headers", end: true, ret: status.Error(codes.Unavailable, "going away")},
			},
			status: 500, statusAllowed: 200, upstream: 1, upstreamAllowed: 1,
			kinds: "request_headers,response_headers", details: "ext_proc_error_gRPC_error_14{going_away}",
			stat: func(s Stats) int64 { return s.StreamsFailed },
		},
		{
			name:   "a reply for the wrong phase",
			script: []step{{want: "request_headers", reply: respHeadersReply(mutation(nil, hv("x-resp", "1")))}},
			status: 500, statusAllowed: 200, upstream: 0, upstreamAllowed: 1,
			kinds: "request_headers", details: "ext_proc_error_spurious_message",
			stat: func(s Stats) int64 { return s.SpuriousMessages },
		},
		{
			name:   "an empty reply",
			script: []step{{want: "request_headers", reply: &extprocv3.ProcessingResponse{}}},
			status: 500, statusAllowed: 200, upstream: 0, upstreamAllowed: 1,
			kinds: "request_headers", details: "ext_proc_error_spurious_message",
			stat: func(s Stats) int64 { return s.SpuriousMessages },
		},
	}
	for _, tt := range tests {
		for _, allow := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s (failure_mode_allow %v)", tt.name, allow), func(t *testing.T) {
				t.Parallel()
				p := startProc(t, nil, tt.script...)
				u := startUpstream(t, nil, nil)
				e := startEnvoy(t, p, u, Config{MessageTimeout: testTimeout, FailureModeAllow: allow})
				wantStatus, wantUpstream, wantBody := tt.status, tt.upstream, ""
				if allow {
					wantStatus, wantUpstream = tt.statusAllowed, tt.upstreamAllowed
				}
				if wantStatus == 200 {
					wantBody = "upstream body"
				}
				start := time.Now()
				res, body := do(t, "GET", e.URL()+"/", "")
				if res.StatusCode != wantStatus || body != wantBody {
					t.Errorf("got %d %q, want %d %q", res.StatusCode, body, wantStatus, wantBody)
				}
				if d := time.Since(start); d > late {
					t.Errorf("request took %v; the stand-in waited past message_timeout", d)
				}
				if n := len(u.requests()); n != wantUpstream {
					t.Errorf("upstream called %d times, want %d", n, wantUpstream)
				}
				if res.Header.Get("X-Resp") != "" {
					t.Error("a response mutation was applied after the failure")
				}
				if len(tt.script) > 1 && u.requests()[0].Header.Get("X-Req") != "1" {
					t.Error("the request mutation made before the failure was lost")
				}
				s := p.waitStreams(t, 1)[0]
				if s.kinds() != tt.kinds {
					t.Errorf("processor received %s, want %s", s.kinds(), tt.kinds)
				}
				st := e.Stats()
				if tt.stat(st) != 1 {
					t.Errorf("the failure was not counted: %+v", st)
				}
				wantAllowed, wantDetails := int64(0), []string(nil)
				if tt.details != "" {
					if allow {
						wantAllowed = 1
					} else {
						wantDetails = []string{tt.details}
					}
				}
				if st.FailureModeAllowed != wantAllowed || !slices.Equal(st.LocalReplies, wantDetails) {
					t.Errorf("failure_mode_allowed %d, local replies %q; want %d, %q",
						st.FailureModeAllowed, st.LocalReplies, wantAllowed, wantDetails)
				}
			})
		}
	}
}

func TestAnUnreachableProcessorFollowsFailureModeAllow(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("failure_mode_allow %v", allow), func(t *testing.T) {
			t.Parallel()
			u := startUpstream(t, nil, nil)
			e := startEnvoy(t, nil, u, Config{Processor: addr, MessageTimeout: testutil.MessageTimeout(), FailureModeAllow: allow})
			res, _ := do(t, "GET", e.URL()+"/", "")
			want := 500
			if allow {
				want = 200
			}
			if res.StatusCode != want {
				t.Errorf("status %d, want %d", res.StatusCode, want)
			}
			if st := e.Stats(); st.StreamsFailed != 1 {
				t.Errorf("streams failed = %d, want 1", st.StreamsFailed)
			}
		})
	}
}

func TestImmediateResponsesAreSentAsEnvoyDoes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		reply      *extprocv3.ProcessingResponse
		wantStatus int
		wantBody   string
		wantHeader map[string]string // "" means absent
		wantDetail string
		rejected   int64
	}{
		{
			name: "status, headers, body and details are used",
			reply: immediateReply(403, mutation(nil, hv("vary", "origin"), hvAppend("vary", "x", true)),
				"denied", "cors denied: origin"),
			wantStatus: 403, wantBody: "denied",
			wantHeader: map[string]string{"Content-Type": "text/plain", "Vary": "origin", "Content-Length": "6", "Server": "envoy"},
			wantDetail: "cors_denied:_origin",
		},
		{
			name:       "a missing status becomes 200",
			reply:      immediateReply(-1, nil, "", ""),
			wantStatus: 200, wantHeader: map[string]string{"Content-Type": ""},
		},
		{
			name:       "a status below 200 becomes 200",
			reply:      immediateReply(101, nil, "", ""),
			wantStatus: 200,
		},
		{
			name:       "a content-type set by the processor is kept",
			reply:      immediateReply(204, mutation(nil, hv("content-type", "application/json")), "{}", ""),
			wantStatus: 204, wantHeader: map[string]string{"Content-Type": "application/json"},
		},
		{
			// ext_proc.cc checks them with ImmediateMutationChecker
			// (allow_all_routing, allow_envoy), not the filter's rules.
			name:       "headers go through Envoy's fixed permissive rules, which allow x-envoy-*",
			reply:      immediateReply(200, mutation(nil, hv("x-envoy-thing", "1"), hv("x-ok", "1")), "", ""),
			wantStatus: 200, wantHeader: map[string]string{"X-Envoy-Thing": "1", "X-Ok": "1"},
		},
		{
			name:       "a refused header mutation does not stop the reply",
			reply:      immediateReply(403, mutation(nil, hv("x-ok", "1"), hv("x-bad", "a\nb")), "", ""),
			wantStatus: 403, wantHeader: map[string]string{"X-Ok": "1", "X-Bad": ""},
			rejected: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startProc(t, nil, step{want: "request_headers", reply: tt.reply},
				step{want: "response_headers", reply: respHeadersReply(nil)})
			u := startUpstream(t, nil, nil)
			e := startEnvoy(t, p, u, Config{})
			res, body := do(t, "OPTIONS", e.URL()+"/", "")
			if res.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			for k, v := range tt.wantHeader {
				if got := res.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if n := len(u.requests()); n != 0 {
				t.Errorf("upstream called %d times after an immediate response", n)
			}
			s := p.waitStreams(t, 1)[0]
			if s.kinds() != "request_headers" || !isNormalEnd(s.end) {
				t.Errorf("processor received %s, stream ended with %v; want request_headers only and a normal end", s.kinds(), s.end)
			}
			st := e.Stats()
			if st.ImmediateResponses != 1 || st.RejectedHeaderMutations != tt.rejected ||
				!slices.Equal(st.LocalReplies, []string{tt.wantDetail}) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestAnImmediateResponseInTheResponsePhaseReplacesTheUpstreamResponse(t *testing.T) {
	t.Parallel()
	p := startProc(t, nil,
		step{want: "request_headers", reply: reqHeadersReply(nil)},
		step{want: "response_headers", reply: immediateReply(502, nil, "replaced", "")},
	)
	u := startUpstream(t, nil, nil)
	e := startEnvoy(t, p, u, Config{})
	res, body := do(t, "GET", e.URL()+"/", "")
	if res.StatusCode != 502 || body != "replaced" || res.Header.Get("X-Upstream") != "" {
		t.Errorf("got %d %q %v", res.StatusCode, body, res.Header)
	}
	p.waitStreams(t, 1)
}

func TestAStreamIsNeverReused(t *testing.T) {
	t.Parallel()
	// A processor that answers twice to request_headers: the extra reply must
	// not leak into the next request's stream.
	extra := reqHeadersReply(mutation(nil, hv("x-extra", "1")))
	p := startProc(t, nil,
		step{want: "request_headers", reply: reqHeadersReply(nil)},
		step{reply: extra},
		step{want: "response_headers", reply: respHeadersReply(nil)},
	)
	u := startUpstream(t, nil, nil)
	e := startEnvoy(t, p, u, Config{MessageTimeout: testutil.MessageTimeout()})
	for i := 0; i < 2; i++ {
		res, _ := do(t, "GET", e.URL()+"/", "")
		// The extra reply is read as the reply to response_headers: the
		// wrong phase, so 500 as Envoy >= 1.35.
		if res.StatusCode != 500 {
			t.Errorf("request %d: status %d, want 500 for the spurious reply", i, res.StatusCode)
		}
	}
	p.waitStreams(t, 2)
	if st := e.Stats(); st.StreamsStarted != 2 || st.SpuriousMessages != 2 {
		t.Errorf("stats %+v, want 2 streams and 2 spurious messages", st)
	}
}
