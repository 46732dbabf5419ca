package policy

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/net/publicsuffix"

	"github.com/corsproc/corsproc/internal/httpgrammar"
)

// patternKind is the shape of an allowed_origins entry.
type patternKind uint8

const (
	exactOrigin    patternKind = iota // https://app.example.com[:port], or null
	anyPortOrigin                     // http://localhost:*
	wildcardOrigin                    // https://*.example.com[:port|:*]
)

// originPattern is a parsed, normalised allowed_origins entry.
type originPattern struct {
	kind       patternKind
	normalised string // the entry as it must be written
	scheme     string
	host       string // for wildcards, the suffix after "*."
	port       string // "" default, digits, or "*"
}

// parseOriginPattern parses a config origin. It returns a message (and no
// pattern) when the entry is invalid.
func parseOriginPattern(s string) (originPattern, string) {
	if s == "null" {
		return originPattern{kind: exactOrigin, normalised: "null"}, ""
	}
	if strings.EqualFold(s, "null") {
		return originPattern{kind: exactOrigin, normalised: "null"}, ""
	}
	if s == "*" {
		return originPattern{}, `"*" is not an origin; set allow_all_origins: true instead`
	}
	if s == "" {
		return originPattern{}, "an origin cannot be empty"
	}
	if p, ok := plainOrigin(s); ok {
		return p, ""
	}
	return parseOriginEntry(s)
}

// parseOriginEntry is parseOriginPattern for any non-empty entry but "*"
// and null, without the plain-origin shortcut.
func parseOriginEntry(s string) (originPattern, string) {
	if strings.TrimSpace(s) != s {
		return originPattern{}, "an origin has no spaces; remove them"
	}
	if strings.Contains(s, ",") {
		return originPattern{}, "an origin has no comma; list each origin as an item of its own"
	}
	schemeEnd := strings.Index(s, "://")
	if schemeEnd <= 0 {
		return originPattern{}, `an origin is scheme://host[:port], e.g. "https://app.example.com"`
	}
	scheme := strings.ToLower(s[:schemeEnd])
	if !validScheme(scheme) {
		return originPattern{}, "the scheme " + strconv.Quote(s[:schemeEnd]) + " is not valid"
	}
	rest := s[schemeEnd+3:]
	if i := strings.IndexAny(rest, "/?#@"); i >= 0 {
		switch rest[i] {
		case '/':
			if rest[i:] == "/" {
				return originPattern{}, `an origin has no path; remove the trailing "/"`
			}
			return originPattern{}, "an origin has no path; remove " + strconv.Quote(rest[i:])
		case '?':
			return originPattern{}, "an origin has no query; remove " + strconv.Quote(rest[i:])
		case '#':
			return originPattern{}, "an origin has no fragment; remove " + strconv.Quote(rest[i:])
		default:
			return originPattern{}, "an origin has no user info; remove " + strconv.Quote(rest[:i+1])
		}
	}
	host, port, msg := splitHostPort(rest)
	if msg != "" {
		return originPattern{}, msg
	}
	switch {
	case port == "*":
	case port != "":
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || !allDigits(port) {
			return originPattern{}, "the port " + strconv.Quote(port) + " is not a number from 1 to 65535 (or * for any port)"
		}
		port = strconv.Itoa(n)
		if (scheme == "http" || scheme == "ws") && n == 80 || (scheme == "https" || scheme == "wss") && n == 443 {
			port = "" // browsers omit the default port
		}
	}
	p := originPattern{kind: exactOrigin, scheme: scheme, port: port}
	if suffix, ok := strings.CutPrefix(host, "*."); ok {
		p.kind = wildcardOrigin
		host = suffix
	}
	if strings.Contains(host, "*") {
		return originPattern{}, `a wildcard stands only for whole leading labels, as in "https://*.example.com"`
	}
	host, msg = normaliseHost(host, p.kind == wildcardOrigin)
	if msg != "" {
		return originPattern{}, msg
	}
	p.host = host
	if p.kind == exactOrigin && port == "*" {
		p.kind = anyPortOrigin
	}
	var b strings.Builder
	b.WriteString(scheme)
	b.WriteString("://")
	if p.kind == wildcardOrigin {
		b.WriteString("*.")
	}
	b.WriteString(host)
	if port != "" {
		b.WriteString(":")
		b.WriteString(port)
	}
	p.normalised = b.String()
	return p, ""
}

