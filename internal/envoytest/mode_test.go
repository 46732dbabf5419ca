package envoytest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

func withOverride(r *extprocv3.ProcessingResponse, m *extprocfilterv3.ProcessingMode) *extprocv3.ProcessingResponse {
	r.ModeOverride = m
	return r
}

var (
	skipResponse = &extprocfilterv3.ProcessingMode{ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP}
	buffered     = extprocfilterv3.ProcessingMode_BUFFERED
)

func reqBodyReply(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{
		RequestBody: &extprocv3.BodyResponse{Response: c}}}
}

func respBodyReply(c *extprocv3.CommonResponse) *extprocv3.ProcessingResponse {
	return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{
		ResponseBody: &extprocv3.BodyResponse{Response: c}}}
}

func TestModeOverrideIsHonouredOnlyWhenAllowedAndOnlyInHeadersReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		allow     bool
		mode      *extprocfilterv3.ProcessingMode
		script    []step
		wantKinds string
	}{
		{
			name:  "response_header_mode SKIP in the request_headers reply skips the response round trip",
			allow: true,
			script: []step{
				{want: "request_headers", reply: withOverride(reqHeadersReply(nil), skipResponse)},
				{want: "response_headers", reply: respHeadersReply(nil)},
			},
			wantKinds: "request_headers",
		},
		{
			name:  "without allow_mode_override the response_headers message comes anyway",
			allow: false,
			script: []step{
				{want: "request_headers", reply: withOverride(reqHeadersReply(nil), skipResponse)},
				{want: "response_headers", reply: respHeadersReply(nil)},
			},
			wantKinds: "request_headers,response_headers",
		},
		{
			name:  "an override in a body reply is ignored",
			allow: true,
			mode:  &extprocfilterv3.ProcessingMode{RequestBodyMode: buffered},
			script: []step{
				{want: "request_headers", reply: reqHeadersReply(nil)},
				{want: "request_body", reply: withOverride(reqBodyReply(nil), skipResponse)},
				{want: "response_headers", reply: respHeadersReply(nil)},
			},
			wantKinds: "request_headers,request_body,response_headers",
		},
		{
			name:  "an override in the response_headers reply can ask for the response body",
			allow: true,
			script: []step{
				{want: "request_headers", reply: reqHeadersReply(nil)},
				{want: "response_headers", reply: withOverride(respHeadersReply(nil),
					&extprocfilterv3.ProcessingMode{ResponseBodyMode: buffered})},
				{want: "response_body", reply: respBodyReply(nil)},
			},
			wantKinds: "request_headers,response_headers,response_body",
		},
		{
			name:  "an override's request_header_mode is ignored and the rest replaces the mode",
			allow: true,
			mode:  &extprocfilterv3.ProcessingMode{RequestBodyMode: buffered},
			script: []step{
				// The override sets every body mode back to NONE and asks to
				// skip request headers, which have already been sent.
				{want: "request_headers", reply: withOverride(reqHeadersReply(nil),
					&extprocfilterv3.ProcessingMode{RequestHeaderMode: extprocfilterv3.ProcessingMode_SKIP})},
				{want: "response_headers", reply: respHeadersReply(nil)},
			},
			wantKinds: "request_headers,response_headers",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startProc(t, nil, tt.script...)
			u := startUpstream(t, nil, nil)
			e := startEnvoy(t, p, u, Config{AllowModeOverride: tt.allow, ProcessingMode: tt.mode})
			res, body := do(t, "POST", e.URL()+"/", "payload")
			if res.StatusCode != 200 || body != "upstream body" {
				t.Errorf("got %d %q", res.StatusCode, body)
			}
			if u.bodies()[0] != "payload" {
				t.Errorf("upstream body %q", u.bodies()[0])
			}
			s := p.waitStreams(t, 1)[0]
			if s.kinds() != tt.wantKinds || !isNormalEnd(s.end) {
				t.Errorf("processor received %s and saw %v; want %s and a normal end", s.kinds(), s.end, tt.wantKinds)
			}
		})
	}
}

