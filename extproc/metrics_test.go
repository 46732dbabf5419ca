package extproc

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/corsproc/corsproc/policy"
)

// scrapeTimeout bounds one /metrics request; it is about hangs, not speed.
const scrapeTimeout = 30 * time.Second

// scrapeResult is one real /metrics scrape.
type scrapeResult struct {
	bytes  int
	series map[string]float64 // "name{labels}" -> value, one entry per sample line
}

// count is how many series have this metric name and carry every label
// pair given as `k="v"`.
func (s scrapeResult) count(name string, labels ...string) int {
	n := 0
	for k := range s.series {
		metric, rest, _ := strings.Cut(k, "{")
		if metric != name {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
			}
		}
		if ok {
			n++
		}
	}
	return n
}

// scrape serves m's handler on loopback and reads /metrics over HTTP, as
// Prometheus does.
func scrape(tb testing.TB, m *Metrics) scrapeResult {
	tb.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	client := &http.Client{Timeout: scrapeTimeout}
	resp, err := client.Get(srv.URL + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /metrics: %s\n%s", resp.Status, body)
	}
	out := scrapeResult{bytes: len(body), series: map[string]float64{}}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			tb.Fatalf("unparsable sample line %q", line)
		}
		out.series[line[:i]] = v
	}
	return out
}

// manyPolicies is a policy file of n policies named prefix0..prefix(n-1),
// each on its own host, every third in report mode.
func manyPolicies(n int, prefix string) string {
	var b strings.Builder
	b.WriteString("policies:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - name: %s%d\n    match: {hosts: [h%d.example.com]}\n    allowed_origins: [\"https://app%d.example.com\"]\n", prefix, i, i, i)
		if i%3 == 0 {
			b.WriteString("    mode: report\n")
		}
	}
	return b.String()
}

// BenchmarkReloadRenamedPolicies measures what a scrape weighs with 1,000
// policies and what is left behind when they are all renamed four times
// (issue 8 item 6). It is a measurement, not a timing:
//
//	go test -run '^$' -bench BenchmarkReloadRenamedPolicies -benchtime 1x ./extproc
//
// It reports the series and bytes of a real /metrics scrape after the
// first load and after the fourth rename, and the live heap and RSS after
// the renames.
func BenchmarkReloadRenamedPolicies(b *testing.B) {
	const policies, renames = 1000, 4
	for b.Loop() {
		m := NewMetrics()
		dir := b.TempDir()
		path := writeFile(b, dir, "p.yaml", manyPolicies(policies, "p0-"))
		p, err := LoadPolicies(path, m, discardLogger())
		if err != nil {
			b.Fatal(err)
		}
		first := scrape(b, m)
		for r := 1; r <= renames; r++ {
			writeFile(b, dir, "p.yaml", manyPolicies(policies, fmt.Sprintf("p%d-", r)))
			if err := p.Reload(); err != nil {
				b.Fatal(err)
			}
		}
		last := scrape(b, m)
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(len(first.series)), "series-first")
		b.ReportMetric(float64(first.bytes), "scrape-bytes-first")
		b.ReportMetric(float64(len(last.series)), "series-after-renames")
		b.ReportMetric(float64(last.bytes), "scrape-bytes-after-renames")
		b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MiB-after-renames")
		b.ReportMetric(last.series["process_resident_memory_bytes"]/(1<<20), "rss-MiB-after-renames")
	}
}

// renamePolicies are two versions of one policy file: "kept" stays as it
// is, "old-report" is renamed "new-report", "gone" is removed and
// "added" is new.
const (
	renameBefore = `
policies:
  - name: kept
    match: {hosts: [kept.example.com]}
    allowed_origins: ["https://app.example.com"]
  - name: old-report
    match: {hosts: [report.example.com]}
    mode: report
    allowed_origins: ["https://app.example.com"]
  - name: gone
    match: {hosts: [gone.example.com]}
    allowed_origins: ["https://app.example.com"]
`
	renameAfter = `
policies:
  - name: kept
    match: {hosts: [kept.example.com]}
    allowed_origins: ["https://app.example.com"]
  - name: new-report
    match: {hosts: [report.example.com]}
    mode: report
    allowed_origins: ["https://app.example.com"]
  - name: added
    match: {hosts: [added.example.com]}
    mode: "off"
`
)

// perPolicyMetrics are every metric labelled by policy.
var perPolicyMetrics = []string{"corsproc_requests_total", "corsproc_denials_total", "corsproc_report_mismatches_total"}

