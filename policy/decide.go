package policy

import (
	"strconv"
	"strings"

	"github.com/corsproc/corsproc/internal/httpgrammar"
)

// Header names corsproc writes, lower case as HTTP/2 and Envoy want them.
const (
	hdrAllowOrigin      = "access-control-allow-origin"
	hdrAllowCredentials = "access-control-allow-credentials"
	hdrAllowMethods     = "access-control-allow-methods"
	hdrAllowHeaders     = "access-control-allow-headers"
	hdrMaxAge           = "access-control-max-age"
	hdrAllowPNA         = "access-control-allow-private-network"
	hdrExpose           = "access-control-expose-headers"
	hdrVary             = "vary"
	hdrContentLength    = "content-length"
	hdrRequestHeaders   = "access-control-request-headers"
	hdrDebugDecision    = "x-corsproc-decision"
	hdrDebugReason      = "x-corsproc-reason"
)

// Decide judges a request from its headers. It allocates nothing on the
// common paths; r is not retained beyond the returned Decision.
func (s *Set) Decide(r *Request) (d Decision) { // named, so that it is built in place, not copied out
	c := s.selectPolicy(r.Host, r.Path, r.Route)
	if c == nil {
		d.Reason, d.SkipResponse = ReasonNoPolicy, true
		return d
	}
	d.Policy, d.Mode, d.c = c.name, c.mode, c
	if c.mode == Off {
		d.Reason, d.SkipResponse = ReasonPolicyOff, true
		return d
	}
	n := r.Origins
	if n == 0 && r.Origin != "" {
		n = 1
	}
	if n == 0 {
		d.Class, d.Reason = NoOrigin, ReasonNoOrigin
		if c.mode == Report {
			d.SkipResponse = true // nothing to compare without an origin
			return d
		}
		if c.origins.all && !c.credentials {
			d.answerAll()
		} else {
			d.vary = true
		}
		d.debug(r)
		return d
	}

	d.origin = r.Origin
	preflight := r.Method == "OPTIONS" && r.HasRequestMethod
	if preflight {
		d.Class = Preflight
	} else {
		d.Class = Actual
	}
	d.Outcome, d.Reason, d.Detail = Allowed, c.checkOrigin(r.Origin, n), r.Origin
	if r.Oversized && (d.Reason == ReasonOriginAllowed || d.Reason == ReasonAllOriginsAllowed) {
		d.Reason, d.Detail = ReasonRequestTooLarge, ""
	}
	if d.Reason != ReasonOriginAllowed && d.Reason != ReasonAllOriginsAllowed {
		d.Outcome = Denied
		if d.Reason == ReasonOriginTooLong {
			d.Detail = r.Origin[:64] // its start is enough, and slicing does not allocate
		}
	}
	if c.mode == Report {
		// Forwarded untouched; the response phase compares. A preflight is
		// judged in full, so that report logs and counts what enforce
		// would decide.
		if preflight && d.Outcome == Allowed {
			d.judgePreflight(r)
		}
		return d
	}
	if !preflight {
		if d.Outcome == Allowed {
			if c.origins.all && !c.credentials {
				d.answerAll()
			} else {
				d.add(hdrAllowOrigin, r.Origin)
				d.vary = true
				if c.credentials {
					d.add(hdrAllowCredentials, "true")
				}
				if c.expose != "" {
					d.add(hdrExpose, c.expose)
				}
			}
		} else {
			d.vary = true
		}
		d.debug(r)
		return d
	}
	d.preflight(r)
	return d
}

// answerAll is the allow-all-without-credentials answer: the same for
// everyone, so no vary is needed.
func (d *Decision) answerAll() {
	d.add(hdrAllowOrigin, "*")
	if d.c.expose != "" {
		d.add(hdrExpose, d.c.expose)
	}
}

