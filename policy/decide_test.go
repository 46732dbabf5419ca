package policy

// Decision tests, written from docs/contract.md §3 rather than from the code. This file
// holds the shared helpers and the cases that cut across request classes:
// modes, requests without an origin and --debug-headers. Preflights,
// actual requests, policy selection and the attack list have files of their
// own.

import (
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"unsafe"
)

// The origin most cases send, and the policy most cases use: the docs/contract.md §2
// defaults with one allowed origin.
const (
	decOrigin = "https://app.example.com"
	decEvil   = "https://evil.example.net"

	// The default allow_methods and allow_headers answers, as docs/contract.md §2 lists
	// them (django-cors-headers' defaults).
	decDefaultMethods = "DELETE, GET, OPTIONS, PATCH, POST, PUT"
	decDefaultHeaders = "accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with"

	decPreflightVary    = "origin, access-control-request-method, access-control-request-headers"
	decPreflightVaryPNA = decPreflightVary + ", access-control-request-private-network"
)

// decPolicy returns a policy file with one policy named "test", match-all,
// whose settings are the given YAML lines (each one key).
func decPolicy(settings ...string) string {
	var b strings.Builder
	b.WriteString("policies:\n  - name: test\n")
	for _, s := range settings {
		b.WriteString("    ")
		b.WriteString(s)
		b.WriteString("\n")
	}
	return b.String()
}

var decBasic = decPolicy(`allowed_origins: ["https://app.example.com"]`)

var decSets sync.Map // policy YAML -> *Set, so that parallel cases share one parse

// decSet parses a policy file, failing the test on any error.
func decSet(t testing.TB, yaml string) *Set {
	t.Helper()
	if s, ok := decSets.Load(yaml); ok {
		return s.(*Set)
	}
	s, err := Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("the test policy does not load: %v\n%s", err, yaml)
	}
	decSets.Store(yaml, s)
	return s
}

// decPreflight is a browser's preflight from origin for method.
func decPreflight(origin, method string, headers ...string) Request {
	return Request{
		Method: "OPTIONS", Host: "api.example.com", Path: "/v1/items",
		Origin: origin, RequestMethod: method, HasRequestMethod: true,
		RequestHeaders: headers,
	}
}

// decActual is a cross-origin request (not a preflight) from origin.
func decActual(method, origin string) Request {
	return Request{Method: method, Host: "api.example.com", Path: "/v1/items", Origin: origin}
}

// decLines renders headers as sorted "name: value" lines.
func decLines(hs []Header) []string {
	out := make([]string, 0, len(hs))
	for _, h := range hs {
		out = append(out, h.Name+": "+h.Value)
	}
	slices.Sort(out)
	return out
}

// decWant is the expected verdict. Headers are "name: value" lines in any
// order: the local answer when the request is answered locally, otherwise
// the edit's Set for the given upstream response.
type decWant struct {
	class    Class
	outcome  Outcome
	reason   Reason
	local    bool
	status   int
	skip     bool
	headers  []string
	remove   []string // Edit.Remove
	mismatch bool     // Edit.Mismatch
	policy   string   // the matched policy; "test" when left empty and not unmatched
	detail   string   // Decision.Detail, checked when set
	// debug expects x-corsproc-decision (the outcome) and x-corsproc-reason
	// (starting with the reason code); headers then list the others only.
	debug bool
}

type decCase struct {
	name   string
	policy string
	req    Request
	up     Upstream
	want   decWant
}

func decRun(t *testing.T, cases []decCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			decCheck(t, decSet(t, c.policy), c.req, c.up, c.want)
		})
	}
}

