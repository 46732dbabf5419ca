package importer

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A settings.py is read, never run: this is a tokenizer for the part of
// Python that settings files write their CORS values in (string, number,
// boolean and None literals, lists, tuples, sets and dicts, "+" between
// them, "*" unpacking, list()/tuple()/set() of a value, and the names
// corsheaders.defaults exports). Anything else is an opaque expression the
// caller reports by name and line.

type tokKind int

const (
	tokName tokKind = iota
	tokString
	tokNumber
	tokOp
	tokNewline // end of a logical line
	tokEOF
)

type token struct {
	kind tokKind
	text string // names, operators, number text; for strings the value
	line int
	col  int // column of the token's first byte in its line
	// indent is the indentation of the line the token is on: a statement
	// after ";" is as indented as the line.
	indent int
	// fstring marks an f-string, whose value depends on code.
	fstring bool
}

// pyTokenize splits src into tokens; comments and line continuations are
// dropped, and a NEWLINE ends each logical line (none inside brackets).
func pyTokenize(src string) ([]token, error) {
	var toks []token
	line, lineStart, depth := 1, 0, 0
	var opens []int // the line of each open bracket
	i := 0
	emitNewline := func() {
		if len(toks) > 0 && toks[len(toks)-1].kind != tokNewline {
			toks = append(toks, token{kind: tokNewline, line: line})
		}
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			if depth == 0 {
				emitNewline()
			}
			i++
			line++
			lineStart = i
		case c == ' ' || c == '\t' || c == '\r' || c == '\f':
			i++
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case c == '\\' && i+1 < len(src) && (src[i+1] == '\n' || src[i+1] == '\r'):
			i++
			if src[i] == '\r' && i+1 < len(src) && src[i+1] == '\n' {
				i++
			}
			i++
			line++
			lineStart = i
		case c == ';':
			if depth == 0 {
				emitNewline()
			}
			i++
		case isNameStart(c):
			j := i
			for j < len(src) && isNameByte(src[j]) {
				j++
			}
			word := src[i:j]
			if j < len(src) && (src[j] == '\'' || src[j] == '"') && isStringPrefix(word) {
				t, n, nl, err := pyString(src[j:], strings.ToLower(word), line)
				if err != nil {
					return nil, err
				}
				t.col = i - lineStart
				toks = append(toks, t)
				i = j + n
				if nl > 0 {
					line += nl
					lineStart = strings.LastIndexByte(src[:i], '\n') + 1
				}
				continue
			}
			toks = append(toks, token{kind: tokName, text: word, line: line, col: i - lineStart})
			i = j
		case c == '\'' || c == '"':
			t, n, nl, err := pyString(src[i:], "", line)
			if err != nil {
				return nil, err
			}
			t.col = i - lineStart
			toks = append(toks, t)
			i += n
			if nl > 0 {
				line += nl
				lineStart = strings.LastIndexByte(src[:i], '\n') + 1
			}
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(src) && src[i+1] >= '0' && src[i+1] <= '9':
			j := i
			for j < len(src) && (isNameByte(src[j]) || src[j] == '.') {
				j++
			}
			toks = append(toks, token{kind: tokNumber, text: src[i:j], line: line, col: i - lineStart})
			i = j
		default:
			op := string(c)
			if i+1 < len(src) && isTwoCharOp(src[i:i+2]) {
				op = src[i : i+2]
			}
			switch op {
			case "(", "[", "{":
				depth++
				opens = append(opens, line)
			case ")", "]", "}":
				if depth == 0 {
					return nil, fmt.Errorf("line %d: %q closes nothing", line, op)
				}
				depth--
				opens = opens[:len(opens)-1]
			}
			if c >= 0x80 {
				_, size := utf8.DecodeRuneInString(src[i:])
				op = src[i : i+size]
			}
			toks = append(toks, token{kind: tokOp, text: op, line: line, col: i - lineStart})
			i += len(op)
		}
	}
	if depth > 0 {
		return nil, fmt.Errorf("line %d: a bracket opened here is never closed", opens[len(opens)-1])
	}
	emitNewline()
	toks = append(toks, token{kind: tokEOF, line: line})
	// Each token's line indentation, for statements after ";".
	lineIndent := map[int]int{}
	for _, l := range strings.Split(src, "\n") {
		lineIndent[len(lineIndent)+1] = len(l) - len(strings.TrimLeft(l, " \t"))
	}
	for i := range toks {
		toks[i].indent = lineIndent[toks[i].line]
	}
	return toks, nil
}