func (c *compiled) checkOrigin(o string, lines int) Reason {
	switch {
	case lines > 1:
		return ReasonMultipleOrigins
	case len(o) > MaxOriginLength:
		return ReasonOriginTooLong
	case c.origins.all:
		return ReasonAllOriginsAllowed
	case c.origins.matchExact(o):
		// Exact entries are normalised origins, all visible ASCII: a hit
		// needs no scan of its bytes.
		return ReasonOriginAllowed
	case !visibleASCII(o) || o == "*":
		// "*" is no origin; reflected with credentials, it would be "*"
		// with credentials (a regex such as ".+" matches it).
		return ReasonOriginInvalid
	case o == "null":
		// Any page can send null from a sandboxed iframe: it is admitted
		// only where "null" is written out in allowed_origins (refused
		// with credentials), never by a regex as broad as "[a-z]+".
		return ReasonOriginNotAllowed
	case !c.origins.hasPatterns():
		// Nothing but exact entries, tried above: no need to parse o.
		return ReasonOriginNotAllowed
	}
	p, ok := httpgrammar.ParseOrigin(o)
	if !ok {
		// Not what a browser sends (a path, user info, port 0 or 080, an
		// upper-case host, ...): no pattern may see it, however loosely it
		// is written.
		return ReasonOriginInvalid
	}
	if c.origins.matchPatterns(o, p) { // the exact entries were tried above
		return ReasonOriginAllowed
	}
	return ReasonOriginNotAllowed
}

// preflight answers a preflight locally (enforce mode).
func (d *Decision) preflight(r *Request) {
	c := d.c
	d.Local, d.SkipResponse = true, true
	originOK := d.Outcome == Allowed
	methodOK, headersOK := true, true
	if originOK {
		methodOK, headersOK = d.judgePreflight(r)
	}
	// With --debug-headers, a preflight refused only for its method or
	// headers still names the origin, so the browser's console reports the
	// refused item instead of a missing allow-origin header.
	partial := d.Outcome == Denied && originOK && r.Debug
	if d.Outcome == Denied && !partial {
		d.Status = 403
		d.add(hdrVary, c.preflightVary)
		d.add(hdrContentLength, "0")
		d.debug(r)
		return
	}
	d.Status = c.status
	if c.origins.all && !c.credentials {
		d.add(hdrAllowOrigin, "*")
	} else {
		d.add(hdrAllowOrigin, r.Origin)
	}
	if c.credentials {
		d.add(hdrAllowCredentials, "true")
	}
	if methodOK {
		if c.allowMethods != "" {
			d.add(hdrAllowMethods, c.allowMethods)
		} else {
			d.add(hdrAllowMethods, r.RequestMethod) // "*" with credentials: echo
		}
	}
	if headersOK {
		if c.allowHeaders != "" {
			d.add(hdrAllowHeaders, c.allowHeaders)
		} else if d.echo != "" {
			d.add(hdrAllowHeaders, d.echo)
		}
	}
	if c.maxAge != "" && !partial {
		d.add(hdrMaxAge, c.maxAge)
	}
	if c.pna && r.PrivateNetwork {
		d.add(hdrAllowPNA, "true")
	}
	d.add(hdrVary, c.preflightVary)
	d.add(hdrContentLength, "0")
	d.debug(r)
}

// judgePreflight checks the method and the requested headers of a preflight
// whose origin is allowed, and says which passed. Both are always checked:
// the --debug-headers answer echoes the headers when the method alone is
// refused, and must never echo names nobody looked at.
func (d *Decision) judgePreflight(r *Request) (methodOK, headersOK bool) {
	methodOK, headersOK = true, true
	if reason, ok := d.c.checkMethod(r.RequestMethod); !ok {
		d.Outcome, d.Reason, d.Detail, methodOK = Denied, reason, r.RequestMethod, false
	}
	if reason, bad, ok := d.c.checkHeaders(r.RequestHeaders); !ok {
		headersOK = false
		if methodOK { // the method, checked first, is the reason given
			d.Outcome, d.Reason, d.Detail = Denied, reason, bad
		}
	} else if d.c.headersAny && d.c.credentials {
		// "*" with credentials answers with the names asked for: built
		// here, so that an answer too long to send denies the preflight
		// in report mode too.
		if d.echo, ok = echoHeaders(r.RequestHeaders); !ok {
			headersOK = false
			if methodOK {
				d.Outcome, d.Reason, d.Detail = Denied, ReasonRequestTooLarge, hdrRequestHeaders
			}
		}
	}
	return methodOK, headersOK
}

// forbiddenMethod reports whether m is one of the Fetch standard's
// forbidden methods, compared case-insensitively as the standard does.
func forbiddenMethod(m string) bool {
	return len(m) == 5 && (strings.EqualFold(m, "TRACE") || strings.EqualFold(m, "TRACK")) ||
		len(m) == 7 && strings.EqualFold(m, "CONNECT")
}

