package policy

import (
	"reflect"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// largePolicyFile is a policy file of policies policies, each matching its
// own host and listing origins exact origins: the shape of a gateway in
// front of many services, each with its own list.
func largePolicyFile(policies, origins int) []byte {
	var b strings.Builder
	b.WriteString("policies:\n")
	for p := range policies {
		ps := strconv.Itoa(p)
		b.WriteString("  - name: svc-" + ps + "\n    match: {hosts: [svc" + ps + ".example.com]}\n    allow_credentials: true\n    allowed_origins:\n")
		for o := range origins {
			b.WriteString("      - https://app" + strconv.Itoa(o) + ".tenant" + ps + ".example.com\n")
		}
	}
	return []byte(b.String())
}

// BenchmarkLoadLarge parses and compiles a file of 100,000 exact origins in
// 1,000 policies (about 4.5 MB): what a reload costs at scale. Besides
// ns/op (wall time, which on a shared machine counts waiting for a core)
// it reports cpu-ns/op, the process's CPU time per load (the chunks are
// parsed on every core), and peak-heap-x, the highest heap (objects
// allocated, sampled every millisecond) above what it was before the
// loop, as a multiple of the file's size.
//
//	go test -run '^$' -bench LoadLarge -benchmem -count 5 ./policy
func BenchmarkLoadLarge(b *testing.B) {
	data := largePolicyFile(1000, 100)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	runtime.GC()
	base := heapObjects()
	peak := base
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				peak = max(peak, heapObjects())
			}
		}
	}()
	start := processCPU(b)
	for b.Loop() {
		if _, err := Parse("big.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
	used := processCPU(b) - start
	close(stop)
	<-done
	b.ReportMetric(float64(used)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(peak-base)/float64(len(data)), "peak-heap-x")
}

// heapObjects is the heap memory held by objects, live or not yet swept.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func processCPU(b *testing.B) int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		b.Fatal(err)
	}
	return ts.Nano()
}

// TestLargePolicyFileLoads checks the benchmark's file is what it claims:
// valid, every policy and origin in it, no warning.
func TestLargePolicyFileLoads(t *testing.T) {
	t.Parallel()
	s, err := Parse("big.yaml", largePolicyFile(20, 50))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(s.Policies()); n != 20 {
		t.Errorf("%d policies, want 20", n)
	}
	if n := len(s.Policies()[19].AllowedOrigins); n != 50 {
		t.Errorf("the last policy has %d origins, want 50", n)
	}
	if len(s.Warnings()) != 0 {
		t.Errorf("warnings: %v", s.Warnings())
	}
	r := decActual("GET", "https://app49.tenant19.example.com")
	r.Host = "svc19.example.com"
	if d := s.Decide(&r); d.Outcome != Allowed || d.Policy != "svc-19" {
		t.Errorf("the last origin of the last policy: %v by %q, want allowed by svc-19", d.Outcome, d.Policy)
	}
}

// TestChunkedParseAgreesWithTheWholeFile: a long policies list is parsed
// in chunks (chunk.go); every result, problems and their lines included,
// must be what parsing the whole file gives, and anything the cut cannot
// keep (anchors, a YAML error) falls back to the whole file.
func TestChunkedParseAgreesWithTheWholeFile(t *testing.T) {
	t.Parallel()
	big := string(largePolicyFile(300, 20))
	withProblems := strings.Replace(big, "      - https://app3.tenant250.example.com\n",
		"      - https://app3.tenant250.example.com/\n      - HTTPS://App.Example.COM\n", 1)
	withProblems = strings.Replace(withProblems, "    allow_credentials: true\n", "    allow_credentials: true\n    colour: blue\n", 1)
	withProblems += "  - name: svc-0\n    allowed_origins: [\"null\"]\n"
	for _, c := range []struct {
		name, yaml string
		chunked    bool
	}{
		{"a clean file is cut into chunks", big, true},
		{"problems deep in the list are found on the lines the whole file gives", withProblems, true},
		{"defaults and comments around the list are read as before", "# top\ndefaults:\n  preflight_max_age: 600\n\npolicies:\n# first\n" + strings.TrimPrefix(big, "policies:\n") + "# end\n", true},
		{"entries written at the list's own indentation are cut too", "policies:\n" + strings.ReplaceAll(strings.TrimPrefix(big, "policies:\n"), "\n  ", "\n"), true},
		{"an anchor keeps the whole-file parse", "defaults: &d {mode: enforce}\n" + big, false},
		{"an alias keeps the whole-file parse", strings.Replace(big, "allow_credentials: true", "allow_credentials: *x", 1), false},
		{"a YAML error inside an entry reads as the whole file gives it", strings.Replace(big, "    match: {hosts: [svc200.example.com]}\n", "    match: {hosts: [svc200.example.com]\n", 1), false},
		{"a second document keeps the whole-file parse", big + "---\npolicies: []\n", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, chunks, ok := splitPolicies([]byte(c.yaml))
			if cut := ok && parseChunks(chunks); cut != c.chunked {
				t.Errorf("cut into chunks: %v, want %v", cut, c.chunked)
			}
			s1, err1 := parse("big.yaml", []byte(c.yaml), true)
			s2, err2 := parse("big.yaml", []byte(c.yaml), false)
			if (err1 == nil) != (err2 == nil) {
				t.Fatalf("chunked: %v; whole: %v", err1, err2)
			}
			if err1 != nil {
				p1, p2 := err1.(*Error).Problems, err2.(*Error).Problems
				if !reflect.DeepEqual(p1, p2) {
					t.Errorf("chunked problems differ:\n%v\nwhole file:\n%v", p1, p2)
				}
				for _, p := range p1 {
					if p.Line == 0 && p.Policy >= 0 {
						t.Errorf("no line for %s", p)
					}
				}
				return
			}
			if !reflect.DeepEqual(s1.Policies(), s2.Policies()) || !reflect.DeepEqual(s1.Warnings(), s2.Warnings()) || s1.SHA256() != s2.SHA256() {
				t.Errorf("the chunked parse gives another set")
			}
		})
	}
}