func isTwoCharOp(s string) bool {
	switch s {
	case "+=", "-=", "*=", "/=", "|=", "&=", "==", "!=", "<=", ">=", "**", "//", "->", ":=":
		return true
	}
	return false
}

func isNameStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isNameByte(c byte) bool { return isNameStart(c) || c >= '0' && c <= '9' }

func isStringPrefix(w string) bool {
	switch strings.ToLower(w) {
	case "r", "u", "b", "f", "br", "rb", "fr", "rf":
		return true
	}
	return false
}

// pyString reads one string literal at the start of s (the prefix already
// consumed) and returns it, the bytes read and the newlines inside it.
func pyString(s, prefix string, line int) (token, int, int, error) {
	raw := strings.Contains(prefix, "r")
	q := s[:1]
	if strings.HasPrefix(s, q+q+q) {
		q = q + q + q
	}
	var b strings.Builder
	i, nl := len(q), 0
	for {
		if i >= len(s) {
			return token{}, 0, 0, fmt.Errorf("line %d: unterminated string", line)
		}
		if strings.HasPrefix(s[i:], q) {
			i += len(q)
			break
		}
		c := s[i]
		if c == '\n' {
			if len(q) == 1 {
				return token{}, 0, 0, fmt.Errorf("line %d: unterminated string", line)
			}
			nl++
		}
		if c == '\\' && i+1 < len(s) {
			if raw {
				// A raw string keeps the backslash, and the quote after it.
				b.WriteByte(c)
				b.WriteByte(s[i+1])
				if s[i+1] == '\n' {
					nl++
				}
				i += 2
				continue
			}
			n, err := pyEscape(&b, s[i:], line)
			if err != nil {
				return token{}, 0, 0, err
			}
			if s[i+1] == '\n' {
				nl++
			}
			i += n
			continue
		}
		b.WriteByte(c)
		i++
	}
	return token{kind: tokString, text: b.String(), line: line, fstring: strings.Contains(prefix, "f")}, i, nl, nil
}

// pyEscape decodes the escape at the start of s into b and returns its
// length.
func pyEscape(b *strings.Builder, s string, line int) (int, error) {
	switch c := s[1]; c {
	case '\n':
		return 2, nil
	case '\\', '\'', '"':
		b.WriteByte(c)
	case 'n':
		b.WriteByte('\n')
	case 't':
		b.WriteByte('\t')
	case 'r':
		b.WriteByte('\r')
	case '0':
		b.WriteByte(0)
	case 'a':
		b.WriteByte(7)
	case 'b':
		b.WriteByte(8)
	case 'f':
		b.WriteByte(12)
	case 'v':
		b.WriteByte(11)
	case 'x', 'u', 'U':
		n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[c]
		if len(s) < 2+n {
			return 0, fmt.Errorf("line %d: truncated \\%c escape", line, c)
		}
		v, err := strconv.ParseUint(s[2:2+n], 16, 32)
		if err != nil || v > utf8.MaxRune {
			return 0, fmt.Errorf("line %d: bad \\%c escape %q", line, c, s[:2+n])
		}
		b.WriteRune(rune(v))
		return 2 + n, nil
	default:
		// Python keeps an unknown escape as written, backslash included:
		// "\d" in a regex written without r"" is still \d.
		b.WriteByte('\\')
		b.WriteByte(c)
	}
	return 2, nil
}

// pyKind is the type of a Python value the parser can know.
type pyKind int

const (
	pyUnknown pyKind = iota // computed from something not read
	pyStr
	pyInt
	pyBool
	pyNone
	pySeq // list, tuple or set
	pyDict
)

// pyValue is a literal value, or an unknown one with the reason.
type pyValue struct {
	kind  pyKind
	str   string
	num   int
	b     bool
	items []pyValue
	// why says what an unknown value is computed from.
	why string
}

func (v pyValue) String() string {
	switch v.kind {
	case pyStr:
		return strconv.Quote(v.str)
	case pyInt:
		return strconv.Itoa(v.num)
	case pyBool:
		if v.b {
			return "True"
		}
		return "False"
	case pyNone:
		return "None"
	case pySeq:
		return "a list"
	case pyDict:
		return "a dict"
	}
	return v.why
}

// truthy is Python's bool() of a known value.
func (v pyValue) truthy() bool {
	switch v.kind {
	case pyStr:
		return v.str != ""
	case pyInt:
		return v.num != 0
	case pyBool:
		return v.b
	case pySeq, pyDict:
		return len(v.items) > 0
	}
	return false
}