// checkMethod says whether the method may be asked for, and if not, why.
func (c *compiled) checkMethod(m string) (Reason, bool) {
	if !isToken(m) {
		return ReasonMethodInvalid, false
	}
	if m == "GET" || m == "HEAD" || m == "POST" {
		return 0, true
	}
	if c.methodsAny {
		// With credentials "*" is echoed, and a method named "*" would
		// put "*" in the answer beside credentials. CONNECT, TRACE and
		// TRACK are forbidden methods: no browser sends them, so such a
		// preflight is not from a browser, and "*" never admits them.
		if c.credentials && m == "*" || forbiddenMethod(m) {
			return ReasonMethodNotAllowed, false
		}
		return 0, true
	}
	for _, a := range c.methods {
		if a == m { // case-sensitive, as browsers compare
			return 0, true
		}
	}
	return ReasonMethodNotAllowed, false
}

// maxEmptyElements is how many empty elements ("a,,b", a trailing ",", an
// empty line) access-control-request-headers may hold. RFC 9110 §5.6.1.2
// asks recipients to ignore "a reasonable number of empty list elements
// ... but not so much that they could be used as a denial-of-service
// mechanism"; browsers send none. rs/cors allows 16 too.
const maxEmptyElements = 16

// checkHeaders walks every access-control-request-headers line once:
// linear in its length, and a flood of commas is refused after
// maxEmptyElements. When they are not all allowed it returns why and the
// first offending name ("" for too many empty elements).
func (c *compiled) checkHeaders(lines []string) (Reason, string, bool) {
	empty := 0
	// listed walks the allowed names as compiled (lower case, joined by
	// ", ") in step with the requested ones.
	listed := ""
	if !c.headersAny {
		listed = c.allowHeaders
	}
	for _, line := range lines {
		for more := true; more; {
			// One pass reads the element up to its comma and classifies its
			// bytes: is every one a token byte, is any upper case or
			// whitespace? Only whitespace (which browsers never send) needs
			// a second look, after trimming it.
			i, all, any := 0, uint8(tokenOK), uint8(0)
			for ; i < len(line) && line[i] != ','; i++ {
				cl := tokenClass[line[i]]
				all &= cl
				any |= cl
			}
			name := line[:i]
			if i < len(line) {
				line = line[i+1:]
			} else {
				line, more = "", false
			}
			if any&tokenOWS != 0 {
				name = trimOWS(name)
				all, any = tokenOK, 0
				for j := 0; j < len(name); j++ {
					cl := tokenClass[name[j]]
					all &= cl
					any |= cl
				}
			}
			if name == "" {
				if empty++; empty > maxEmptyElements {
					return ReasonHeaderInvalid, "", false
				}
				continue
			}
			if all == 0 {
				return ReasonHeaderInvalid, name, false
			}
			upper := any&tokenUpper != 0
			if !upper { // the common case, inline: a lower-case listed name
				// Browsers send the names sorted and lists are usually
				// written sorted, so the name asked for is most often the
				// next one listed: one comparison instead of a hash lookup.
				// A hit proves the name is listed (the whole entry, up to
				// its comma, must match); on a miss the map decides.
				if n := len(name); len(listed) >= n && listed[:n] == name && (len(listed) == n || listed[n] == ',') {
					listed = skipSeparator(listed[n:])
					continue
				}
				if _, ok := c.headers[name]; ok {
					continue
				}
			}
			if !c.headerAllowed(name, upper) {
				return ReasonHeaderNotAllowed, name, false
			}
		}
	}
	return 0, "", true
}

// skipSeparator drops a leading comma and the spaces after it.
func skipSeparator(s string) string {
	if s != "" && s[0] == ',' {
		s = s[1:]
	}
	for s != "" && s[0] == ' ' {
		s = s[1:]
	}
	return s
}

// tokenClass classifies bytes for checkHeaders: tokenOK for a token byte,
// plus tokenUpper for A-Z; tokenOWS (and not tokenOK) for space and tab.
const (
	tokenOK    = 1
	tokenUpper = 2
	tokenOWS   = 4
)

