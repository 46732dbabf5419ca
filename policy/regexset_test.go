package policy

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// regexSetCases are pattern lists and origins, with whether one of the
// patterns matches the whole origin. They seed FuzzRegexSet.
var regexSetCases = []struct {
	name     string
	patterns []string
	origin   string
	want     bool
}{
	{"a preview subdomain matches its pattern", []string{`https://[a-z0-9-]+\.preview\.example\.dev`}, "https://pr-7.preview.example.dev", true},
	{"another domain does not match", []string{`https://[a-z0-9-]+\.preview\.example\.dev`}, "https://pr-7.preview.example.net", false},
	{"the right literals around the wrong middle do not match", []string{`https://[a-z]+\.example\.com`}, "https://a-1.example.com", false},
	{"the literals overlapping in a short origin do not match", []string{`abc[0-9]*cde`}, "abcde", false},
	{"a pattern is anchored at both ends", []string{`https://a\.example\.com`}, "https://a.example.com.evil", false},
	{"a prefix is no match", []string{`https://a\.example\.com`}, "xhttps://a.example.com", false},
	{"the second pattern matches", []string{`https://a\.example\.com`, `http://localhost:[0-9]+`}, "http://localhost:8080", true},
	{"a pattern with no literal matches", []string{`https://a\.example\.com`, `.+\.test`}, "https://x.test", true},
	{"an alternation inside a pattern stays inside it", []string{`https://a|b\.example\.com`}, "https://a", true},
	{"an alternation inside a pattern is anchored as a whole", []string{`https://a|b\.example\.com`}, "https://b.example.com", false},
	{"a case-insensitive pattern matches upper case", []string{`(?i)https://app\.example\.com`}, "HTTPS://APP.EXAMPLE.COM", true},
	{"a case-insensitive part matches upper case", []string{`https://(?i:app)\.example\.com`}, "https://APP.example.com", true},
	{"U+FFFD in a pattern matches an invalid byte", []string{"https://\uFFFD\\.example\\.com"}, "https://\xff.example.com", true},
	{"a non-ASCII literal matches itself", []string{`https://bücher\.example`}, "https://bücher.example", true},
	{"a repeated literal matches", []string{`(ab)+`}, "ababab", true},
	{"a repeated literal needs one at least", []string{`x(ab)+`}, "x", false},
	{"a multi-line anchor inside a pattern", []string{`(?m)https://a$`}, "https://a", true},
	{"many patterns with the same literals fall back to the alternation", []string{
		`https://a[0-9]\.example\.com`, `https://b[0-9]\.example\.com`, `https://c[0-9]\.example\.com`, `https://[a-z]+[0-9]\.example\.com`,
	}, "https://zz9.example.com", true},
	{"many patterns with the same literals, none matching", []string{
		`https://a[0-9]\.example\.com`, `https://b[0-9]\.example\.com`, `https://c[0-9]\.example\.com`,
	}, "https://d1.example.com", false},
	{"an empty pattern matches only the empty origin", []string{``}, "", true},
}

// plainRegexes is the matcher regexSet replaces: one anchored alternation.
func plainRegexes(patterns []string) *regexp.Regexp {
	parts := make([]string, len(patterns))
	for i, p := range patterns {
		parts[i] = "(?:" + p + ")"
	}
	return regexp.MustCompile(`^(?:` + strings.Join(parts, "|") + `)$`)
}

func TestRegexSet(t *testing.T) {
	for _, c := range regexSetCases {
		t.Run(c.name, func(t *testing.T) {
			if got := newRegexSet(c.patterns).MatchString(c.origin); got != c.want {
				t.Errorf("regexSet%q.MatchString(%q) = %v, want %v", c.patterns, c.origin, got, c.want)
			}
			if got := plainRegexes(c.patterns).MatchString(c.origin); got != c.want {
				t.Errorf("the case is wrong: the plain regexes say %v", got)
			}
		})
	}
}

func TestLiteralEnds(t *testing.T) {
	for _, c := range []struct {
		name, re, prefix, suffix string
	}{
		{"a scheme and a domain are the literals", `https://[a-z0-9-]+\.preview\.example\.dev`, "https://", ".preview.example.dev"},
		{"a literal pattern is all literal at both ends", `https://a\.example\.com`, "https://a.example.com", "https://a.example.com"},
		{"an alternation has no literal", `a|b`, "", ""},
		{"case folding ends the literal", `https://(?i:app)\.example\.com`, "https://", ".example.com"},
		{"a non-ASCII rune ends the literal", `https://bücher\.example`, "https://b", "cher.example"},
		{"a repetition keeps its first and last literal", `(ab)+x`, "ab", "abx"},
		{"an optional part ends the literal", `https://(www\.)?example\.com`, "https://", "example.com"},
		{"a capture group is looked into", `(https)://([a-z]+)\.(example)\.com`, "https://", ".example.com"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, s := literalEnds(anchor(c.re))
			if p != c.prefix || s != c.suffix {
				t.Errorf("literalEnds(%q) = %q, %q; want %q, %q", c.re, p, s, c.prefix, c.suffix)
			}
		})
	}
}

// FuzzRegexSet checks that regexSet matches exactly what the plain
// alternation of the same patterns matches, for any valid patterns and any
// string, valid origin or not.
func FuzzRegexSet(f *testing.F) {
	for _, c := range regexSetCases {
		ps := append(slices.Clone(c.patterns), "", "", "")
		f.Add(ps[0], ps[1], ps[2], uint8(len(c.patterns)), c.origin)
	}
	f.Fuzz(func(t *testing.T, p0, p1, p2 string, n uint8, origin string) {
		var patterns []string
		for _, p := range []string{p0, p1, p2}[:1+int(n)%3] {
			if checkRegex(p) != "" {
				return
			}
			patterns = append(patterns, p)
		}
		// Repeat them to pass maxCandidates, half the time.
		if n&4 != 0 {
			for i := range patterns {
				patterns = append(patterns, patterns[i]+"|x"+strconv.Itoa(i))
			}
		}
		want := plainRegexes(patterns).MatchString(origin)
		if got := newRegexSet(patterns).MatchString(origin); got != want {
			t.Errorf("regexSet%q.MatchString(%q) = %v, the plain regexes say %v", patterns, origin, got, want)
		}
	})
}

// BenchmarkRegexSet times the set beside the plain alternation on the
// BenchmarkDecide regexes=10 patterns.
func BenchmarkRegexSet(b *testing.B) {
	res := make([]string, 10)
	for i := range res {
		res[i] = `https://[a-z0-9-]+\.preview` + strconv.Itoa(i) + `\.example\.dev`
	}
	set, plain := newRegexSet(res), plainRegexes(res)
	for _, o := range []string{"https://pr-7.preview9.example.dev", "https://pr-7.preview9.example.net"} {
		b.Run("origin="+o+"/impl=plain", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				plain.MatchString(o)
			}
		})
		b.Run("origin="+o+"/impl=set", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				set.MatchString(o)
			}
		})
	}
}
