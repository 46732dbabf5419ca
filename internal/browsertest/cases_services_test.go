package browsertest

import (
	"testing"

	"github.com/chromedp/cdproto/network"
)

// byHost: two services on two host names behind one gateway, each with its
// own policy.
var byHost = []service{
	{Name: "api", Host: "api.example.test"},
	{Name: "other", Host: "other.example.test"},
}

const byHostPolicy = `
policies:
  - name: api
    match: {hosts: [api.example.test]}
    allowed_origins: ["{app}"]
  - name: other
    match: {hosts: ["*.example.test"]}
    allowed_origins: ["{admin}"]
    allow_methods: [DELETE]
`

// byPath: two services on one host, routed by path prefix; one policy
// matches the Envoy route name, the other the path.
var byPath = []service{
	{Name: "shop", PathPrefix: "/shop/"},
	{Name: "blog", PathPrefix: "/blog/"},
}

const byPathPolicy = `
policies:
  - name: shop
    match: {routes: [shop]}
    allowed_origins: ["{app}"]
    allow_credentials: true
    allow_headers: [content-type]
  - name: blog
    match: {path_prefixes: [/blog/]}
    allow_all_origins: true
`

// One gateway, several services, a policy each: the first matching policy
// decides, by host, by path, or by Envoy route name.
func TestServices(t *testing.T) {
	runCases(t, []browserCase{
		{
			name: "by host: api allows the app, other refuses it", policy: byHostPolicy, services: byHost,
			want: want{reached: []string{"api GET /v1/items"}},
			then: []step{
				{fetch: `fetch("{other}/v1/items")`,
					want: want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"other GET /v1/items"}}},
				{fetch: `fetch("{other}/v1/items/7", {method: "DELETE"})`,
					want: want{cors: network.CorsErrorPreflightMissingAllowOriginHeader, local: 1}},
			},
		},
		{
			name: "by host: other allows admin, api refuses it", policy: byHostPolicy, services: byHost, page: "{admin}",
			fetch: `fetch("{other}/v1/items/7", {method: "DELETE"})`,
			want:  want{reached: []string{"other DELETE /v1/items/7"}, local: 1},
			then: []step{
				{want: want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"api GET /v1/items"}}},
			},
		},
		{
			name: "by path and route: the shop takes credentials, the blog answers * to all", policy: byPathPolicy, services: byPath,
			cookie: true,
			fetch:  `fetch("{api}/shop/cart", {method: "PUT", credentials: "include", headers: {"content-type": "application/json"}, body: "{}"})`,
			want:   want{body: `"service":"shop"`, reached: []string{"shop PUT /shop/cart"}, local: 1, cookie: "sid=s3cret"},
			then: []step{
				{fetch: `fetch("{api}/blog/posts")`,
					want: want{body: `"service":"blog"`, reached: []string{"blog GET /blog/posts"}}},
				// "*" never admits a credentialed request.
				{fetch: `fetch("{api}/blog/posts", {credentials: "include"})`,
					want: want{cors: network.CorsErrorWildcardOriginNotAllowed, reached: []string{"blog GET /blog/posts"}, cookie: "sid=s3cret"}},
			},
		},
		{
			name: "by path: a look-alike page may read the blog but not the shop", policy: byPathPolicy, services: byPath, page: "{evil}",
			fetch: `fetch("{api}/blog/posts")`,
			want:  want{reached: []string{"blog GET /blog/posts"}},
			then: []step{
				{fetch: `fetch("{api}/shop/cart")`,
					want: want{cors: network.CorsErrorMissingAllowOriginHeader, reached: []string{"shop GET /shop/cart"}}},
			},
		},
	})
}
