package testutil

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// Sample finds one series in a Prometheus text exposition: series is the
// name with its labels exactly as exposed, e.g.
// `corsproc_config_reloads_total{result="success"}`. ok is false when the
// series is absent.
func Sample(t testing.TB, exposition, series string) (v float64, ok bool) {
	t.Helper()
	for line := range strings.SplitSeq(exposition, "\n") {
		if rest, found := strings.CutPrefix(line, series+" "); found {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return v, true
		}
	}
	return 0, false
}

// Scrape fetches a /metrics URL and returns its exposition.
func Scrape(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