// decCheck decides req, runs the response phase against up and compares
// everything with want; it also checks the contract's "never" invariants on
// every case.
func decCheck(t *testing.T, s *Set, req Request, up Upstream, want decWant) {
	t.Helper()
	d := s.Decide(&req)
	if d.Class != want.class || d.Outcome != want.outcome || d.Reason != want.reason {
		t.Errorf("class/outcome/reason = %v/%v/%v, want %v/%v/%v (%s)",
			d.Class, d.Outcome, d.Reason, want.class, want.outcome, want.reason, d.Message())
	}
	if want.detail != "" && d.Detail != want.detail {
		t.Errorf("detail = %q, want %q", d.Detail, want.detail)
	}
	wantPolicy := want.policy
	if wantPolicy == "" && want.reason != ReasonNoPolicy {
		wantPolicy = "test"
	}
	if d.Policy != wantPolicy {
		t.Errorf("policy = %q, want %q", d.Policy, wantPolicy)
	}
	if d.Local != want.local || d.Status != want.status || d.SkipResponse != want.skip {
		t.Errorf("local/status/skip = %v/%d/%v, want %v/%d/%v",
			d.Local, d.Status, d.SkipResponse, want.local, want.status, want.skip)
	}
	var e Edit
	d.Respond(&up, &e)
	got := d.Headers()
	if !d.Local {
		got = e.Set(&d)
		if !slices.Equal(e.Remove, want.remove) {
			t.Errorf("removes %q, want %q", e.Remove, want.remove)
		}
	} else if len(e.Set(&d)) != 0 || len(e.Remove) != 0 {
		t.Errorf("a locally answered request edits a response: set %q, remove %q", decLines(e.Set(&d)), e.Remove)
	}
	if e.Mismatch != want.mismatch {
		t.Errorf("mismatch = %v, want %v", e.Mismatch, want.mismatch)
	}
	decCheckHeaders(t, got, want)
	decInvariants(t, s, &req, got)
}

func decCheckHeaders(t *testing.T, got []Header, want decWant) {
	t.Helper()
	var plain []Header
	var debugDecision, debugReason []string
	for _, h := range got {
		switch h.Name {
		case hdrDebugDecision:
			debugDecision = append(debugDecision, h.Value)
		case hdrDebugReason:
			debugReason = append(debugReason, h.Value)
		default:
			plain = append(plain, h)
		}
	}
	wantLines := slices.Clone(want.headers)
	slices.Sort(wantLines)
	if gotLines := decLines(plain); !slices.Equal(gotLines, wantLines) {
		t.Errorf("headers:\n  got  %q\n  want %q", gotLines, wantLines)
	}
	if !want.debug {
		if debugDecision != nil || debugReason != nil {
			t.Errorf("debug headers without --debug-headers: %q %q", debugDecision, debugReason)
		}
		return
	}
	if !slices.Equal(debugDecision, []string{want.outcome.String()}) {
		t.Errorf("x-corsproc-decision = %q, want %q", debugDecision, want.outcome)
	}
	if len(debugReason) != 1 || !strings.HasPrefix(debugReason[0], want.reason.String()+": ") {
		t.Errorf("x-corsproc-reason = %q, want one line starting %q", debugReason, want.reason.String()+": ")
	}
}

// decInvariants checks what docs/contract.md §3 says must never happen, whatever the
// request: a reflected origin that is not the request's, "*" with
// credentials, a header value with bytes outside visible ASCII, space and
// tab, duplicate header names.
func decInvariants(t testing.TB, s *Set, req *Request, hs []Header) {
	t.Helper()
	seen := map[string]bool{}
	credentials := false
	for _, h := range hs {
		if seen[h.Name] {
			t.Errorf("header %q appears twice", h.Name)
		}
		seen[h.Name] = true
		if !isToken(h.Name) || strings.ToLower(h.Name) != h.Name {
			t.Errorf("header name %q is not a lower-case token", h.Name)
		}
		if !decValidValue(h.Value) {
			t.Errorf("header %s has a value with bytes no header value may hold: %q", h.Name, h.Value)
		}
		if h.Name == hdrAllowCredentials {
			credentials = true
		}
	}
	for _, h := range hs {
		switch h.Name {
		case hdrAllowOrigin:
			if h.Value != "*" && h.Value != req.Origin {
				t.Errorf("access-control-allow-origin %q is neither * nor the request's origin %q", h.Value, req.Origin)
			}
			if h.Value == "*" && credentials {
				t.Errorf("access-control-allow-origin: * with credentials")
			}
		case hdrAllowMethods, hdrAllowHeaders, hdrExpose:
			if credentials && decHasStar(h.Value) {
				t.Errorf("%s: %q has * with credentials", h.Name, h.Value)
			}
		}
	}
}

// decValidValue reports whether v holds only visible ASCII, space and tab.
func decValidValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c != '\t' && (c < 0x20 || c > 0x7e) {
			return false
		}
	}
	return true
}

func decHasStar(v string) bool {
	for _, el := range strings.Split(v, ",") {
		if strings.TrimSpace(el) == "*" {
			return true
		}
	}
	return false
}

