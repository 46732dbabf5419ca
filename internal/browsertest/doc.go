// Package browsertest is corsproc's real-browser conformance suite: a CORS
// header is only right if a browser agrees, so Chromium is the judge.
//
// Every case runs the whole chain over real loopback sockets: a page served
// from one origin (http://app.example.test:PA, or a look-alike, a wildcard
// subdomain, a sandboxed iframe) calls fetch() against another origin
// (http://api.example.test:PB), which is the envoytest Envoy stand-in driving
// the real corsproc ext_proc gRPC server (extproc, watching its policy
// file), in front of real upstreams that record what reaches them.
// Chromium resolves *.example.test and *.evil.test to 127.0.0.1 through
// --host-resolver-rules; web security stays on.
//
// A case asserts what JavaScript sees (readable or TypeError), the status,
// body and readable response headers, exactly which requests reached the
// upstreams (a preflight never does in enforce mode), how many requests
// corsproc answered itself, and for a blocked request Chromium's own CORS
// error (Network.loadingFailed corsErrorStatus) and console message; also
// that the stand-in saw no processor failure, and optionally corsproc's
// metrics.
//
// The tests live in the _test.go files; this package has no other code, so
// nothing outside the tests imports chromedp. They skip only when no
// chromium binary is found ($CORSPROC_CHROMIUM, chromium, chromium-browser,
// google-chrome) and the CI environment variable is unset; with CI set they
// fail instead. Run them with
//
//	go test -race ./internal/browsertest/
//
// To add a case, append a browserCase to a table in one of the
// cases_*_test.go files: a name, the policy YAML (with {app}, {admin},
// {evil}, ... placeholders for the origins), the page origin, a fetch()
// expression using {api}, and the expectations; later steps (then) may
// reload the policy between fetches.
package browsertest