// TestReloadDeletesSeriesOfDroppedPolicies checks, on a real /metrics
// scrape, that a reload which renames and removes policies leaves none of
// their series behind and that the policies it keeps keep their counts.
func TestReloadDeletesSeriesOfDroppedPolicies(t *testing.T) {
	t.Parallel()
	ts := startServer(t, renameBefore, Options{})
	evil := "https://evil.example.com"
	ts.exchange(t, request("GET", "kept.example.com", "origin", app), respHeaders(":status", "200"))
	ts.exchange(t, request("GET", "kept.example.com", "origin", evil), respHeaders(":status", "200"))
	ts.exchange(t, request("GET", "report.example.com", "origin", evil),
		respHeaders(":status", "200", "access-control-allow-origin", evil))
	ts.exchange(t, request("GET", "gone.example.com", "origin", evil), respHeaders(":status", "200"))

	before := scrape(t, ts.metrics)
	for _, name := range []string{"kept", "old-report", "gone"} {
		if before.count("corsproc_requests_total", `policy="`+name+`"`) == 0 {
			t.Fatalf("before the reload, no requests_total series for %s", name)
		}
	}
	if before.count("corsproc_report_mismatches_total", `policy="old-report"`) != 1 {
		t.Fatalf("before the reload, no mismatch series for old-report")
	}

	writeFile(t, filepath.Dir(ts.policies.Path()), filepath.Base(ts.policies.Path()), renameAfter)
	if err := ts.policies.Reload(); err != nil {
		t.Fatal(err)
	}
	after := scrape(t, ts.metrics)

	t.Run("no series of a renamed or removed policy is left", func(t *testing.T) {
		for _, name := range []string{"old-report", "gone"} {
			for _, metric := range perPolicyMetrics {
				if n := after.count(metric, `policy="`+name+`"`); n != 0 {
					t.Errorf("%s still has %d series for %s", metric, n, name)
				}
			}
		}
	})
	t.Run("a kept policy keeps its counts", func(t *testing.T) {
		want := map[string]float64{
			`corsproc_requests_total{class="actual",decision="allowed",policy="kept"}`:    1,
			`corsproc_requests_total{class="actual",decision="denied",policy="kept"}`:     1,
			`corsproc_denials_total{policy="kept",reason="origin_not_allowed"}`:           1,
			`corsproc_requests_total{class="preflight",decision="allowed",policy="kept"}`: 0,
		}
		for series, v := range want {
			if got, ok := after.series[series]; !ok || got != v {
				t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
			}
		}
	})
	t.Run("a new or renamed policy starts with zeroed series", func(t *testing.T) {
		want := map[string]float64{
			`corsproc_requests_total{class="actual",decision="allowed",policy="new-report"}`: 0,
			`corsproc_report_mismatches_total{policy="new-report"}`:                          0,
			`corsproc_requests_total{class="unmatched",decision="skipped",policy="added"}`:   0,
		}
		for series, v := range want {
			if got, ok := after.series[series]; !ok || got != v {
				t.Errorf("%s = %v (present %v), want %v", series, got, ok, v)
			}
		}
	})
}

// TestPerPolicySeries checks which series a policy has before any traffic,
// and that a stream still deciding with a replaced set cannot bring back a
// dropped policy's series.
func TestPerPolicySeries(t *testing.T) {
	t.Parallel()
	t.Run("a policy has its request series up front and a denial series only once denied", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t, renameBefore, Options{})
		s := scrape(t, ts.metrics)
		if n := s.count("corsproc_requests_total", `policy="kept"`); n != 5 {
			t.Errorf("kept has %d requests_total series before any traffic, want 5", n)
		}
		if n := s.count("corsproc_denials_total"); n != 0 {
			t.Errorf("%d denials_total series before any denial, want 0", n)
		}
		for range 3 {
			ts.exchange(t, request("GET", "kept.example.com", "origin", "https://evil.example.com"), respHeaders(":status", "200"))
		}
		s = scrape(t, ts.metrics)
		if n := s.count("corsproc_denials_total"); n != 1 {
			t.Errorf("%d denials_total series after denials for one reason, want 1", n)
		}
		if v := s.series[`corsproc_denials_total{policy="kept",reason="origin_not_allowed"}`]; v != 3 {
			t.Errorf("denials_total{kept, origin_not_allowed} = %v, want 3", v)
		}
	})
	t.Run("a stream that decided with the replaced set does not bring back a dropped policy's series", func(t *testing.T) {
		t.Parallel()
		ts := startServer(t, renameBefore, Options{})
		old := ts.policies.snapshot().counters
		writeFile(t, filepath.Dir(ts.policies.Path()), filepath.Base(ts.policies.Path()), renameAfter)
		if err := ts.policies.Reload(); err != nil {
			t.Fatal(err)
		}
		old.decided(&policy.Decision{Policy: "gone", Class: policy.Actual, Outcome: policy.Denied, Reason: policy.ReasonMethodNotAllowed})
		old.decided(&policy.Decision{Policy: "gone", Class: policy.Preflight, Outcome: policy.Skipped})
		old.mismatched(&policy.Decision{Policy: "old-report", Class: policy.Actual, Outcome: policy.Denied})
		s := scrape(t, ts.metrics)
		for _, name := range []string{"old-report", "gone"} {
			for _, metric := range perPolicyMetrics {
				if n := s.count(metric, `policy="`+name+`"`); n != 0 {
					t.Errorf("%s has %d series for %s after a late count on the replaced set", metric, n, name)
				}
			}
		}
	})
}