func TestModes(t *testing.T) {
	t.Parallel()
	report := decPolicy(`mode: report`, `allowed_origins: ["https://app.example.com"]`)
	off := decPolicy(`mode: off`, `allowed_origins: ["https://app.example.com"]`)
	serviceAllows := Upstream{AllowOrigin: decOrigin, AllowOrigins: 1, Vary: []string{"origin"},
		CORSHeaders: []string{hdrAllowOrigin}}
	serviceStar := Upstream{AllowOrigin: "*", AllowOrigins: 1, CORSHeaders: []string{hdrAllowOrigin}}
	decRun(t, []decCase{
		{
			name:   "report mode forwards an allowed actual request and changes nothing, not even vary",
			policy: report, req: decActual("GET", decOrigin), up: serviceAllows,
			want: decWant{class: Actual, outcome: Allowed, reason: ReasonOriginAllowed},
		},
		{
			name:   "report mode counts a mismatch when the service does not answer an origin the policy allows",
			policy: report, req: decActual("GET", decOrigin), up: Upstream{Vary: []string{"accept-encoding"}},
			want: decWant{class: Actual, outcome: Allowed, reason: ReasonOriginAllowed, mismatch: true},
		},
		{
			name:   "report mode counts a mismatch when the service allows an origin the policy denies",
			policy: report, req: decActual("GET", decEvil),
			up:   Upstream{AllowOrigin: decEvil, AllowOrigins: 1, CORSHeaders: []string{hdrAllowOrigin}},
			want: decWant{class: Actual, outcome: Denied, reason: ReasonOriginNotAllowed, mismatch: true},
		},
		{
			name:   "report mode counts a mismatch when the service answers * to an origin the policy denies",
			policy: report, req: decActual("GET", decEvil), up: serviceStar,
			want: decWant{class: Actual, outcome: Denied, reason: ReasonOriginNotAllowed, mismatch: true},
		},
		{
			name:   "report mode sees no mismatch when the service answers * to an origin the policy allows",
			policy: report, req: decActual("GET", decOrigin), up: serviceStar,
			want: decWant{class: Actual, outcome: Allowed, reason: ReasonOriginAllowed},
		},
		{
			name:   "report mode sees no mismatch when neither the service nor the policy allows the origin",
			policy: report, req: decActual("POST", decEvil),
			want: decWant{class: Actual, outcome: Denied, reason: ReasonOriginNotAllowed},
		},
		{
			name:   "report mode never answers a preflight itself: it is forwarded to the service",
			policy: report, req: decPreflight(decOrigin, "PUT", "content-type"), up: serviceAllows,
			want: decWant{class: Preflight, outcome: Allowed, reason: ReasonOriginAllowed},
		},
		{
			name:   "report mode judges a preflight's method as enforce would, without answering it",
			policy: report, req: decPreflight(decOrigin, "PURGE"),
			want: decWant{class: Preflight, outcome: Denied, reason: ReasonMethodNotAllowed},
		},
		{
			name:   "report mode judges a preflight's headers as enforce would and counts the service allowing them",
			policy: report, req: decPreflight(decOrigin, "PUT", "x-api-key"), up: serviceAllows,
			want: decWant{class: Preflight, outcome: Denied, reason: ReasonHeaderNotAllowed, mismatch: true},
		},
		{
			name:   "report mode without an origin skips the response phase",
			policy: report, req: decActual("GET", ""),
			want: decWant{class: NoOrigin, outcome: Skipped, reason: ReasonNoOrigin, skip: true},
		},
		{
			name:   "report mode adds no debug headers: nothing is changed",
			policy: report, req: func() Request { r := decActual("GET", decOrigin); r.Debug = true; return r }(),
			up:   serviceAllows,
			want: decWant{class: Actual, outcome: Allowed, reason: ReasonOriginAllowed},
		},
		{
			name:   "off mode leaves an actual request alone and skips the response phase",
			policy: off, req: decActual("GET", decOrigin), up: serviceAllows,
			want: decWant{class: Unmatched, outcome: Skipped, reason: ReasonPolicyOff, skip: true},
		},
		{
			name:   "off mode forwards a preflight untouched",
			policy: off, req: decPreflight(decOrigin, "PUT"),
			want: decWant{class: Unmatched, outcome: Skipped, reason: ReasonPolicyOff, skip: true},
		},
		{
			name:   "off mode adds no vary to a request without an origin",
			policy: off, req: decActual("GET", ""),
			want: decWant{class: Unmatched, outcome: Skipped, reason: ReasonPolicyOff, skip: true},
		},
		{
			name:   "off mode adds no debug headers",
			policy: off, req: func() Request { r := decPreflight(decEvil, "PUT"); r.Debug = true; return r }(),
			want: decWant{class: Unmatched, outcome: Skipped, reason: ReasonPolicyOff, skip: true},
		},
		{
			name:   "a request no policy matches is not touched and skips the response phase",
			policy: "policies:\n  - name: other\n    match: {hosts: [other.example.com]}\n    allowed_origins: [\"https://app.example.com\"]\n",
			req:    decPreflight(decOrigin, "PUT"), up: serviceAllows,
			want: decWant{class: Unmatched, outcome: Skipped, reason: ReasonNoPolicy, skip: true},
		},
	})
}

