package browsertest

import (
	"fmt"
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
// the service; corsproc only judges and counts (its metrics show it did).
func TestReportMode(t *testing.T) {
	runCases(t, []browserCase{
		{name: "policy allows, service has no CORS: blocked, as without corsproc", policy: reportPolicy,
			want: want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"GET /v1/items"},
				metrics: []string{judged("actual", "allowed", 1), mismatches(1)}}},
		{name: "policy denies, service allows: readable, as without corsproc", policy: reportPolicy, services: ownCORS, page: "{admin}",
			want: want{reached: []string{"GET /v1/items"},
				metrics: []string{judged("actual", "denied", 1), mismatches(1)}}},
		{name: "policy allows, service allows another origin: mismatch, as without corsproc", policy: reportPolicy, services: ownCORS,
			want: want{cors: network.CorsErrorAllowOriginMismatch, reached: []string{"GET /v1/items"},
				metrics: []string{judged("actual", "allowed", 1), mismatches(1)}}},
		{name: "policy and service agree: no mismatch counted", policy: reportPolicy, page: "{admin}",
			want: want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"GET /v1/items"},
				metrics: []string{judged("actual", "denied", 1), mismatches(0)}}},
		{name: "preflight reaches the service, which allows it", policy: reportPolicy, services: ownCORS, page: "{admin}",
			fetch: `fetch("{api}/v1/items/7", {method: "PUT", headers: {"x-custom": "c"}})`,
			want: want{reached: []string{"OPTIONS /v1/items/7", "PUT /v1/items/7"},
				metrics: []string{judged("preflight", "denied", 1), judged("actual", "denied", 1), mismatches(2)}}},
		{name: "preflight reaches the service, which has no CORS: blocked though the policy allows", policy: reportPolicy,
			fetch: `fetch("{api}/v1/items/7", {method: "PUT", headers: {"x-custom": "c"}})`,
			want: want{cors: network.CorsErrorPreflightMissingAllowOriginHeader, reached: []string{"OPTIONS /v1/items/7"},
				metrics: []string{judged("preflight", "allowed", 1), mismatches(1)}}},
	})
}

// judged is corsproc's requests_total line for policy "api".
func judged(class, decision string, n int) string {
	return fmt.Sprintf(`corsproc_requests_total{class=%q,decision=%q,policy="api"} %d`, class, decision, n)
}

// mismatches is corsproc's report_mismatches_total line for policy "api".
func mismatches(n int) string {
	return fmt.Sprintf(`corsproc_report_mismatches_total{policy="api"} %d`, n)
}
