package browsertest

import (
	"testing"

	"github.com/chromedp/cdproto/network"
)

const wildcardPolicy = `
policies:
  - name: api
    allowed_origins: ["http://*.example.test:*"]
`

const regexPolicy = `
policies:
  - name: api
    allowed_origin_regexes: ['http://pr-[0-9]+\.preview\.example\.test:[0-9]+', 'http://app\.example\.test(:[0-9]+)?']
`

const nullPolicy = `
policies:
  - name: api
    allowed_origins: ["{app}", "null"]
`

// Origin matching as a browser exercises it: wildcard subdomains, anchored
// regexes, look-alike hosts, and the opaque origin null.
func TestOrigins(t *testing.T) {
	runCases(t, []browserCase{
		{name: "wildcard: a subdomain is allowed", policy: wildcardPolicy, page: "{admin}",
			want: want{reached: []string{"GET /v1/items"}, origin: "{admin}"}},
		{name: "wildcard: several labels deep is allowed", policy: wildcardPolicy, page: "{deep}",
			want: want{reached: []string{"GET /v1/items"}}},
		{name: "wildcard: the look-alike app.example.test.evil.test is blocked", policy: wildcardPolicy, page: "{evil}",
			want: want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"GET /v1/items"}}},
		{name: "wildcard: a preflight from the look-alike is refused", policy: wildcardPolicy, page: "{evil}", fetch: putJSON,
			want: want{cors: network.CorsErrorPreflightMissingAllowOriginHeader, local: 1}},
		{name: "regex: a preview origin is allowed", policy: regexPolicy, page: "{preview}",
			want: want{reached: []string{"GET /v1/items"}}},
		{name: "regex: the exact app origin is allowed", policy: regexPolicy,
			want: want{reached: []string{"GET /v1/items"}}},
		{name: "regex: anchored, so the look-alike is blocked", policy: regexPolicy, page: "{evil}",
			want: want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"GET /v1/items"}}},
		{name: "regex: anchored at the start too (evilapp.example.test.evil.test)", policy: regexPolicy, page: "{evil2}",
			want: want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"GET /v1/items"}}},
		{name: "exact origin: no prefix match for the look-alike", policy: allowApp, page: "{evil}", fetch: putJSON,
			want: want{cors: network.CorsErrorPreflightMissingAllowOriginHeader, local: 1}},
		{name: "null from a sandboxed iframe is blocked unless listed", policy: allowApp, sandboxed: true,
			want: want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"GET /v1/items"}, origin: "null"}},
		{name: "null from a sandboxed iframe is allowed when listed", policy: nullPolicy, sandboxed: true,
			want: want{body: `"method":"GET"`, reached: []string{"GET /v1/items"}, origin: "null"}},
		{name: "null: a preflighted PUT from a sandboxed iframe passes when listed", policy: nullPolicy, sandboxed: true, fetch: `fetch("{api}/v1/items/7", {method: "PUT", headers: {"content-type": "application/json"}, body: "{}"})`,
			want: want{reached: []string{"PUT /v1/items/7"}, local: 1, origin: "null"}},
		{name: "null: a preflighted PUT from a sandboxed iframe is refused when not listed", policy: allowApp, sandboxed: true, fetch: `fetch("{api}/v1/items/7", {method: "PUT", headers: {"content-type": "application/json"}, body: "{}"})`,
			want: want{cors: network.CorsErrorPreflightMissingAllowOriginHeader, local: 1}},
	})
}
