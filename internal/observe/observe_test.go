package observe

import (
	"fmt"
	"sync"
	"testing"
)

func TestSketchCountsExactlyWhileItHasRoom(t *testing.T) {
	t.Parallel()
	s := NewSketch(3)
	for _, v := range []string{"a", "b", "a", "c", "a", "b"} {
		s.Add(v)
	}
	got := s.Top()
	want := []Entry{{Value: "a", Count: 3}, {Value: "b", Count: 2}, {Value: "c", Count: 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("top %v, want %v", got, want)
	}
}

func TestSketchKeepsAFrequentValueAmongManyRareOnes(t *testing.T) {
	t.Parallel()
	s := NewSketch(8)
	for i := range 10000 {
		s.Add(fmt.Sprintf("https://rare%d.example", i))
		if i%3 == 0 {
			s.Add("https://app.example.com")
		}
	}
	top := s.Top()
	if len(top) != 8 {
		t.Fatalf("%d entries, want the fixed 8", len(top))
	}
	if top[0].Value != "https://app.example.com" {
		t.Fatalf("the frequent origin is not first: %v", top)
	}
	// Space-saving never undercounts, and overcounts by at most Error.
	const truth = 3334
	if top[0].Count < truth || top[0].Count-top[0].Error > truth {
		t.Errorf("count %d error %d does not bound the true %d", top[0].Count, top[0].Error, truth)
	}
}

func TestPolicyRecordsPreflightsMethodsAndHeaders(t *testing.T) {
	t.Parallel()
	p := NewPolicy(10)
	p.Request("https://app.example.com", true, "PUT", []string{"Content-Type, X-Api-Key", "x-api-key"}, true)
	p.Request("https://app.example.com", false, "", nil, true)
	p.Request("https://evil.example", false, "", nil, false)
	p.ServiceCredentials("https://app.example.com")
	s := p.Summary("shop")
	if s.Allowed != 2 || s.Denied != 1 {
		t.Errorf("allowed %d denied %d, want 2 and 1", s.Allowed, s.Denied)
	}
	if fmt.Sprint(s.Origins) != fmt.Sprint([]Entry{{Value: "https://app.example.com", Count: 2}, {Value: "https://evil.example", Count: 1}}) {
		t.Errorf("origins %v", s.Origins)
	}
	if fmt.Sprint(s.Methods) != fmt.Sprint([]Entry{{Value: "PUT", Count: 1}}) {
		t.Errorf("methods %v: only preflights ask for one", s.Methods)
	}
	if fmt.Sprint(s.Headers) != fmt.Sprint([]Entry{{Value: "x-api-key", Count: 2}, {Value: "content-type", Count: 1}}) {
		t.Errorf("headers %v, want them split, trimmed and lower-cased", s.Headers)
	}
	if len(s.ServiceCredentials) != 1 {
		t.Errorf("service credentials %v", s.ServiceCredentials)
	}
}

func TestPolicyIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	p := NewPolicy(4)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				p.Request(fmt.Sprintf("https://o%d.example", (g+i)%6), i%2 == 0, "GET", []string{"a"}, true)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			p.Summary("x")
		}
	})
	wg.Wait()
	if s := p.Summary("x"); s.Allowed != 4000 || len(s.Origins) != 4 {
		t.Errorf("allowed %d, %d origins; want 4000 and the fixed 4", s.Allowed, len(s.Origins))
	}
}

func BenchmarkPolicyRequest(b *testing.B) {
	p := NewPolicy(50)
	lines := []string{"content-type, x-api-key"}
	b.ReportAllocs()
	for b.Loop() {
		p.Request("https://app.example.com", true, "PUT", lines, true)
	}
}
