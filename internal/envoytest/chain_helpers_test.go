package envoytest

import (
	"slices"
	"strings"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/corsproc/corsproc/internal/testutil"
)

// ListOfPatterns is a ListStringMatcher, written short in tests.
type ListOfPatterns = matcherv3.ListStringMatcher

// patterns builds a ListStringMatcher: "=x" exact, "^x" prefix.
func patterns(p ...string) *ListOfPatterns {
	l := &ListOfPatterns{}
	for _, s := range p {
		m := &matcherv3.StringMatcher{}
		switch s[0] {
		case '=':
			m.MatchPattern = &matcherv3.StringMatcher_Exact{Exact: s[1:]}
		case '^':
			m.MatchPattern = &matcherv3.StringMatcher_Prefix{Prefix: s[1:]}
		default:
			panic("patterns: want =x or ^x, got " + s)
		}
		l.Patterns = append(l.Patterns, m)
	}
	return l
}

func forwardRulesOf(allowed, disallowed *ListOfPatterns) *extprocfilterv3.HeaderForwardingRules {
	return &extprocfilterv3.HeaderForwardingRules{AllowedHeaders: allowed, DisallowedHeaders: disallowed}
}

// corsprocMutationRules lets a processor change only the CORS headers,
// vary, content-length and x-corsproc-*.
func corsprocMutationRules(isError bool) *mutationrulesv3.HeaderMutationRules {
	return &mutationrulesv3.HeaderMutationRules{
		DisallowAll:     wrapperspb.Bool(true),
		AllowExpression: &matcherv3.RegexMatcher{Regex: "access-control-.*|vary|content-length|x-corsproc-.*"},
		DisallowIsError: wrapperspb.Bool(isError),
	}
}

// keys lists the header keys of m, in order.
func keys(m *corev3.HeaderMap) []string {
	var out []string
	for _, h := range m.GetHeaders() {
		out = append(out, h.GetKey())
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return strings.Join(slices.Compact(a), ",") == strings.Join(slices.Compact(b), ",")
}

// roomyTimeout is the message timeout of the chain tests: they are about
// what reaches the processor, and a loaded machine must not turn a slow
// round trip into a 504.
var roomyTimeout = testutil.MessageTimeout()
