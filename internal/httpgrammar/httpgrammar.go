// Package httpgrammar is the one definition of the HTTP grammar corsproc
// checks bytes against: RFC 9110 tokens (header names, methods), the
// field values corsproc will send, comma-separated list elements, and the
// serialized origins browsers send (RFC 6454 §6.2 as the URL standard
// writes them). The policy package and the ext_proc server both use it, so
// that what one accepts the other never refuses.
//
// Every function works on strings without allocating.
package httpgrammar

import (
	"net/netip"
	"strings"
)

// tokenBytes are the bytes of an RFC 9110 token (§5.6.2): letters, digits
// and !#$%&'*+-.^_`|~.
var tokenBytes = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// IsTokenByte reports whether c may appear in an RFC 9110 token.
func IsTokenByte(c byte) bool { return tokenBytes[c] }

// IsToken reports whether s is a non-empty RFC 9110 token: a valid header
// name or method.
func IsToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !tokenBytes[s[i]] {
			return false
		}
	}
	return s != ""
}

// IsLowerToken reports whether s is a token without upper-case letters: a
// header name as Envoy accepts it in a header mutation (HTTP/2 forbids
// upper case in names, and Envoy checks mutations against that rule).
func IsLowerToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !tokenBytes[c] || 'A' <= c && c <= 'Z' {
			return false
		}
	}
	return s != ""
}

// IsFieldValueByte reports whether c may appear in a field value corsproc
// sends: visible ASCII (VCHAR), space and tab. RFC 9110 also admits
// obs-text (0x80-0xFF) for old senders; corsproc never sends it, since no
// CORS header carries anything but ASCII and clients differ on how they
// decode those bytes.
func IsFieldValueByte(c byte) bool { return 0x21 <= c && c <= 0x7e || c == ' ' || c == '\t' }

// IsFieldValue reports whether s is a field value corsproc may send: bytes
// for which IsFieldValueByte holds, and no leading or trailing space or
// tab (RFC 9110 §5.5, which a recipient strips anyway). The empty value is
// valid.
func IsFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if !IsFieldValueByte(s[i]) {
			return false
		}
	}
	return s == "" || !isOWS(s[0]) && !isOWS(s[len(s)-1])
}

func isOWS(c byte) bool { return c == ' ' || c == '\t' }

// TrimOWS removes leading and trailing spaces and tabs (RFC 9110 OWS).
func TrimOWS(s string) string {
	for s != "" && isOWS(s[0]) {
		s = s[1:]
	}
	for s != "" && isOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// CutElement returns the first element of a comma-separated list (RFC 9110
// §5.6.1), OWS trimmed, and the rest after its comma; more is false when s
// held no comma. Empty elements are returned as "": the caller decides how
// many it tolerates.
func CutElement(s string) (elem, rest string, more bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ',' {
			return TrimOWS(s[:i]), s[i+1:], true
		}
	}
	return TrimOWS(s), "", false
}

// Origin is a serialized origin split into its parts; each is a substring
// of the string parsed.
type Origin struct {
	// Scheme is lower case, without "://".
	Scheme string
	// Host is a DNS name, a dotted-decimal IPv4 address or a bracketed
	// IPv6 address.
	Host string
	// Port is "" or the decimal port, 1 to 65535 without leading zeros.
	Port string
}

// MaxLabel is the longest DNS label (RFC 1035 §2.3.4).
const MaxLabel = 63

// ParseOrigin parses a serialized origin as browsers send it in the origin
// header: scheme "://" host [ ":" port ], all lower case, with
//
//   - a scheme of a letter then letters, digits, "+", "-" or ".";
//   - a host that is a DNS name (labels of a-z, 0-9, "-" and "_", each 1 to
//     63 bytes, an optional final "."), an IPv4 address as four decimal
//     numbers without leading zeros, or an IPv6 address in brackets,
//     without a zone;
//   - an optional port from 1 to 65535 without leading zeros;
//   - no path, query, fragment or user info, nothing else.
//
// "null" is not a serialized origin; callers handle it on its own.
func ParseOrigin(s string) (Origin, bool) {
	i := 0
	for i < len(s) && schemeBytes[s[i]] {
		i++
	}
	if i == 0 || s[0] < 'a' || len(s) < i+3 || s[i:i+3] != "://" {
		return Origin{}, false
	}
	o := Origin{Scheme: s[:i]}
	rest := s[i+3:]
	if rest != "" && rest[0] == '[' {
		end := indexByte(rest, ']')
		if end < 0 || !validIPv6(rest[1:end]) {
			return Origin{}, false
		}
		o.Host, rest = rest[:end+1], rest[end+1:]
	} else {
		end, ok := scanName(rest)
		if !ok {
			return Origin{}, false
		}
		o.Host, rest = rest[:end], rest[end:]
	}
	if rest == "" {
		return o, true
	}
	if rest[0] != ':' || !ValidPort(rest[1:]) {
		return Origin{}, false
	}
	o.Port = rest[1:]
	return o, true
}

