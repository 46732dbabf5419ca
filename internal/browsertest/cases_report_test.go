package browsertest

import (
	"testing"

	"github.com/chromedp/cdproto/network"
)

const reportPolicy = `
policies:
  - name: api
    mode: report
    allowed_origins: ["{app}"]
    allow_headers: [content-type, x-custom]
`

// ownCORS is a service that answers CORS itself (preflights included) for
// the admin origin only.
var ownCORS = []service{{Name: "api", Headers: []string{
	"access-control-allow-origin: {admin}",
	"access-control-allow-methods: PUT",
	"access-control-allow-headers: x-custom",
}}}

// report mode changes nothing: whatever the policy says, the browser's
// outcome is exactly what the service itself answers, and preflights reach
// the service.
func TestReportMode(t *testing.T) {
	runCases(t, []browserCase{
		{name: "policy allows, service has no CORS: blocked, as without corsproc", policy: reportPolicy,
			want: want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"GET /v1/items"}}},
		{name: "policy denies, service allows: readable, as without corsproc", policy: reportPolicy, services: ownCORS, page: "{admin}",
			want: want{reached: []string{"GET /v1/items"}}},
		{name: "policy allows, service allows another origin: mismatch, as without corsproc", policy: reportPolicy, services: ownCORS,
			want: want{cors: network.CorsErrorAllowOriginMismatch, reached: []string{"GET /v1/items"}}},
		{name: "preflight reaches the service, which allows it", policy: reportPolicy, services: ownCORS, page: "{admin}",
			fetch: `fetch("{api}/v1/items/7", {method: "PUT", headers: {"x-custom": "c"}})`,
			want:  want{reached: []string{"OPTIONS /v1/items/7", "PUT /v1/items/7"}}},
		{name: "preflight reaches the service, which has no CORS: blocked though the policy allows", policy: reportPolicy,
			fetch: `fetch("{api}/v1/items/7", {method: "PUT", headers: {"x-custom": "c"}})`,
			want:  want{cors: network.CorsErrorPreflightMissingAllowOriginHeader, reached: []string{"OPTIONS /v1/items/7"}}},
	})
}
