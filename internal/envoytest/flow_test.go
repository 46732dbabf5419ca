package envoytest

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// continueBoth is the script of a processor that lets everything through.
var continueBoth = []step{
	{want: "request_headers", reply: reqHeadersReply(nil)},
	{want: "response_headers", reply: respHeadersReply(nil)},
}

func TestEachRequestRunsItsPhasesInLockstepOnItsOwnStream(t *testing.T) {
	t.Parallel()
	log := &eventLog{}
	p := startProc(t, log,
		step{want: "request_headers", wait: 30 * time.Millisecond, reply: reqHeadersReply(nil)},
		step{want: "response_headers", wait: 30 * time.Millisecond, reply: respHeadersReply(nil)},
	)
	u := startUpstream(t, log, nil)
	e := startEnvoy(t, p, u, Config{})

	const requests = 3
	for i := 0; i < requests; i++ {
		res, body := do(t, "GET", e.URL()+"/", "")
		if res.StatusCode != 200 || body != "upstream body" {
			t.Fatalf("request %d: got %d %q, want 200 %q", i, res.StatusCode, body, "upstream body")
		}
		streams := p.waitStreams(t, 1)
		if len(streams) != i+1 {
			t.Fatalf("after %d requests the processor saw %d streams", i+1, len(streams))
		}
	}
	want := strings.Repeat("proc:recv request_headers, proc:reply request_headers, upstream, "+
		"proc:recv response_headers, proc:reply response_headers, proc:end, ", requests)
	if got := log.String() + ", "; got != want {
		t.Errorf("events:\n got %s\nwant %s", got, want)
	}
	for i, s := range p.waitStreams(t, 0) {
		if s.kinds() != "request_headers,response_headers" {
			t.Errorf("stream %d carried %s", i, s.kinds())
		}
		if !isNormalEnd(s.end) {
			t.Errorf("stream %d ended with %v, want io.EOF or Canceled", i, s.end)
		}
	}
	st := e.Stats()
	if st.StreamsStarted != requests || st.MessagesSent != 2*requests || st.MessagesReceived != 2*requests {
		t.Errorf("stats = %+v, want %d streams, %d messages each way", st, requests, 2*requests)
	}
}

func TestRequestHeadersMessageCarriesWhatEnvoySends(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, body string
		wantEOS            bool
	}{
		{name: "a GET without body ends the stream on headers", method: "GET", wantEOS: true},
		{name: "a POST with a body does not end the stream on headers", method: "POST", body: "payload", wantEOS: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startProc(t, nil, continueBoth...)
			u := startUpstream(t, nil, nil)
			e := startEnvoy(t, p, u, Config{})
			do(t, tt.method, e.URL()+"/v1/items?x=1", tt.body,
				"Host: API.example.com:8080", "Origin: https://app.example.com",
				"X-Multi: a", "X-Multi: b")
			s := p.waitStreams(t, 1)[0]
			if len(s.msgs) != 2 {
				t.Fatalf("stream carried %s", s.kinds())
			}
			first := s.msgs[0]
			rh := first.GetRequestHeaders()
			if rh.GetEndOfStream() != tt.wantEOS {
				t.Errorf("end_of_stream = %v, want %v", rh.GetEndOfStream(), tt.wantEOS)
			}
			for _, h := range rh.GetHeaders().GetHeaders() {
				if h.GetKey() != strings.ToLower(h.GetKey()) {
					t.Errorf("key %q is not lower-case", h.GetKey())
				}
				if h.GetValue() != "" || len(h.GetRawValue()) == 0 && h.GetKey() != "content-length" {
					t.Errorf("header %q: value=%q raw_value=%q, want raw_value only", h.GetKey(), h.GetValue(), h.GetRawValue())
				}
			}
			m := rh.GetHeaders()
			for key, want := range map[string][]string{
				":authority":        {"API.example.com:8080"},
				":path":             {"/v1/items?x=1"},
				":method":           {tt.method},
				":scheme":           {"http"},
				"host":              nil,
				"x-forwarded-proto": {"http"},
				"origin":            {"https://app.example.com"},
				"x-multi":           {"a", "b"},
			} {
				if got := headerValues(m, key); !slices.Equal(got, want) {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
			if id := headerValues(m, "x-request-id"); len(id) != 1 || len(id[0]) != 36 {
				t.Errorf("x-request-id = %q, want one UUID", id)
			}
			if first.GetProtocolConfig() == nil {
				t.Error("protocol_config missing on the first message")
			}
			if s.msgs[1].GetProtocolConfig() != nil {
				t.Error("protocol_config repeated on the second message")
			}
			if len(first.GetAttributes()) != 0 {
				t.Errorf("attributes %v sent without request_attributes", first.GetAttributes())
			}
		})
	}
}

