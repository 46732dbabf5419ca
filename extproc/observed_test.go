package extproc

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/corsproc/corsproc/internal/observe"
)

const observedPolicy = `
policies:
  - name: shop
    match: {hosts: [api.example.com]}
    mode: report
    allowed_origins: ["https://app.example.com"]
    allow_credentials: true
  - name: legacy
    match: {hosts: [old.example.com]}
    mode: "off"
`

// TestObservedSummarisesTrafficPerPolicy sends requests through the
// ext_proc server over gRPC and reads /observed from the admin handler
// over HTTP: origins, preflight methods and headers, the decisions, and
// the origins the service itself answered with credentials in report
// mode; nothing for an off policy, and the summary survives a reload that
// keeps the policy's name.
func TestObservedSummarisesTrafficPerPolicy(t *testing.T) {
	t.Parallel()
	ts := startServer(t, observedPolicy, Options{})
	admin := httptest.NewServer(NewAdminHandler(ts.policies, ts.metrics, AdminOptions{}))
	t.Cleanup(admin.Close)

	ts.exchange(t, request("OPTIONS", "api.example.com", "origin", "https://app.example.com",
		"access-control-request-method", "PUT", "access-control-request-headers", "Content-Type, X-Api-Key"),
		respHeaders(":status", "204"))
	ts.exchange(t, request("GET", "api.example.com", "origin", "https://app.example.com"),
		respHeaders(":status", "200", "access-control-allow-origin", "https://app.example.com", "access-control-allow-credentials", "true"))
	ts.exchange(t, request("GET", "api.example.com", "origin", "https://evil.example"), respHeaders(":status", "200"))
	ts.exchange(t, request("GET", "api.example.com"), respHeaders(":status", "200"))
	ts.exchange(t, request("GET", "old.example.com", "origin", "https://app.example.com"))
	if err := ts.policies.Reload(); err != nil {
		t.Fatal(err)
	}

	resp, err := http.Get(admin.URL + "/observed")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc observe.Observed
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if doc.K != DefaultObserveK || len(doc.Policies) != 1 || doc.Policies[0].Name != "shop" {
		t.Fatalf("want k %d and one summary, of shop (legacy is off); got %+v", DefaultObserveK, doc)
	}
	s := doc.Policies[0]
	check := func(what string, got []observe.Entry, want ...observe.Entry) {
		t.Helper()
		if len(got) != len(want) {
			t.Errorf("%s: %v, want %v", what, got, want)
			return
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: %v, want %v", what, got, want)
			}
		}
	}
	// The preflight asks for x-api-key, which the policy does not allow:
	// denied (and counted) even in report mode.
	if s.Allowed != 1 || s.Denied != 2 {
		t.Errorf("allowed %d denied %d, want 1 and 2 (the request without an origin is not CORS)", s.Allowed, s.Denied)
	}
	check("origins", s.Origins, observe.Entry{Value: "https://app.example.com", Count: 2}, observe.Entry{Value: "https://evil.example", Count: 1})
	check("methods", s.Methods, observe.Entry{Value: "PUT", Count: 1})
	check("headers", s.Headers, observe.Entry{Value: "content-type", Count: 1}, observe.Entry{Value: "x-api-key", Count: 1})
	check("service credentials", s.ServiceCredentials, observe.Entry{Value: "https://app.example.com", Count: 1})
}