var tokenClass = func() (t [256]uint8) {
	for i := range t {
		if httpgrammar.IsTokenByte(byte(i)) {
			t[i] = tokenOK
		}
		if 'A' <= i && i <= 'Z' {
			t[i] |= tokenUpper
		}
	}
	t[' '], t['\t'] = tokenOWS, tokenOWS
	return t
}()

// headerAllowed reports whether the token name may be requested; upper says
// whether it has capitals.
func (c *compiled) headerAllowed(name string, upper bool) bool {
	var ok bool
	switch {
	case !upper:
		_, ok = c.headers[name]
	case len(name) <= 64:
		var buf [64]byte
		for i := 0; i < len(name); i++ {
			buf[i] = toLower(name[i])
		}
		_, ok = c.headers[string(buf[:len(name)])] // a map lookup by string(bytes) does not allocate
	default:
		_, ok = c.headers[strings.ToLower(name)]
	}
	// "*" never covers authorization, with or without credentials: the
	// Fetch standard says so for "*" without them, and with them an echo
	// of every name would hand out the one header a policy must name to
	// allow. A header named "*" would put "*" in the answer beside
	// credentials.
	if ok || !c.headersAny {
		return ok
	}
	return !strings.EqualFold(name, "authorization") && !(c.credentials && name == "*")
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

func toLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func trimOWS(s string) string { return httpgrammar.TrimOWS(s) }

// MaxEchoBytes bounds the access-control-allow-headers value corsproc
// builds for allow_headers "*" with credentials, which echoes the names
// asked for. Browsers ask for a handful; a preflight whose names, each
// once, come to more is denied as request_too_large rather than answered
// with a header that large (or cut short, which would deny it in the
// browser anyway, less clearly).
const MaxEchoBytes = 8 << 10

// echoHeaders returns the requested header names for "*" with
// credentials, each once (compared case-insensitively), and false when
// they come to more than MaxEchoBytes. checkHeaders has already seen
// that every name is a token. What browsers send (one line of distinct
// lower-case names in increasing order) is echoed as is, without
// allocating; anything else is rebuilt, lower case, joined by ", ".
func echoHeaders(lines []string) (string, bool) {
	if s, ok := echoAsSent(lines); ok {
		return s, len(s) <= MaxEchoBytes
	}
	// The rare path (several lines, upper case, duplicates): a set of the
	// names written so far, each lower-cased into key first.
	var (
		seen map[string]struct{}
		b    strings.Builder
		key  []byte
	)
	for _, l := range lines {
		for more := l != ""; more; {
			var name string
			name, l, more = httpgrammar.CutElement(l)
			if name == "" {
				continue
			}
			key = key[:0]
			for i := 0; i < len(name); i++ {
				key = append(key, toLower(name[i]))
			}
			if _, dup := seen[string(key)]; dup {
				continue
			}
			sep := 0
			if b.Len() > 0 {
				sep = len(", ")
			}
			if b.Len()+sep+len(key) > MaxEchoBytes {
				return "", false
			}
			if sep > 0 {
				b.WriteString(", ")
			}
			b.Write(key)
			if seen == nil {
				seen = map[string]struct{}{}
			}
			seen[string(key)] = struct{}{}
		}
	}
	return b.String(), true
}

// echoAsSent returns the one non-empty line when it is what a browser
// sends: distinct lower-case names in increasing order.
func echoAsSent(lines []string) (string, bool) {
	first := ""
	for _, l := range lines {
		if l = trimOWS(l); l == "" {
			continue
		}
		if first != "" {
			return "", false
		}
		first = l
	}
	prev := ""
	for s, more := first, first != ""; more; {
		var name string
		name, s, more = httpgrammar.CutElement(s)
		if name == "" || hasUpper(name) || name <= prev {
			return "", false
		}
		prev = name
	}
	return first, true
}

// debug adds the x-corsproc-* headers when the request asks for them.
func (d *Decision) debug(r *Request) {
	if !r.Debug {
		return
	}
	d.add(hdrDebugDecision, d.Outcome.String())
	d.add(hdrDebugReason, d.Reason.String()+": "+asciiMessage(d.Message()))
}

// asciiMessage keeps a message a valid header value: visible ASCII, space
// and tab only.
func asciiMessage(s string) string {
	if httpgrammar.IsFieldValue(s) {
		return s
	}
	return strings.Trim(strconv.QuoteToASCII(s), `"`)
}
