package policy_test

import (
	"fmt"
	"strings"

	"github.com/corsproc/corsproc/policy"
)

// BrowserOrigin says whether an origin is one a browser sends, and if not,
// what the browser would send instead.
func ExampleBrowserOrigin() {
	for _, o := range []string{"https://app.example.com", "https://APP.example.com", "https://app.example.com/cart"} {
		sent, problem := policy.BrowserOrigin(o)
		fmt.Printf("%s -> %s (%s)\n", o, sent, problem)
	}
	// Output:
	// https://app.example.com -> https://app.example.com ()
	// https://APP.example.com -> https://app.example.com (browsers send the scheme and host in lower case, an IDN as punycode, and no default port)
	// https://app.example.com/cart -> https://app.example.com (an origin is scheme://host[:port] alone, never with a path, query, fragment or user info)
}

// Explain lists the policies passed over before the one chosen, each with
// the first condition that failed.
func ExampleSet_Explain_passedOver() {
	s, err := policy.Parse("policy.yaml", []byte(`
defaults:
  allowed_origins: ["https://app.example.com"]
policies:
  - name: uploads
    match: {path_regex: "/v1/upload"}
  - name: api
    match: {hosts: [api.example.com]}
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	x := s.Explain(&policy.Request{Method: "GET", Host: "api.example.com", Path: "/v1/upload/7", Origin: "https://app.example.com"})
	fmt.Println("chosen:", x.Policy)
	for _, m := range x.PassedOver {
		fmt.Println(m.Policy, m.Key, m.Got)
	}
	// Output:
	// chosen: api
	// uploads match.path_regex /v1/upload/7
}

// ReadFrom reads policy content from a stream, such as standard input,
// refusing what cannot be a policy file before the YAML parser sees it.
func ExampleReadFrom() {
	_, err := policy.ReadFrom("<stdin>", strings.NewReader("\x7fELF\x02\x01\x01\x00"))
	fmt.Println(err)
	// Output:
	// <stdin>:1: not a text file: byte 7 is not UTF-8 text (near "\x7fELF\x02\x01\x01\x00"); a policy file is YAML in UTF-8: check that the path names the policy file
}
