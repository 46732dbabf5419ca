package envoytest

import (
	"net/http"
	"slices"
	"strconv"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/proto"
)

// The filter-chain behaviours below come from
// shared/notes/envoy-filter-chain.md; each test names its section.

// corsReply is a processor's answer to a local reply: the headers corsproc
// would add for an allowed origin.
var corsReply = respHeadersReply(mutation(nil, hv("access-control-allow-origin", "https://app.example"), hv("vary", "origin")))

// §A: jwt_authn 401, rbac 403 and local_ratelimit 429 are sendLocalReply;
// every instantiated encoder filter runs on them, so an ext_proc filter
// placed before the rejecting filter gets response_headers on the same
// stream and its changes reach the client (Envoy <= 1.33.0 and >= 1.37.0).
func TestALaterFiltersLocalReplyGoesThroughTheResponsePhase(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		filter     Filter
		header     []string
		wantStatus int
		wantBody   string
		wantDetail string
	}{
		{name: "jwt_authn answers 401 without a token", filter: JWTAuthn("good"),
			wantStatus: 401, wantBody: "Jwt is missing", wantDetail: "jwt_authn_access_denied{Jwt_is_missing}"},
		{name: "jwt_authn answers 401 for an unknown token", filter: JWTAuthn("good"), header: []string{"Authorization: Bearer bad"},
			wantStatus: 401, wantBody: "Jwt verification fails", wantDetail: "jwt_authn_access_denied{Jwt_verification_fails}"},
		{name: "rbac answers 403", filter: RBAC(func(RequestHeaders) bool { return false }),
			wantStatus: 403, wantBody: "RBAC: access denied", wantDetail: "rbac_access_denied_matched_policy[none]"},
		{name: "local_ratelimit answers 429 once the bucket is empty", filter: LocalRateLimit(0),
			wantStatus: 429, wantBody: "local_rate_limited", wantDetail: "local_rate_limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			log := &eventLog{}
			p := startProc(t, log, step{want: "request_headers", reply: reqHeadersReply(nil)}, step{want: "response_headers", reply: corsReply})
			u := startUpstream(t, log, nil)
			e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, After: []Filter{tt.filter}})
			res, body := do(t, "GET", e.URL()+"/api", "", append([]string{"Origin: https://app.example"}, tt.header...)...)
			if res.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != "https://app.example" {
				t.Errorf("access-control-allow-origin %q: the processor's change to the local reply is lost", got)
			}
			if got := res.Header.Get("Content-Type"); got != "text/plain" {
				t.Errorf("content-type %q, want text/plain", got)
			}
			s := p.waitStreams(t, 1)[0]
			if s.kinds() != "request_headers,response_headers" {
				t.Errorf("processor received %s", s.kinds())
			}
			if got := headerValues(s.msgs[1].GetResponseHeaders().GetHeaders(), ":status"); !slices.Equal(got, []string{strconv.Itoa(tt.wantStatus)}) {
				t.Errorf("response_headers :status %v, want %d", got, tt.wantStatus)
			}
			if len(u.requests()) != 0 {
				t.Errorf("the upstream was called after a local reply")
			}
			st := e.Stats()
			if st.FilterReplies != 1 || !slices.Equal(st.LocalReplies, []string{tt.wantDetail}) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// §A, version differences: 1.34.0-1.36.x (and 1.33.1+, 1.32.4+, ...) set
// processing_complete_ in onLocalReply under
// skip_ext_proc_on_local_reply, so no response_headers message is sent for
// any local reply: a later filter's 401 and the router's 503 alike.
func TestWithSkipLocalRepliesNoLocalReplyReachesTheProcessor(t *testing.T) {
	t.Parallel()
	t.Run("a later filter's 401 goes out without the processor's headers", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil, step{want: "request_headers", reply: reqHeadersReply(nil)}, step{want: "response_headers", reply: corsReply})
		u := startUpstream(t, nil, nil)
		e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, After: []Filter{JWTAuthn()}, SkipLocalReplies: true})
		res, _ := do(t, "GET", e.URL()+"/", "", "Origin: https://app.example")
		if res.StatusCode != 401 || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("got %d with access-control-allow-origin %q, want 401 without", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
		if s := p.waitStreams(t, 1)[0]; s.kinds() != "request_headers" {
			t.Errorf("processor received %s, want request_headers only", s.kinds())
		}
	})
	t.Run("the router's 503 goes out untouched", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil, step{want: "request_headers", reply: reqHeadersReply(nil)}, step{want: "response_headers", reply: corsReply})
		e := startEnvoy(t, p, nil, Config{MessageTimeout: roomyTimeout, Routes: []Route{{Name: "down", Upstream: "http://127.0.0.1:1"}}, SkipLocalReplies: true})
		res, _ := do(t, "GET", e.URL()+"/", "")
		if res.StatusCode != 503 || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("got %d %v", res.StatusCode, res.Header)
		}
		if s := p.waitStreams(t, 1)[0]; s.kinds() != "request_headers" {
			t.Errorf("processor received %s, want request_headers only", s.kinds())
		}
	})
	t.Run("without the guard the router's 503 gets the response phase", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil, step{want: "request_headers", reply: reqHeadersReply(nil)}, step{want: "response_headers", reply: corsReply})
		e := startEnvoy(t, p, nil, Config{MessageTimeout: roomyTimeout, Routes: []Route{{Name: "down", Upstream: "http://127.0.0.1:1"}}})
		res, _ := do(t, "GET", e.URL()+"/", "")
		if res.StatusCode != 503 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Errorf("got %d %v", res.StatusCode, res.Header)
		}
		if s := p.waitStreams(t, 1)[0]; s.kinds() != "request_headers,response_headers" {
			t.Errorf("processor received %s", s.kinds())
		}
	})
}

