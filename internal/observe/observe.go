// Package observe keeps a bounded summary of the CORS traffic each policy
// sees (the most frequent origins, the methods and headers preflights ask
// for, how many requests were allowed or denied, and which origins the
// service itself answered with credentials) for `corsproc suggest`.
//
// Memory is fixed whatever the traffic: every list is a space-saving
// sketch (Metwally, Agrawal, El Abbadi, 2005) of K entries. A count in a
// sketch is an upper bound; Error says by how much it may overstate.
package observe

import (
	"slices"
	"strings"
	"sync"
)

// Entry is one value of a sketch with its count.
type Entry struct {
	Value string `json:"value"`
	// Count is how many times Value was seen, at most Error too many.
	Count uint64 `json:"count"`
	// Error is how much Count may overstate: the count of the value it
	// replaced when the sketch was full.
	Error uint64 `json:"error,omitempty"`
}

// Sketch counts the K most frequent values in fixed memory. Not safe for
// concurrent use; [Policy] locks around it.
type Sketch struct {
	k       int
	entries []Entry
	index   map[string]int
}

// NewSketch returns a sketch of k entries (at least 1).
func NewSketch(k int) *Sketch {
	k = max(k, 1)
	return &Sketch{k: k, entries: make([]Entry, 0, k), index: make(map[string]int, k)}
}

// Add counts one occurrence of v. When the sketch is full and v is not in
// it, v takes the place of the least counted value and inherits its count,
// as space-saving does, so that no frequent value is ever missed.
func (s *Sketch) Add(v string) {
	if i, ok := s.index[v]; ok {
		s.entries[i].Count++
		return
	}
	// The sketch keeps its own copy, as map key too: v may view a
	// request's bytes, which are reused after the request.
	v = strings.Clone(v)
	if len(s.entries) < s.k {
		s.index[v] = len(s.entries)
		s.entries = append(s.entries, Entry{Value: v, Count: 1})
		return
	}
	m := 0
	for i := range s.entries {
		if s.entries[i].Count < s.entries[m].Count {
			m = i
		}
	}
	old := s.entries[m]
	delete(s.index, old.Value)
	s.index[v] = m
	s.entries[m] = Entry{Value: v, Count: old.Count + 1, Error: old.Count}
}

// Top returns the entries, most counted first (ties by value).
func (s *Sketch) Top() []Entry {
	out := slices.Clone(s.entries)
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out
}

// Policy is one policy's summary. Safe for concurrent use.
type Policy struct {
	mu          sync.Mutex
	origins     *Sketch
	methods     *Sketch
	headers     *Sketch
	credentials *Sketch // origins the service answered with allow-credentials: true
	allowed     uint64
	denied      uint64
}

// NewPolicy returns an empty summary keeping k entries per list.
func NewPolicy(k int) *Policy {
	return &Policy{origins: NewSketch(k), methods: NewSketch(k), headers: NewSketch(k), credentials: NewSketch(k)}
}

// Request records one CORS request (one with an origin): a preflight's
// requested method and header names (lower case, comma-separated lines),
// and whether the policy allowed it.
func (p *Policy) Request(origin string, preflight bool, method string, headerLines []string, allowed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.origins.Add(origin)
	if allowed {
		p.allowed++
	} else {
		p.denied++
	}
	if !preflight {
		return
	}
	p.methods.Add(method)
	for _, line := range headerLines {
		for name := range strings.SplitSeq(line, ",") {
			if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
				p.headers.Add(name)
			}
		}
	}
}

// ServiceCredentials records that the service's own response (report
// mode) allowed origin with credentials.
func (p *Policy) ServiceCredentials(origin string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.credentials.Add(origin)
}

// Summary is a policy's summary as /observed serves it.
type Summary struct {
	Name    string  `json:"name"`
	Allowed uint64  `json:"allowed"`
	Denied  uint64  `json:"denied"`
	Origins []Entry `json:"origins"`
	// Methods and Headers are what preflights asked for.
	Methods []Entry `json:"methods"`
	Headers []Entry `json:"headers"`
	// ServiceCredentials are the origins the service's own CORS answer
	// allowed with credentials (report mode only).
	ServiceCredentials []Entry `json:"service_credentials"`
}

// Summary returns a copy of the summary under name.
func (p *Policy) Summary(name string) Summary {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Summary{
		Name: name, Allowed: p.allowed, Denied: p.denied,
		Origins: p.origins.Top(), Methods: p.methods.Top(), Headers: p.headers.Top(),
		ServiceCredentials: p.credentials.Top(),
	}
}

// Observed is the /observed document.
type Observed struct {
	// K is how many entries each list keeps.
	K        int       `json:"k"`
	Policies []Summary `json:"policies"`
}
