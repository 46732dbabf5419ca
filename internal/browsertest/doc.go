// Package browsertest is corsproc's real-browser conformance suite: a CORS
// header is only right if a browser agrees, so Chromium is the judge.
//
// Every case runs the whole chain over real loopback sockets: a page served
// from one origin (http://app.example.test:PA, or a look-alike, a wildcard
// subdomain, a sandboxed iframe) calls fetch() against another origin
// (http://api.example.test:PB), which is the envoytest Envoy stand-in driving
// the real corsproc ext_proc gRPC server, in front of a real upstream that
// counts what reaches it. Chromium resolves *.example.test and *.evil.test to
// 127.0.0.1 through --host-resolver-rules; web security stays on.
//
// A case asserts what JavaScript sees (readable or TypeError), the status,
// body and readable response headers, which requests reached the upstream
// (a preflight never does in enforce mode), how many preflights the gateway
// answered itself, and for a blocked request Chromium's own CORS error
// (Network.loadingFailed corsErrorStatus).
//
// The tests live in the _test.go files; this package has no other code, so
// nothing outside the tests imports chromedp. They skip only when no
// chromium binary is found and the CI environment variable is unset;
// with CI set they fail instead. Run them with
//
//	go test -race ./internal/browsertest/
//
// To add a case, append a browserCase to a table in one of the
// cases_*_test.go files: a name, the policy YAML (with {app}, {api}, ...
// placeholders for the origins), the page origin, a fetch() expression, and
// the expectations.
package browsertest
