package browsertest

import (
	"testing"

	"github.com/chromedp/cdproto/network"
)

// allowApp allows the usual front end, with the defaults for the rest.
const allowApp = `
policies:
  - name: api
    allowed_origins: ["{app}"]
`

// Simple requests (no preflight): corsproc forwards them and decides only
// what the browser may read.
func TestSimpleRequests(t *testing.T) {
	runCases(t, []browserCase{
		{
			name:   "GET from an allowed origin is readable",
			policy: allowApp,
			want: want{
				body:    `"method":"GET"`,
				headers: map[string]string{"content-type": "application/json"},
				hidden:  []string{"x-total-count", "access-control-allow-origin", "vary"},
				reached: []string{"GET /v1/items"},
			},
		},
		{
			name:   "GET from a denied origin: the upstream answers 200, the browser blocks",
			policy: allowApp,
			page:   "{admin}",
			want: want{
				cors:    network.CorsErrorMissingAllowOriginHeader,
				reached: []string{"GET /v1/items"},
			},
		},
		{
			name:   "form POST is not preflighted and reaches the upstream once",
			policy: allowApp,
			fetch:  `fetch("{api}/v1/items", {method: "POST", headers: {"content-type": "text/plain"}, body: "hello"})`,
			want: want{
				body:    `"body":"hello"`,
				reached: []string{"POST /v1/items"},
			},
		},
		{
			name:     "an upstream 500 is readable by an allowed origin",
			policy:   allowApp,
			services: []service{{Name: "api", Status: 500}},
			want: want{
				status:  500,
				reached: []string{"GET /v1/items"},
			},
		},
		{
			name:     "an upstream 500 stays blocked for a denied origin",
			policy:   allowApp,
			page:     "{evil}",
			services: []service{{Name: "api", Status: 500}},
			want: want{
				cors:    network.CorsErrorMissingAllowOriginHeader,
				reached: []string{"GET /v1/items"},
			},
		},
		{
			name: "allow_all_origins answers * and any page can read",
			policy: `
policies:
  - name: public
    allow_all_origins: true
`,
			page: "{evil}",
			want: want{
				reached: []string{"GET /v1/items"},
			},
		},
		{
			name: "a request matching no policy is left alone: blocked",
			policy: `
policies:
  - name: elsewhere
    match: {hosts: [elsewhere.example.test]}
    allow_all_origins: true
`,
			want: want{
				cors:    network.CorsErrorMissingAllowOriginHeader,
				reached: []string{"GET /v1/items"},
			},
		},
	})
}
