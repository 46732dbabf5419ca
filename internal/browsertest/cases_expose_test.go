package browsertest

import "testing"

// Exposed headers: beyond the CORS-safelisted ones, the page reads only what
// expose_headers lists.
func TestExposeHeaders(t *testing.T) {
	runCases(t, []browserCase{
		{
			name:   "an unlisted header is hidden",
			policy: allowApp,
			want: want{
				headers: map[string]string{"content-type": "application/json", "cache-control": "no-store"},
				hidden:  []string{"x-total-count", "x-request-id"},
				reached: []string{"GET /v1/items"},
			},
		},
		{
			name: "a listed header is readable, others stay hidden",
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    expose_headers: [x-total-count]
`,
			services: []service{{Name: "api", Headers: []string{"x-request-id: r-1"}}},
			want: want{
				headers: map[string]string{"x-total-count": "42"},
				hidden:  []string{"x-request-id"},
				reached: []string{"GET /v1/items"},
			},
		},
		{
			name: "with credentials, a listed header is readable",
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_credentials: true
    expose_headers: [x-total-count, x-request-id]
`,
			services: []service{{Name: "api", Headers: []string{"x-request-id: r-1"}}},
			cookie:   true,
			fetch:    withCookie,
			want: want{
				headers: map[string]string{"x-total-count": "42", "x-request-id": "r-1"},
				reached: []string{"GET /v1/me"},
				cookie:  "sid=s3cret",
			},
		},
		{
			name: `expose_headers ["*"] without credentials exposes everything`,
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    expose_headers: ["*"]
`,
			services: []service{{Name: "api", Headers: []string{"x-request-id: r-1"}}},
			want: want{
				headers: map[string]string{"x-total-count": "42", "x-request-id": "r-1"},
				reached: []string{"GET /v1/items"},
			},
		},
		{
			name: "an upstream's own expose list is replaced by the policy's",
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    expose_headers: [x-request-id]
`,
			services: []service{{Name: "api", Headers: []string{"x-request-id: r-1", "access-control-expose-headers: x-total-count"}}},
			want: want{
				headers: map[string]string{"x-request-id": "r-1"},
				hidden:  []string{"x-total-count"},
				reached: []string{"GET /v1/items"},
			},
		},
	})
}
