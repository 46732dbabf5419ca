package policy

import "strconv"

// Reason is a stable, machine-readable code for a decision, used as a
// metrics label and in logs. [Decision.Message] turns it into a sentence.
type Reason uint8

// The reasons. Their String values are the stable codes. The denials come
// last, from ReasonOriginNotAllowed on: [Reason.Denial] relies on it.
const (
	ReasonNoPolicy          Reason = iota // no policy matched
	ReasonPolicyOff                       // the policy's mode is off
	ReasonNoOrigin                        // the request has no origin header
	ReasonOriginAllowed                   // the origin is allowed
	ReasonAllOriginsAllowed               // allow_all_origins
	ReasonOriginNotAllowed                // the origin matches no rule
	ReasonOriginTooLong                   // longer than MaxOriginLength
	ReasonOriginInvalid                   // bytes or a shape no browser sends
	ReasonMultipleOrigins                 // more than one origin line
	ReasonMethodInvalid                   // empty or not a token
	ReasonMethodNotAllowed                // not in allow_methods
	ReasonHeaderInvalid                   // a requested header name is not a token
	ReasonHeaderNotAllowed                // a requested header is not in allow_headers
	ReasonRequestTooLarge                 // a CORS request header is larger than the caller reads
)

var reasonCodes = [...]string{
	ReasonNoPolicy:          "no_policy",
	ReasonPolicyOff:         "policy_off",
	ReasonNoOrigin:          "no_origin",
	ReasonOriginAllowed:     "origin_allowed",
	ReasonAllOriginsAllowed: "all_origins_allowed",
	ReasonOriginNotAllowed:  "origin_not_allowed",
	ReasonOriginTooLong:     "origin_too_long",
	ReasonOriginInvalid:     "origin_invalid",
	ReasonMultipleOrigins:   "multiple_origins",
	ReasonMethodInvalid:     "method_invalid",
	ReasonMethodNotAllowed:  "method_not_allowed",
	ReasonHeaderInvalid:     "header_invalid",
	ReasonHeaderNotAllowed:  "header_not_allowed",
	ReasonRequestTooLarge:   "request_too_large",
}

// String returns the stable code, e.g. "header_not_allowed".
func (r Reason) String() string { return reasonCodes[r] }

// Denial reports whether the reason comes with a denied outcome: the
// reasons corsproc_denials_total counts.
func (r Reason) Denial() bool { return r >= ReasonOriginNotAllowed }

// Reasons lists every reason, for pre-creating metric series.
func Reasons() []Reason {
	rs := make([]Reason, len(reasonCodes))
	for i := range rs {
		rs[i] = Reason(i)
	}
	return rs
}

// MaxOriginLength is the longest origin corsproc will look at; longer ones
// are denied without running any pattern.
const MaxOriginLength = 2048

// Message is the reason as a sentence a web developer understands, e.g.
// `header "x-api-key" is not in allow_headers`. It allocates; call it for
// logs, explain and debug headers, not on every request.
func (d *Decision) Message() string {
	q := strconv.Quote(d.Detail) // quoting keeps odd bytes visible and inert
	switch d.Reason {
	case ReasonNoPolicy:
		return "no policy matches this host, path and route; the request is not touched"
	case ReasonPolicyOff:
		return "policy " + strconv.Quote(d.Policy) + " is off; the request is not touched"
	case ReasonNoOrigin:
		return "the request has no origin header, so CORS does not apply"
	case ReasonOriginAllowed:
		return "origin " + q + " is allowed"
	case ReasonAllOriginsAllowed:
		return "allow_all_origins admits every origin"
	case ReasonOriginNotAllowed:
		return "origin " + q + " matches nothing in allowed_origins or allowed_origin_regexes"
	case ReasonOriginTooLong:
		return "the origin is longer than " + strconv.Itoa(MaxOriginLength) + " bytes; no browser sends that"
	case ReasonOriginInvalid:
		if visibleASCII(d.Detail) && d.Detail != "*" {
			return "origin " + q + " is not a serialized origin (scheme://host[:port], lower case, a port from 1 to 65535, no path): no browser sends it, and no pattern is tried on it"
		}
		return "origin " + q + " has bytes no browser sends in an origin"
	case ReasonMultipleOrigins:
		return "the request has more than one origin header"
	case ReasonMethodInvalid:
		return "access-control-request-method " + q + " is not a valid method token"
	case ReasonMethodNotAllowed:
		if forbiddenMethod(d.Detail) {
			return "method " + q + " is never allowed, not even by allow_methods [\"*\"]: it is a forbidden method, which no browser sends"
		}
		return "method " + q + " is not in allow_methods (methods compare case-sensitively)"
	case ReasonHeaderInvalid:
		if d.Detail == "" {
			return "access-control-request-headers has more than " + strconv.Itoa(maxEmptyElements) + " empty elements; browsers send none"
		}
		return "access-control-request-headers has " + q + ", which is not a valid header name"
	case ReasonRequestTooLarge:
		if d.Detail == hdrRequestHeaders {
			return "the header names access-control-request-headers asks for come to more than " + strconv.Itoa(MaxEchoBytes) + " bytes, each named once; allow_headers \"*\" with credentials echoes them, and no browser asks for that many"
		}
		return "a CORS request header is larger than corsproc reads; no browser sends that"
	case ReasonHeaderNotAllowed:
		if d.Detail == "authorization" {
			return `header "authorization" is not in allow_headers ("*" never covers authorization; list it by name)`
		}
		return "header " + q + " is not in allow_headers"
	}
	return d.Reason.String()
}
