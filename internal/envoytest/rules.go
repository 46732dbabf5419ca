package envoytest

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	mutationrulesv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	extprocfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// stringMatcher is Envoy's StringMatcher: exact, prefix, suffix, contains or
// a whole-string RE2 regex, optionally ignoring case.
type stringMatcher struct {
	exact, prefix, suffix, contains string
	kind                            int
	re                              *regexp.Regexp
	ignoreCase                      bool
}

const (
	matchExact = iota
	matchPrefix
	matchSuffix
	matchContains
	matchRegex
)

func compileStringMatcher(m *matcherv3.StringMatcher) (stringMatcher, error) {
	sm := stringMatcher{ignoreCase: m.GetIgnoreCase()}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		sm.kind, sm.exact = matchExact, p.Exact
	case *matcherv3.StringMatcher_Prefix:
		sm.kind, sm.prefix = matchPrefix, p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		sm.kind, sm.suffix = matchSuffix, p.Suffix
	case *matcherv3.StringMatcher_Contains:
		sm.kind, sm.contains = matchContains, p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := compileWhole(p.SafeRegex.GetRegex())
		if err != nil {
			return sm, err
		}
		sm.kind, sm.re = matchRegex, re
	default:
		return sm, fmt.Errorf("string matcher %v not supported", m)
	}
	return sm, nil
}

// compileWhole compiles an RE2 regex that must match the whole string, as
// Envoy's regex matchers do.
func compileWhole(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(`\A(?:` + expr + `)\z`)
}

func (m *stringMatcher) match(s string) bool {
	eq, has := func(a, b string) bool { return a == b }, strings.HasPrefix
	if m.ignoreCase {
		eq = strings.EqualFold
		has = func(s, p string) bool { return len(s) >= len(p) && strings.EqualFold(s[:len(p)], p) }
	}
	switch m.kind {
	case matchExact:
		return eq(s, m.exact)
	case matchPrefix:
		return has(s, m.prefix)
	case matchSuffix:
		return len(s) >= len(m.suffix) && eq(s[len(s)-len(m.suffix):], m.suffix)
	case matchContains:
		if m.ignoreCase {
			return strings.Contains(strings.ToLower(s), strings.ToLower(m.contains))
		}
		return strings.Contains(s, m.contains)
	case matchRegex:
		return m.re.MatchString(s)
	}
	return false
}

func compileList(l []*matcherv3.StringMatcher) ([]stringMatcher, error) {
	out := make([]stringMatcher, 0, len(l))
	for i, m := range l {
		sm, err := compileStringMatcher(m)
		if err != nil {
			return nil, fmt.Errorf("patterns[%d]: %w", i, err)
		}
		out = append(out, sm)
	}
	return out, nil
}

func anyMatch(l []stringMatcher, s string) bool {
	for i := range l {
		if l[i].match(s) {
			return true
		}
	}
	return false
}

// forwardRules is the filter's forward_rules (envoy-filter-chain.md §D,
// MutationUtils::headerCanBeForwarded): a header key, pseudo-headers
// included, is sent to the processor when no disallowed pattern matches it
// and the allowed list is empty or matches it. Disallow wins.
type forwardRules struct {
	allowed, disallowed []stringMatcher
}

func compileForwardRules(r *extprocfilterv3.HeaderForwardingRules) (forwardRules, error) {
	var fr forwardRules
	var err error
	if fr.allowed, err = compileList(r.GetAllowedHeaders().GetPatterns()); err != nil {
		return fr, fmt.Errorf("forward_rules.allowed_headers.%w", err)
	}
	if fr.disallowed, err = compileList(r.GetDisallowedHeaders().GetPatterns()); err != nil {
		return fr, fmt.Errorf("forward_rules.disallowed_headers.%w", err)
	}
	return fr, nil
}

func (r *forwardRules) forwards(key string) bool {
	if anyMatch(r.disallowed, key) {
		return false
	}
	return len(r.allowed) == 0 || anyMatch(r.allowed, key)
}

// checkResult is Envoy's MutationRules CheckResult.
type checkResult int

const (
	checkOK checkResult = iota
	checkIgnore
	checkFail
)

type checkOp int