// pyParser evaluates the right-hand side of one assignment.
type pyParser struct {
	toks []token
	pos  int
	src  []string // source lines, to quote what could not be read
	env  map[string]pyValue
}

func (p *pyParser) peek() token { return p.toks[p.pos] }

func (p *pyParser) next() token {
	t := p.toks[p.pos]
	if t.kind != tokEOF {
		p.pos++
	}
	return t
}

func (p *pyParser) isOp(s string) bool {
	t := p.peek()
	return t.kind == tokOp && t.text == s
}

// skipLine moves past the current logical line.
func (p *pyParser) skipLine() {
	for t := p.peek(); t.kind != tokNewline && t.kind != tokEOF; t = p.peek() {
		p.next()
	}
	if p.peek().kind == tokNewline {
		p.next()
	}
}

// expr reads an expression up to the end of the logical line (or a closing
// bracket or comma at depth 0) and evaluates it. An expression it cannot
// evaluate is consumed whole and returned as unknown.
func (p *pyParser) expr() pyValue {
	start := p.pos
	v := p.sum()
	if !p.atEnd() {
		// Something follows that the literal grammar does not know
		// (a method call, an "if" expression, an operator): give up on the
		// whole expression rather than on a part of it.
		p.skipExpr()
		return pyValue{why: p.text(start, p.pos)}
	}
	if v.kind == pyUnknown && v.why == "" {
		v.why = p.text(start, p.pos)
	}
	return v
}

// atEnd reports whether the expression ends here.
func (p *pyParser) atEnd() bool {
	t := p.peek()
	return t.kind == tokNewline || t.kind == tokEOF || t.kind == tokOp && (t.text == "," || t.text == ")" || t.text == "]" || t.text == "}" || t.text == ":")
}

// skipExpr moves to the end of the expression, across brackets.
func (p *pyParser) skipExpr() {
	depth := 0
	for {
		t := p.peek()
		if t.kind == tokNewline || t.kind == tokEOF {
			return
		}
		if t.kind == tokOp {
			switch t.text {
			case "(", "[", "{":
				depth++
			case ")", "]", "}":
				if depth == 0 {
					return
				}
				depth--
			case ",", ":":
				if depth == 0 {
					return
				}
			}
		}
		p.next()
	}
}

// text is the source of tokens [from, to), for messages.
func (p *pyParser) text(from, to int) string {
	if from >= to {
		return ""
	}
	a, b := p.toks[from], p.toks[to-1]
	if a.line == b.line && a.line-1 < len(p.src) {
		l := p.src[a.line-1]
		end := b.col + len(b.text)
		if b.kind == tokString {
			end = len(l)
		}
		if a.col < len(l) && end <= len(l) && a.col < end {
			return strings.TrimSpace(l[a.col:end])
		}
	}
	if a.line-1 < len(p.src) {
		return strings.TrimSpace(p.src[a.line-1][min(a.col, len(p.src[a.line-1])):]) + " ..."
	}
	return "an expression"
}

func (p *pyParser) sum() pyValue {
	v := p.product()
	for p.isOp("+") {
		p.next()
		w := p.product()
		v = pyAdd(v, w)
	}
	return v
}

