package doctor

import (
	"testing"

	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func TestHostsOverlap(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		policy, domain string
		want           bool
	}{
		{"api.example.com", "*", true},
		{"api.example.com", "api.example.com", true},
		{"api.example.com", "API.example.com:443", true},
		{"api.example.com", "www.example.com", false},
		{"api.example.com", "*.example.com", true},
		{"example.com", "*.example.com", false},
		{"api.example.com", "*-api.example.com", false},
		{"eu-api.example.com", "*-api.example.com", true},
		{"api.example.com", "api.*", true},
		{"*.example.com", "api.example.com", true},
		{"*.example.com", "example.com", false},
		{"*.example.com", "*.api.example.com", true},
		{"*.example.com", "*.example.org", false},
		{"*.example.com", "www.*", true},
	} {
		if got := hostsOverlap(c.policy, c.domain); got != c.want {
			t.Errorf("policy host %q, virtual-host domain %q: overlap %v, want %v", c.policy, c.domain, got, c.want)
		}
	}
}

func TestMutationAllowedFollowsEnvoysOrder(t *testing.T) {
	t.Parallel()
	re := func(s string) *matcherv3.RegexMatcher { return &matcherv3.RegexMatcher{Regex: s} }
	for _, c := range []struct {
		name   string
		rules  *mutationv3.HeaderMutationRules
		header string
		want   bool
	}{
		{"empty rules allow corsproc's headers", &mutationv3.HeaderMutationRules{}, "access-control-allow-origin", true},
		{"disallow_all blocks them", &mutationv3.HeaderMutationRules{DisallowAll: wrapperspb.Bool(true)}, "vary", false},
		{"allow_expression beats disallow_all", &mutationv3.HeaderMutationRules{DisallowAll: wrapperspb.Bool(true), AllowExpression: re("access-control-.*|vary")}, "vary", true},
		{"disallow_expression beats allow_expression", &mutationv3.HeaderMutationRules{DisallowExpression: re("vary"), AllowExpression: re(".*")}, "vary", false},
		{"a regex must match the whole name", &mutationv3.HeaderMutationRules{DisallowExpression: re("access-control")}, "access-control-allow-origin", true},
		{"x-envoy-* needs allow_envoy", &mutationv3.HeaderMutationRules{}, "x-envoy-foo", false},
	} {
		if got := (regexps{}).mutationAllowed(c.rules, c.header); got != c.want {
			t.Errorf("%s: %s allowed %v, want %v", c.name, c.header, got, c.want)
		}
	}
}

func TestMatchStringOnHeaderNames(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		m    *matcherv3.StringMatcher
		name string
		want bool
	}{
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "Origin"}, IgnoreCase: true}, "origin", true},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: "Origin"}}, "origin", false},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: "access-control-"}}, "access-control-request-method", true},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Suffix{Suffix: "-method"}}, "access-control-request-method", true},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Contains{Contains: "path"}}, ":path", true},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: ":(method|path)"}}}, ":path", true},
		{&matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: "("}}}, "(", false},
	} {
		if got := (regexps{}).matchString(c.m, c.name); got != c.want {
			t.Errorf("%v on %q: %v, want %v", c.m, c.name, got, c.want)
		}
	}
}
