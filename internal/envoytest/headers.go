package envoytest

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/corsproc/corsproc/internal/httpgrammar"
)

// Envoy's default header limits (HttpConnectionManager max_request_headers_kb
// and common_http_protocol_options.max_headers_count). A mutation that leaves
// the map over them is an error, as in mutation_utils.cc.
const (
	maxHeadersCount = 100
	maxHeadersBytes = 60 * 1024
)

// hopByHop are the connection-specific headers Envoy's HTTP/1 codec and
// connection manager strip in both directions; a filter never sees them.
var hopByHop = map[string]bool{
	"connection":        true,
	"keep-alive":        true,
	"proxy-connection":  true,
	"transfer-encoding": true,
	"upgrade":           true,
}

// headerEntry is one line of a headerMap.
type headerEntry struct{ key, value string }

// headerMap mirrors Envoy's HeaderMap: ordered entries with lower-case keys,
// pseudo headers first, a repeated header as several entries.
type headerMap struct{ entries []headerEntry }

// add appends a line; a pseudo header goes after the last pseudo header.
func (m *headerMap) add(key, value string) {
	e := headerEntry{key, value}
	if !strings.HasPrefix(key, ":") {
		m.entries = append(m.entries, e)
		return
	}
	i := 0
	for i < len(m.entries) && strings.HasPrefix(m.entries[i].key, ":") {
		i++
	}
	m.entries = append(m.entries, headerEntry{})
	copy(m.entries[i+1:], m.entries[i:])
	m.entries[i] = e
}

// set replaces every line of key by one line (Envoy's setCopy).
func (m *headerMap) set(key, value string) {
	m.remove(key)
	m.add(key, value)
}

// remove drops every line of key.
func (m *headerMap) remove(key string) {
	kept := m.entries[:0]
	for _, e := range m.entries {
		if e.key != key {
			kept = append(kept, e)
		}
	}
	clear(m.entries[len(kept):])
	m.entries = kept
}

// get returns the first value of key.
func (m *headerMap) get(key string) (string, bool) {
	for _, e := range m.entries {
		if e.key == key {
			return e.value, true
		}
	}
	return "", false
}

// byteSize is the sum of key and value lengths, as Envoy counts it.
func (m *headerMap) byteSize() int {
	n := 0
	for _, e := range m.entries {
		n += len(e.key) + len(e.value)
	}
	return n
}

// proto renders the map as Envoy sends it: values in raw_value only.
func (m *headerMap) proto() *corev3.HeaderMap {
	out := &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, 0, len(m.entries))}
	for _, e := range m.entries {
		out.Headers = append(out.Headers, &corev3.HeaderValue{Key: e.key, RawValue: []byte(e.value)})
	}
	return out
}

// httpHeader copies the non-pseudo lines into h, keeping repeated lines.
func (m *headerMap) httpHeader(h http.Header) {
	for _, e := range m.entries {
		if !strings.HasPrefix(e.key, ":") {
			h[http.CanonicalHeaderKey(e.key)] = append(h[http.CanonicalHeaderKey(e.key)], e.value)
		}
	}
}

// addHTTPHeader adds the lines of h with lower-cased keys, sorted by key so
// that the order is stable (Go's http.Header does not keep the wire order
// across different names; the order of a repeated header is kept).
func (m *headerMap) addHTTPHeader(h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if hopByHop[lk] {
			continue
		}
		for _, v := range h[k] {
			m.add(lk, v)
		}
	}
}

// errMutation marks a reply whose header mutation Envoy refuses: the request
// gets a local 500 whatever failure_mode_allow says.
var errMutation = errors.New("invalid header mutation")

// validHeaderName is Envoy's HeaderUtility::headerNameIsValid: an HTTP token,
// or ":" followed by a token for a pseudo header.
func validHeaderName(name string) bool {
	return httpgrammar.IsToken(strings.TrimPrefix(name, ":"))
}

// validHeaderValue is Envoy's HeaderUtility::headerValueIsValid: no NUL,
// CR or LF.
func validHeaderValue(v string) bool {
	return !strings.ContainsAny(v, "\x00\r\n")
}

// applyMutation applies mut to m as mutation_utils.cc does: size check,
// removes first, then sets in order, each change checked by c. A value is read from raw_value only; a
// HeaderValue with both value and raw_value set is an error (Envoy before the
// raw_value-only change did that, and a processor filling both is broken
// either way). append_action is ignored. Refused changes are counted in
// rejected and skipped, unless the rules say disallow_is_error, which makes
// the first refused change an error. The returned error wraps errMutation.
func applyMutation(m *headerMap, mut *extprocv3.HeaderMutation, c *mutationChecker, rejected func()) error {
	if mut == nil {
		return nil
	}
	if len(mut.GetRemoveHeaders()) > maxHeadersCount || len(mut.GetSetHeaders()) > maxHeadersCount {
		rejected()
		return fmt.Errorf("%w: more than %d headers in one mutation", errMutation, maxHeadersCount)
	}
	for _, name := range mut.GetRemoveHeaders() {
		if !validHeaderName(name) {
			rejected()
			return fmt.Errorf("%w: invalid character in remove_headers", errMutation)
		}
		name = strings.ToLower(name)
		switch c.check(opRemove, name, "") {
		case checkFail:
			rejected()
			return fmt.Errorf("%w: invalid attempt to remove %s", errMutation, name)
		case checkIgnore:
			rejected()
			continue
		}
		m.remove(name)
	}
	for _, opt := range mut.GetSetHeaders() {
		hv := opt.GetHeader()
		if hv == nil {
			continue
		}
		if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
			rejected()
			return fmt.Errorf("%w: only one of value or raw_value may be set (header %q)", errMutation, hv.GetKey())
		}
		value := string(hv.GetRawValue())
		if !validHeaderName(hv.GetKey()) || !validHeaderValue(value) {
			rejected()
			return fmt.Errorf("%w: invalid character in set_headers (header %q)", errMutation, hv.GetKey())
		}
		name := strings.ToLower(hv.GetKey())
		appendLine := opt.GetAppend().GetValue()
		op := opSet
		if _, exists := m.get(name); appendLine && exists {
			op = opAppend
		}
		switch c.check(op, name, value) {
		case checkFail:
			rejected()
			return fmt.Errorf("%w: invalid attempt to modify %s", errMutation, name)
		case checkIgnore:
			rejected()
			continue
		}
		if appendLine {
			m.add(name, value)
		} else {
			m.set(name, value)
		}
	}
	if len(m.entries) > maxHeadersCount || m.byteSize() > maxHeadersBytes {
		rejected()
		return fmt.Errorf("%w: headers over the count or size limit after mutation", errMutation)
	}
	return nil
}

// forwarded renders m as Envoy sends it to the processor: values in
// raw_value only, and only the keys the filter's forward_rules let through
// (MutationUtils::headersToProto).
func (e *Envoy) forwarded(m *headerMap) *corev3.HeaderMap {
	out := &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, 0, len(m.entries))}
	for _, en := range m.entries {
		if e.forward.forwards(en.key) {
			out.Headers = append(out.Headers, &corev3.HeaderValue{Key: en.key, RawValue: []byte(en.value)})
		}
	}
	return out
}
