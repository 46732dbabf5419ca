package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const observedJSON = `{"k": 50, "policies": [{
  "name": "shop-api", "allowed": 40, "denied": 3,
  "origins": [{"value": "https://app.example.com", "count": 30},
              {"value": "https://a.preview.example.com", "count": 2}, {"value": "https://b.preview.example.com", "count": 2},
              {"value": "https://c.preview.example.com", "count": 2}, {"value": "https://d.preview.example.com", "count": 2},
              {"value": "https://e.preview.example.com", "count": 2}, {"value": "null", "count": 3}],
  "methods": [{"value": "PUT", "count": 12}],
  "headers": [{"value": "content-type", "count": 12}, {"value": "x-api-key", "count": 5}],
  "service_credentials": [{"value": "https://app.example.com", "count": 25}]
}]}`

// TestSuggest serves an /observed document over a real socket and
// compares what suggest prints with a golden file.
func TestSuggest(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/observed" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("content-type", "application/json")
		w.Write([]byte(observedJSON))
	}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name, golden string
		args         []string
		code         int
	}{
		{"suggest prints the minimal policy for what was observed", "suggest", []string{"suggest", "--admin", srv.URL, "--config", "testdata/import/running.yaml"}, 0},
		{"suggest without an admin URL is a usage error", "suggest-usage", []string{"suggest"}, 2},
		{"an admin listener without /observed is an error", "suggest-not-found", []string{"suggest", "--admin", srv.URL + "/nope"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, code, _ := transcript(tt.args, "")
			got = strings.ReplaceAll(got, srv.URL, "http://ADMIN")
			if code != tt.code {
				t.Errorf("exit code %d, want %d\n%s", code, tt.code, got)
			}
			compareGolden(t, "testdata/import/"+tt.golden+".golden", got)
		})
	}
}