func TestResponseHeadersMessageCarriesStatusUpstreamHeadersAndServiceTime(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  string
		wantEOS bool
	}{
		{name: "a response with a body does not end the stream", status: "200", wantEOS: false,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("Set-Cookie", "a=1")
				w.Header().Add("Set-Cookie", "b=2")
				w.Write([]byte("hello"))
			}},
		{name: "a 204 ends the stream on headers", status: "204", wantEOS: true,
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Add("Set-Cookie", "a=1")
				w.Header().Add("Set-Cookie", "b=2")
				w.WriteHeader(http.StatusNoContent)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startProc(t, nil, continueBoth...)
			u := startUpstream(t, nil, tt.handler)
			e := startEnvoy(t, p, u, Config{})
			res, _ := do(t, "GET", e.URL()+"/", "")
			if got := res.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"a=1", "b=2"}) {
				t.Errorf("client got set-cookie %q, want both lines", got)
			}
			if res.Header.Get("Server") != "envoy" || res.Header.Get("X-Envoy-Upstream-Service-Time") == "" {
				t.Errorf("client headers %v lack server: envoy or x-envoy-upstream-service-time", res.Header)
			}
			s := p.waitStreams(t, 1)[0]
			rh := s.msgs[1].GetResponseHeaders()
			if rh.GetEndOfStream() != tt.wantEOS {
				t.Errorf("end_of_stream = %v, want %v", rh.GetEndOfStream(), tt.wantEOS)
			}
			m := rh.GetHeaders()
			if got := headerValues(m, ":status"); !slices.Equal(got, []string{tt.status}) {
				t.Errorf(":status = %q, want %s", got, tt.status)
			}
			if got := headerValues(m, "set-cookie"); !slices.Equal(got, []string{"a=1", "b=2"}) {
				t.Errorf("set-cookie = %q, want two entries", got)
			}
			if len(headerValues(m, "x-envoy-upstream-service-time")) != 1 {
				t.Error("x-envoy-upstream-service-time missing")
			}
		})
	}
}

func TestAttributesGoOnlyOnTheFirstMessageOfEachDirection(t *testing.T) {
	t.Parallel()
	p := startProc(t, nil,
		step{want: "request_headers", reply: reqHeadersReply(nil)},
		step{want: "request_body", reply: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}},
		step{want: "response_headers", reply: respHeadersReply(nil)},
		step{want: "response_body", reply: &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}},
	)
	u := startUpstream(t, nil, nil)
	e := startEnvoy(t, p, u, Config{
		Routes: []Route{
			{Name: "other", Host: "other.example.com", Upstream: u.URL},
			{Name: "shop-route", Host: "shop.example.com", PathPrefix: "/v1/", Upstream: u.URL},
		},
		ProcessingMode: &extprocfilterv3.ProcessingMode{
			RequestBodyMode:  extprocfilterv3.ProcessingMode_BUFFERED,
			ResponseBodyMode: extprocfilterv3.ProcessingMode_BUFFERED,
		},
		RequestAttributes:  []string{"xds.route_name", "request.path"},
		ResponseAttributes: []string{"response.code"},
	})
	res, _ := do(t, "POST", e.URL()+"/v1/cart", "item", "Host: Shop.Example.com:443")
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	s := p.waitStreams(t, 1)[0]
	if s.kinds() != "request_headers,request_body,response_headers,response_body" {
		t.Fatalf("stream carried %s", s.kinds())
	}
	want := []map[string]any{
		{"xds.route_name": "shop-route", "request.path": "/v1/cart"},
		nil,
		{"response.code": float64(200)},
		nil,
	}
	for i, m := range s.msgs {
		got := m.GetAttributes()[attributesKey].AsMap()
		if len(got) != len(want[i]) {
			t.Errorf("%s: attributes %v, want %v", kind(m), got, want[i])
			continue
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("%s: attribute %s = %v, want %v", kind(m), k, got[k], v)
			}
		}
	}
}

