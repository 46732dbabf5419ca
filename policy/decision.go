package policy

// Mode says what a policy does with its decisions.
type Mode uint8

// The modes of a policy.
const (
	// Enforce answers preflights locally and rewrites CORS response headers.
	Enforce Mode = iota
	// Report changes nothing; decisions are only logged and counted.
	Report
	// Off behaves as if the policy did not match.
	Off
)

var modeNames = [...]string{Enforce: "enforce", Report: "report", Off: "off"}

// String returns the mode as written in the policy file: enforce, report or off.
func (m Mode) String() string { return modeNames[m] }

// Class is the kind of request, as the metrics label it.
type Class uint8

// The request classes.
const (
	// Unmatched requests matched no policy (or an "off" one).
	Unmatched Class = iota
	// NoOrigin requests carry no origin header.
	NoOrigin
	// Actual requests carry an origin and are not preflights.
	Actual
	// Preflight requests are OPTIONS with origin and
	// access-control-request-method.
	Preflight
)

var classNames = [...]string{Unmatched: "unmatched", NoOrigin: "no_origin", Actual: "actual", Preflight: "preflight"}

// String returns the metrics label: unmatched, no_origin, actual or preflight.
func (c Class) String() string { return classNames[c] }

// Outcome is what the policy decided.
type Outcome uint8

// The outcomes.
const (
	// Skipped: CORS does not apply (no policy, "off", or no origin).
	Skipped Outcome = iota
	// Allowed: the origin (and, for a preflight, method and headers) passed.
	Allowed
	// Denied: the browser will be refused.
	Denied
)

var outcomeNames = [...]string{Skipped: "skipped", Allowed: "allowed", Denied: "denied"}

// String returns the metrics label: skipped, allowed or denied.
func (o Outcome) String() string { return outcomeNames[o] }

// Header is one response header line.
type Header struct {
	// Name is lower case, as HTTP/2 and Envoy want it.
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Request holds what corsproc reads from the request headers. Strings are
// the raw header values; the Set never retains them beyond the Decision.
type Request struct {
	// Method is :method.
	Method string
	// Host is :authority; a port is ignored.
	Host string
	// Path is :path; the query is ignored.
	Path string
	// Route is Envoy's route name (xds.route_name), if known.
	Route string
	// Origin is the origin header's value.
	Origin string
	// Origins is how many origin header lines there were. Zero with a
	// non-empty Origin counts as one.
	Origins int
	// RequestMethod is access-control-request-method; HasRequestMethod says
	// whether the header was present at all (an empty one is malformed).
	RequestMethod    string
	HasRequestMethod bool
	// RequestHeaders are the access-control-request-headers lines.
	RequestHeaders []string
	// PrivateNetwork is true when access-control-request-private-network is
	// "true".
	PrivateNetwork bool
	// Oversized is set by a caller that stopped reading a CORS request
	// header because it was larger than any browser sends: the request is
	// denied as malformed rather than judged on part of it.
	Oversized bool
	// Debug adds x-corsproc-decision and x-corsproc-reason headers, and lets
	// a preflight refused only for its method or headers answer with the
	// origin allowed, so that the browser names the exact cause.
	Debug bool
}

// Decision is the verdict on one request. It is a plain value: keep it for
// the response phase and call [Decision.Respond] there.
type Decision struct {
	// Policy is the matched policy's name, "" when none matched.
	Policy string
	// Mode is the matched policy's mode.
	Mode Mode
	// Class is the kind of request.
	Class Class
	// Outcome is allowed, denied or skipped.
	Outcome Outcome
	// Reason says why, as a stable code.
	Reason Reason
	// Detail is the item the reason is about (a header name, a method, an
	// origin), quoted in [Decision.Message]. Never reflected unsanitised.
	Detail string

	// Local is true when the request must be answered by corsproc with
	// Status and Headers and never forwarded (a preflight in enforce mode).
	Local bool
	// Status is the status of the local answer.
	Status int
	// SkipResponse is true when the response phase can change nothing, so
	// the response headers need not be sent to corsproc at all.
	SkipResponse bool

	c      *compiled
	origin string
	vary   bool   // merge "origin" into vary on the response
	echo   string // the names echoed for allow_headers "*" with credentials
	// headers[:n] are the decision's; headers[n] is Respond's, for the
	// merged vary line, so that an Edit refers to the decision's headers
	// instead of holding a copy of them.
	headers [maxHeaders + 1]Header
	n       int
}

const maxHeaders = 12

// Headers are the headers of the local answer when Local is true; otherwise
// the headers corsproc sets on the response when the service sets no CORS
// headers of its own (the full edit is [Decision.Respond]).
func (d *Decision) Headers() []Header { return d.headers[:d.n] }

// PolicyIndex is the matched policy's position in [Set.Policies] of the
// Set that decided, -1 when none matched, so that a caller can keep
// per-policy state in a slice instead of looking it up by name.
func (d *Decision) PolicyIndex() int {
	if d.c == nil {
		return -1
	}
	return d.c.index
}

func (d *Decision) add(name, value string) {
	d.headers[d.n] = Header{name, value}
	d.n++
}

// Upstream describes the CORS-relevant parts of the service's response
// headers, filled by the caller in one pass over them.
type Upstream struct {
	// AllowOrigin is the first access-control-allow-origin value;
	// AllowOrigins counts the lines.
	AllowOrigin  string
	AllowOrigins int
	// AllowCredentials is access-control-allow-credentials.
	AllowCredentials string
	// Vary holds the vary lines.
	Vary []string
	// CORSHeaders are the names of every access-control-* header present
	// that can be removed by name: lower-case tokens. A name with other
	// bytes is left out by the caller (Envoy refuses a mutation naming it).
	CORSHeaders []string
}

// Edit is what to do to the service's response headers: remove first, then
// set (overwriting). It is filled by [Decision.Respond], and the headers it
// sets are the decision's own: it holds how many, not a copy.
type Edit struct {
	// Remove names headers to delete.
	Remove []string
	// Mismatch is true in report mode when the service's own CORS answer
	// disagrees with the policy.
	Mismatch bool
	n        int // of d.headers to set
}

// Set returns the headers to set, each overwriting any line of that name.
// d is the decision whose Respond filled e; the headers hold until the
// next Respond on d.
func (e *Edit) Set(d *Decision) []Header { return d.headers[:e.n] }