// TestCountingDuringRenamesLeavesOnlyTheRunningSet counts on whatever set
// is running, including series created on first use, while reloads rename
// every policy: once the counting stops, only the running set's policies
// have series.
func TestCountingDuringRenamesLeavesOnlyTheRunningSet(t *testing.T) {
	t.Parallel()
	const policies, renames, counters = 20, 6, 4
	m := NewMetrics()
	dir := t.TempDir()
	path := writeFile(t, dir, "p.yaml", manyPolicies(policies, "r0-"))
	p, err := LoadPolicies(path, m, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range counters {
		wg.Go(func() {
			for i := g; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				snap := p.snapshot()
				name := snap.set.Policies()[i%policies].Name
				reason := policy.Reasons()[len(policy.Reasons())-1-i%5]
				snap.counters.decided(&policy.Decision{Policy: name, Class: policy.Preflight, Outcome: policy.Denied, Reason: reason})
				snap.counters.decided(&policy.Decision{Policy: name, Class: policy.Preflight, Outcome: policy.Skipped})
				snap.counters.mismatched(&policy.Decision{Policy: name, Class: policy.Actual})
			}
		})
	}
	for r := 1; r <= renames; r++ {
		writeFile(t, dir, "p.yaml", manyPolicies(policies, fmt.Sprintf("r%d-", r)))
		if err := p.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	s := scrape(t, m)
	last := fmt.Sprintf(`policy="r%d-`, renames)
	for _, metric := range perPolicyMetrics {
		if all, running := s.count(metric, `policy="r`), s.count(metric, last); all != running {
			t.Errorf("%s: %d series of replaced sets' policies are left", metric, all-running)
		}
	}
}

// TestRenamingPoliciesDoesNotGrowTheScrape renames every policy of a large
// set a few times: the scrape ends as large as it began, and stays within
// five request series per policy, one mismatch series per report-mode
// policy and the fixed metrics.
func TestRenamingPoliciesDoesNotGrowTheScrape(t *testing.T) {
	t.Parallel()
	const policies, renames = 200, 3
	m := NewMetrics()
	dir := t.TempDir()
	path := writeFile(t, dir, "p.yaml", manyPolicies(policies, "p0-"))
	p, err := LoadPolicies(path, m, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	first := scrape(t, m)
	perPolicy := first.count("corsproc_requests_total", `policy="p0-`) +
		first.count("corsproc_denials_total", `policy="p0-`) +
		first.count("corsproc_report_mismatches_total", `policy="p0-`)
	if want := 5*policies + (policies+2)/3; perPolicy != want {
		t.Errorf("%d per-policy series for %d policies, want %d", perPolicy, policies, want)
	}
	for r := 1; r <= renames; r++ {
		writeFile(t, dir, "p.yaml", manyPolicies(policies, fmt.Sprintf("p%d-", r)))
		if err := p.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	last := scrape(t, m)
	// Go runtime series can come and go a little with what the runtime
	// has done; the per-policy ones must not change at all.
	perPolicyLast := 0
	for _, metric := range perPolicyMetrics {
		perPolicyLast += last.count(metric, `policy="p`)
	}
	if perPolicyLast != perPolicy {
		t.Errorf("after %d renames: %d per-policy series, want %d as after the first load", renames, perPolicyLast, perPolicy)
	}
	if stale := last.count("corsproc_requests_total", `policy="p0-`); stale != 0 {
		t.Errorf("%d requests_total series left of the first names", stale)
	}
}

// BenchmarkCountDecision is what counting one decision costs on the hot
// path: today a lookup of the policy's counters by name in a map, then an
// atomic add (two for a denial).
func BenchmarkCountDecision(b *testing.B) {
	m := NewMetrics()
	path := writeFile(b, b.TempDir(), "p.yaml", manyPolicies(1000, "policy-number-"))
	p, err := LoadPolicies(path, m, discardLogger())
	if err != nil {
		b.Fatal(err)
	}
	sc := p.snapshot().counters
	for _, c := range []struct {
		name string
		d    policy.Decision
	}{
		{"allowed", policy.Decision{Policy: "policy-number-500", Class: policy.Actual, Outcome: policy.Allowed}},
		{"denied", policy.Decision{Policy: "policy-number-500", Class: policy.Preflight, Outcome: policy.Denied, Reason: policy.ReasonOriginNotAllowed}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sc.decided(&c.d)
			}
		})
	}
}
