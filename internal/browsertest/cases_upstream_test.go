package browsertest

import (
	"testing"

	"github.com/chromedp/cdproto/network"
)

const replacePolicy = `
policies:
  - name: api
    allowed_origins: ["{app}"]
    upstream_cors_headers: replace
`

const keepPolicy = `
policies:
  - name: api
    allowed_origins: ["{app}"]
    upstream_cors_headers: keep
`

var (
	wrongACAO     = []service{{Name: "api", Headers: []string{"access-control-allow-origin: http://wrong.example.test"}}}
	duplicateACAO = []service{{Name: "api", Headers: []string{"access-control-allow-origin: {app}", "access-control-allow-origin: {app}"}}}
	starACAO      = []service{{Name: "api", Headers: []string{"access-control-allow-origin: *"}}}
)

// A service that still sets its own access-control-allow-origin: replace
// makes corsproc the only author of CORS headers; keep leaves that service's
// answer exactly as it sent it.
func TestUpstreamCORSHeaders(t *testing.T) {
	runCases(t, []browserCase{
		{name: "replace fixes an upstream's wrong allow-origin", policy: replacePolicy, services: wrongACAO,
			want: want{reached: []string{"GET /v1/items"}}},
		{name: "keep leaves an upstream's wrong allow-origin: blocked", policy: keepPolicy, services: wrongACAO,
			want: want{cors: network.CorsErrorAllowOriginMismatch, reached: []string{"GET /v1/items"}}},
		{name: "replace fixes an upstream's duplicate allow-origin", policy: replacePolicy, services: duplicateACAO,
			want: want{reached: []string{"GET /v1/items"}}},
		{name: "keep leaves an upstream's duplicate allow-origin: blocked", policy: keepPolicy, services: duplicateACAO,
			want: want{cors: network.CorsErrorMultipleAllowOriginValues, reached: []string{"GET /v1/items"}}},
		{name: "replace removes an upstream's * for a denied origin", policy: replacePolicy, services: starACAO, page: "{admin}",
			want: want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"GET /v1/items"}}},
		{name: "keep leaves an upstream's * for a denied origin: the service owns its CORS", policy: keepPolicy, services: starACAO, page: "{admin}",
			want: want{reached: []string{"GET /v1/items"}}},
		{name: "keep: a response without the upstream's own allow-origin is handled as replace", policy: keepPolicy,
			services: []service{{Name: "api", Headers: []string{"access-control-expose-headers: x-total-count"}}},
			want:     want{hidden: []string{"x-total-count"}, reached: []string{"GET /v1/items"}}},
		// A redirect is a response too: the browser checks CORS on it
		// before following, so corsproc must answer it as any other.
		{name: "a trailing-slash redirect is followed: corsproc answers CORS on the 301 too", policy: replacePolicy,
			services: []service{{Name: "api", RedirectSlash: true}},
			want:     want{body: `"path":"/v1/items/"`, reached: []string{"GET /v1/items", "GET /v1/items/"}}},
		{name: "a preflighted request survives a trailing-slash redirect: corsproc answers each preflight", policy: preflightPolicy,
			services: []service{{Name: "api", RedirectSlash: true}},
			fetch:    putJSON,
			want:     want{body: `"path":"/v1/items/7/"`, reached: []string{"PUT /v1/items/7", "PUT /v1/items/7/"}, local: 2}},
		{name: "without corsproc answering it (report mode), a redirected preflight fails", policy: reportPolicy,
			services: []service{{Name: "api", RedirectSlash: true}},
			fetch:    putJSON,
			want:     want{cors: network.CorsErrorPreflightDisallowedRedirect, reached: []string{"OPTIONS /v1/items/7"}}},
	})
}