// §A: a filter before ext_proc that answers locally leaves ext_proc without
// request headers, yet its encoder step runs (envoy#11447): the stream
// starts with response_headers, and the processor cannot know the origin.
// In a composite the delegate was never created, so nothing is sent.
func TestAFilterBeforeExtProcAnswersBeforeTheProcessorSawTheRequest(t *testing.T) {
	t.Parallel()
	t.Run("plain ext_proc gets a stream that starts with response_headers", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil, step{want: "response_headers", reply: respHeadersReply(nil)})
		u := startUpstream(t, nil, nil)
		e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, Before: []Filter{JWTAuthn()}})
		res, _ := do(t, "OPTIONS", e.URL()+"/", "", "Origin: https://app.example", "Access-Control-Request-Method: PUT")
		if res.StatusCode != 401 {
			t.Errorf("a preflight before the processor got %d, want jwt_authn's 401", res.StatusCode)
		}
		if s := p.waitStreams(t, 1)[0]; s.kinds() != "response_headers" {
			t.Errorf("processor received %s, want response_headers only", s.kinds())
		}
	})
	t.Run("ext_proc in a composite never starts a stream", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil)
		u := startUpstream(t, nil, nil)
		e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, Before: []Filter{JWTAuthn()}, OnlyWithHeader: "origin"})
		if res, _ := do(t, "GET", e.URL()+"/", "", "Origin: https://app.example"); res.StatusCode != 401 {
			t.Errorf("got %d, want 401", res.StatusCode)
		}
		if n := e.Stats().StreamsStarted; n != 0 {
			t.Errorf("%d streams started", n)
		}
	})
}

// §D: forward_rules match the lower-case key, pseudo-headers included;
// disallow wins; an empty allow list allows all; both directions.
func TestForwardRulesChooseTheHeadersTheProcessorSees(t *testing.T) {
	t.Parallel()
	allow := func(p ...string) *ListOfPatterns { return patterns(p...) }
	tests := []struct {
		name              string
		allowed, disallow *ListOfPatterns
		wantReq, wantResp []string
	}{
		{name: "no rules forward everything",
			wantReq: []string{":authority", ":path", ":method", ":scheme", "accept-encoding", "authorization", "cookie", "origin",
				"user-agent", "x-forwarded-proto", "x-request-id"},
			wantResp: []string{":status", "content-length", "content-type", "date", "vary", "x-upstream", "x-envoy-upstream-service-time"}},
		{name: "an allow list keeps only its headers and drops unlisted pseudo-headers",
			allowed: allow("=:method", "=origin", "=vary", "^access-control-"),
			wantReq: []string{":method", "origin"}, wantResp: []string{"vary"}},
		{name: "a disallow list wins over the allow list",
			allowed: allow("=:method", "=:path", "=origin", "=cookie"), disallow: allow("=cookie", "=:path"),
			wantReq: []string{":method", "origin"}, wantResp: nil},
		{name: "an empty allow list with a disallow list forwards all the rest",
			disallow: allow("=cookie", "=authorization", "^:"),
			wantReq:  []string{"accept-encoding", "origin", "user-agent", "x-forwarded-proto", "x-request-id"},
			wantResp: []string{"content-length", "content-type", "date", "vary", "x-upstream", "x-envoy-upstream-service-time"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startProc(t, nil, continueBoth...)
			u := startUpstream(t, nil, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Vary", "accept")
				w.Header().Set("X-Upstream", "yes")
				w.Header().Set("Content-Type", "text/plain")
				w.Write([]byte("ok"))
			})
			e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, ForwardRules: forwardRulesOf(tt.allowed, tt.disallow)})
			do(t, "GET", e.URL()+"/", "", "Origin: https://app.example", "Cookie: session=1", "Authorization: Bearer t")
			s := p.waitStreams(t, 1)[0]
			if got := keys(s.msgs[0].GetRequestHeaders().GetHeaders()); !sameSet(got, tt.wantReq) {
				t.Errorf("request_headers carried %v, want %v", got, tt.wantReq)
			}
			if got := keys(s.msgs[1].GetResponseHeaders().GetHeaders()); !sameSet(got, tt.wantResp) {
				t.Errorf("response_headers carried %v, want %v", got, tt.wantResp)
			}
		})
	}
}