const (
	opSet checkOp = iota
	opAppend
	opRemove
)

// mutationChecker is Envoy's MutationRules Checker for one
// HeaderMutationRules (envoy-filter-chain.md §D). The zero rules are
// Envoy's defaults: routing headers and x-envoy-* are never changed.
type mutationChecker struct {
	rules               *mutationrulesv3.HeaderMutationRules
	allowRe, disallowRe *regexp.Regexp
}

func newMutationChecker(r *mutationrulesv3.HeaderMutationRules) (*mutationChecker, error) {
	c := &mutationChecker{rules: r}
	var err error
	if e := r.GetAllowExpression(); e != nil {
		if c.allowRe, err = compileWhole(e.GetRegex()); err != nil {
			return nil, fmt.Errorf("mutation_rules.allow_expression: %w", err)
		}
	}
	if e := r.GetDisallowExpression(); e != nil {
		if c.disallowRe, err = compileWhole(e.GetRegex()); err != nil {
			return nil, fmt.Errorf("mutation_rules.disallow_expression: %w", err)
		}
	}
	return c, nil
}

// defaultChecker has Envoy's default rules (an empty mutation_rules).
var defaultChecker = &mutationChecker{}

// immediateChecker is the fixed, permissive checker Envoy uses for the
// headers of an ImmediateResponse, whatever mutation_rules say
// (ImmediateMutationChecker in ext_proc.cc): routing and x-envoy-* headers
// may be set there.
var immediateChecker = &mutationChecker{rules: &mutationrulesv3.HeaderMutationRules{
	AllowAllRouting: wrapperspb.Bool(true), AllowEnvoy: wrapperspb.Bool(true),
}}

// check is Checker::check: the name must be allowed for the operation and
// the value valid; a refusal is FAIL with disallow_is_error, IGNORE
// otherwise.
func (c *mutationChecker) check(op checkOp, name, value string) checkResult {
	if c.allowed(op, name) && validValueFor(name, value) {
		return checkOK
	}
	if c.rules.GetDisallowIsError().GetValue() {
		return checkFail
	}
	return checkIgnore
}

// allowed is Checker::isAllowed, in Envoy's order.
func (c *mutationChecker) allowed(op checkOp, name string) bool {
	system := strings.HasPrefix(name, ":")
	r := c.rules
	switch {
	case op == opRemove && (system || name == "host"):
		return false
	case c.disallowRe != nil && c.disallowRe.MatchString(name):
		return false
	case c.allowRe != nil && c.allowRe.MatchString(name):
		return true
	case r.GetDisallowAll().GetValue():
		return false
	case !r.GetAllowAllRouting().GetValue() &&
		(name == "host" || name == ":authority" || name == ":method" || name == ":scheme"):
		return false
	case system && (op == opAppend || r.GetDisallowSystem().GetValue()):
		return false
	case !r.GetAllowEnvoy().GetValue() && strings.HasPrefix(name, "x-envoy"):
		return false
	}
	return true
}

// validValueFor is Checker::isValidValue for the headers the stand-in can
// meet: :status must be a number >= 200 (and <= 999, which net/http can
// write).
func validValueFor(name, value string) bool {
	if name == ":status" {
		code, err := strconv.ParseUint(value, 10, 32)
		return err == nil && code >= 200 && code <= 999
	}
	return true
}

// ForwardsHeader reports whether an ext_proc filter with these
// forward_rules sends the header key (lower case, pseudo-headers included)
// to its processor, as Envoy decides it. nil rules forward everything.
func ForwardsHeader(rules *extprocfilterv3.HeaderForwardingRules, key string) (bool, error) {
	fr, err := compileForwardRules(rules)
	if err != nil {
		return false, err
	}
	return fr.forwards(key), nil
}

// MutationAllowed reports whether an ext_proc filter with these
// mutation_rules applies a processor's change that sets the header name (lower
// case) in a CommonResponse. nil rules are Envoy's defaults.
func MutationAllowed(rules *mutationrulesv3.HeaderMutationRules, name string) (bool, error) {
	c, err := newMutationChecker(rules)
	if err != nil {
		return false, err
	}
	return c.allowed(opSet, name), nil
}