func TestAStreamMayBeginWithResponseHeaders(t *testing.T) {
	t.Parallel()
	p := startProc(t, nil,
		step{want: "response_headers", reply: respHeadersReply(mutation(nil, hv("x-added", "1")))},
	)
	u := startUpstream(t, nil, nil)
	e := startEnvoy(t, p, u, Config{ProcessingMode: &extprocfilterv3.ProcessingMode{
		RequestHeaderMode: extprocfilterv3.ProcessingMode_SKIP,
	}})
	res, _ := do(t, "GET", e.URL()+"/", "")
	if res.Header.Get("X-Added") != "1" {
		t.Errorf("x-added = %q, want the response mutation applied", res.Header.Get("X-Added"))
	}
	s := p.waitStreams(t, 1)[0]
	if s.kinds() != "response_headers" {
		t.Fatalf("stream carried %s, want response_headers only", s.kinds())
	}
	if s.msgs[0].GetProtocolConfig() == nil {
		t.Error("protocol_config missing on the first message, a response_headers one")
	}
	if !isNormalEnd(s.end) {
		t.Errorf("stream ended with %v", s.end)
	}
}

func TestWithResponseHeadersSkippedTheStreamEndsAfterTheRequestPhase(t *testing.T) {
	t.Parallel()
	p := startProc(t, nil, step{want: "request_headers", reply: reqHeadersReply(nil)})
	u := startUpstream(t, nil, nil)
	e := startEnvoy(t, p, u, Config{ProcessingMode: &extprocfilterv3.ProcessingMode{
		ResponseHeaderMode: extprocfilterv3.ProcessingMode_SKIP,
	}})
	res, body := do(t, "GET", e.URL()+"/", "")
	if res.StatusCode != 200 || body != "upstream body" {
		t.Errorf("got %d %q", res.StatusCode, body)
	}
	s := p.waitStreams(t, 1)[0]
	if s.kinds() != "request_headers" || !isNormalEnd(s.end) {
		t.Errorf("stream carried %s and ended with %v", s.kinds(), s.end)
	}
}

func TestRequestsReachTheUpstreamAsMutated(t *testing.T) {
	t.Parallel()
	p := startProc(t, nil,
		step{want: "request_headers", reply: reqHeadersReply(mutation([]string{"x-drop"},
			hv("x-new", "v"), hv(":path", "/rewritten?q=1")))},
		step{want: "response_headers", reply: respHeadersReply(nil)},
	)
	u := startUpstream(t, nil, nil)
	e := startEnvoy(t, p, u, Config{})
	do(t, "POST", e.URL()+"/orig", "data", "X-Multi: a", "X-Multi: b", "X-Drop: x", "Host: svc.example.com")
	reqs := u.requests()
	if len(reqs) != 1 {
		t.Fatalf("upstream got %d requests", len(reqs))
	}
	r := reqs[0]
	if r.Host != "svc.example.com" || r.URL.RequestURI() != "/rewritten?q=1" || r.Method != "POST" {
		t.Errorf("upstream got %s %s host %s", r.Method, r.URL.RequestURI(), r.Host)
	}
	if got := r.Header.Values("X-Multi"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("x-multi = %q, want both lines in order", got)
	}
	if r.Header.Get("X-New") != "v" || r.Header.Get("X-Drop") != "" || r.Header.Get("X-Request-Id") == "" {
		t.Errorf("upstream headers %v", r.Header)
	}
	if u.bodies()[0] != "data" {
		t.Errorf("upstream body %q", u.bodies()[0])
	}
}

func TestRoutesAreMatchedInOrderAndAMissIsA404WithoutProcessing(t *testing.T) {
	t.Parallel()
	p := startProc(t, nil, continueBoth...)
	a := startUpstream(t, nil, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("a")) })
	b := startUpstream(t, nil, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("b")) })
	e := startEnvoy(t, p, nil, Config{Routes: []Route{
		{Name: "a", Host: "a.example.com", PathPrefix: "/api/", Upstream: a.URL},
		{Name: "b", Host: "A.EXAMPLE.COM", Upstream: b.URL},
	}})
	tests := []struct {
		name, host, path string
		wantStatus       int
		wantBody         string
	}{
		{"the first matching route wins", "a.example.com:8443", "/api/x", 200, "a"},
		{"a host is compared without port and case", "a.Example.com", "/other", 200, "b"},
		{"a request no route matches gets a 404", "c.example.com", "/api/x", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := do(t, "GET", e.URL()+tt.path, "", "Host: "+tt.host)
			if res.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
	p.waitStreams(t, 2)
	st := e.Stats()
	if st.StreamsStarted != 2 || !slices.Equal(st.LocalReplies, []string{"route_not_found"}) {
		t.Errorf("stats %+v: want 2 streams and one route_not_found", st)
	}
}
