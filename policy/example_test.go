package policy_test

import (
	"errors"
	"fmt"

	"github.com/corsproc/corsproc/policy"
)

const examplePolicy = `
defaults:
  allowed_origins: ["https://app.example.com"]
policies:
  - name: shop-api
    match:
      hosts: [api.example.com]
    allowed_origins: ["https://app.example.com", "https://*.shop.example.com"]
    allow_credentials: true
    expose_headers: [x-request-id]
  - name: everything-else
`

// Parse compiles a policy file. The returned Set shows the effective
// policies: defaults and built-in defaults applied, origins normalised.
// Warnings do not refuse the file.
func ExampleParse() {
	s, err := policy.Parse("policy.yaml", []byte(examplePolicy))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, w := range s.Warnings() {
		fmt.Println(w)
	}
	for _, p := range s.Policies() {
		fmt.Println(p.Name, p.AllowedOrigins, *p.AllowCredentials, p.AllowMethods, *p.PreflightStatus)
	}
	// Output:
	// warning: policy.yaml: policies[0] "shop-api": allowed_origins[1] "https://*.shop.example.com": a wildcard origin with allow_credentials: true: every subdomain, and whoever takes one over, can read users' data
	// shop-api [https://app.example.com https://*.shop.example.com] true [DELETE GET OPTIONS PATCH POST PUT] 204
	// everything-else [https://app.example.com] false [DELETE GET OPTIONS PATCH POST PUT] 204
}

// A file with mistakes is refused with an *Error that holds every problem,
// errors and warnings, in file order; its Error method lists the errors.
func ExampleParse_errors() {
	_, err := policy.Parse("policy.yaml", []byte(`
policies:
  - name: admin
    match: {hosts: [admin.example.com]}
    allowed_origins: ["https://admin.example.com"]
  - name: shop-api
    allowed_origins: ["https://app.example.com", "null", "https://shop.example.com/"]
    allow_credentials: true
    allow_headers: [content-type, cookie]
`))
	var e *policy.Error
	if errors.As(err, &e) {
		for _, p := range e.Problems {
			fmt.Printf("%s line %d: %s\n", p.Severity, p.Line, p.Key)
		}
		fmt.Println(err)
	}
	// Output:
	// warning line 7: allowed_origins[1]
	// error line 7: allowed_origins[1]
	// error line 7: allowed_origins[2]
	// error line 9: allow_headers[1]
	// policy.yaml: policies[1] "shop-api": allowed_origins[1] "null": the null origin cannot be trusted with allow_credentials: true: any site can send it from a sandboxed iframe
	// policy.yaml: policies[1] "shop-api": allowed_origins[2] "https://shop.example.com/": an origin has no path; remove the trailing "/"
	// policy.yaml: policies[1] "shop-api": allow_headers[1] "cookie": a forbidden request header: browsers never let a page set it; remove it
}

// Load reads a policy file; messages name the path it was given.
func ExampleLoad() {
	s, err := policy.Load("testdata/valid/warning-null.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.File(), len(s.Policies()), "policy")
	for _, w := range s.Warnings() {
		fmt.Println(w.Severity, w.Key, w.Value)
	}
	_, err = policy.Load("testdata/invalid/origin-trailing-slash.yaml")
	fmt.Println(err)
	// Output:
	// testdata/valid/warning-null.yaml 1 policy
	// warning allowed_origins[1] null
	// testdata/invalid/origin-trailing-slash.yaml: policies[1] "shop-api": allowed_origins[2] "https://shop.example.com/": an origin has no path; remove the trailing "/"
}

// Decide judges a request from its headers. An allowed preflight in enforce
// mode is answered by corsproc itself (Local) with the policy's status and
// headers; it never reaches the service.
func ExampleSet_Decide() {
	s, _ := policy.Parse("policy.yaml", []byte(examplePolicy))
	d := s.Decide(&policy.Request{
		Method: "OPTIONS", Host: "api.example.com", Path: "/v1/cart",
		Origin:        "https://checkout.shop.example.com",
		RequestMethod: "PUT", HasRequestMethod: true,
		RequestHeaders: []string{"content-type,x-csrftoken"},
	})
	fmt.Println(d.Policy, d.Class, d.Outcome, d.Reason, d.Local, d.Status)
	for _, h := range d.Headers() {
		fmt.Printf("%s: %s\n", h.Name, h.Value)
	}
	// Output:
	// shop-api preflight allowed origin_allowed true 204
	// access-control-allow-origin: https://checkout.shop.example.com
	// access-control-allow-credentials: true
	// access-control-allow-methods: DELETE, GET, OPTIONS, PATCH, POST, PUT
	// access-control-allow-headers: accept, authorization, content-type, user-agent, x-csrftoken, x-requested-with
	// access-control-max-age: 86400
	// vary: origin, access-control-request-method, access-control-request-headers
	// content-length: 0
}

// Explain lays a decision out for people and scripts, with the reason as a
// code and as a sentence: what `corsproc explain` prints.
func ExampleSet_Explain() {
	s, _ := policy.Parse("policy.yaml", []byte(examplePolicy))
	x := s.Explain(&policy.Request{
		Method: "OPTIONS", Host: "api.example.com", Path: "/v1/cart",
		Origin:        "https://app.example.com",
		RequestMethod: "PUT", HasRequestMethod: true,
		RequestHeaders: []string{"x-api-key"},
	})
	fmt.Println(x.Policy, x.Class, x.Decision, x.Reason, x.Forwarded, x.Status)
	fmt.Println(x.Message)
	for _, h := range x.Headers {
		fmt.Printf("%s: %s\n", h.Name, h.Value)
	}
	// Output:
	// shop-api preflight denied header_not_allowed false 403
	// header "x-api-key" is not in allow_headers
	// vary: origin, access-control-request-method, access-control-request-headers
	// content-length: 0
}

// Respond turns a decision into the edit of the service's response: with
// upstream_cors_headers: replace (the default), the service's own
// access-control-* headers are removed first, then the policy's are set and
// origin is merged into vary.
func ExampleDecision_Respond() {
	s, _ := policy.Parse("policy.yaml", []byte(examplePolicy))
	d := s.Decide(&policy.Request{
		Method: "GET", Host: "api.example.com", Path: "/v1/cart",
		Origin: "https://app.example.com",
	})
	var e policy.Edit
	d.Respond(&policy.Upstream{
		AllowOrigin: "*", AllowOrigins: 1,
		Vary:        []string{"accept-encoding"},
		CORSHeaders: []string{"access-control-allow-origin"},
	}, &e)
	fmt.Println("remove:", e.Remove)
	for _, h := range e.Set(&d) {
		fmt.Printf("set %s: %s\n", h.Name, h.Value)
	}
	// Output:
	// remove: [access-control-allow-origin]
	// set access-control-allow-origin: https://app.example.com
	// set access-control-allow-credentials: true
	// set access-control-expose-headers: x-request-id
	// set vary: accept-encoding, origin
}
