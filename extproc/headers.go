package extproc

import (
	"strings"
	"unsafe"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/corsproc/corsproc/internal/httpgrammar"
	"github.com/corsproc/corsproc/policy"
)

// Limits on the CORS request headers corsproc reads. Envoy's own limit on
// all headers is 60 KiB by default; past these no browser is talking. A
// request over them is denied as malformed (policy.Request.Oversized),
// never refused with a gRPC error: with failure_mode_allow, as deployments
// run Envoy, an error would let the request through untouched, service's
// own CORS headers and all.
const (
	// maxValueBytes caps access-control-request-method and each
	// access-control-request-headers line. Origins are not capped here:
	// the policy denies any over policy.MaxOriginLength without matching.
	maxValueBytes = 64 << 10
	// maxRequestHeaderLines caps access-control-request-headers lines.
	maxRequestHeaderLines = 64
)

// The attribute Envoy sends the route name under, when the filter's
// request_attributes lists it.
const (
	attrNamespace = "envoy.filters.http.ext_proc"
	attrRoute     = "xds.route_name"
)

// str views b as a string without copying. The bytes belong to a decoded
// ProcessingRequest that nothing mutates, and the string lives no longer
// than the stream that holds the message.
func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// raw views s as bytes without copying, for raw_value fields, which the
// proto encoder only reads.
func raw(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// value is a header's value: raw_value, which Envoy fills, or value when
// raw_value is empty.
func value(h *corev3.HeaderValue) string {
	if len(h.RawValue) > 0 {
		return str(h.RawValue)
	}
	return h.Value
}

// readRequest fills r from the request headers in one pass, without a map
// of them and without copying a value. lines backs r.RequestHeaders.
func readRequest(r *policy.Request, lines []string, hs []*corev3.HeaderValue) {
	host := ""
	r.RequestHeaders = lines[:0]
	for _, h := range hs {
		switch h.GetKey() {
		case ":method":
			if r.Method == "" {
				r.Method = value(h)
			}
		case ":authority":
			if r.Host == "" {
				r.Host = value(h)
			}
		case "host": // only when :authority is missing
			if host == "" {
				host = value(h)
			}
		case ":path":
			if r.Path == "" {
				r.Path = value(h)
			}
		case "origin":
			r.Origins++
			if r.Origins == 1 {
				r.Origin = value(h)
			}
		case "access-control-request-method":
			v := value(h)
			if !r.HasRequestMethod {
				r.RequestMethod, r.HasRequestMethod = v, true
			}
			if len(v) > maxValueBytes {
				r.RequestMethod, r.Oversized = "", true
			}
		case "access-control-request-headers":
			v := value(h)
			if len(v) > maxValueBytes || len(r.RequestHeaders) == maxRequestHeaderLines {
				r.Oversized = true
				continue
			}
			r.RequestHeaders = append(r.RequestHeaders, v)
		case "access-control-request-private-network":
			r.PrivateNetwork = value(h) == "true"
		}
	}
	if r.Host == "" {
		r.Host = host
	}
}

// routeName finds xds.route_name in the attributes Envoy sends with the
// first message of a direction, under the ext_proc filter's name or, for a
// filter configured under another name, any other key.
func routeName(attrs map[string]*structpb.Struct) string {
	if len(attrs) == 0 {
		return ""
	}
	if s := attrs[attrNamespace]; s != nil {
		if v, ok := s.GetFields()[attrRoute]; ok {
			return v.GetStringValue()
		}
	}
	for _, s := range attrs {
		if v, ok := s.GetFields()[attrRoute]; ok {
			return v.GetStringValue()
		}
	}
	return ""
}

const accessControl = "access-control-"

// readUpstream fills up from the service's response headers in one pass.
// The slices are reused scratch.
//
// Every access-control-* name goes into up.CORSHeaders, for Envoy to
// remove, only when it is a name Envoy accepts in remove_headers: Envoy
// refuses a whole mutation that names an invalid header (a local 500), and
// then the service's real access-control-allow-origin would not be removed
// either. A name with bytes outside a token (a space, a colon, a control
// byte, UTF-8) cannot be removed by name, so it is left where it is: it is
// no CORS header to a client that reads names as RFC 9110 says, Envoy's
// codecs refuse such names from a service in the first place, and on an
// allowed response corsproc still writes its own
// access-control-allow-origin, so a client lenient enough to read the
// mangled name as that header sees two values and refuses the response.
// Keys arrive lower case from Envoy; an upper-case one is lower-cased
// (Envoy removes names case-insensitively).
func readUpstream(up *policy.Upstream, vary, cors []string, hs []*corev3.HeaderValue) {
	*up = policy.Upstream{Vary: vary[:0], CORSHeaders: cors[:0]}
	for _, h := range hs {
		k := h.GetKey()
		switch {
		case k == "vary" || len(k) == len("vary") && strings.EqualFold(k, "vary"):
			up.Vary = append(up.Vary, value(h))
		case len(k) >= len(accessControl) && strings.EqualFold(k[:len(accessControl)], accessControl):
			if !httpgrammar.IsToken(k) {
				continue // cannot be removed by name; see above
			}
			if !httpgrammar.IsLowerToken(k) {
				k = strings.ToLower(k)
			}
			switch k {
			case "access-control-allow-origin":
				up.AllowOrigins++
				if up.AllowOrigins == 1 {
					up.AllowOrigin = value(h)
				}
			case "access-control-allow-credentials":
				up.AllowCredentials = value(h)
			}
			if !contains(up.CORSHeaders, k) {
				up.CORSHeaders = append(up.CORSHeaders, k)
			}
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validName is a header name Envoy accepts in a mutation: a token without
// upper case (HTTP/2's rule, which Envoy applies to mutations).
func validName(s string) bool { return httpgrammar.IsLowerToken(s) }

// validValue is a header value corsproc may send: the policy's rule
// (visible ASCII, space and tab, no surrounding whitespace), which is
// stricter than Envoy's (no NUL, CR or LF). Checked on every header
// corsproc sends, as the last line of defence behind the policy's own
// checks: a value Envoy refuses would make it answer 500, and a byte of
// 0x80 or more is one the policy never writes, so finding one here is a
// bug to report, not a value to pass on.
func validValue(s string) bool { return httpgrammar.IsFieldValue(s) }