// §D: mutation_rules are checked for every change; a disallowed one is
// ignored and counted, the rest applies; with disallow_is_error the reply
// is an error and the client gets a local 500.
func TestMutationRulesDropOrRefuseDisallowedChanges(t *testing.T) {
	t.Parallel()
	rules := corsprocMutationRules(false)
	reply := respHeadersReply(mutation([]string{"x-upstream"},
		hv("access-control-allow-origin", "https://app.example"), hv("vary", "origin"), hv("set-cookie", "evil=1"),
		hv("x-corsproc-decision", "allowed")))
	t.Run("a disallowed change is dropped and counted, the rest applies", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil, step{want: "request_headers", reply: reqHeadersReply(nil)}, step{want: "response_headers", reply: reply})
		u := startUpstream(t, nil, nil)
		e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, MutationRules: rules})
		res, body := do(t, "GET", e.URL()+"/", "")
		if res.StatusCode != 200 || body != "upstream body" {
			t.Fatalf("got %d %q", res.StatusCode, body)
		}
		if res.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || res.Header.Get("Vary") != "origin" ||
			res.Header.Get("X-Corsproc-Decision") != "allowed" {
			t.Errorf("allowed changes missing: %v", res.Header)
		}
		if res.Header.Get("Set-Cookie") != "" || res.Header.Get("X-Upstream") != "yes" {
			t.Errorf("a disallowed change went through: %v", res.Header)
		}
		if n := e.Stats().RejectedHeaderMutations; n != 2 {
			t.Errorf("rejected_header_mutations %d, want 2 (the remove and the set-cookie)", n)
		}
	})
	t.Run("with disallow_is_error the client gets a local 500", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil, step{want: "request_headers", reply: reqHeadersReply(nil)}, step{want: "response_headers", reply: reply})
		u := startUpstream(t, nil, nil)
		e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, MutationRules: corsprocMutationRules(true), FailureModeAllow: true})
		if res, _ := do(t, "GET", e.URL()+"/", ""); res.StatusCode != 500 {
			t.Errorf("got %d, want 500", res.StatusCode)
		}
	})
}

// §E.2: in a composite with a header matcher the ext_proc filter exists only
// for requests that carry the header: an absent header is no match, so no
// stream, no phase and no encoder step.
func TestTheCompositeMatcherCreatesExtProcOnlyWhenTheHeaderMatches(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, regex string
		header      []string
		wantStreams int64
	}{
		{name: "a request without origin opens no stream", regex: ".*", wantStreams: 0},
		{name: "a request with origin opens one", regex: ".*", header: []string{"Origin: https://app.example"}, wantStreams: 1},
		{name: "an empty origin still matches .*", regex: ".*", header: []string{"Origin: "}, wantStreams: 1},
		{name: "a value the regex does not match opens none", regex: "https://.*", header: []string{"Origin: null"}, wantStreams: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := startProc(t, nil, continueBoth...)
			u := startUpstream(t, nil, nil)
			e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, OnlyWithHeader: "origin", OnlyWithHeaderRegex: tt.regex})
			if res, body := do(t, "GET", e.URL()+"/", "", tt.header...); res.StatusCode != 200 || body != "upstream body" {
				t.Errorf("got %d %q", res.StatusCode, body)
			}
			p.waitStreams(t, int(tt.wantStreams))
			if st := e.Stats(); st.StreamsStarted != tt.wantStreams || st.MessagesSent != 2*tt.wantStreams {
				t.Errorf("stats %+v, want %d streams", st, tt.wantStreams)
			}
		})
	}
}

