package policy

// The response edit: what a decision does to the service's response
// headers.

import (
	"strings"

	"github.com/corsproc/corsproc/internal/httpgrammar"
)

// Respond fills e with what to do to the service's response headers, given
// the CORS-relevant ones the service sent.
func (d *Decision) Respond(up *Upstream, e *Edit) {
	*e = Edit{}
	c := d.c
	if c == nil || c.mode == Off || d.Local {
		return
	}
	if c.mode == Report {
		if d.Class == Actual || d.Class == Preflight {
			serviceAllows := up.AllowOrigins == 1 && (up.AllowOrigin == d.origin || up.AllowOrigin == "*")
			e.Mismatch = serviceAllows != (d.Outcome == Allowed)
		}
		return
	}
	if c.keep && up.AllowOrigins > 0 {
		return // the service owns its CORS on this response
	}
	e.Remove = up.CORSHeaders
	e.n = d.n
	if d.vary {
		if v, change := mergeVary(up.Vary); change {
			d.headers[d.n] = Header{hdrVary, v}
			e.n++
		}
	}
}

// mergeVary adds "origin" to the service's vary lines, unless a line
// already names it or says "*".
func mergeVary(lines []string) (string, bool) {
	for _, l := range lines {
		for more := l != ""; more; {
			var tok string
			tok, l, more = httpgrammar.CutElement(l)
			if tok == "*" || strings.EqualFold(tok, "origin") {
				return "", false
			}
		}
	}
	var parts []string
	for _, l := range lines {
		// A line corsproc could not send again is dropped, never copied.
		if l = trimOWS(l); l != "" && httpgrammar.IsFieldValue(l) {
			parts = append(parts, l)
		}
	}
	if len(parts) == 0 {
		return "origin", true
	}
	return strings.Join(parts, ", ") + ", origin", true
}