func TestNoOrigin(t *testing.T) {
	t.Parallel()
	allowAll := decPolicy(`allow_all_origins: true`, `expose_headers: [x-total-count]`)
	keep := decPolicy(`allowed_origins: ["https://app.example.com"]`, `upstream_cors_headers: keep`)
	decRun(t, []decCase{
		{
			name:   "a request without an origin is forwarded and gets vary: origin",
			policy: decBasic, req: decActual("GET", ""),
			want: decWant{class: NoOrigin, outcome: Skipped, reason: ReasonNoOrigin, headers: []string{"vary: origin"}},
		},
		{
			name:   "a request without an origin has origin merged into the service's vary",
			policy: decBasic, req: decActual("GET", ""), up: Upstream{Vary: []string{"accept-encoding"}},
			want: decWant{class: NoOrigin, outcome: Skipped, reason: ReasonNoOrigin, headers: []string{"vary: accept-encoding, origin"}},
		},
		{
			name:   "a request without an origin loses the service's own access-control headers under replace",
			policy: decBasic, req: decActual("GET", ""),
			up: Upstream{AllowOrigin: "*", AllowOrigins: 1, CORSHeaders: []string{hdrAllowOrigin, hdrExpose}},
			want: decWant{class: NoOrigin, outcome: Skipped, reason: ReasonNoOrigin,
				headers: []string{"vary: origin"}, remove: []string{hdrAllowOrigin, hdrExpose}},
		},
		{
			name:   "a request without an origin under keep leaves a response with the service's allow-origin alone",
			policy: keep, req: decActual("GET", ""),
			up:   Upstream{AllowOrigin: "*", AllowOrigins: 1, CORSHeaders: []string{hdrAllowOrigin}},
			want: decWant{class: NoOrigin, outcome: Skipped, reason: ReasonNoOrigin},
		},
		{
			name:   "an OPTIONS request with access-control-request-method but no origin is not a preflight",
			policy: decBasic, req: decPreflight("", "PUT"),
			want: decWant{class: NoOrigin, outcome: Skipped, reason: ReasonNoOrigin, headers: []string{"vary: origin"}},
		},
		{
			name:   "allow-all without credentials gives * and the expose list to a request without an origin, and no vary",
			policy: allowAll, req: decActual("GET", ""), up: Upstream{Vary: []string{"accept-encoding"}},
			want: decWant{class: NoOrigin, outcome: Skipped, reason: ReasonNoOrigin,
				headers: []string{"access-control-allow-origin: *", "access-control-expose-headers: x-total-count"}},
		},
	})
}

