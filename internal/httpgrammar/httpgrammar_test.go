package httpgrammar

import (
	"net/url"
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		s         string
		token     bool
		lowerName bool
	}{
		{"a lower-case header name is a token", "content-type", true, true},
		{"every punctuation RFC 9110 allows is a token", "!#$%&'*+-.^_`|~", true, true},
		{"an upper-case method is a token but not a mutation name", "PATCH", true, false},
		{"the empty string is no token", "", false, false},
		{"a space is no token byte", "x y", false, false},
		{"a colon is no token byte", "a:b", false, false},
		{"a comma is no token byte", "a,b", false, false},
		{"a quote is no token byte", `a"b`, false, false},
		{"a NUL is no token byte", "a\x00", false, false},
		{"DEL is no token byte", "a\x7f", false, false},
		{"UTF-8 is no token", "ä", false, false},
		{"obs-text is no token", "a\x80", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := IsToken(c.s); got != c.token {
				t.Errorf("IsToken(%q) = %v, want %v", c.s, got, c.token)
			}
			if got := IsLowerToken(c.s); got != c.lowerName {
				t.Errorf("IsLowerToken(%q) = %v, want %v", c.s, got, c.lowerName)
			}
		})
	}
}

func TestFieldValue(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		s    string
		ok   bool
	}{
		{"an origin is a field value", "https://app.example.com", true},
		{"a list with spaces is a field value", "origin, accept", true},
		{"the empty value is a field value", "", true},
		{"a tab inside is allowed", "a\tb", true},
		{"a leading space is not sent", " a", false},
		{"a trailing tab is not sent", "a\t", false},
		{"CR LF would split the header", "a\r\nb: c", false},
		{"a NUL is refused", "a\x00b", false},
		{"other control bytes are refused", "a\x1bb", false},
		{"DEL is refused", "a\x7f", false},
		{"obs-text is refused, as the policy never sends it", "caf\xc3\xa9", false},
		{"a lone high byte is refused", "a\xff", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := IsFieldValue(c.s); got != c.ok {
				t.Errorf("IsFieldValue(%q) = %v, want %v", c.s, got, c.ok)
			}
		})
	}
}

func TestCutElement(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		s    string
		want []string
	}{
		{"one element is returned whole", "accept", []string{"accept"}},
		{"elements are split at commas and trimmed", "a, b ,\tc", []string{"a", "b", "c"}},
		{"empty elements are returned as empty", "a,,b,", []string{"a", "", "b", ""}},
		{"the empty list is one empty element", "", []string{""}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for s, more := c.s, true; more; {
				var e string
				e, s, more = CutElement(s)
				got = append(got, e)
			}
			if strings.Join(got, "|") != strings.Join(c.want, "|") {
				t.Errorf("CutElement over %q gave %q, want %q", c.s, got, c.want)
			}
		})
	}
}

