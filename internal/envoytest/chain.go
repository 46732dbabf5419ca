package envoytest

import (
	"net/http"
	"strings"
	"sync/atomic"
)

// Filter is an HTTP filter of the chain other than ext_proc and the router:
// one that may answer a request locally, as jwt_authn (401), ext_authz and
// rbac (403), basic_auth and oauth2 (401) and local_ratelimit (429) do with
// sendLocalReply (envoy-filter-chain.md §A). Place it with
// [Config.Before] or [Config.After].
type Filter struct {
	// Name is the filter's name, e.g. "envoy.filters.http.jwt_authn".
	Name string
	// Reject sees the request headers as they reach the filter (after
	// ext_proc's changes when the filter comes after it) and returns the
	// local reply to send, or nil to let the request on. It is called from
	// the request's goroutine and must be safe for concurrent use.
	Reject func(RequestHeaders) *LocalReply
}

// LocalReply is a filter's sendLocalReply: Envoy writes :status,
// content-length and content-type text/plain for the body, the route's
// response_headers_to_add, then Headers, and runs the encoder chain.
type LocalReply struct {
	Status  int
	Body    string
	Details string // response code details, e.g. "jwt_authn_access_denied{Jwt_is_missing}"
	// Headers are set on the reply after the route's headers, each
	// overwriting, e.g. www-authenticate.
	Headers [][2]string
}

// RequestHeaders is a read-only view of a request's headers as a filter
// sees them: lower-case names, pseudo-headers (:method, :path,
// :authority, :scheme) included.
type RequestHeaders struct{ m *headerMap }

// Get returns the first value of name (lower case) and whether it is
// there.
func (r RequestHeaders) Get(name string) (string, bool) { return r.m.get(name) }

// JWTAuthn is a jwt_authn filter that requires "authorization: Bearer T"
// with T one of tokens, and answers as jwt_authn does: 401 "Jwt is missing"
// without a token, 401 "Jwt verification fails" with an unknown one, each
// with a www-authenticate challenge. It has no bypass_cors_preflight: a
// preflight, which carries no credentials, is refused like any request.
func JWTAuthn(tokens ...string) Filter {
	valid := append([]string(nil), tokens...)
	return Filter{Name: "envoy.filters.http.jwt_authn", Reject: func(h RequestHeaders) *LocalReply {
		authority, _ := h.Get(":authority")
		path, _ := h.Get(":path")
		realm := `Bearer realm="http://` + authority + path + `"`
		auth, ok := h.Get("authorization")
		if !ok {
			return &LocalReply{Status: http.StatusUnauthorized, Body: "Jwt is missing",
				Details: "jwt_authn_access_denied{Jwt_is_missing}", Headers: [][2]string{{"www-authenticate", realm}}}
		}
		token, isBearer := strings.CutPrefix(auth, "Bearer ")
		for _, v := range valid {
			if isBearer && token == v {
				return nil
			}
		}
		return &LocalReply{Status: http.StatusUnauthorized, Body: "Jwt verification fails",
			Details: "jwt_authn_access_denied{Jwt_verification_fails}",
			Headers: [][2]string{{"www-authenticate", realm + `, error="invalid_token"`}}}
	}}
}

// RBAC is an rbac filter that lets a request on only when allow says so,
// and otherwise answers 403 "RBAC: access denied" as Envoy does.
func RBAC(allow func(RequestHeaders) bool) Filter {
	return Filter{Name: "envoy.filters.http.rbac", Reject: func(h RequestHeaders) *LocalReply {
		if allow(h) {
			return nil
		}
		return &LocalReply{Status: http.StatusForbidden, Body: "RBAC: access denied",
			Details: "rbac_access_denied_matched_policy[none]"}
	}}
}

// LocalRateLimit is a local_ratelimit filter with a bucket of n tokens that
// never refills: the first n requests that reach it pass, every later one
// gets 429 "local_rate_limited", as Envoy answers.
func LocalRateLimit(n int64) Filter {
	var used atomic.Int64
	return Filter{Name: "envoy.filters.http.local_ratelimit", Reject: func(RequestHeaders) *LocalReply {
		if used.Add(1) <= n {
			return nil
		}
		return &LocalReply{Status: http.StatusTooManyRequests, Body: "local_rate_limited",
			Details: "local_rate_limited"}
	}}
}