func TestBufferedBodiesAreSentWholeAndMayBeReplaced(t *testing.T) {
	t.Parallel()
	replace := func(b string) *extprocv3.BodyMutation {
		return &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(b)}}
	}
	p := startProc(t, nil,
		step{want: "request_headers", reply: reqHeadersReply(nil)},
		step{want: "request_body", reply: reqBodyReply(&extprocv3.CommonResponse{
			HeaderMutation: mutation(nil, hv("x-from-body", "1")), BodyMutation: replace("new request body")})},
		step{want: "response_headers", reply: respHeadersReply(nil)},
		step{want: "response_body", reply: respBodyReply(&extprocv3.CommonResponse{
			HeaderMutation: mutation(nil, hv("x-resp-from-body", "1")), BodyMutation: replace("short")})},
	)
	u := startUpstream(t, nil, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "13")
		w.Write([]byte("upstream body"))
	})
	e := startEnvoy(t, p, u, Config{ProcessingMode: &extprocfilterv3.ProcessingMode{
		RequestBodyMode: buffered, ResponseBodyMode: buffered,
	}})
	res, body := do(t, "PUT", e.URL()+"/", strings.Repeat("x", 100))
	if res.StatusCode != 200 || body != "short" || res.Header.Get("X-Resp-From-Body") != "1" {
		t.Errorf("client got %d %q %v", res.StatusCode, body, res.Header)
	}
	r := u.requests()[0]
	if u.bodies()[0] != "new request body" || r.ContentLength != int64(len("new request body")) || r.Header.Get("X-From-Body") != "1" {
		t.Errorf("upstream got %q (content-length %d) %v", u.bodies()[0], r.ContentLength, r.Header)
	}
	s := p.waitStreams(t, 1)[0]
	if s.kinds() != "request_headers,request_body,response_headers,response_body" {
		t.Fatalf("processor received %s", s.kinds())
	}
	for _, m := range s.msgs {
		var b *extprocv3.HttpBody
		switch kind(m) {
		case "request_body":
			b = m.GetRequestBody()
		case "response_body":
			b = m.GetResponseBody()
		default:
			continue
		}
		want := map[string]string{"request_body": strings.Repeat("x", 100), "response_body": "upstream body"}[kind(m)]
		if string(b.GetBody()) != want || !b.GetEndOfStream() {
			t.Errorf("%s: body %q end_of_stream %v, want %q and true", kind(m), b.GetBody(), b.GetEndOfStream(), want)
		}
	}
	pc := s.msgs[0].GetProtocolConfig()
	if pc.GetRequestBodyMode() != buffered || pc.GetResponseBodyMode() != buffered {
		t.Errorf("protocol_config %v, want both body modes BUFFERED", pc)
	}
}

func TestStartRefusesWhatTheStandInCannotDo(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"a missing processor", Config{}},
		{"a streamed body mode", Config{Processor: "127.0.0.1:1", ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestBodyMode: extprocfilterv3.ProcessingMode_STREAMED}}},
		{"sending trailers", Config{Processor: "127.0.0.1:1", ProcessingMode: &extprocfilterv3.ProcessingMode{
			ResponseTrailerMode: extprocfilterv3.ProcessingMode_SEND}}},
		{"an unknown attribute", Config{Processor: "127.0.0.1:1", RequestAttributes: []string{"connection.mtls"}}},
		{"an upstream that is not an http URL", Config{Processor: "127.0.0.1:1", Routes: []Route{{Upstream: "127.0.0.1:80"}}}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("Start refuses %s", tt.name), func(t *testing.T) {
			t.Parallel()
			e, err := Start(tt.cfg)
			if err == nil {
				e.Close()
				t.Fatal("Start succeeded")
			}
		})
	}
}

func TestNewServesThroughHTTPTestAndCloseWaitsForStreams(t *testing.T) {
	t.Parallel()
	p := startProc(t, nil, continueBoth...)
	u := startUpstream(t, nil, nil)
	e, err := New(Config{Processor: p.addr, Routes: []Route{{Name: "r", Upstream: u.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(e)
	res, body := do(t, "GET", srv.URL+"/", "")
	srv.Close()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || body != "upstream body" || e.URL() != "" {
		t.Errorf("got %d %q, URL %q", res.StatusCode, body, e.URL())
	}
	// Close has waited for the stream goroutine, which ended the stream.
	if s := p.waitStreams(t, 1)[0]; !isNormalEnd(s.end) {
		t.Errorf("stream ended with %v", s.end)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