// §E.3: route response_headers_to_add is applied before the encoder chain,
// to upstream responses and local replies alike, so ext_proc sees it and
// can overwrite it.
func TestRouteResponseHeadersAreAddedBeforeTheProcessorSeesTheResponse(t *testing.T) {
	t.Parallel()
	varyOrigin := []*corev3.HeaderValueOption{{
		Header:       &corev3.HeaderValue{Key: "vary", Value: "origin"},
		AppendAction: corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD,
	}}
	t.Run("on an upstream response the processor sees the added line", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil, continueBoth...)
		u := startUpstream(t, nil, func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Vary", "accept") })
		e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, Routes: []Route{{Name: "r", Upstream: u.URL, ResponseHeadersToAdd: varyOrigin}}})
		res, _ := do(t, "GET", e.URL()+"/", "")
		if got := res.Header.Values("Vary"); !slices.Equal(got, []string{"accept", "origin"}) {
			t.Errorf("vary %q, want the upstream's line and the route's", got)
		}
		s := p.waitStreams(t, 1)[0]
		if got := headerValues(s.msgs[1].GetResponseHeaders().GetHeaders(), "vary"); !slices.Equal(got, []string{"accept", "origin"}) {
			t.Errorf("the processor saw vary %q", got)
		}
	})
	t.Run("the processor can overwrite it", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil, step{want: "request_headers", reply: reqHeadersReply(nil)},
			step{want: "response_headers", reply: respHeadersReply(mutation(nil, hv("vary", "accept, origin")))})
		u := startUpstream(t, nil, func(w http.ResponseWriter, r *http.Request) { w.Header().Set("Vary", "accept") })
		e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, Routes: []Route{{Name: "r", Upstream: u.URL, ResponseHeadersToAdd: varyOrigin}}})
		if res, _ := do(t, "GET", e.URL()+"/", ""); !slices.Equal(res.Header.Values("Vary"), []string{"accept, origin"}) {
			t.Errorf("vary %q", res.Header.Values("Vary"))
		}
	})
	t.Run("a later filter's local reply carries it too, before the processor", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil, continueBoth...)
		u := startUpstream(t, nil, nil)
		e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, Routes: []Route{{Name: "r", Upstream: u.URL, ResponseHeadersToAdd: varyOrigin}},
			After: []Filter{JWTAuthn()}})
		res, _ := do(t, "GET", e.URL()+"/", "")
		if res.StatusCode != 401 || res.Header.Get("Vary") != "origin" {
			t.Errorf("got %d vary %q", res.StatusCode, res.Header.Get("Vary"))
		}
		if s := p.waitStreams(t, 1)[0]; !slices.Equal(headerValues(s.msgs[1].GetResponseHeaders().GetHeaders(), "vary"), []string{"origin"}) {
			t.Errorf("the processor did not see the route's vary on the local reply")
		}
	})
	t.Run("an ImmediateResponse gets it first and its own headers overwrite it", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil, step{want: "request_headers", reply: immediateReply(204, mutation(nil, hv("vary", "origin, access-control-request-method")), "", "")})
		u := startUpstream(t, nil, nil)
		e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, Routes: []Route{{Name: "r", Upstream: u.URL, ResponseHeadersToAdd: varyOrigin}}})
		res, _ := do(t, "OPTIONS", e.URL()+"/", "")
		if got := res.Header.Values("Vary"); !slices.Equal(got, []string{"origin, access-control-request-method"}) {
			t.Errorf("vary %q", got)
		}
	})
	t.Run("without a composite match no stream exists and the route's vary still goes out", func(t *testing.T) {
		t.Parallel()
		p := startProc(t, nil)
		u := startUpstream(t, nil, nil)
		e := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, Routes: []Route{{Name: "r", Upstream: u.URL, ResponseHeadersToAdd: varyOrigin}},
			OnlyWithHeader: "origin"})
		res, _ := do(t, "GET", e.URL()+"/", "")
		if res.Header.Get("Vary") != "origin" || e.Stats().StreamsStarted != 0 {
			t.Errorf("vary %q, %d streams", res.Header.Get("Vary"), e.Stats().StreamsStarted)
		}
	})
}

func TestBytesSentCountsWhatTheProcessorReceives(t *testing.T) {
	t.Parallel()
	p := startProc(t, nil, continueBoth...)
	u := startUpstream(t, nil, nil)
	all := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout})
	few := startEnvoy(t, p, u, Config{MessageTimeout: roomyTimeout, ForwardRules: forwardRulesOf(patterns("=origin"), nil)})
	for _, e := range []*Envoy{all, few} {
		do(t, "GET", e.URL()+"/", "", "Origin: https://app.example", "Cookie: a=b")
	}
	streams := p.waitStreams(t, 2)
	var total int64
	for _, s := range streams {
		for _, m := range s.msgs {
			total += int64(proto.Size(m))
		}
	}
	a, f := all.Stats().BytesSent, few.Stats().BytesSent
	if a+f != total || f >= a || f == 0 {
		t.Errorf("bytes sent %d (all headers) + %d (origin only), processors received %d", a, f, total)
	}
}