// plainOrigin is the common case, taken without allocating: an entry
// already written as browsers send it (the serialized-origin grammar, no
// default port, no IPv6 or punycode host, which normaliseHost rewrites or
// checks further) is its own normalised form. Large policy files are
// mostly such entries.
func plainOrigin(s string) (originPattern, bool) {
	o, ok := httpgrammar.ParseOrigin(s)
	if !ok || o.Host[0] == '[' || strings.Contains(o.Host, "xn--") {
		return originPattern{}, false
	}
	if o.Port != "" && ((o.Scheme == "http" || o.Scheme == "ws") && o.Port == "80" || (o.Scheme == "https" || o.Scheme == "wss") && o.Port == "443") {
		return originPattern{}, false
	}
	return originPattern{kind: exactOrigin, normalised: s, scheme: o.Scheme, host: o.Host, port: o.Port}, true
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// splitHostPort splits "host[:port]", with IPv6 hosts in brackets.
func splitHostPort(s string) (host, port, msg string) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", "an IPv6 host needs its closing \"]\""
		}
		host, rest := s[:end+1], s[end+1:]
		if rest != "" {
			if rest[0] != ':' || len(rest) == 1 {
				return "", "", "after an IPv6 host only \":port\" may follow"
			}
			port = rest[1:]
		}
		return host, port, ""
	}
	if strings.ContainsAny(s, "[]") {
		return "", "", `"[" and "]" only enclose an IPv6 host, as in "http://[::1]:8080"`
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		if i == len(s)-1 {
			return "", "", "the origin ends in \":\" without a port"
		}
		return s[:i], s[i+1:], ""
	}
	return s, "", ""
}

// normaliseHost lower-cases the host, converts IDNs to punycode and
// compresses IPv6, as browsers do in the origins they send.
func normaliseHost(h string, wildcard bool) (string, string) {
	if h == "" {
		return "", "the origin has no host"
	}
	if strings.HasPrefix(h, "[") {
		if wildcard {
			return "", "a wildcard cannot stand before an IP address"
		}
		if len(h) < 2 || h[len(h)-1] != ']' {
			return "", "the IPv6 address " + strconv.Quote(h) + " needs its closing \"]\""
		}
		a, err := netip.ParseAddr(h[1 : len(h)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return "", "the IPv6 address " + strconv.Quote(h) + " is not valid"
		}
		return "[" + ipv6String(a) + "]", ""
	}
	ascii := true
	for i := 0; i < len(h); i++ {
		if h[i] >= 0x80 {
			ascii = false
		}
	}
	// Punycode written out is checked too: a browser refuses a host with a
	// broken xn-- label, so such an entry could never match.
	if !ascii && !utf8.ValidString(h) {
		return "", "the host " + strconv.Quote(h) + " is not valid UTF-8"
	}
	if !ascii || strings.Contains(strings.ToLower(h), "xn--") {
		p, err := idna.Lookup.ToASCII(h)
		if err != nil {
			return "", "the host " + strconv.Quote(h) + " is not a valid internationalised name: " + err.Error()
		}
		h = p
	}
	h = strings.ToLower(h)
	labels := strings.Split(strings.TrimSuffix(h, "."), ".")
	for _, l := range labels {
		if l == "" {
			return "", "the host " + strconv.Quote(h) + " has an empty label"
		}
		if len(l) > httpgrammar.MaxLabel {
			return "", "the host " + strconv.Quote(h) + " has a label of " + strconv.Itoa(len(l)) + " bytes; DNS allows at most 63, so no browser sends it"
		}
		for i := 0; i < len(l); i++ {
			if !labelByte(l[i]) {
				return "", "the host " + strconv.Quote(h) + " has " + strconv.QuoteRune(rune(l[i])) + ", which no host name has"
			}
		}
	}
	if endsInNumber(labels) {
		// The URL standard reads such a host as an IPv4 address, in any of
		// its forms ("127.1", "0x7f.0.0.1"), and browsers send it as four
		// decimal numbers.
		if wildcard {
			return "", "a wildcard cannot stand before an IP address"
		}
		ip, ok := parseIPv4(labels)
		if !ok {
			return "", "the host " + strconv.Quote(h) + " ends in a number but is not a valid IPv4 address"
		}
		return ip, ""
	}
	return h, ""
}

// ipv6String writes an IPv6 address as the URL standard serialises it:
// compressed, lower case, and always in hexadecimal ("::ffff:7f00:1", where
// netip writes "::ffff:127.0.0.1").
func ipv6String(a netip.Addr) string {
	if !a.Is4In6() {
		return a.String()
	}
	b := a.As16()
	return "::ffff:" + strconv.FormatUint(uint64(b[12])<<8|uint64(b[13]), 16) + ":" + strconv.FormatUint(uint64(b[14])<<8|uint64(b[15]), 16)
}

// endsInNumber is the URL standard's "ends in a number" check on a host's
// labels (a trailing empty label already removed).
func endsInNumber(labels []string) bool {
	last := labels[len(labels)-1]
	if allDigits(last) {
		return true
	}
	_, ok := parseIPv4Number(last)
	return ok
}

// parseIPv4 is the URL standard's IPv4 parser: one to four parts, each
// decimal, octal (leading 0) or hexadecimal (0x), the last filling the
// remaining bytes. It returns the address as four decimal numbers.
func parseIPv4(parts []string) (string, bool) {
	if len(parts) > 4 {
		return "", false
	}
	var addr uint64
	for i, p := range parts {
		n, ok := parseIPv4Number(p)
		if !ok {
			return "", false
		}
		if i < len(parts)-1 {
			if n > 255 {
				return "", false
			}
			addr |= n << (8 * (3 - i))
			continue
		}
		if n >= 1<<(8*(5-len(parts))) {
			return "", false
		}
		addr |= n
	}
	return netip.AddrFrom4([4]byte{byte(addr >> 24), byte(addr >> 16), byte(addr >> 8), byte(addr)}).String(), true
}

// parseIPv4Number is the URL standard's IPv4 number parser.
func parseIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := 10
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	if s == "" {
		return 0, true
	}
	if len(s) > 12 {
		return 0, false // far beyond 32 bits: not an address whatever the base
	}
	n, err := strconv.ParseUint(s, base, 64)
	return n, err == nil
}

