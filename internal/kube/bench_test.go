package kube_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/corsproc/corsproc/internal/kube"
	"github.com/corsproc/corsproc/internal/testutil"
)

// BenchmarkApplyToEnforce is the time from writing a CORSPolicy to the
// API server to corsproc answering by it over gRPC (through the Envoy
// stand-in): the watch's delivery, admission, composition and swap. Each
// iteration updates the object to allow a new origin and polls a preflight
// from it every millisecond until it is allowed; ns/op is that delay.
//
//	go test -run '^$' -bench ApplyToEnforce -benchtime 50x ./internal/kube
func BenchmarkApplyToEnforce(b *testing.B) {
	for _, n := range []struct {
		name       string
		namespaces int
		perNS      int
	}{
		{"alone", 1, 1},
		{"among 1000 objects in 100 namespaces", 100, 10},
	} {
		b.Run(n.name, func(b *testing.B) {
			e := newEnv(b, "bench", n.namespaces)
			create(b, e, n.perNS)
			// Every namespace: one watch, as a cluster-wide install has.
			c := serve(b, e.kubeconfig, centralFor(e.teams...), e.own)
			waitRunning(b, c, n.namespaces*n.perNS)
			ns := e.teams[0]
			host := ns + ".example.com"
			i := 0
			b.ResetTimer()
			for b.Loop() {
				i++
				origin := "https://o" + strconv.Itoa(i) + ".example.com"
				e.admin.apply(b, ns, "p0", spec(host, origin))
				deadline := time.Now().Add(testutil.Patience())
				for !c.allows(b, host, origin) {
					if time.Now().After(deadline) {
						b.Fatalf("%s not enforced within %v", origin, testutil.Patience())
					}
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
}

// BenchmarkMemoryWith1000Objects reports what corsproc holds with 1,000
// CORSPolicy objects in 100 namespaces, all admitted and running: the Go
// heap it adds (heap-MB, after a GC, less the heap before it started) and
// the test process's resident set (rss-MB, everything included: the test's
// own clients and the Envoy stand-in too). Each iteration composes the
// running set again from scratch, as a reload of the policy file does.
//
//	go test -run '^$' -bench MemoryWith1000Objects -benchtime 5x ./internal/kube
func BenchmarkMemoryWith1000Objects(b *testing.B) {
	e := newEnv(b, "mem", 100)
	create(b, e, 10)
	before := heap()
	c := serve(b, e.kubeconfig, centralFor(e.teams...), e.own)
	waitRunning(b, c, 1000)
	added, resident := heap()-before, rss(b)
	policies := c.r.Policies()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		// A new central set has no admission to reuse: every object is
		// admitted again.
		if err := policies.Reload(); err != nil {
			b.Fatal(err)
		}
	}
	// After the loop: ResetTimer drops metrics reported before it.
	b.ReportMetric(float64(added)/1e6, "heap-MB")
	b.ReportMetric(float64(resident)/1e6, "rss-MB")
}

// create makes perNS CORSPolicy objects in each of e's namespaces, each
// for a host of its own, in parallel.
func create(b *testing.B, e *env, perNS int) {
	b.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(e.teams))
	for _, ns := range e.teams {
		wg.Go(func() {
			r := e.admin.dyn.Resource(kube.CORSPolicies).Namespace(ns)
			for i := range perNS {
				name := "p" + strconv.Itoa(i)
				obj := policyObject(b, ns, name, spec(fmt.Sprintf("h%d.%s.example.com", i, ns), "https://app.example.com"))
				if _, err := r.Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
}

// waitRunning waits until corsproc runs n policies from Kubernetes.
func waitRunning(b *testing.B, c *corsproc, n int) {
	b.Helper()
	testutil.WaitUntil(b, fmt.Sprintf("%d policies from Kubernetes run", n), func() bool {
		got := 0
		for _, p := range c.r.Policies().Set().Policies() {
			if strings.Contains(p.Name, "/") {
				got++
			}
		}
		return got >= n
	})
}

func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// rss is the process's resident set size, from /proc.
func rss(b *testing.B) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status to read the resident set from")
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
