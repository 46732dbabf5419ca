package policy

// Actual CORS requests (docs/contract.md §3, "Actual CORS request" and "Every response
// of a policy in enforce"): the decision, then what the response phase does
// to the service's headers: replace or keep, vary merging, allow-all.

import "testing"

func decActualWant(outcome Outcome, reason Reason, headers ...string) decWant {
	return decWant{class: Actual, outcome: outcome, reason: reason, headers: headers}
}

func TestActualRequests(t *testing.T) {
	t.Parallel()
	creds := decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_credentials: true`,
		`expose_headers: [x-total-count, X-Request-Id]`)
	expose := decPolicy(`allowed_origins: ["https://app.example.com"]`, `expose_headers: [x-total-count]`)
	allowAll := decPolicy(`allow_all_origins: true`, `expose_headers: [x-total-count]`)
	allowAllPlain := decPolicy(`allow_all_origins: true`)
	twoOrigins := decActual("GET", decOrigin)
	twoOrigins.Origins = 2
	acao := "access-control-allow-origin: " + decOrigin
	decRun(t, []decCase{
		{
			name:   "an allowed origin gets its own origin back byte for byte and vary: origin",
			policy: decBasic, req: decActual("GET", decOrigin),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao, "vary: origin"),
		},
		{
			name:   "an allowed origin gets allow-credentials and the expose list when the policy has them",
			policy: creds, req: decActual("POST", decOrigin),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao, "vary: origin",
				"access-control-allow-credentials: true", "access-control-expose-headers: x-total-count, X-Request-Id"),
		},
		{
			name:   "an allowed origin gets the expose list without credentials",
			policy: expose, req: decActual("GET", decOrigin),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao, "vary: origin", "access-control-expose-headers: x-total-count"),
		},
		{
			name:   "the method of an actual request plays no part: a PURGE from an allowed origin is answered",
			policy: decBasic, req: decActual("PURGE", decOrigin),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao, "vary: origin"),
		},
		{
			name:   "an OPTIONS request without access-control-request-method is an actual request",
			policy: decBasic, req: decActual("OPTIONS", decOrigin),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao, "vary: origin"),
		},
		{
			name:   "a denied origin gets no access-control header, only vary: origin",
			policy: creds, req: decActual("GET", decEvil),
			want: decActualWant(Denied, ReasonOriginNotAllowed, "vary: origin"),
		},
		{
			name:   "an actual request with two origin lines is denied",
			policy: decBasic, req: twoOrigins,
			want: decActualWant(Denied, ReasonMultipleOrigins, "vary: origin"),
		},
		{
			name:   "allow-all without credentials answers * and the expose list, with no vary",
			policy: allowAll, req: decActual("GET", decEvil),
			want: decActualWant(Allowed, ReasonAllOriginsAllowed, "access-control-allow-origin: *", "access-control-expose-headers: x-total-count"),
		},
		{
			name:   "allow-all admits the null origin, answering *",
			policy: allowAllPlain, req: decActual("GET", "null"),
			want: decActualWant(Allowed, ReasonAllOriginsAllowed, "access-control-allow-origin: *"),
		},
		{
			name:   "allow-all never reflects an origin, even one with odd bytes",
			policy: allowAllPlain, req: decActual("GET", "https://a.example.com\r\nx: y"),
			want: decActualWant(Allowed, ReasonAllOriginsAllowed, "access-control-allow-origin: *"),
		},
		{
			name:   "allow-all without credentials leaves the service's vary alone",
			policy: allowAllPlain, req: decActual("GET", decOrigin), up: Upstream{Vary: []string{"accept-encoding"}},
			want: decActualWant(Allowed, ReasonAllOriginsAllowed, "access-control-allow-origin: *"),
		},
	})
}

func TestResponseVary(t *testing.T) {
	t.Parallel()
	acao := "access-control-allow-origin: " + decOrigin
	vary := func(lines ...string) Upstream { return Upstream{Vary: lines} }
	decRun(t, []decCase{
		{
			name:   "origin is appended to the service's vary",
			policy: decBasic, req: decActual("GET", decOrigin), up: vary("accept-encoding"),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao, "vary: accept-encoding, origin"),
		},
		{
			name:   "origin is appended once to several vary lines, which are merged",
			policy: decBasic, req: decActual("GET", decOrigin), up: vary("accept-encoding", "accept-language"),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao, "vary: accept-encoding, accept-language, origin"),
		},
		{
			name:   "a vary that already names origin is not touched",
			policy: decBasic, req: decActual("GET", decOrigin), up: vary("Accept-Encoding, Origin"),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao),
		},
		{
			name:   "a vary that names origin on a second line is not touched",
			policy: decBasic, req: decActual("GET", decOrigin), up: vary("accept-encoding", " origin "),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao),
		},
		{
			name:   "vary: * is left alone",
			policy: decBasic, req: decActual("GET", decOrigin), up: vary("*"),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao),
		},
		{
			name:   "vary: * among other tokens is left alone",
			policy: decBasic, req: decActual("GET", decOrigin), up: vary("accept, *"),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao),
		},
		{
			name:   "a vary token that merely contains origin does not count as origin",
			policy: decBasic, req: decActual("GET", decOrigin), up: vary("x-origin-hint"),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao, "vary: x-origin-hint, origin"),
		},
		{
			name:   "empty vary lines are dropped when merging",
			policy: decBasic, req: decActual("GET", decOrigin), up: vary("", "accept-encoding", " "),
			want: decActualWant(Allowed, ReasonOriginAllowed, acao, "vary: accept-encoding, origin"),
		},
		{
			name:   "a denied origin also has origin merged into vary",
			policy: decBasic, req: decActual("GET", decEvil), up: vary("accept-encoding"),
			want: decActualWant(Denied, ReasonOriginNotAllowed, "vary: accept-encoding, origin"),
		},
	})
}

func TestUpstreamCORSHeaders(t *testing.T) {
	t.Parallel()
	keep := decPolicy(`allowed_origins: ["https://app.example.com"]`, `upstream_cors_headers: keep`, `allow_credentials: true`)
	serviceCORS := Upstream{
		AllowOrigin: "*", AllowOrigins: 1, AllowCredentials: "true", Vary: []string{"accept-encoding"},
		CORSHeaders: []string{hdrAllowOrigin, hdrAllowCredentials, "access-control-max-age"},
	}
	serviceNoACAO := Upstream{AllowCredentials: "true", CORSHeaders: []string{hdrAllowCredentials, hdrExpose}}
	acao := "access-control-allow-origin: " + decOrigin
	decRun(t, []decCase{
		{
			name:   "replace removes every access-control header the service set before setting its own",
			policy: decBasic, req: decActual("GET", decOrigin), up: serviceCORS,
			want: decWant{class: Actual, outcome: Allowed, reason: ReasonOriginAllowed,
				headers: []string{acao, "vary: accept-encoding, origin"},
				remove:  []string{hdrAllowOrigin, hdrAllowCredentials, "access-control-max-age"}},
		},
		{
			name:   "replace removes the service's access-control headers from a denied origin's response",
			policy: decBasic, req: decActual("GET", decEvil), up: serviceCORS,
			want: decWant{class: Actual, outcome: Denied, reason: ReasonOriginNotAllowed,
				headers: []string{"vary: accept-encoding, origin"},
				remove:  []string{hdrAllowOrigin, hdrAllowCredentials, "access-control-max-age"}},
		},
		{
			name:   "keep leaves a response with the service's allow-origin exactly alone",
			policy: keep, req: decActual("GET", decOrigin), up: serviceCORS,
			want: decWant{class: Actual, outcome: Allowed, reason: ReasonOriginAllowed},
		},
		{
			name:   "keep leaves a response with the service's allow-origin alone even for a denied origin",
			policy: keep, req: decActual("GET", decEvil), up: serviceCORS,
			want: decWant{class: Actual, outcome: Denied, reason: ReasonOriginNotAllowed},
		},
		{
			name:   "keep leaves a response with two allow-origin lines alone: the service owns it",
			policy: keep, req: decActual("GET", decOrigin),
			up:   Upstream{AllowOrigin: decOrigin, AllowOrigins: 2, CORSHeaders: []string{hdrAllowOrigin, hdrAllowOrigin}},
			want: decWant{class: Actual, outcome: Allowed, reason: ReasonOriginAllowed},
		},
		{
			name:   "keep treats a response without the service's allow-origin as replace",
			policy: keep, req: decActual("GET", decOrigin), up: serviceNoACAO,
			want: decWant{class: Actual, outcome: Allowed, reason: ReasonOriginAllowed,
				headers: []string{acao, "access-control-allow-credentials: true", "vary: origin"},
				remove:  []string{hdrAllowCredentials, hdrExpose}},
		},
	})
}
