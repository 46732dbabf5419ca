package browsertest

import (
	"testing"

	"github.com/chromedp/cdproto/network"
)

const allowAdmin = `
policies:
  - name: api
    allowed_origins: ["{admin}"]
`

// putOnly allows PUT only (and the always-allowed GET, HEAD, POST), with
// browsers allowed to cache the preflight for two hours.
const putOnly = `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_methods: [PUT]
    allow_headers: [x-custom]
    preflight_max_age: 7200
`

const deleteOnly = `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_methods: [DELETE]
    allow_headers: [x-custom]
    preflight_max_age: 7200
`

const putWithCustom = `fetch("{api}/v1/items/7", {method: "PUT", headers: {"x-custom": "c"}})`

// Hot reload: the policy file is replaced (renamed over, as a ConfigMap
// update does) between two fetches in the same tab; corsproc's own watcher
// reloads it and the browser's outcome changes. A file that does not load
// changes nothing.
func TestHotReload(t *testing.T) {
	runCases(t, []browserCase{
		{
			name:   "a denied origin becomes allowed",
			policy: allowAdmin,
			want:   want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"GET /v1/items"}},
			then: []step{{
				reload: allowApp,
				want:   want{reached: []string{"GET /v1/items"}},
			}},
		},
		{
			name:   "an allowed origin becomes denied",
			policy: allowApp,
			want:   want{reached: []string{"GET /v1/items"}},
			then: []step{{
				reload: allowAdmin,
				want:   want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"GET /v1/items"}},
			}},
		},
		{
			// The browser may cache a preflight for max-age seconds; this
			// suite disables the cache, as DevTools does, so each fetch asks.
			name:   "a preflighted method is withdrawn",
			policy: putOnly,
			fetch:  putWithCustom,
			want:   want{reached: []string{"PUT /v1/items/7"}, local: 1},
			then: []step{{
				reload: deleteOnly,
				fetch:  putWithCustom,
				want:   want{cors: network.CorsErrorPreflightMissingAllowOriginHeader, local: 1},
			}},
		},
		{
			// What users see after tightening a policy: until max-age runs
			// out (Chromium caps it at 7200 s) the browser does not ask.
			name:   "with the browser's preflight cache on, a withdrawn method still passes until max-age",
			policy: putOnly,
			cache:  true,
			fetch:  putWithCustom,
			want:   want{reached: []string{"PUT /v1/items/7"}, local: 1},
			then: []step{{
				reload: deleteOnly,
				fetch:  putWithCustom,
				want:   want{reached: []string{"PUT /v1/items/7"}},
			}},
		},
		{
			name:   "a policy file that does not load leaves the running policy in place",
			policy: allowApp,
			want:   want{reached: []string{"GET /v1/items"}},
			then: []step{{
				reload: "policies:\n  - name: api\n    allowed_origins: [\"{app}/\"]\n",
				want:   want{reached: []string{"GET /v1/items"}, metrics: []string{`corsproc_config_reloads_total{result="failure"} 1`}},
			}},
		},
		{
			name:   "enforce to report: the preflight now reaches the service",
			policy: putOnly,
			fetch:  putWithCustom,
			want:   want{reached: []string{"PUT /v1/items/7"}, local: 1},
			then: []step{{
				reload: "policies:\n  - name: api\n    mode: report\n    allowed_origins: [\"{app}\"]\n",
				fetch:  putWithCustom,
				want:   want{cors: network.CorsErrorPreflightMissingAllowOriginHeader, reached: []string{"OPTIONS /v1/items/7"}},
			}},
		},
	})
}
