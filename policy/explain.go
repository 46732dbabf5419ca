package policy

// Explanation is a decision laid out for people and scripts: what
// `corsproc explain` prints and the admin /explain endpoint returns.
type Explanation struct {
	// Policy is the matched policy, "" when none matched.
	Policy string `json:"policy"`
	// Mode is the matched policy's mode, "" when none matched.
	Mode string `json:"mode,omitempty"`
	// Class is preflight, actual, no_origin or unmatched.
	Class string `json:"class"`
	// Decision is allowed, denied or skipped.
	Decision string `json:"decision"`
	// Reason is the stable code; Message the sentence.
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Forwarded is false when corsproc answers the request itself.
	Forwarded bool `json:"forwarded"`
	// Status is the status of corsproc's own answer (0 when forwarded).
	Status int `json:"status,omitempty"`
	// Headers are the headers of corsproc's answer, or those it sets on the
	// service's response when the service sets no CORS headers itself.
	Headers []Header `json:"headers"`
	// RemovesUpstreamCORS is true when every access-control-* header the
	// service sets is removed from its response first.
	RemovesUpstreamCORS bool `json:"removes_upstream_cors"`
	// KeepsUpstreamCORS is true under upstream_cors_headers: keep: a
	// response on which the service sets access-control-allow-origin is
	// left exactly as the service sent it.
	KeepsUpstreamCORS bool `json:"keeps_upstream_cors,omitempty"`
	// ResponsePhase is false when the response headers need not reach
	// corsproc at all (mode_override SKIP).
	ResponsePhase bool `json:"response_phase"`
}

// Explain decides r and lays the decision out, as if the service answered
// without CORS headers of its own.
func (s *Set) Explain(r *Request) Explanation {
	d := s.Decide(r)
	x := Explanation{
		Policy:        d.Policy,
		Class:         d.Class.String(),
		Decision:      d.Outcome.String(),
		Reason:        d.Reason.String(),
		Message:       d.Message(),
		Forwarded:     !d.Local,
		Status:        d.Status,
		Headers:       []Header{},
		ResponsePhase: !d.SkipResponse,
	}
	if d.c != nil {
		x.Mode = d.Mode.String()
	}
	if d.Local {
		x.Headers = append(x.Headers, d.Headers()...)
		return x
	}
	var e Edit
	d.Respond(&Upstream{}, &e)
	x.Headers = append(x.Headers, e.Set()...)
	x.RemovesUpstreamCORS = d.c != nil && d.Mode == Enforce
	x.KeepsUpstreamCORS = x.RemovesUpstreamCORS && d.c.keep
	return x
}
