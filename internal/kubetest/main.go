package kubetest

import (
	"fmt"
	"os"
	"testing"
)

// The package's one server, started by [Main] before the tests run.
var (
	shared    *Server
	sharedErr error  // the server should have run and did not: tests fail
	skipWhy   string // the binaries are absent outside CI: tests skip
)

// Main is a test package's TestMain: it starts one API server for every
// test of the package (starting one takes seconds and hundreds of MB),
// runs them, stops it and exits.
//
//	func TestMain(m *testing.M) { kubetest.Main(m) }
func Main(m *testing.M) {
	assets, err := Assets()
	switch {
	case err != nil && os.Getenv("CI") != "":
		sharedErr = fmt.Errorf("%v; CI is set, so the Kubernetes tests must run: .ci/run builds the binaries", err)
	case err != nil:
		skipWhy = err.Error() + "; skipping the tests that need a Kubernetes API server (they fail instead when CI is set)"
	default:
		shared, sharedErr = Start(assets)
	}
	code := m.Run()
	if shared != nil {
		shared.Stop()
	}
	os.Exit(code)
}

// Get returns the package's API server, skipping the test when the
// binaries are absent (failing it when CI is set) or failing it when the
// server did not start.
func Get(t testing.TB) *Server {
	t.Helper()
	switch {
	case skipWhy != "":
		t.Skip(skipWhy)
	case sharedErr != nil:
		t.Fatalf("the Kubernetes API server for this package: %v", sharedErr)
	case shared == nil:
		t.Fatal("kubetest.Get needs kubetest.Main as the package's TestMain")
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the API server's log:\n%s", shared.Logs())
		}
	})
	return shared
}
