package policy

import (
	"regexp/syntax"
	"strings"
	"unicode"

	"golang.org/x/net/publicsuffix"
)

// An origin regex is judged from its syntax tree: for every way through
// it, the literal text that follows its last wildcard. A regex is pinned
// when that text holds the host up to a registrable domain (".example.com"
// after "[a-z]+", or the whole host after a wildcard in the scheme), so
// that whatever the wildcard matches stays under a domain the policy's
// author controls. "https://.*" or "https://.*\.com" pin nothing: any
// site can be matched.

// regexTail is one way through a regex: the literal text after its last
// wildcard, and whether there was a wildcard at all. A wildcard that only
// matches digits is kept in text as digitWild, so that a port ("(:\d+)?")
// or a number inside a label ("pr-\d+") does not hide what follows it.
type regexTail struct {
	text string
	wild bool
}

// digitWild stands for a run of digits in regexTail.text.
const digitWild = "\x00"

// maxTails bounds the ways through a regex that are followed; a regex
// with more is judged unpinned (it can always be written more plainly).
const maxTails = 256

// maxClassRunes is the largest character class followed as a choice of
// literals ("[-_]", "[Ee]"); a larger one is a wildcard.
const maxClassRunes = 4

// regexPin says whether an origin regex pins its host to a registrable
// domain. ok reports the pin; wildcard whether any host can vary under it
// (as with "https://*.example.com"); why, when not pinned, names what
// follows the last wildcard.
func regexPin(expr string) (ok, wildcard bool, why string) {
	re, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return false, false, "" // reported as invalid elsewhere
	}
	tails, complete := regexTails(re.Simplify())
	if !complete {
		return false, true, "it has too many alternatives to judge"
	}
	for _, t := range tails {
		host, hostWild := tailHost(t)
		if !hostWild {
			continue // the whole host is literal
		}
		wildcard = true
		domain, dot := strings.CutPrefix(host, ".")
		switch {
		case host == "":
			return false, true, "nothing follows its last wildcard in the host"
		case !dot:
			return false, true, "its last wildcard is followed by " + quote(host) + ", which does not start at a label (a \".\"), so any host that ends in it is matched"
		case !registrable(domain):
			return false, true, "its last wildcard is followed by " + quote(host) + ", and " + quote(strings.TrimSuffix(domain, ".")) + " is a public suffix, where anyone can register a site"
		}
	}
	return true, wildcard, ""
}

// tailHost returns the host part of a tail's text and whether a wildcard
// stands in it (or before it, in the host).
func tailHost(t regexTail) (string, bool) {
	s, wild := t.text, t.wild
	if i := strings.Index(s, "://"); i >= 0 {
		// The wildcard, if any, was in the scheme: the host is literal
		// but for digit runs.
		s, wild = s[i+3:], false
	}
	if strings.HasPrefix(s, "[") {
		if i := strings.IndexByte(s, ']'); i >= 0 {
			s = s[:i+1] // an IPv6 host, before its port
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i] // the port
	}
	if i := strings.LastIndex(s, digitWild); i >= 0 {
		return s[i+1:], true
	}
	return s, wild
}

// registrable reports whether d is a registrable domain or below one: it
// has a public suffix and at least one label more.
func registrable(d string) bool {
	d = strings.TrimSuffix(d, ".")
	if d == "" || strings.ContainsAny(d, digitWild) {
		return false
	}
	etld1, err := publicsuffix.EffectiveTLDPlusOne(d)
	return err == nil && etld1 != ""
}

// regexTails follows every way through re; complete is false when there
// are more than maxTails.
func regexTails(re *syntax.Regexp) ([]regexTail, bool) {
	switch re.Op {
	case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText,
		syntax.OpWordBoundary, syntax.OpNoWordBoundary:
		return []regexTail{{}}, true
	case syntax.OpLiteral:
		s := string(re.Rune)
		if re.Flags&syntax.FoldCase != 0 {
			s = strings.ToLower(s)
		}
		return []regexTail{{text: s}}, true
	case syntax.OpCharClass:
		if digitsOnly(re.Rune) {
			return []regexTail{{text: digitWild}}, true
		}
		n := 0
		for i := 0; i+1 < len(re.Rune); i += 2 {
			n += int(re.Rune[i+1]-re.Rune[i]) + 1
		}
		if n > maxClassRunes {
			return []regexTail{{wild: true}}, true
		}
		var out []regexTail
		for i := 0; i+1 < len(re.Rune); i += 2 {
			for r := re.Rune[i]; r <= re.Rune[i+1]; r++ {
				out = appendTail(out, regexTail{text: string(unicode.ToLower(r))})
			}
		}
		return out, true
	case syntax.OpCapture:
		return regexTails(re.Sub[0])
	case syntax.OpQuest:
		sub, ok := regexTails(re.Sub[0])
		return appendTail(sub, regexTail{}), ok && len(sub) < maxTails
	case syntax.OpStar, syntax.OpPlus, syntax.OpRepeat:
		if digitsOnlyTree(re.Sub[0]) {
			return []regexTail{{text: digitWild}}, true
		}
		// The last repetition's tail, after a variable start; and, when
		// the repetition may be empty, nothing at all.
		sub, ok := regexTails(re.Sub[0])
		var out []regexTail
		for _, t := range sub {
			out = appendTail(out, regexTail{text: t.text, wild: true})
		}
		if re.Op == syntax.OpStar || re.Op == syntax.OpRepeat && re.Min == 0 {
			out = appendTail(out, regexTail{})
		}
		return out, ok
	case syntax.OpConcat:
		out := []regexTail{{}}
		for _, sub := range re.Sub {
			next, ok := regexTails(sub)
			if !ok || len(out)*len(next) > maxTails {
				return nil, false
			}
			var joined []regexTail
			for _, a := range out {
				for _, b := range next {
					if b.wild {
						joined = appendTail(joined, b)
					} else {
						joined = appendTail(joined, regexTail{text: a.text + b.text, wild: a.wild})
					}
				}
			}
			out = joined
		}
		return out, true
	case syntax.OpAlternate:
		var out []regexTail
		for _, sub := range re.Sub {
			next, ok := regexTails(sub)
			if !ok || len(out)+len(next) > maxTails {
				return nil, false
			}
			for _, t := range next {
				out = appendTail(out, t)
			}
		}
		return out, true
	}
	// OpAnyChar, OpAnyCharNotNL and anything else: a wildcard.
	return []regexTail{{wild: true}}, true
}

func appendTail(list []regexTail, t regexTail) []regexTail {
	for _, x := range list {
		if x == t {
			return list
		}
	}
	return append(list, t)
}

// digitsOnly reports whether a class holds only ASCII digits.
func digitsOnly(ranges []rune) bool {
	for i := 0; i+1 < len(ranges); i += 2 {
		if ranges[i] < '0' || ranges[i+1] > '9' {
			return false
		}
	}
	return len(ranges) > 0
}

// digitsOnlyTree reports whether re matches only strings of digits.
func digitsOnlyTree(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpCharClass:
		return digitsOnly(re.Rune)
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r < '0' || r > '9' {
				return false
			}
		}
		return true
	case syntax.OpCapture, syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat, syntax.OpConcat, syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !digitsOnlyTree(sub) {
				return false
			}
		}
		return true
	}
	return false
}

func quote(s string) string {
	return `"` + strings.ReplaceAll(s, digitWild, `\d`) + `"`
}