// product reads "60 * 60 * 24", as max ages are written.
func (p *pyParser) product() pyValue {
	v := p.unary()
	for p.isOp("*") {
		p.next()
		w := p.unary()
		if v.kind != pyInt || w.kind != pyInt || v.num > 1<<31/max(1, abs(w.num)) {
			v = pyValue{why: "multiplying " + v.String() + " by " + w.String()}
			continue
		}
		v.num *= w.num
	}
	return v
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func pyAdd(a, b pyValue) pyValue {
	switch {
	case a.kind == pyUnknown:
		return a
	case b.kind == pyUnknown:
		return b
	case a.kind == pyStr && b.kind == pyStr:
		return pyValue{kind: pyStr, str: a.str + b.str}
	case a.kind == pyInt && b.kind == pyInt:
		return pyValue{kind: pyInt, num: a.num + b.num}
	case a.kind == pySeq && b.kind == pySeq:
		return pyValue{kind: pySeq, items: append(append([]pyValue{}, a.items...), b.items...)}
	}
	return pyValue{why: "adding " + a.String() + " and " + b.String()}
}

func (p *pyParser) unary() pyValue {
	if p.isOp("-") {
		p.next()
		v := p.atom()
		if v.kind == pyInt {
			v.num = -v.num
			return v
		}
		return pyValue{why: "a negated " + v.String()}
	}
	return p.atom()
}

func (p *pyParser) atom() pyValue {
	t := p.peek()
	switch t.kind {
	case tokString:
		var s strings.Builder
		for p.peek().kind == tokString {
			st := p.next()
			if st.fstring {
				return pyValue{why: "an f-string"}
			}
			s.WriteString(st.text) // adjacent literals concatenate
		}
		return pyValue{kind: pyStr, str: s.String()}
	case tokNumber:
		p.next()
		n, err := strconv.ParseInt(strings.ReplaceAll(t.text, "_", ""), 0, 64)
		if err != nil || n > 1<<31 || n < -(1<<31) {
			return pyValue{why: "the number " + t.text}
		}
		return pyValue{kind: pyInt, num: int(n)}
	case tokName:
		p.next()
		switch t.text {
		case "True", "False":
			return pyValue{kind: pyBool, b: t.text == "True"}
		case "None":
			return pyValue{kind: pyNone}
		case "list", "tuple", "set", "sorted":
			if p.isOp("(") {
				p.next()
				if p.isOp(")") {
					p.next()
					return pyValue{kind: pySeq}
				}
				v := p.expr()
				if !p.isOp(")") {
					return pyValue{why: t.text + "(...)"}
				}
				p.next()
				if v.kind == pyStr { // list("abc") is a list of characters: not a setting anyone writes
					return pyValue{why: t.text + "() of a string"}
				}
				if v.kind != pySeq && v.kind != pyUnknown {
					return pyValue{why: t.text + "() of " + v.String()}
				}
				return v
			}
		}
		if p.isOp("(") || p.isOp(".") || p.isOp("[") {
			return pyValue{} // a call, attribute or index: reported by expr
		}
		if v, ok := p.env[t.text]; ok {
			return v
		}
		return pyValue{why: "the name " + t.text + ", which is not a literal assigned in this file"}
	case tokOp:
		switch t.text {
		case "[":
			p.next()
			return p.seq("]")
		case "(":
			p.next()
			if p.isOp(")") {
				p.next()
				return pyValue{kind: pySeq}
			}
			start := p.pos
			first := p.item()
			if p.isOp(")") && p.toks[start].text != "*" {
				p.next()
				return first // parenthesised expression
			}
			p.pos = start
			return p.seq(")")
		case "{":
			p.next()
			return p.braces()
		}
	}
	return pyValue{}
}

// item reads one element of a display, "*" unpacking included.
func (p *pyParser) item() pyValue {
	if p.isOp("*") {
		p.next()
		v := p.expr()
		if v.kind != pySeq && v.kind != pyUnknown {
			return pyValue{why: "unpacking " + v.String()}
		}
		v.str = "*" // marks the unpacked sequence for seq
		return v
	}
	return p.expr()
}

// seq reads a list, tuple or set display up to close.
func (p *pyParser) seq(close string) pyValue {
	out := pyValue{kind: pySeq}
	for !p.isOp(close) {
		if p.peek().kind == tokEOF || p.peek().kind == tokNewline {
			return pyValue{why: "an unclosed " + close}
		}
		v := p.item()
		switch {
		case v.kind == pyUnknown && out.kind != pyUnknown:
			out = v
		case v.kind == pySeq && v.str == "*":
			out.items = append(out.items, v.items...)
		default:
			out.items = append(out.items, v)
		}
		if p.isOp(",") {
			p.next()
		} else if !p.isOp(close) {
			p.skipExpr()
			if !p.isOp(close) {
				return pyValue{why: "an expression the literal reader does not know"}
			}
		}
	}
	p.next()
	return out
}

// braces reads a set or a dict display.
func (p *pyParser) braces() pyValue {
	if p.isOp("}") {
		p.next()
		return pyValue{kind: pyDict}
	}
	start := p.pos
	p.item()
	isDict := p.isOp(":")
	p.pos = start
	if !isDict {
		return p.seq("}")
	}
	out := pyValue{kind: pyDict}
	for !p.isOp("}") {
		if p.peek().kind == tokEOF {
			return pyValue{why: "an unclosed {"}
		}
		k := p.expr()
		if !p.isOp(":") {
			return pyValue{why: "a dict the literal reader does not know"}
		}
		p.next()
		v := p.expr()
		if k.kind == pyUnknown || v.kind == pyUnknown {
			out = pyValue{why: "a dict with computed entries"}
		} else if out.kind == pyDict {
			out.items = append(out.items, k, v)
		}
		if p.isOp(",") {
			p.next()
		} else if !p.isOp("}") {
			return pyValue{why: "a dict the literal reader does not know"}
		}
	}
	p.next()
	return out
}
