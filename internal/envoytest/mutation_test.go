package envoytest

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// mapOf builds a headerMap from "key: value" lines.
func mapOf(lines ...string) *headerMap {
	m := &headerMap{}
	for _, l := range lines {
		k, v, _ := strings.Cut(l, ": ")
		m.add(k, v)
	}
	return m
}

func (m *headerMap) String() string {
	var s []string
	for _, e := range m.entries {
		s = append(s, e.key+": "+e.value)
	}
	return strings.Join(s, " | ")
}

func TestApplyMutationFollowsEnvoysRules(t *testing.T) {
	t.Parallel()
	base := []string{":authority: a.example.com", ":path: /", ":method: GET", ":scheme: http", ":status: 200",
		"host: h", "x-envoy-original: 1", "vary: accept", "x-multi: a", "x-multi: b"}
	valueOnly := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-v", Value: "text"}}
	bothValues := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-v", Value: "text", RawValue: []byte("raw")}}
	withAction := hv("x-multi", "c")
	withAction.AppendAction = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD

	tests := []struct {
		name         string
		mut          *extprocv3.HeaderMutation
		want         []string // lines that must be there, in order for one key
		absent       []string // keys that must be gone
		wantRejected int
		wantErr      bool
	}{
		{name: "a value only in value gives an empty header", mut: mutation(nil, valueOnly), want: []string{"x-v: "}},
		{name: "a value in both value and raw_value is refused", mut: mutation(nil, bothValues), wantRejected: 1, wantErr: true},
		{name: "removes run before sets whatever their place", mut: mutation([]string{"vary"}, hv("vary", "origin")), want: []string{"vary: origin"}},
		{name: "append absent overwrites every line", mut: mutation(nil, hv("x-multi", "c")), want: []string{"x-multi: c"}},
		{name: "append false overwrites every line", mut: mutation(nil, hvAppend("x-multi", "c", false)), want: []string{"x-multi: c"}},
		{name: "append true adds a line", mut: mutation(nil, hvAppend("x-multi", "c", true)), want: []string{"x-multi: a", "x-multi: b", "x-multi: c"}},
		{name: "append true on a missing header adds it", mut: mutation(nil, hvAppend("x-new", "1", true)), want: []string{"x-new: 1"}},
		{name: "append_action is ignored", mut: mutation(nil, withAction), want: []string{"x-multi: c"}},
		{name: "sets apply in order", mut: mutation(nil, hv("x-o", "1"), hv("x-o", "2"), hvAppend("x-o", "3", true)), want: []string{"x-o: 2", "x-o: 3"}},
		{name: "names are lower-cased", mut: mutation([]string{"X-Multi"}, hv("X-Upper", "1")), want: []string{"x-upper: 1"}, absent: []string{"x-multi"}},
		{name: "routing and x-envoy headers are not changed and each try is counted",
			mut: mutation([]string{"x-envoy-original"}, hv("host", "evil"), hv(":authority", "evil"),
				hv(":scheme", "https"), hv(":method", "POST"), hv("x-envoy-foo", "1")),
			want:         []string{":authority: a.example.com", "host: h", ":scheme: http", ":method: GET", "x-envoy-original: 1"},
			absent:       []string{"x-envoy-foo"},
			wantRejected: 6},
		{name: "pseudo headers and host cannot be removed", mut: mutation([]string{":path", "host", ":status"}),
			want: []string{":path: /", "host: h", ":status: 200"}, wantRejected: 3},
		{name: "path can be set", mut: mutation(nil, hv(":path", "/x")), want: []string{":path: /x"}},
		{name: "status can be set to an integer of 200 or more", mut: mutation(nil, hv(":status", "201")), want: []string{":status: 201"}},
		{name: "status below 200 is ignored", mut: mutation(nil, hv(":status", "199")), want: []string{":status: 200"}, wantRejected: 1},
		{name: "a status that is not a number is ignored", mut: mutation(nil, hv(":status", "ok")), want: []string{":status: 200"}, wantRejected: 1},
		{name: "appending to a pseudo header is ignored", mut: mutation(nil, hvAppend(":status", "201", true)), want: []string{":status: 200"}, wantRejected: 1},
		{name: "a CR in a value is refused", mut: mutation(nil, hv("x-bad", "a\rb")), wantRejected: 1, wantErr: true},
		{name: "an LF in a value is refused", mut: mutation(nil, hv("x-bad", "a\nb")), wantRejected: 1, wantErr: true},
		{name: "a NUL in a value is refused", mut: mutation(nil, hv("x-bad", "a\x00b")), wantRejected: 1, wantErr: true},
		{name: "a name that is not a token is refused", mut: mutation(nil, hv("bad name", "v")), wantRejected: 1, wantErr: true},
		{name: "an empty name is refused", mut: mutation(nil, hv("", "v")), wantRejected: 1, wantErr: true},
		{name: "a bad name to remove is refused", mut: mutation([]string{"bad\nname"}), wantRejected: 1, wantErr: true},
		{name: "a set without a header is skipped", mut: mutation(nil, &corev3.HeaderValueOption{}), want: []string{"vary: accept"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := mapOf(base...)
			rejected := 0
			err := applyMutation(m, tt.mut, defaultChecker, func() { rejected++ })
			if (err != nil) != tt.wantErr || err != nil && !errors.Is(err, errMutation) {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if rejected != tt.wantRejected {
				t.Errorf("rejected = %d, want %d", rejected, tt.wantRejected)
			}
			if tt.wantErr {
				return
			}
			for _, line := range tt.want {
				k, _, _ := strings.Cut(line, ": ")
				var got []string
				for _, e := range m.entries {
					if e.key == k {
						got = append(got, e.key+": "+e.value)
					}
				}
				var want []string
				for _, l := range tt.want {
					if strings.HasPrefix(l, k+": ") {
						want = append(want, l)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("%s lines = %q, want %q (map %s)", k, got, want, m)
				}
			}
			for _, k := range tt.absent {
				if _, ok := m.get(k); ok {
					t.Errorf("%s still present (map %s)", k, m)
				}
			}
		})
	}
}

func TestApplyMutationRefusesMoreThanTheHeaderLimit(t *testing.T) {
	t.Parallel()
	var set []*corev3.HeaderValueOption
	for i := 0; i <= maxHeadersCount; i++ {
		set = append(set, hv(fmt.Sprintf("x-%d", i), "v"))
	}
	rejected := 0
	if err := applyMutation(&headerMap{}, mutation(nil, set...), defaultChecker, func() { rejected++ }); err == nil || rejected != 1 {
		t.Errorf("err = %v, rejected = %d; want an error counted once", err, rejected)
	}
}

func TestMutationsAreAppliedEndToEnd(t *testing.T) {
	t.Parallel()
	valueOnly := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "x-value-only", Value: "lost"}}
	tests := []struct {
		name         string
		script       []step
		wantStatus   int
		wantUpstream int
		check        func(t *testing.T, u *upstream, header map[string][]string)
		wantRejected int64
	}{
		{
			name: "a request mutation reaches the upstream, value-only headers empty",
			script: []step{
				{want: "request_headers", reply: reqHeadersReply(mutation([]string{"x-multi"}, hvAppend("x-multi", "new", true), valueOnly))},
				{want: "response_headers", reply: respHeadersReply(nil)},
			},
			wantStatus: 200, wantUpstream: 1,
			check: func(t *testing.T, u *upstream, _ map[string][]string) {
				h := u.requests()[0].Header
				if got := h.Values("X-Multi"); len(got) != 1 || got[0] != "new" {
					t.Errorf("x-multi = %q, want [new]", got)
				}
				if got, ok := h["X-Value-Only"]; !ok || got[0] != "" {
					t.Errorf("x-value-only = %q (present %v), want an empty header", got, ok)
				}
			},
		},
		{
			name: "a response mutation may set the status and is seen by the client",
			script: []step{
				{want: "request_headers", reply: reqHeadersReply(nil)},
				{want: "response_headers", reply: respHeadersReply(mutation([]string{"x-upstream"},
					hv(":status", "201"), hv("vary", "origin"), hv("x-envoy-upstream-service-time", "tampered")))},
			},
			wantStatus: 201, wantUpstream: 1, wantRejected: 1,
			check: func(t *testing.T, _ *upstream, h map[string][]string) {
				if h["Vary"][0] != "origin" || h["X-Upstream"] != nil {
					t.Errorf("client headers %v", h)
				}
				if got := h["X-Envoy-Upstream-Service-Time"]; len(got) != 1 || got[0] == "tampered" {
					t.Errorf("x-envoy-upstream-service-time = %q, want Envoy's value untouched", got)
				}
			},
		},
		{
			name: "an invalid request mutation is a local 500 and the upstream is not called",
			script: []step{
				{want: "request_headers", reply: reqHeadersReply(mutation(nil, hv("x-bad", "a\r\nb")))},
			},
			wantStatus: 500, wantUpstream: 0, wantRejected: 1,
		},
		{
			name: "an invalid response mutation is a local 500",
			script: []step{
				{want: "request_headers", reply: reqHeadersReply(nil)},
				{want: "response_headers", reply: respHeadersReply(mutation(nil, hv("bad name", "v")))},
			},
			wantStatus: 500, wantUpstream: 1, wantRejected: 1,
		},
	}
	for _, tt := range tests {
		for _, allow := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s (failure_mode_allow %v)", tt.name, allow), func(t *testing.T) {
				t.Parallel()
				p := startProc(t, nil, tt.script...)
				u := startUpstream(t, nil, nil)
				e := startEnvoy(t, p, u, Config{FailureModeAllow: allow})
				res, _ := do(t, "GET", e.URL()+"/", "", "X-Multi: old")
				if res.StatusCode != tt.wantStatus {
					t.Errorf("status %d, want %d", res.StatusCode, tt.wantStatus)
				}
				if n := len(u.requests()); n != tt.wantUpstream {
					t.Errorf("upstream called %d times, want %d", n, tt.wantUpstream)
				}
				if tt.check != nil {
					tt.check(t, u, res.Header)
				}
				p.waitStreams(t, 1)
				if got := e.Stats().RejectedHeaderMutations; got != tt.wantRejected {
					t.Errorf("rejected header mutations = %d, want %d", got, tt.wantRejected)
				}
			})
		}
	}
}
