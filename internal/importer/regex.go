package importer

import (
	"regexp"
	"regexp/syntax"
	"strings"
)

// Python's re.match anchors a pattern at the start of the string only;
// corsproc matches regexes against the whole string. A pattern is carried
// over branch by branch: a branch that ends in "$" (or \Z) keeps its
// meaning as it is, and one that does not gets ".*" appended, so that it
// still admits whatever follows, exactly as re.match did.

// startRegex is a Python pattern converted for whole-string matching.
type startRegex struct {
	// re is the RE2 expression with the same meaning under whole-string
	// matching.
	re string
	// open is true when a branch had no end anchor and got ".*".
	open bool
	// branches are the converted branches, for a caller that wants to
	// treat open ones differently.
	branches []regexBranch
}

type regexBranch struct {
	body string // without anchors
	open bool
}

// convertStartRegex converts a Python pattern matched with re.match. The
// second result says why it cannot be converted ("" when it can).
func convertStartRegex(py string) (startRegex, string) {
	if why := pythonOnly(py); why != "" {
		return startRegex{}, why
	}
	var out startRegex
	var parts []string
	for _, b := range topLevelBranches(py) {
		b = strings.TrimPrefix(strings.TrimPrefix(b, `\A`), "^")
		br := regexBranch{body: b, open: true}
		switch {
		case strings.HasSuffix(b, `\Z`) && !escapedAt(b, len(b)-2):
			br.body, br.open = b[:len(b)-2], false
		case strings.HasSuffix(b, "$") && !escapedAt(b, len(b)-1):
			br.body, br.open = b[:len(b)-1], false
		}
		if br.open && (br.body == "" || strings.HasSuffix(br.body, ".*") && !escapedAt(br.body, len(br.body)-2)) {
			// Already open-ended: nothing to add.
			br.body = strings.TrimSuffix(br.body, ".*")
		}
		out.branches = append(out.branches, br)
		out.open = out.open || br.open
		parts = append(parts, br.render(""))
	}
	out.re = strings.Join(parts, "|")
	if _, err := regexp.Compile(out.re); err != nil {
		msg := err.Error()
		if e, ok := err.(*syntax.Error); ok {
			msg = string(e.Code) + " in " + e.Expr
		}
		return startRegex{}, "not an expression RE2 (corsproc's regex engine) reads: " + msg
	}
	return out, ""
}

// render writes the branch for whole-string matching; an open branch gets
// tail (".*" when tail is "").
func (b regexBranch) render(tail string) string {
	if !b.open {
		return b.body
	}
	if tail == "" {
		tail = ".*"
	}
	if b.body == "" {
		return tail
	}
	// A top-level branch has no "|" outside groups, so the tail applies
	// to all of it without a group.
	return b.body + tail
}

// pythonOnly names Python regex syntax that RE2 does not have, or "".
func pythonOnly(py string) string {
	inClass := false
	for i := 0; i < len(py); i++ {
		c := py[i]
		switch {
		case c == '\\' && i+1 < len(py):
			n := py[i+1]
			if !inClass && n >= '1' && n <= '9' {
				return `uses the backreference \` + string(n) + `, which RE2 does not have`
			}
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if i+1 < len(py) && py[i+1] == ']' { // "[]...]": a literal ] first
				i++
			}
		case c == '(' && strings.HasPrefix(py[i:], "(?"):
			rest := py[i+2:]
			for _, p := range []struct{ prefix, name string }{
				{"=", "a lookahead (?=...)"}, {"!", "a negative lookahead (?!...)"},
				{"<=", "a lookbehind (?<=...)"}, {"<!", "a negative lookbehind (?<!...)"},
				{"P=", "a named backreference (?P=...)"}, {"#", "a comment group (?#...)"},
				{"(", "a conditional group (?(...)...)"}, {">", "an atomic group (?>...)"},
			} {
				if strings.HasPrefix(rest, p.prefix) {
					return "uses " + p.name + ", which RE2 does not have"
				}
			}
		case (c == '+' || c == '*' || c == '?' || c == '}') && i+1 < len(py) && py[i+1] == '+':
			return "uses a possessive quantifier, which RE2 does not have"
		}
	}
	return ""
}

// topLevelBranches splits a pattern at the "|" outside groups and classes.
func topLevelBranches(re string) []string {
	var out []string
	depth, start, inClass := 0, 0, false
	for i := 0; i < len(re); i++ {
		switch c := re[i]; {
		case c == '\\':
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if i+1 < len(re) && re[i+1] == '^' {
				i++
			}
			if i+1 < len(re) && re[i+1] == ']' {
				i++
			}
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			out = append(out, re[start:i])
			start = i + 1
		}
	}
	return append(out, re[start:])
}

// escapedAt reports whether the byte at i is preceded by an odd number of
// backslashes.
func escapedAt(s string, i int) bool {
	n := 0
	for j := i - 1; j >= 0 && s[j] == '\\'; j-- {
		n++
	}
	return n%2 == 1
}

// literalPrefix returns the literal text an RE2 body stands for, when it
// has no metacharacters (escaped ones are unescaped).
func literalPrefix(body string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		c := body[i]
		if c == '\\' {
			if i+1 >= len(body) {
				return "", false
			}
			n := body[i+1]
			if isNameByte(n) || n == ' ' { // \d, \w, \b, \1...: classes, not literals
				return "", false
			}
			b.WriteByte(n)
			i++
			continue
		}
		if strings.IndexByte(`.+*?()|[]{}^$`, c) >= 0 {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}
