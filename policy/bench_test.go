package policy

// Benchmarks of the decisions, each beside the same decision through
// rs/cors v1.11.1's handler, in the same run:
//
//	go test -run '^$' -bench . -benchmem -count 5 ./policy | tee bench.txt
//	benchstat -col /impl bench.txt
//
// impl=rscors is cors.New(...).Handler around a no-op handler, with one
// reused request and ResponseWriter (only its vary is reset, as rs/cors
// appends to it); impl=corsproc is Set.Decide plus, for a forwarded
// request, Decision.Respond on a response without CORS headers: both
// produce the full set of response headers. impl=decide is Set.Decide
// alone, the per-request decision the targets in docs/benchmarks.md
// are about. Before timing, each case checks that both agree on the
// decision, so they measure the same thing.
//
// Besides ns/op (wall time), each reports cpu-ns/op: the CPU time of the
// benchmark's own thread per operation. On a shared machine wall time also
// counts the time the process waits for a core; CPU time does not.

import (
	"net/http"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rs/cors"
	"golang.org/x/sys/unix"
)

// decBenchScenario is one policy, written for both.
type decBenchScenario struct {
	name    string
	yaml    string
	opts    cors.Options
	allowed string // an origin the policy allows
	denied  string // one it does not
}

var decBenchOnce struct {
	sync.Once
	scenarios []decBenchScenario
}

func decBenchScenarios() []decBenchScenario {
	decBenchOnce.Do(func() {
		exact := func(n int) decBenchScenario {
			origins := make([]string, n)
			for i := range origins {
				origins[i] = "https://svc" + strconv.Itoa(i) + ".example.com"
			}
			var b strings.Builder
			b.WriteString("policies:\n  - name: test\n    allowed_origins:\n")
			for _, o := range origins {
				b.WriteString("      - " + o + "\n")
			}
			return decBenchScenario{
				name: "origins=" + strconv.Itoa(n), yaml: b.String(),
				opts:    cors.Options{AllowedOrigins: origins},
				allowed: origins[n/2], denied: "https://svc" + strconv.Itoa(n/2) + ".example.net",
			}
		}
		wild := func(n int) decBenchScenario {
			patterns := make([]string, n)
			for i := range patterns {
				patterns[i] = "https://*.svc" + strconv.Itoa(i) + ".example.com"
			}
			return decBenchScenario{
				name: "wildcards=" + strconv.Itoa(n),
				yaml: "policies:\n  - name: test\n    allowed_origins: [" + strings.Join(patterns, ", ") + "]\n",
				opts: cors.Options{AllowedOrigins: patterns},
				// The match is halfway down rs/cors's list.
				allowed: "https://pr-7.svc" + strconv.Itoa(n/2) + ".example.com",
				denied:  "https://pr-7.svc" + strconv.Itoa(n/2) + ".example.net",
			}
		}
		regexes := func(n int) decBenchScenario {
			res := make([]string, n)
			for i := range res {
				res[i] = `https://[a-z0-9-]+\.preview` + strconv.Itoa(i) + `\.example\.dev`
			}
			// rs/cors has no regexes: the same anchored alternation,
			// through AllowOriginFunc.
			re := regexp.MustCompile(`^(?:(?:` + strings.Join(res, `)|(?:`) + `))$`)
			return decBenchScenario{
				name:    "regexes=" + strconv.Itoa(n),
				yaml:    "policies:\n  - name: test\n    allowed_origin_regexes: ['" + strings.Join(res, "', '") + "']\n",
				opts:    cors.Options{AllowOriginFunc: re.MatchString},
				allowed: "https://pr-7.preview" + strconv.Itoa(n-1) + ".example.dev",
				denied:  "https://pr-7.preview" + strconv.Itoa(n-1) + ".example.net",
			}
		}
		decBenchOnce.scenarios = []decBenchScenario{exact(1), exact(1000), exact(100000), wild(100), regexes(10)}
		for i := range decBenchOnce.scenarios {
			// The docs/contract.md §2 defaults, written out for rs/cors.
			o := &decBenchOnce.scenarios[i].opts
			o.AllowedMethods = []string{"DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"}
			o.AllowedHeaders = []string{"accept", "authorization", "content-type", "user-agent", "x-csrftoken", "x-requested-with"}
			o.MaxAge = 86400
		}
	})
	return decBenchOnce.scenarios
}

