package extproc

import (
	"testing"

	"github.com/corsproc/corsproc/policy"
)

// TestProcessorRemovesOnlyValidNames sends service responses whose
// access-control-* header names Envoy would refuse in remove_headers, over
// a real gRPC stream. Such a name is never copied into remove_headers (a
// mutation naming it would be refused whole, leaving the service's real
// access-control-allow-origin in place); the valid names beside it are
// still removed, and corsproc's own headers still set.
func TestProcessorRemovesOnlyValidNames(t *testing.T) {
	t.Parallel()
	ts := startServer(t, testPolicy, Options{})
	allowedSet := []string{
		"access-control-allow-credentials: true",
		"access-control-allow-origin: " + app,
		"access-control-expose-headers: x-request-id",
		"vary: origin",
	}
	for _, c := range []struct {
		name   string
		resp   []string
		remove []string
		set    []string
	}{{
		name:   "a name with a trailing space is left out and the service's allow-origin is still removed",
		resp:   []string{":status", "200", "access-control-allow-origin", "*", "access-control-allow-origin ", "*"},
		remove: []string{"access-control-allow-origin"},
		set:    allowedSet,
	}, {
		name:   "a name with a colon, a NUL or UTF-8 is left out",
		resp:   []string{":status", "200", "access-control-a:b", "1", "access-control-x\x00", "1", "access-control-é", "1", "access-control-max-age", "5"},
		remove: []string{"access-control-max-age"},
		set:    allowedSet,
	}, {
		name:   "only invalid names means nothing to remove",
		resp:   []string{":status", "200", "access-control-allow-origin\t", "*"},
		remove: nil,
		set:    allowedSet,
	}, {
		name:   "an upper-case name is removed by its lower-case name",
		resp:   []string{":status", "200", "Access-Control-Allow-Origin", "*"},
		remove: []string{"access-control-allow-origin"},
		set:    allowedSet,
	}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := ts.exchange(t, request("GET", "api.example.com", "origin", app), respHeaders(c.resp...))
			checkReply(t, 1, got[1], reply{kind: "response_headers", remove: c.remove, set: c.set})
			for _, n := range got[1].GetResponseHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders() {
				if !validName(n) {
					t.Errorf("remove_headers names %q, which Envoy refuses", n)
				}
			}
		})
	}
}

// TestMutationAgreesWithThePolicyOnValues: the last check before sending
// applies the policy's value rule, so a byte of 0x80 or more, which the
// policy never writes, is caught as a bug instead of passed to Envoy.
func TestMutationAgreesWithThePolicyOnValues(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		h     policy.Header
		valid bool
	}{
		{"visible ASCII is sent", policy.Header{Name: "vary", Value: "origin, accept"}, true},
		{"a value with UTF-8 is left out", policy.Header{Name: "access-control-allow-origin", Value: "https://caf\xc3\xa9.example"}, false},
		{"a value with a lone high byte is left out", policy.Header{Name: "access-control-expose-headers", Value: "x-\xff"}, false},
		{"a value with DEL is left out", policy.Header{Name: "vary", Value: "origin\x7f"}, false},
		{"a value with a trailing space is left out", policy.Header{Name: "vary", Value: "origin "}, false},
		{"an upper-case name is left out", policy.Header{Name: "Vary", Value: "origin"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var st streamState
			dropped := 0
			mut := st.mutation([]policy.Header{c.h}, nil, func(string) { dropped++ })
			if sent := len(mut.GetSetHeaders()) == 1; sent != c.valid || (dropped == 0) != c.valid {
				t.Errorf("%q: %q sent=%v dropped=%d, want sent=%v", c.h.Name, c.h.Value, sent, dropped, c.valid)
			}
		})
	}
}