// labelByte reports whether c may appear in a host label.
func labelByte(c byte) bool { return httpgrammar.IsLabelByte(c) }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isPublicSuffix reports whether "*."+host would cover every site under a
// public suffix such as com or github.io.
func isPublicSuffix(host string) bool {
	host = strings.TrimSuffix(host, ".")
	if host == "localhost" {
		return false
	}
	ps, _ := publicsuffix.PublicSuffix(host)
	return ps == host
}

// isLocalhost reports whether host names this machine, where plain http is
// expected.
func isLocalhost(host string) bool {
	if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return a.IsLoopback() // 127.0.0.0/8 and ::1, as browsers treat them
	}
	host = strings.TrimSuffix(host, ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// wildKey is the lookup key of a wildcard pattern: built from substrings of
// the request origin, so a lookup allocates nothing.
type wildKey struct{ scheme, suffix, port string }

// origins is the compiled origin matcher of one policy.
type origins struct {
	all     bool
	exact   map[string]struct{} // normalised origins, "null" among them when listed
	anyPort map[string]struct{} // "scheme://host" of port-wildcard entries
	wild    map[wildKey]struct{}
	regex   *regexSet // every regex, anchored, prefiltered by its literals
}

// matchExact reports whether o is one of the exact entries (null among
// them when listed), byte for byte.
func (m *origins) matchExact(o string) bool {
	_, ok := m.exact[o]
	return ok
}

// hasPatterns reports whether there is anything but exact entries.
func (m *origins) hasPatterns() bool { return m.anyPort != nil || m.wild != nil || m.regex != nil }

// matchPatterns tries the port wildcards, the subdomain wildcards and the
// regexes, for an origin that matched no exact entry and that has passed
// the serialized-origin grammar: no pattern ever sees a path, a query,
// user info or a port a page cannot have.
func (m *origins) matchPatterns(o string, p httpgrammar.Origin) bool {
	if m.anyPort != nil {
		// The key is o without its port: "scheme://host".
		if _, ok := m.anyPort[o[:len(p.Scheme)+len("://")+len(p.Host)]]; ok {
			return true
		}
	}
	if m.wild != nil && m.matchWild(p.Scheme, p.Host, p.Port) {
		return true
	}
	return m.regex != nil && m.regex.MatchString(o)
}

// matchWild tries every label boundary of host: cost proportional to the
// number of labels, whatever the number of patterns. The grammar has
// already checked the labels.
func (m *origins) matchWild(scheme, host, port string) bool {
	if host[0] == '[' {
		return false // a wildcard never stands before an IP address
	}
	for i := 1; i < len(host); i++ {
		if host[i] == '.' {
			suffix := host[i+1:]
			if _, ok := m.wild[wildKey{scheme, suffix, port}]; ok {
				return true
			}
			if _, ok := m.wild[wildKey{scheme, suffix, "*"}]; ok {
				return true
			}
		}
	}
	return false
}

// visibleASCII reports whether s is non-empty and has only bytes 0x21-0x7E:
// the only bytes corsproc will ever reflect.
func visibleASCII(s string) bool {
	// Eight bytes at a time: a byte below 0x21 shows in the high bit of
	// (x - 0x21 per byte) &^ x, a byte of 0x7F or more in that of
	// (x + 1 per byte) | x. Borrows and carries cross into the next byte
	// only from a byte that is already out of range, so "any" is exact.
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		if ((x-0x21*ones)&^x|(x+ones)|x)&highs != 0 {
			return false
		}
	}
	for ; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return s != ""
}
