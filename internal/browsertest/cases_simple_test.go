package browsertest

import (
	"testing"

	"github.com/chromedp/cdproto/network"
)

const allowApp = `
policies:
  - name: api
    allowed_origins: ["{app}"]
`

func TestSimpleRequests(t *testing.T) {
	runCases(t, []browserCase{
		{
			name:   "GET from an allowed origin is readable",
			policy: allowApp,
			want: want{
				body:    `"method":"GET"`,
				headers: map[string]string{"content-type": "application/json"},
				hidden:  []string{"x-total-count"},
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
	})
}
