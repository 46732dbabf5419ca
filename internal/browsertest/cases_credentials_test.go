package browsertest

import (
	"testing"

	"github.com/chromedp/cdproto/network"
)

const credentialsPolicy = `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_credentials: true
    allow_headers: [content-type, x-custom]
`

// withCookie is a credentialed GET; the case stores sid=s3cret
// (SameSite=Lax) for api.example.test first, which is same-site with the
// page, so the browser sends it.
const withCookie = `fetch("{api}/v1/me", {credentials: "include"})`

// Credentials: cookies travel with credentials: "include", and the page may
// read the answer only when the policy allows credentials.
func TestCredentials(t *testing.T) {
	runCases(t, []browserCase{
		{
			name:   "allow_credentials: the cookie reaches the upstream and the page reads the answer",
			policy: credentialsPolicy,
			cookie: true,
			fetch:  withCookie,
			want: want{
				body:    `"cookie":"sid=s3cret"`,
				reached: []string{"GET /v1/me"},
				cookie:  "sid=s3cret",
			},
		},
		{
			name:   "without allow_credentials: the cookie is sent but the browser hides the answer",
			policy: allowApp,
			cookie: true,
			fetch:  withCookie,
			want: want{
				cors:    network.CorsErrorInvalidAllowCredentials,
				reached: []string{"GET /v1/me"},
				cookie:  "sid=s3cret",
			},
		},
		{
			name:   "allow_credentials for another origin: blocked",
			policy: credentialsPolicy,
			page:   "{admin}",
			cookie: true,
			fetch:  withCookie,
			want: want{
				cors:    network.CorsErrorMissingAllowOriginHeader,
				reached: []string{"GET /v1/me"},
				cookie:  "sid=s3cret",
			},
		},
		{
			name:   "without credentials: include, no cookie is sent",
			policy: credentialsPolicy,
			cookie: true,
			fetch:  `fetch("{api}/v1/me")`,
			want: want{
				body:    `"cookie":""`,
				reached: []string{"GET /v1/me"},
				cookie:  "none",
			},
		},
		{
			name:   "credentialed preflighted PUT: no cookie on the preflight, the cookie on the PUT",
			policy: credentialsPolicy,
			cookie: true,
			fetch:  `fetch("{api}/v1/me", {method: "PUT", credentials: "include", headers: {"content-type": "application/json", "x-custom": "c"}, body: "{}"})`,
			want: want{
				body:    `"cookie":"sid=s3cret"`,
				reached: []string{"PUT /v1/me"},
				local:   1,
				cookie:  "sid=s3cret",
			},
		},
		{
			name:   "credentialed preflight without allow_credentials: blocked before the PUT is sent",
			policy: preflightPolicy,
			cookie: true,
			fetch:  `fetch("{api}/v1/me", {method: "PUT", credentials: "include", headers: {"x-custom": "c"}})`,
			want: want{
				cors:  network.CorsErrorPreflightInvalidAllowCredentials,
				local: 1,
			},
		},
		{
			name: `credentials with allow_headers ["*"]: the requested names are echoed, custom headers pass`,
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_credentials: true
    allow_headers: ["*"]
`,
			cookie: true,
			fetch:  `fetch("{api}/v1/me", {method: "PUT", credentials: "include", headers: {"x-custom": "c3"}})`,
			want: want{
				body:    `"x_custom":"c3"`,
				reached: []string{"PUT /v1/me"},
				local:   1,
				cookie:  "sid=s3cret",
			},
		},
		{
			name: `credentials with allow_methods ["*"]: the method is echoed, not "*"`,
			policy: `
policies:
  - name: api
    allowed_origins: ["{app}"]
    allow_credentials: true
    allow_methods: ["*"]
`,
			cookie: true,
			fetch:  `fetch("{api}/v1/me", {method: "PURGE", credentials: "include"})`,
			want: want{
				body:    `"method":"PURGE"`,
				reached: []string{"PURGE /v1/me"},
				local:   1,
				cookie:  "sid=s3cret",
			},
		},
	})
}
