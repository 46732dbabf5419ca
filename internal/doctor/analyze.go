package doctor

import (
	"fmt"
	"slices"
	"strings"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

type analysis struct {
	opts      Options
	dump      *adminv3.ConfigDump
	findings  []Finding
	listeners []*listenerv3.Listener
	routes    map[string]*routev3.RouteConfiguration
	ecds      map[string]*anypb.Any

	corsprocs     int             // corsproc filters found
	without       []Where         // HTTP connection managers without corsproc
	others        []string        // targets of ext_proc filters that are not corsproc
	routeNames    map[string]bool // names of the routes corsproc's chains serve
	checkedRoutes bool
	re            regexps
}

func (a *analysis) add(sev Severity, check string, w Where, msg, why, fix string) {
	a.findings = append(a.findings, Finding{Severity: sev, Check: check, Where: w, Message: msg, Why: why, Fix: fix})
}

func (a *analysis) run() {
	a.routeNames = map[string]bool{}
	a.re = regexps{}
	a.index()
	for _, l := range a.listeners {
		a.listener(l)
	}
	a.checkPolicyRoutes()
	if a.corsprocs == 0 {
		msg := "no HTTP filter chain has corsproc's ext_proc filter"
		fix := "add the ext_proc filter pointing at corsproc's cluster as the first HTTP filter (docs/deploy.md)"
		if len(a.others) > 0 {
			msg += fmt.Sprintf("; ext_proc filters found for %s", strings.Join(a.others, ", "))
			fix += `; if one of them is corsproc under another cluster name, name it with --cluster`
		}
		if len(a.listeners) == 0 {
			msg = "the dump has no listeners"
			fix = "save the full output of Envoy's admin /config_dump (not a ?resource= or ?mask= subset)"
		}
		a.add(Error, "no-corsproc", Where{}, msg,
			"without corsproc nothing answers preflights or writes CORS headers: browsers block every cross-origin call", fix)
		return
	}
	for _, w := range a.without {
		a.add(Info, "listener-without-corsproc", w, "this HTTP filter chain has no corsproc filter",
			"requests on it get no CORS answers; fine for health, stats or admin listeners", "add corsproc's filter if browsers call this listener cross-origin")
	}
}

// hcm analyses one HTTP connection manager.
func (a *analysis) hcm(w Where, hcm *hcmv3.HttpConnectionManager) {
	chain := a.chain(w, hcm)
	var cps []*filter
	for _, f := range chain {
		if f.kind != kindExtProc {
			continue
		}
		ep, ok := a.corsprocConfig(f)
		if ok {
			cps = append(cps, f)
			continue
		}
		if ep != nil {
			if t := extProcTarget(ep); !slices.Contains(a.others, t) {
				a.others = append(a.others, t)
			}
		}
	}
	if len(cps) == 0 {
		a.without = append(a.without, w)
		return
	}
	a.corsprocs += len(cps)
	cp := cps[0]
	at := func(f *filter) Where {
		x := w
		x.Filter, x.FilterIndex = f.name, new(f.index)
		return x
	}
	if len(cps) > 1 {
		a.add(Warning, "corsproc-twice", at(cps[1]), fmt.Sprintf("corsproc's filter appears %d times in this chain", len(cps)),
			"each one opens its own ext_proc stream: twice the round trips, and the later one overwrites the earlier one's headers",
			"keep one corsproc filter, the first in http_filters")
	}
	a.checkOrder(w, at, chain, cp)
	for _, f := range cps {
		ep, _ := a.corsprocConfig(f)
		a.checkExtProc(at(f), f, ep)
	}
	a.checkGate(at(cp), cp)
	a.checkRoutes(w, hcm, chain, cp)
}

// checkOrder finds filters that can answer a request before corsproc has
// seen it.
func (a *analysis) checkOrder(w Where, at func(*filter) Where, chain []*filter, cp *filter) {
	for _, f := range chain {
		if f.index >= cp.index {
			break
		}
		// Delegates count too: an authentication filter behind a matcher
		// still answers the requests the matcher hands it.
		switch f.kind {
		case kindAuthn, kindAuthz:
			rej, passes := rejects(f)
			if !rej {
				continue
			}
			if passes {
				a.add(Warning, "auth-before-corsproc", at(f),
					fmt.Sprintf("%s runs before corsproc (http_filters[%d]); it lets preflights through (bypass_cors_preflight), but not its 401s", short(f), cp.index),
					"its 401 is a local reply that corsproc never saw the request of: it carries no CORS headers, so the page cannot read why it was refused (envoy-filter-chain.md A)",
					a.moveFirst(cp, f))
				continue
			}
			a.add(Error, "auth-before-corsproc", at(f),
				fmt.Sprintf("%s runs before corsproc (http_filters[%d])", short(f), cp.index),
				"a preflight carries no credentials: this filter answers it 401/403 before corsproc sees it, and the browser reports a CORS error; its refusals also carry no CORS headers (envoy-filter-chain.md A)",
				a.moveFirst(cp, f))
		case kindRateLimit:
			a.add(Warning, "ratelimit-before-corsproc", at(f),
				fmt.Sprintf("%s runs before corsproc (http_filters[%d])", short(f), cp.index),
				"its 429 is a local reply corsproc never saw the request of: it carries no CORS headers, so the page cannot tell a rate limit from a network error; preflights also count against the limit",
				a.moveFirst(cp, f))
		case kindUnknown:
			a.add(Warning, "unknown-filter-before-corsproc", at(f),
				fmt.Sprintf("a filter of unknown type %s runs before corsproc (http_filters[%d])", cmpOr(f.typ, "(none)"), cp.index),
				"doctor cannot tell whether it answers requests itself; if it does, preflights and its refusals get no CORS answer",
				a.moveFirst(cp, f)+", or check what this filter does")
		}
	}
}

// checkGate judges the matcher a composite filter puts around corsproc.
func (a *analysis) checkGate(w Where, cp *filter) {
	if cp.gate == nil || cp.gate.onOriginOnly() {
		return
	}
	a.add(Warning, "corsproc-gated", w,
		fmt.Sprintf("corsproc runs only when a matcher on %s says so", cp.gate),
		"requests the matcher turns away are never shown to corsproc: a preflight or CORS request among them gets no answer, or the service's own",
		`match on the origin header alone, with a regex matching any value (".*"): an absent header is no match (envoy-filter-chain.md E.2)`)
}

// checkExtProc judges corsproc's ExternalProcessor settings.
func (a *analysis) checkExtProc(w Where, f *filter, ep *extprocv3.ExternalProcessor) {
	pm := ep.GetProcessingMode()
	if pm.GetRequestHeaderMode() == extprocv3.ProcessingMode_SKIP {
		a.add(Error, "request-headers-skipped", w, "processing_mode.request_header_mode is SKIP",
			"corsproc never sees requests: it cannot answer preflights nor know the origin of a response",
			"set request_header_mode: SEND (Envoy Gateway: processingMode.request: {})")
	}
	if pm.GetResponseHeaderMode() == extprocv3.ProcessingMode_SKIP {
		a.add(Error, "response-headers-skipped", w, "processing_mode.response_header_mode is SKIP",
			"corsproc cannot write CORS headers on actual responses: browsers block every cross-origin read",
			"set response_header_mode: SEND (Envoy Gateway: processingMode.response: {}) with allow_mode_override, which lets corsproc skip it per request")
	}
	if pm.GetRequestBodyMode() != extprocv3.ProcessingMode_NONE || pm.GetResponseBodyMode() != extprocv3.ProcessingMode_NONE {
		a.add(Warning, "bodies-sent", w, fmt.Sprintf("bodies are sent to corsproc (request %s, response %s)", pm.GetRequestBodyMode(), pm.GetResponseBodyMode()),
			"corsproc reads headers only: every body costs round trips (and buffering) for nothing",
			"set request_body_mode and response_body_mode to NONE")
	}
	if pm.GetRequestTrailerMode() == extprocv3.ProcessingMode_SEND || pm.GetResponseTrailerMode() == extprocv3.ProcessingMode_SEND {
		a.add(Warning, "trailers-sent", w, "trailers are sent to corsproc",
			"corsproc reads headers only: each trailer message is a round trip for nothing",
			"set request_trailer_mode and response_trailer_mode to SKIP")
	}
	if !ep.GetAllowModeOverride() {
		a.add(Warning, "no-mode-override", w, "allow_mode_override is false",
			"corsproc asks to skip the response phase when it would change nothing (no policy, no origin, mode off); without the override every such request costs a second round trip",
			"set allow_mode_override: true (Envoy Gateway: processingMode.allowModeOverride: true)")
	}
	if ep.GetObservabilityMode() {
		a.add(Error, "observability-mode", w, "observability_mode is true",
			"Envoy ignores every reply in observability mode: no preflight answers, no CORS headers (envoy-filter-chain.md G)",
			"set observability_mode: false; for a dry run use a policy with mode: report instead")
	}
	if ep.GetDisableImmediateResponse() {
		a.add(Error, "immediate-response-disabled", w, "disable_immediate_response is true",
			"corsproc answers preflights with an immediate response; Envoy ignores it and the preflight goes to the service",
			"set disable_immediate_response: false")
	}
	if ep.GetMessageTimeout() == nil {
		a.add(Info, "no-message-timeout", w, "message_timeout is not set: Envoy's default of 200 ms applies",
			"a choice left implicit; corsproc answers in microseconds, so the default is fine unless the network to it is slow",
			"write message_timeout: 0.2s (Envoy Gateway: messageTimeout) to make it a choice")
	}
	if !ep.GetFailureModeAllow() {
		a.add(Warning, "fails-closed", w, "failure_mode_allow is false (the default)",
			"if corsproc is down or slower than message_timeout, Envoy answers 500 (504) to every request on this chain, CORS or not; failing open is safe for CORS: responses then carry no CORS headers and browsers block cross-origin reads",
			"set failure_mode_allow: true (Envoy Gateway: failOpen: true), unless failing closed is deliberate")
	}
	a.checkForwardRules(w, ep)
	a.checkMutationRules(w, ep)
	if a.opts.Policy != nil && !slices.Contains(ep.GetRequestAttributes(), "xds.route_name") {
		if names := routePolicies(a.opts.Policy); len(names) > 0 {
			a.add(Error, "no-route-attribute", w,
				fmt.Sprintf("request_attributes lacks xds.route_name, and policies %s match by route", strings.Join(names, ", ")),
				"Envoy sends the route name only when asked: those policies never match, so their requests get no CORS answer",
				`add request_attributes: ["xds.route_name"] (Envoy Gateway: processingMode.request.attributes)`)
		}
	}
}

// needRequest are the request headers corsproc reads (extproc/headers.go
// readRequest); needResponse, the response headers (readUpstream).
var (
	needRequest  = []string{"origin", ":method", ":authority", ":path", "access-control-request-method", "access-control-request-headers", "access-control-request-private-network"}
	needResponse = []string{"vary", "access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods", "access-control-allow-headers", "access-control-expose-headers", "access-control-max-age"}
)

func (a *analysis) checkForwardRules(w Where, ep *extprocv3.ExternalProcessor) {
	fr := ep.GetForwardRules()
	if fr == nil {
		a.add(Info, "forwards-all-headers", w, "no forward_rules: every request and response header goes to corsproc, cookie and authorization included",
			"corsproc reads seven request headers; the rest is bytes on every round trip and credentials on a wire they need not cross",
			"add forward_rules.allowed_headers listing "+strings.Join(needRequest, ", ")+", vary and access-control-* (envoy-filter-chain.md D)")
		return
	}
	forwarded := func(h string) bool {
		if l := fr.GetDisallowedHeaders(); l != nil && a.re.matchList(l, h) {
			return false
		}
		if l := fr.GetAllowedHeaders(); l != nil && len(l.GetPatterns()) > 0 && !a.re.matchList(l, h) {
			return false
		}
		return true
	}
	var droppedReq, droppedResp []string
	for _, h := range needRequest {
		if !forwarded(h) {
			droppedReq = append(droppedReq, h)
		}
	}
	for _, h := range needResponse {
		if !forwarded(h) {
			droppedResp = append(droppedResp, h)
		}
	}
	if len(droppedReq) > 0 {
		a.add(Error, "forward-rules-drop-request", w, "forward_rules keep corsproc from seeing "+strings.Join(droppedReq, ", "),
			"corsproc decides from these: without origin every request looks same-origin, without :method no preflight is recognised, without :authority or :path no host or path policy matches (pseudo-headers are filtered too, envoy-filter-chain.md D)",
			"allow "+strings.Join(droppedReq, ", ")+" in forward_rules.allowed_headers, and keep them out of disallowed_headers")
	}
	if len(droppedResp) > 0 {
		a.add(Warning, "forward-rules-drop-response", w, "forward_rules keep corsproc from seeing the response's "+strings.Join(droppedResp, ", "),
			"corsproc merges its vary into the service's and removes the service's own access-control-* headers; unseen, a service's vary is overwritten and its CORS headers stay beside corsproc's",
			"allow vary and access-control-* in forward_rules.allowed_headers")
	}
	if fr.GetAllowedHeaders() == nil || len(fr.GetAllowedHeaders().GetPatterns()) == 0 {
		for _, h := range []string{"cookie", "authorization"} {
			if forwarded(h) {
				a.add(Info, "forwards-credentials", w, "forward_rules let "+h+" through to corsproc",
					"corsproc never reads it; credentials cross a wire they need not",
					"list the headers corsproc reads in forward_rules.allowed_headers instead of disallowing a few")
				break
			}
		}
	}
}

// corsprocWrites are the headers corsproc sets or removes. :status is not
// among them: corsproc sets a preflight's status in the ImmediateResponse's
// status field, which Envoy does not pass through the mutation rules.
var corsprocWrites = []string{
	"access-control-allow-origin", "access-control-allow-credentials", "access-control-allow-methods",
	"access-control-allow-headers", "access-control-max-age", "access-control-allow-private-network",
	"access-control-expose-headers", "vary", "content-length",
}

func (a *analysis) checkMutationRules(w Where, ep *extprocv3.ExternalProcessor) {
	mr := ep.GetMutationRules()
	if mr == nil {
		return
	}
	var blocked []string
	for _, h := range corsprocWrites {
		if !a.re.mutationAllowed(mr, h) {
			blocked = append(blocked, h)
		}
	}
	debugBlocked := !a.re.mutationAllowed(mr, "x-corsproc-decision") || !a.re.mutationAllowed(mr, "x-corsproc-reason")
	if len(blocked) > 0 {
		what := "dropped, and counted in rejected_header_mutations"
		if mr.GetDisallowIsError().GetValue() {
			what = "an error: with disallow_is_error Envoy answers 500"
		}
		a.add(Error, "mutation-rules-block", w, "mutation_rules forbid corsproc to set "+strings.Join(blocked, ", "),
			"each such header corsproc writes is "+what+" (envoy-filter-chain.md D): preflight answers and responses lose their CORS headers",
			"allow them: e.g. allow_expression: \"^(access-control-.*|vary|content-length|x-corsproc-.*)$\", or drop the disallow rule that catches them")
	}
	if debugBlocked && len(blocked) == 0 {
		a.add(Info, "mutation-rules-block-debug", w, "mutation_rules forbid the x-corsproc-* debug headers",
			"only serve --debug-headers writes them; nothing else changes",
			"allow x-corsproc-.* if you use --debug-headers")
	}
}

// short names a filter by its kind ("jwt_authn"), from its type or, for an
// unknown type, its name.
func short(f *filter) string {
	for _, k := range filterKinds {
		if k.name != "" && (f.typ == k.typ || f.typ == "" && strings.HasPrefix(f.name, k.name)) {
			return strings.TrimPrefix(k.name, "envoy.filters.http.")
		}
	}
	return f.name
}

// moveFirst says how to put corsproc before f on the control plane that
// made the chain, told by Envoy Gateway's and Istio's naming.
func (a *analysis) moveFirst(cp, f *filter) string {
	ep, _ := a.corsprocConfig(cp)
	target := "envoy.filters.http." + short(f)
	switch {
	case strings.Contains(cp.outer, "/envoyextensionpolicy/"):
		return fmt.Sprintf("Envoy Gateway: in the EnvoyProxy of the GatewayClass, filterOrder: [{name: envoy.filters.http.ext_proc, before: %s}] (one entry per filter to pass, latest first; envoy-filter-chain.md B)", target)
	case strings.HasPrefix(extProcTarget(ep), "outbound|"):
		return "Istio: patch the EnvoyFilter with operation INSERT_FIRST (INSERT_BEFORE a named filter inserts nothing when that filter is absent; envoy-filter-chain.md C)"
	}
	return "put corsproc's filter first in http_filters"
}

// checkPolicyRoutes finds policy route names no route of a corsproc chain
// has: a typo, or a route renamed since.
func (a *analysis) checkPolicyRoutes() {
	if a.opts.Policy == nil || !a.checkedRoutes {
		return
	}
	for _, p := range a.opts.Policy.Policies() {
		if p.Match == nil {
			continue
		}
		var missing []string
		for _, r := range p.Match.Routes {
			if !a.routeNames[r] {
				missing = append(missing, r)
			}
		}
		if len(missing) > 0 {
			a.add(Warning, "policy-route-not-found", Where{}, fmt.Sprintf("policy %q matches routes %s, which no route behind corsproc is named", p.Name, list(missing)),
				"that part of the policy never matches: its requests get no CORS answer from it",
				"use the route names Envoy has (Envoy Gateway: httproute/<ns>/<name>/rule/<i>/match/<j>/<host>; Istio: the VirtualService http route name)")
		}
	}
}
