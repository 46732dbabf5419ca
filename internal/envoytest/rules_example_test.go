package envoytest_test

import (
	"fmt"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/corsproc/corsproc/internal/envoytest"
)

func ExampleForwardsHeader() {
	prefix := func(p string) *matcherv3.StringMatcher {
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Prefix{Prefix: p}}
	}
	rules := &extprocfilterv3.HeaderForwardingRules{
		AllowedHeaders:    &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{prefix("origin"), prefix("access-control-"), prefix(":")}},
		DisallowedHeaders: &matcherv3.ListStringMatcher{Patterns: []*matcherv3.StringMatcher{prefix(":scheme")}},
	}
	for _, h := range []string{"origin", "access-control-request-method", ":path", ":scheme", "cookie"} {
		ok, _ := envoytest.ForwardsHeader(rules, h)
		fmt.Println(h, ok)
	}
	// Output:
	// origin true
	// access-control-request-method true
	// :path true
	// :scheme false
	// cookie false
}

func ExampleMutationAllowed() {
	rules := &mutationrulesv3.HeaderMutationRules{
		DisallowAll:     wrapperspb.Bool(true),
		AllowExpression: &matcherv3.RegexMatcher{Regex: "access-control-.*|vary"},
	}
	for _, h := range []string{"access-control-allow-origin", "vary", "set-cookie"} {
		ok, _ := envoytest.MutationAllowed(rules, h)
		fmt.Println(h, ok)
	}
	ok, _ := envoytest.MutationAllowed(nil, "x-envoy-decorator-operation")
	fmt.Println("default rules, x-envoy-*:", ok)
	// Output:
	// access-control-allow-origin true
	// vary true
	// set-cookie false
	// default rules, x-envoy-*: false
}