func TestDebugHeaders(t *testing.T) {
	t.Parallel()
	debug := func(r Request) Request { r.Debug = true; return r }
	creds := decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_credentials: true`,
		`allow_headers: ["*"]`, `allow_methods: [GET, PUT]`)
	decRun(t, []decCase{
		{
			name:   "an allowed actual request carries the decision and the reason",
			policy: decBasic, req: debug(decActual("GET", decOrigin)),
			want: decWant{class: Actual, outcome: Allowed, reason: ReasonOriginAllowed, debug: true,
				headers: []string{"access-control-allow-origin: " + decOrigin, "vary: origin"}},
		},
		{
			name:   "a denied actual request carries the decision and the reason",
			policy: decBasic, req: debug(decActual("GET", decEvil)),
			want: decWant{class: Actual, outcome: Denied, reason: ReasonOriginNotAllowed, debug: true,
				headers: []string{"vary: origin"}},
		},
		{
			name:   "a request without an origin carries the decision and the reason",
			policy: decBasic, req: debug(decActual("GET", "")),
			want: decWant{class: NoOrigin, outcome: Skipped, reason: ReasonNoOrigin, debug: true,
				headers: []string{"vary: origin"}},
		},
		{
			name:   "an allowed preflight carries the decision and the reason",
			policy: decBasic, req: debug(decPreflight(decOrigin, "PUT")),
			want: decWant{class: Preflight, outcome: Allowed, reason: ReasonOriginAllowed, debug: true,
				local: true, status: 204, skip: true, headers: []string{
					"access-control-allow-origin: " + decOrigin,
					"access-control-allow-methods: " + decDefaultMethods,
					"access-control-allow-headers: " + decDefaultHeaders,
					"access-control-max-age: 86400",
					"vary: " + decPreflightVary, "content-length: 0",
				}},
		},
		{
			name:   "a preflight refused for its origin is still a bare 403",
			policy: decBasic, req: debug(decPreflight(decEvil, "PUT")),
			want: decWant{class: Preflight, outcome: Denied, reason: ReasonOriginNotAllowed, debug: true,
				local: true, status: 403, skip: true, headers: []string{"vary: " + decPreflightVary, "content-length: 0"}},
		},
		{
			name:   "a preflight refused for its method answers the preflight status and the origin, without the methods or max-age",
			policy: decBasic, req: debug(decPreflight(decOrigin, "PURGE", "content-type")),
			want: decWant{class: Preflight, outcome: Denied, reason: ReasonMethodNotAllowed, debug: true,
				local: true, status: 204, skip: true, headers: []string{
					"access-control-allow-origin: " + decOrigin,
					"access-control-allow-headers: " + decDefaultHeaders,
					"vary: " + decPreflightVary, "content-length: 0",
				}},
		},
		{
			name:   "a preflight refused for a header answers the preflight status and the origin, without the headers or max-age",
			policy: decBasic, req: debug(decPreflight(decOrigin, "PUT", "x-api-key")),
			want: decWant{class: Preflight, outcome: Denied, reason: ReasonHeaderNotAllowed, debug: true,
				local: true, status: 204, skip: true, headers: []string{
					"access-control-allow-origin: " + decOrigin,
					"access-control-allow-methods: " + decDefaultMethods,
					"vary: " + decPreflightVary, "content-length: 0",
				}},
		},
		{
			name:   "a preflight refused for its method with credentials names the origin and credentials and echoes valid headers",
			policy: creds, req: debug(decPreflight(decOrigin, "DELETE", "x-api-key")),
			want: decWant{class: Preflight, outcome: Denied, reason: ReasonMethodNotAllowed, debug: true,
				local: true, status: 204, skip: true, headers: []string{
					"access-control-allow-origin: " + decOrigin,
					"access-control-allow-credentials: true",
					"access-control-allow-headers: x-api-key",
					"vary: " + decPreflightVary, "content-length: 0",
				}},
		},
		{
			name:   "a preflight refused for both its method and an invalid header echoes neither",
			policy: creds, req: debug(decPreflight(decOrigin, "DELETE", "x-a\r\nset-cookie: a=b")),
			want: decWant{class: Preflight, outcome: Denied, reason: ReasonMethodNotAllowed, debug: true,
				local: true, status: 204, skip: true, headers: []string{
					"access-control-allow-origin: " + decOrigin,
					"access-control-allow-credentials: true",
					"vary: " + decPreflightVary, "content-length: 0",
				}},
		},
		{
			name:   "without debug a preflight refused for its method is a bare 403",
			policy: decBasic, req: decPreflight(decOrigin, "PURGE"),
			want: decWant{class: Preflight, outcome: Denied, reason: ReasonMethodNotAllowed,
				local: true, status: 403, skip: true, headers: []string{"vary: " + decPreflightVary, "content-length: 0"}},
		},
	})

	t.Run("the reason header keeps odd bytes of the request out of the response", func(t *testing.T) {
		t.Parallel()
		s := decSet(t, decBasic)
		for _, o := range []string{"https://é.example.com", "https://a.example.com\r\nset-cookie: a=b", "\x00\x7f\xff"} {
			r := debug(decActual("GET", o))
			d := s.Decide(&r)
			decInvariants(t, s, &r, d.Headers())
			r = debug(decPreflight(decOrigin, "PUT", o))
			d = s.Decide(&r)
			decInvariants(t, s, &r, d.Headers())
		}
	})
}

func TestExplain(t *testing.T) {
	t.Parallel()
	selection := "policies:\n  - name: off\n    mode: off\n    match: {hosts: [off.example.com]}\n" +
		"  - name: api\n    match: {hosts: [api.example.com]}\n    allowed_origins: [\"https://app.example.com\"]\n"
	report := decPolicy(`mode: report`, `allowed_origins: ["https://app.example.com"]`)
	cases := []struct {
		name   string
		policy string
		req    Request
		want   Explanation
	}{
		{
			name:   "an allowed preflight is shown answered locally with its status and headers",
			policy: selection, req: decPreflight(decOrigin, "PUT"),
			want: Explanation{Policy: "api", Mode: "enforce", Class: "preflight", Decision: "allowed", Reason: "origin_allowed",
				Status: 204, Headers: []Header{{hdrAllowOrigin, decOrigin}, {hdrAllowMethods, decDefaultMethods},
					{hdrAllowHeaders, decDefaultHeaders}, {hdrMaxAge, "86400"}, {hdrVary, decPreflightVary}, {hdrContentLength, "0"}}},
		},
		{
			name:   "an allowed actual request is shown forwarded, with the headers set on the response",
			policy: selection, req: decActual("GET", decOrigin),
			want: Explanation{Policy: "api", Mode: "enforce", Class: "actual", Decision: "allowed", Reason: "origin_allowed",
				Forwarded: true, Headers: []Header{{hdrAllowOrigin, decOrigin}, {hdrVary, "origin"}},
				RemovesUpstreamCORS: true, ResponsePhase: true},
		},
		{
			name:   "a denied preflight is shown as the bare 403",
			policy: selection, req: decPreflight(decEvil, "PUT"),
			want: Explanation{Policy: "api", Mode: "enforce", Class: "preflight", Decision: "denied", Reason: "origin_not_allowed",
				Status: 403, Headers: []Header{{hdrVary, decPreflightVary}, {hdrContentLength, "0"}}},
		},
		{
			name:   "an off policy is named, and shown forwarded untouched without a response phase",
			policy: selection, req: func() Request { r := decPreflight(decOrigin, "PUT"); r.Host = "off.example.com"; return r }(),
			want: Explanation{Policy: "off", Mode: "off", Class: "unmatched", Decision: "skipped", Reason: "policy_off",
				Forwarded: true, Headers: []Header{}},
		},
		{
			name:   "an unmatched request names no policy and no mode",
			policy: selection, req: func() Request { r := decActual("GET", decOrigin); r.Host = "www.example.com"; return r }(),
			want: Explanation{Class: "unmatched", Decision: "skipped", Reason: "no_policy", Forwarded: true, Headers: []Header{}},
		},
		{
			name:   "a report-mode request is shown forwarded with nothing changed but a response phase to compare",
			policy: report, req: decActual("GET", decEvil),
			want: Explanation{Policy: "test", Mode: "report", Class: "actual", Decision: "denied", Reason: "origin_not_allowed",
				Forwarded: true, Headers: []Header{}, ResponsePhase: true},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s := decSet(t, c.policy)
			got := s.Explain(&c.req)
			if got.Message == "" {
				t.Error("no message")
			}
			got.Message = ""
			got.PassedOver = nil // TestExplainPassedOver covers it
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("explain:\n  got  %+v\n  want %+v", got, c.want)
			}
		})
	}
}

// An Edit refers to its decision's headers rather than copying them; the
// merged vary line sits in a slot of the decision that Headers never
// shows, and each Respond writes it afresh.
func TestEditRefersToTheDecisionsHeadersWithoutChangingThem(t *testing.T) {
	t.Parallel()
	s := decSet(t, decPolicy(`allowed_origins: ["https://app.example.com"]`))
	r := decActual("GET", decOrigin)
	d := s.Decide(&r)
	before := slices.Clone(d.Headers())
	var e Edit
	for _, vary := range []string{"accept-encoding", "accept"} {
		d.Respond(&Upstream{Vary: []string{vary}}, &e)
		set := e.Set(&d)
		if want := vary + ", origin"; len(set) == 0 || set[len(set)-1] != (Header{hdrVary, want}) {
			t.Fatalf("with the service's vary %q, the edit sets %q; want it to end with vary %q", vary, decLines(set), want)
		}
		if !slices.Equal(set[:len(set)-1], before) {
			t.Errorf("the edit sets %q before vary; want the decision's headers %q", decLines(set), decLines(before))
		}
		if !slices.Equal(d.Headers(), before) {
			t.Errorf("Respond changed the decision's headers to %q", decLines(d.Headers()))
		}
	}
	if got := unsafe.Sizeof(e); got > 64 {
		t.Errorf("an Edit takes %d bytes: it holds a copy of headers again", got)
	}
}
