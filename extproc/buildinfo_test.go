package extproc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/corsproc/corsproc/internal/buildinfo"
)

// TestBuildInfo checks that the scrape and /config both say which corsproc
// runs, with the same three values `corsproc version` prints.
func TestBuildInfo(t *testing.T) {
	t.Parallel()
	b := buildinfo.Get()
	m := NewMetrics()
	t.Run("corsproc_build_info is 1 with version, commit and goversion", func(t *testing.T) {
		t.Parallel()
		s := scrape(t, m)
		labels := []string{
			fmt.Sprintf("version=%q", b.Version), fmt.Sprintf("commit=%q", b.Commit), fmt.Sprintf("goversion=%q", b.GoVersion),
		}
		if n := s.count("corsproc_build_info", labels...); n != 1 {
			t.Fatalf("%d corsproc_build_info series with %v, want 1", n, labels)
		}
		if v := metricValue(t, m, "corsproc_build_info", "version="+b.Version, "commit="+b.Commit, "goversion="+b.GoVersion); v != 1 {
			t.Errorf("corsproc_build_info = %v, want 1", v)
		}
	})
	t.Run("/config carries the same build", func(t *testing.T) {
		t.Parallel()
		p, err := LoadPolicies(writeFile(t, t.TempDir(), "p.yaml", testPolicy), m, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(NewAdminHandler(p, m, AdminOptions{}))
		t.Cleanup(srv.Close)
		resp, err := (&http.Client{Timeout: scrapeTimeout}).Get(srv.URL + "/config")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct {
			Build map[string]string `json:"build"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{"version": b.Version, "commit": b.Commit, "goversion": b.GoVersion}
		if fmt.Sprint(got.Build) != fmt.Sprint(want) {
			t.Errorf("/config build = %v, want %v", got.Build, want)
		}
	})
}