// schemeBytes are the bytes of a serialized scheme (the first must also be
// a letter).
var schemeBytes = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for _, c := range "0123456789+-." {
		t[c] = true
	}
	return t
}()

// labelBytes are the bytes of a host label; see IsLabelByte.
var labelBytes = func() (t [256]bool) {
	for c := range 256 {
		t[c] = 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
	}
	return t
}()

// scanName reads a DNS name or a dotted-decimal IPv4 address at the start
// of s, up to a ":" or the end, in one pass; end is where it stops.
func scanName(s string) (end int, ok bool) {
	labelStart := 0
	for end = 0; end < len(s); end++ {
		c := s[end]
		if labelBytes[c] {
			continue
		}
		if c == '.' {
			if n := end - labelStart; n == 0 || n > MaxLabel {
				return 0, false // an empty label, or one DNS cannot carry
			}
			labelStart = end + 1
			continue
		}
		if c == ':' {
			break
		}
		return 0, false
	}
	return end, validName(s[:end], labelStart)
}

// IsOrigin reports whether s is a serialized origin; see [ParseOrigin].
func IsOrigin(s string) bool {
	_, ok := ParseOrigin(s)
	return ok
}

// ValidPort reports whether p is a port a serialized origin can carry: 1 to
// 65535 in decimal, without leading zeros or sign.
func ValidPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// IsLabelByte reports whether c may appear in a host label as browsers
// serialize it: a-z, 0-9, "-" and "_" (seen in real subdomains).
func IsLabelByte(c byte) bool { return labelBytes[c] }

// validName finishes the check of a name whose bytes scanName has seen:
// lengths, and the last label (from lastStart). A name whose last label is
// a number is an IPv4 address to the URL standard, and browsers serialize
// it as four decimal numbers: any other spelling ("127.1", "0x7f.0.0.1",
// "1.2.3.4.5") never comes from a browser.
func validName(h string, lastStart int) bool {
	fqdn := h != "" && h[len(h)-1] == '.'
	if fqdn {
		h = h[:len(h)-1]
		// The last label is the one before the final dot.
		lastStart = strings.LastIndexByte(h, '.') + 1
	}
	if h == "" || len(h) > 253 {
		return false
	}
	if n := len(h) - lastStart; n == 0 || n > MaxLabel {
		return false
	}
	if isNumberLabel(h[lastStart:]) {
		// The URL parser drops an IPv4 address's trailing dot.
		return !fqdn && validIPv4(h)
	}
	return true
}

// isNumberLabel is the URL standard's "ends in a number" test for one
// label: all digits, or "0x" and hex digits.
func isNumberLabel(l string) bool {
	if len(l) >= 2 && l[0] == '0' && l[1] == 'x' {
		for i := 2; i < len(l); i++ {
			if c := l[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

// validIPv4 checks four decimal numbers 0-255 without leading zeros.
func validIPv4(h string) bool {
	parts := 0
	for h != "" {
		end := indexByte(h, '.')
		if end < 0 {
			end = len(h)
		}
		p := h[:end]
		if p == "" || len(p) > 3 || len(p) > 1 && p[0] == '0' {
			return false
		}
		n := 0
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
			n = n*10 + int(p[i]-'0')
		}
		if n > 255 {
			return false
		}
		parts++
		if end == len(h) {
			break
		}
		h = h[end+1:]
		if h == "" {
			return false
		}
	}
	return parts == 4
}

// validIPv6 checks the inside of an IPv6 host's brackets: an address
// without zone, in lower case as browsers serialize it.
func validIPv6(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || c == ':' || c == '.') {
			return false
		}
	}
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6()
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}
