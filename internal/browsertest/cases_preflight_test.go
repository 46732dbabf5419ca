package browsertest

import (
	"testing"

	"github.com/chromedp/cdproto/network"
)

// preflightPolicy allows the usual front end to PUT, DELETE and PATCH with
// content-type and x-custom; x-other is not allowed.
const preflightPolicy = `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_methods: [GET, POST, PUT, DELETE, PATCH]
    allow_headers: [content-type, x-custom]
`

// putJSON is a preflighted PUT: JSON body, a custom header.
const putJSON = `fetch("{api}/v1/items/7", {method: "PUT", headers: {"content-type": "application/json", "x-custom": "c1"}, body: JSON.stringify({name: "seven"})})`

// Preflighted requests: corsproc answers the OPTIONS itself (it never
// reaches the upstream) and the browser sends the actual request only when
// the preflight passed.
func TestPreflight(t *testing.T) {
	runCases(t, []browserCase{
		{
			name:   "PUT with JSON and a custom header: preflight answered by corsproc, PUT reaches the upstream",
			policy: preflightPolicy,
			fetch:  putJSON,
			want: want{
				body:    `"method":"PUT","path":"/v1/items/7","cookie":"","x_custom":"c1","authorization":"","body":"{\"name\":\"seven\"}"`,
				reached: []string{"PUT /v1/items/7"},
				local:   1,
			},
		},
		{
			name:   "DELETE with a custom header",
			policy: preflightPolicy,
			fetch:  `fetch("{api}/v1/items/7", {method: "DELETE", headers: {"x-custom": "c1"}})`,
			want: want{
				body:    `"method":"DELETE"`,
				reached: []string{"DELETE /v1/items/7"},
				local:   1,
			},
		},
		{
			name:   "PATCH with a JSON body",
			policy: preflightPolicy,
			fetch:  `fetch("{api}/v1/items/7", {method: "PATCH", headers: {"content-type": "application/json"}, body: "{}"})`,
			want: want{
				body:    `"method":"PATCH"`,
				reached: []string{"PATCH /v1/items/7"},
				local:   1,
			},
		},
		{
			name:   "POST with application/json is preflighted too",
			policy: preflightPolicy,
			fetch:  `fetch("{api}/v1/items", {method: "POST", headers: {"content-type": "application/json"}, body: "[1]"})`,
			want: want{
				body:    `"method":"POST"`,
				reached: []string{"POST /v1/items"},
				local:   1,
			},
		},
		{
			name:   "denied by origin: 403 without allow-origin, nothing reaches the upstream",
			policy: preflightPolicy,
			page:   "{admin}",
			fetch:  putJSON,
			want: want{
				cors:  network.CorsErrorPreflightMissingAllowOriginHeader,
				local: 1,
			},
		},
		{
			name: "denied by method: PUT not listed",
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_methods: [GET, POST]
    allow_headers: [content-type, x-custom]
`,
			fetch: putJSON,
			want: want{
				cors:  network.CorsErrorPreflightMissingAllowOriginHeader,
				local: 1,
			},
		},
		{
			name: "denied by method, with --debug-headers Chromium names the method",
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_methods: [GET, POST]
    allow_headers: [content-type, x-custom]
`,
			debug: true,
			fetch: putJSON,
			want: want{
				cors:  network.CorsErrorMethodDisallowedByPreflightResponse,
				local: 1,
			},
		},
		{
			name:   "methods compare case-sensitively: fetch sends patch as patch",
			policy: preflightPolicy,
			fetch:  `fetch("{api}/v1/items/7", {method: "patch"})`,
			want: want{
				cors:  network.CorsErrorPreflightMissingAllowOriginHeader,
				local: 1,
			},
		},
		{
			name:   "denied by header: x-other not listed",
			policy: preflightPolicy,
			fetch:  `fetch("{api}/v1/items/7", {method: "PUT", headers: {"x-other": "o"}})`,
			want: want{
				cors:  network.CorsErrorPreflightMissingAllowOriginHeader,
				local: 1,
			},
		},
		{
			name:   "denied by header, with --debug-headers Chromium names the header",
			policy: preflightPolicy,
			debug:  true,
			fetch:  `fetch("{api}/v1/items/7", {method: "PUT", headers: {"x-other": "o"}})`,
			want: want{
				cors:  network.CorsErrorHeaderDisallowedByPreflightResponse,
				local: 1,
			},
		},
		{
			name: `allow_headers ["*"] covers custom headers`,
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_headers: ["*"]
`,
			fetch: `fetch("{api}/v1/items/7", {method: "PUT", headers: {"x-anything": "a", "x-custom": "c2"}})`,
			want: want{
				body:    `"x_custom":"c2"`,
				reached: []string{"PUT /v1/items/7"},
				local:   1,
			},
		},
		{
			name: `allow_headers ["*"] never covers authorization (Fetch standard; Chromium would let it through)`,
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_headers: ["*"]
`,
			fetch: `fetch("{api}/v1/items/7", {headers: {"authorization": "Bearer t0k"}})`,
			want: want{
				cors:  network.CorsErrorPreflightMissingAllowOriginHeader,
				local: 1,
			},
		},
		{
			name: `allow_headers ["*"] and authorization, with --debug-headers Chromium names the header`,
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_headers: ["*"]
`,
			debug: true,
			fetch: `fetch("{api}/v1/items/7", {headers: {"authorization": "Bearer t0k"}})`,
			want: want{
				cors:  network.CorsErrorHeaderDisallowedByPreflightResponse,
				local: 1,
			},
		},
		{
			// Why corsproc must refuse it itself: a service answering "*"
			// (here one behind a report-mode policy) gets authorization
			// through Chromium, against the Fetch standard.
			name:     `control: Chromium itself lets authorization through "*" from a service`,
			policy:   "policies:\n  - name: api\n    mode: report\n    allowed_origins: [\"{app}\"]\n",
			services: []service{{Name: "api", Headers: []string{"access-control-allow-origin: {app}", "access-control-allow-headers: *"}}},
			fetch:    `fetch("{api}/v1/items/7", {headers: {"authorization": "Bearer t0k"}})`,
			want: want{
				body:    `"authorization":"Bearer t0k"`,
				reached: []string{"OPTIONS /v1/items/7", "GET /v1/items/7"},
			},
		},
		{
			name: `allow_headers ["*", authorization] lets authorization through`,
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_headers: ["*", authorization]
`,
			fetch: `fetch("{api}/v1/items/7", {headers: {"authorization": "Bearer t0k"}})`,
			want: want{
				body:    `"authorization":"Bearer t0k"`,
				reached: []string{"GET /v1/items/7"},
				local:   1,
			},
		},
		{
			name: `allow_methods ["*"] admits a custom method`,
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_methods: ["*"]
`,
			fetch: `fetch("{api}/v1/items/7", {method: "PURGE"})`,
			want: want{
				body:    `"method":"PURGE"`,
				reached: []string{"PURGE /v1/items/7"},
				local:   1,
			},
		},
		{
			name: "preflight_status 200 passes as well",
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    preflight_status: 200
`,
			fetch: `fetch("{api}/v1/items/7", {method: "DELETE"})`,
			want: want{
				reached: []string{"DELETE /v1/items/7"},
				local:   1,
			},
		},
	})
}