// decBenchWriter is a reusable ResponseWriter for rs/cors.
type decBenchWriter struct{ h http.Header }

func (w *decBenchWriter) Header() http.Header         { return w.h }
func (w *decBenchWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *decBenchWriter) WriteHeader(int)             {}

// decBenchCase is one request and the decision both must reach.
type decBenchCase struct {
	name  string
	req   Request
	allow bool
}

// decBench runs one case through rs/cors, corsproc and Decide alone.
func decBench(b *testing.B, s *Set, h http.Handler, c decBenchCase) {
	b.Helper()
	hreq := decRSHTTP(c.req)
	w := &decBenchWriter{h: http.Header{}}
	if got := decRSCorsproc(s, c.req) != ""; got != c.allow {
		b.Fatalf("corsproc: allowed=%v, want %v", got, c.allow)
	}
	if got := decRSAnswer(h, c.req) != ""; got != c.allow {
		b.Fatalf("rs/cors: allowed=%v, want %v", got, c.allow)
	}
	b.Run("impl=rscors", func(b *testing.B) {
		defer decCPU(b)()
		for b.Loop() {
			delete(w.h, "Vary")
			h.ServeHTTP(w, hreq)
		}
	})
	b.Run("impl=corsproc", func(b *testing.B) {
		var up Upstream
		var e Edit
		r := c.req
		defer decCPU(b)()
		for b.Loop() {
			d := s.Decide(&r)
			if !d.Local {
				d.Respond(&up, &e)
			}
		}
	})
	b.Run("impl=decide", func(b *testing.B) {
		r := c.req
		defer decCPU(b)()
		for b.Loop() {
			d := s.Decide(&r)
			_ = d
		}
	})
}

// decCPU reports allocations and, when the returned function runs after
// the loop, the thread's CPU time per operation as cpu-ns/op.
func decCPU(b *testing.B) func() {
	b.ReportAllocs()
	runtime.LockOSThread()
	start := decThreadCPU(b)
	return func() {
		used := decThreadCPU(b) - start
		runtime.UnlockOSThread()
		b.ReportMetric(float64(used)/float64(b.N), "cpu-ns/op")
	}
}

func decThreadCPU(b *testing.B) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return ts.Nano()
}

func BenchmarkDecide(b *testing.B) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	for _, sc := range decBenchScenarios() {
		s := decSet(b, sc.yaml)
		h := cors.New(sc.opts).Handler(noop)
		b.Run(sc.name, func(b *testing.B) {
			for _, c := range []decBenchCase{
				{"actual=allowed", decActual("GET", sc.allowed), true},
				{"actual=denied", decActual("GET", sc.denied), false},
				{"preflight=allowed", decPreflight(sc.allowed, "PUT", "content-type"), true},
				{"preflight=denied", decPreflight(sc.denied, "PUT", "content-type"), false},
			} {
				b.Run(c.name, func(b *testing.B) { decBench(b, s, h, c) })
			}
		})
	}
}

// BenchmarkAdversarial times the attack list's large inputs.
func BenchmarkAdversarial(b *testing.B) {
	noop := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	names := decManyHeaders(1000)
	slices.Sort(names) // as browsers send them, which rs/cors requires
	listed := decPolicy(`allowed_origins: ["https://app.example.com"]`, `allow_headers: [`+strings.Join(names, ", ")+`]`)
	s := decSet(b, listed)
	h := cors.New(cors.Options{AllowedOrigins: []string{decOrigin}, AllowedHeaders: names,
		AllowedMethods: []string{"DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"}, MaxAge: 86400}).Handler(noop)
	long := "https://" + strings.Repeat("a", 10*1024) + ".example.com"
	for _, c := range []decBenchCase{
		{"headers=1000", decPreflight(decOrigin, "PUT", strings.Join(names, ",")), true},
		{"header-lines=1000", decPreflight(decOrigin, "PUT", names...), true},
		{"commas=64KiB+unlisted", decPreflight(decOrigin, "PUT", strings.Repeat(",", 64<<10)+"x-unlisted"), false},
		{"origin=10KiB/actual", decActual("GET", long), false},
		{"origin=10KiB/preflight", decPreflight(long, "PUT", "x-h0"), false},
	} {
		b.Run(c.name, func(b *testing.B) { decBench(b, s, h, c) })
	}
}