// originCases are the origin grammar's table; FuzzParseOrigin starts from
// them.
var originCases = []struct {
	name               string
	s                  string
	ok                 bool
	scheme, host, port string
}{
	{"an https origin parses", "https://app.example.com", true, "https", "app.example.com", ""},
	{"an origin with a port parses", "http://localhost:3000", true, "http", "localhost", "3000"},
	{"the highest port parses", "http://localhost:65535", true, "http", "localhost", "65535"},
	{"port 1 parses", "http://localhost:1", true, "http", "localhost", "1"},
	{"an IPv4 host parses", "http://127.0.0.1:8080", true, "http", "127.0.0.1", "8080"},
	{"a bracketed IPv6 host parses", "http://[::1]:8080", true, "http", "[::1]", "8080"},
	{"an IPv6 host without port parses", "https://[2001:db8::1]", true, "https", "[2001:db8::1]", ""},
	{"a custom scheme parses", "chrome-extension://abcdefghijklmnop", true, "chrome-extension", "abcdefghijklmnop", ""},
	{"a scheme with digits, plus and dot parses", "web+x.1://a.example", true, "web+x.1", "a.example", ""},
	{"underscores and hyphens in labels parse", "https://a_b-c.example.com", true, "https", "a_b-c.example.com", ""},
	{"a fully qualified name with a final dot parses", "https://example.com.", true, "https", "example.com.", ""},
	{"punycode parses", "https://xn--bcher-kva.example", true, "https", "xn--bcher-kva.example", ""},
	{"a 63-byte label parses", "https://" + strings.Repeat("a", 63) + ".example", true, "https", strings.Repeat("a", 63) + ".example", ""},

	{"port 0 is refused", "http://localhost:0", false, "", "", ""},
	{"port 65536 is refused", "http://localhost:65536", false, "", "", ""},
	{"a port with a leading zero is refused", "http://localhost:080", false, "", "", ""},
	{"a port of six digits is refused", "http://localhost:100000", false, "", "", ""},
	{"a signed port is refused", "http://localhost:+80", false, "", "", ""},
	{"an empty port is refused", "http://localhost:", false, "", "", ""},
	{"two ports are refused", "http://localhost:80:80", false, "", "", ""},
	{"a path is refused", "https://app.example.com/x", false, "", "", ""},
	{"a trailing slash is refused", "https://app.example.com/", false, "", "", ""},
	{"a path after a port is refused", "http://localhost:3000/", false, "", "", ""},
	{"a query is refused", "https://app.example.com?x", false, "", "", ""},
	{"a fragment is refused", "https://app.example.com#x", false, "", "", ""},
	{"user info is refused", "https://evil.net@app.example.com", false, "", "", ""},
	{"an upper-case host is refused", "https://APP.example.com", false, "", "", ""},
	{"an upper-case scheme is refused", "HTTPS://app.example.com", false, "", "", ""},
	{"a scheme starting with a digit is refused", "1http://a.example", false, "", "", ""},
	{"a missing scheme is refused", "://a.example", false, "", "", ""},
	{"a missing host is refused", "https://", false, "", "", ""},
	{"an empty label is refused", "https://a..example.com", false, "", "", ""},
	{"a leading dot is refused", "https://.example.com", false, "", "", ""},
	{"a 64-byte label is refused", "https://" + strings.Repeat("a", 64) + ".example", false, "", "", ""},
	{"a host over 253 bytes is refused", "https://" + strings.Repeat("a.", 127) + "aa", false, "", "", ""},
	{"a short IPv4 form is refused", "http://127.1", false, "", "", ""},
	{"a hexadecimal IPv4 form is refused", "http://0x7f.0.0.1", false, "", "", ""},
	{"an IPv4 part with a leading zero is refused", "http://127.0.0.01", false, "", "", ""},
	{"an IPv4 part over 255 is refused", "http://256.0.0.1", false, "", "", ""},
	{"five IPv4 parts are refused", "http://1.2.3.4.5", false, "", "", ""},
	{"an IPv4 address with a final dot is refused", "http://1.2.3.4.", false, "", "", ""},
	{"a name ending in a number label is refused", "http://example.123", false, "", "", ""},
	{"an unclosed IPv6 host is refused", "http://[::1", false, "", "", ""},
	{"an IPv6 host with a zone is refused", "http://[fe80::1%25eth0]", false, "", "", ""},
	{"an upper-case IPv6 host is refused", "http://[2001:DB8::1]", false, "", "", ""},
	{"an IPv4 address in brackets is refused", "http://[127.0.0.1]", false, "", "", ""},
	{"text after an IPv6 host is refused", "http://[::1]x", false, "", "", ""},
	{"a backslash is refused", "https://evil.net\\.example.org", false, "", "", ""},
	{"a space is refused", "https://app.example.com ", false, "", "", ""},
	{"a wildcard is refused", "https://*.example.com", false, "", "", ""},
	{"null is not a serialized origin", "null", false, "", "", ""},
	{"UTF-8 in the host is refused", "https://exämple.com", false, "", "", ""},
}

func TestParseOrigin(t *testing.T) {
	t.Parallel()
	for _, c := range originCases {
		t.Run(c.name, func(t *testing.T) {
			o, ok := ParseOrigin(c.s)
			if ok != c.ok {
				t.Fatalf("ParseOrigin(%q) ok = %v, want %v", c.s, ok, c.ok)
			}
			if o.Scheme != c.scheme || o.Host != c.host || o.Port != c.port {
				t.Errorf("ParseOrigin(%q) = %+v, want scheme %q host %q port %q", c.s, o, c.scheme, c.host, c.port)
			}
		})
	}
}

func FuzzParseOrigin(f *testing.F) {
	for _, c := range originCases {
		f.Add(c.s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, ok := ParseOrigin(s)
		if !ok {
			return
		}
		back := o.Scheme + "://" + o.Host
		if o.Port != "" {
			back += ":" + o.Port
		}
		if back != s {
			t.Fatalf("ParseOrigin(%q) = %+v, which writes back as %q", s, o, back)
		}
		if !IsFieldValue(s) {
			t.Fatalf("ParseOrigin accepted %q, which is no field value", s)
		}
		if strings.ContainsAny(s[len(o.Scheme)+3:], "/?#@\\ ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			t.Fatalf("ParseOrigin accepted %q, whose host or port holds a path, query, fragment, user info or capital", s)
		}
		// The standard library's URL parser must see the same host and
		// port, and nothing else.
		u, err := url.Parse(s)
		if err != nil {
			t.Fatalf("ParseOrigin accepted %q, which net/url refuses: %v", s, err)
		}
		if u.Scheme != o.Scheme || u.Host != o.Host+portSuffix(o.Port) || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			t.Fatalf("ParseOrigin(%q) = %+v, but net/url reads %#v", s, o, u)
		}
	})
}

func portSuffix(p string) string {
	if p == "" {
		return ""
	}
	return ":" + p
}

// BenchmarkParseOrigin is the grammar check every origin that reaches a
// pattern pays.
func BenchmarkParseOrigin(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ParseOrigin("https://pr-7.svc50.example.com:8443"); !ok {
			b.Fatal("refused")
		}
	}
}
