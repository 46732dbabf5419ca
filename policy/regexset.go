package policy

import (
	"regexp"
	"regexp/syntax"
	"strings"
	"unicode/utf8"
)

// regexSet matches an origin against allowed_origin_regexes, each anchored
// at both ends, with the result of one anchored alternation of them all
// (the matcher corsproc used before) but at a fraction of its cost.
//
// Go's regexp runs every alternative of an alternation over the whole
// origin. Most origin regexes, though, begin and end with literal text
// ("https://" ... `\.example\.dev`) that any origin they match must begin
// and end with. Those literals are read from each pattern's syntax tree
// once, when the policy is compiled; a request compares them first, which
// rejects most patterns with a few byte comparisons, and runs only the
// regexes of the patterns left. A literal is a necessary condition, never a
// sufficient one: the regex always has the last word, so the result is the
// plain regexes' own (FuzzRegexSet checks it against the alternation).
type regexSet struct {
	filtered []filteredRegex
	// rest is the alternation of the patterns with no literal to test,
	// nil when there are none.
	rest *regexp.Regexp
	// all is the alternation of every pattern, used when the literals let
	// more than maxCandidates patterns through, so that a set whose
	// literals tell its patterns apart poorly costs at most one pass of
	// the alternation plus the comparisons.
	all *regexp.Regexp
}

// maxCandidates is how many patterns' own regexes a request may run
// before the alternation is cheaper.
const maxCandidates = 2

// filteredRegex is one pattern, anchored, with the literal text every
// string it matches begins and ends with.
type filteredRegex struct {
	prefix, suffix string
	re             *regexp.Regexp
}

// newRegexSet compiles the patterns, each valid on its own and anchored
// (checkRegex); nil when there are none.
func newRegexSet(patterns []string) *regexSet {
	if len(patterns) == 0 {
		return nil
	}
	s := &regexSet{all: regexp.MustCompile(anchor(joinAlternatives(patterns)))}
	var rest []string
	for _, p := range patterns {
		prefix, suffix := literalEnds(anchor(p))
		if prefix == "" && suffix == "" {
			rest = append(rest, p)
			continue
		}
		s.filtered = append(s.filtered, filteredRegex{prefix: prefix, suffix: suffix, re: regexp.MustCompile(anchor(p))})
	}
	if len(rest) > 0 {
		s.rest = regexp.MustCompile(anchor(joinAlternatives(rest)))
	}
	return s
}

func joinAlternatives(patterns []string) string {
	parts := make([]string, len(patterns))
	for i, p := range patterns {
		parts[i] = "(?:" + p + ")"
	}
	return strings.Join(parts, "|")
}

// MatchString reports whether o matches one of the patterns.
func (s *regexSet) MatchString(o string) bool {
	var candidates [maxCandidates]*regexp.Regexp
	n := 0
	for i := range s.filtered {
		f := &s.filtered[i]
		if len(o) < len(f.prefix) || o[:len(f.prefix)] != f.prefix ||
			len(o) < len(f.suffix) || o[len(o)-len(f.suffix):] != f.suffix {
			continue
		}
		if n == maxCandidates {
			return s.all.MatchString(o)
		}
		candidates[n] = f.re
		n++
	}
	for _, re := range candidates[:n] {
		if re.MatchString(o) {
			return true
		}
	}
	return s.rest != nil && s.rest.MatchString(o)
}

// literalEnds returns the literal text that every string the regex re
// matches (in full) begins with, and the text it ends with; "" where there
// is none to be sure of. re has compiled.
func literalEnds(re string) (prefix, suffix string) {
	t, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return "", ""
	}
	t = t.Simplify()
	var p, s []byte
	p, _ = literalPrefix(p, t)
	s, _ = literalSuffix(s, t)
	// literalSuffix gathers the suffix backwards.
	for i, j := 0, len(s)-1; i < j; i, j = i+1, j-1 {
		s[i], s[j] = s[j], s[i]
	}
	return string(p), string(s)
}

// literalPrefix appends to b the literal text every match of t begins
// with, and reports whether t matches exactly that text and nothing else
// (so that what follows t may extend it). Only ASCII literals without case
// folding count: an ASCII byte in the input is always that character,
// whereas a non-ASCII rune in a pattern, U+FFFD above all, can match bytes
// other than its own encoding.
func literalPrefix(b []byte, t *syntax.Regexp) ([]byte, bool) {
	switch t.Op {
	case syntax.OpLiteral:
		if t.Flags&syntax.FoldCase != 0 {
			return b, false
		}
		for _, r := range t.Rune {
			if r >= utf8.RuneSelf {
				return b, false
			}
			b = append(b, byte(r))
		}
		return b, true
	case syntax.OpCapture:
		return literalPrefix(b, t.Sub[0])
	case syntax.OpPlus:
		b, _ = literalPrefix(b, t.Sub[0]) // once at least, then maybe more
		return b, false
	case syntax.OpConcat:
		for _, sub := range t.Sub {
			var whole bool
			if b, whole = literalPrefix(b, sub); !whole {
				return b, false
			}
		}
		return b, true
	case syntax.OpEmptyMatch, syntax.OpBeginText, syntax.OpEndText, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		// Zero-width: it matches no text, so it adds none, and the
		// condition it puts on the text around it is left to the regex.
		return b, true
	}
	return b, false
}

// literalSuffix is literalPrefix from the end: it appends the text every
// match of t ends with, last byte first.
func literalSuffix(b []byte, t *syntax.Regexp) ([]byte, bool) {
	switch t.Op {
	case syntax.OpLiteral:
		if t.Flags&syntax.FoldCase != 0 {
			return b, false
		}
		for i := len(t.Rune) - 1; i >= 0; i-- {
			if t.Rune[i] >= utf8.RuneSelf {
				return b, false
			}
			b = append(b, byte(t.Rune[i]))
		}
		return b, true
	case syntax.OpCapture:
		return literalSuffix(b, t.Sub[0])
	case syntax.OpPlus:
		b, _ = literalSuffix(b, t.Sub[0])
		return b, false
	case syntax.OpConcat:
		for i := len(t.Sub) - 1; i >= 0; i-- {
			var whole bool
			if b, whole = literalSuffix(b, t.Sub[i]); !whole {
				return b, false
			}
		}
		return b, true
	case syntax.OpEmptyMatch, syntax.OpBeginText, syntax.OpEndText, syntax.OpBeginLine, syntax.OpEndLine,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return b, true
	}
	return b, false
}
