package extproc

import (
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/corsproc/corsproc/internal/observe"
	"github.com/corsproc/corsproc/policy"
)

// DefaultObserveK is how many origins, methods and headers each policy's
// summary keeps (the most frequent ones): memory is fixed whatever the
// traffic.
const DefaultObserveK = 50

// MaxObserveK bounds serve --observe-top: each policy's summary holds
// three sketches of k entries, so memory grows with k times the policies.
const MaxObserveK = 1000

// observers are the per-policy traffic summaries `corsproc suggest` reads
// from /observed. A summary outlives reloads that keep its policy's name;
// a policy that is off has none, so its requests cost nothing here.
type observers struct {
	k      int
	mu     sync.Mutex // guards byName; each summary locks itself
	byName map[string]*observe.Policy
}

// forSet returns the summaries of set's policies, keeping the existing
// ones of policies it keeps and dropping those of policies it drops.
func (o *observers) forSet(set *policy.Set) map[string]*observe.Policy {
	o.mu.Lock()
	defer o.mu.Unlock()
	next := map[string]*observe.Policy{}
	for i, p := range set.Policies() {
		if set.PolicyMode(i) == policy.Off {
			continue
		}
		if old := o.byName[p.Name]; old != nil {
			next[p.Name] = old
		} else {
			next[p.Name] = observe.NewPolicy(o.k)
		}
	}
	o.byName = next
	return next
}

// document is the /observed JSON.
func (o *observers) document() observe.Observed {
	o.mu.Lock()
	names := make([]string, 0, len(o.byName))
	for name := range o.byName {
		names = append(names, name)
	}
	byName := o.byName
	o.mu.Unlock()
	slices.Sort(names)
	doc := observe.Observed{K: o.k, Policies: []observe.Summary{}}
	for _, name := range names {
		doc.Policies = append(doc.Policies, byName[name].Summary(name))
	}
	return doc
}

// observe records a CORS request (one with an origin) in its policy's
// summary.
func (sc *setCounters) observe(r *policy.Request, d *policy.Decision) {
	if d.Class != policy.Preflight && d.Class != policy.Actual {
		return
	}
	if pc := sc.policy(d.PolicyIndex(), d.Policy); pc != nil && pc.observed != nil {
		pc.observed.Request(r.Origin, d.Class == policy.Preflight, r.RequestMethod, r.RequestHeaders, d.Outcome == policy.Allowed)
	}
}

// observeService records, in report mode, an origin the service's own
// answer allowed with credentials.
func (sc *setCounters) observeService(r *policy.Request, d *policy.Decision, up *policy.Upstream) {
	if d.Mode != policy.Report || up.AllowOrigin == "" || !strings.EqualFold(up.AllowCredentials, "true") {
		return
	}
	if pc := sc.policy(d.PolicyIndex(), d.Policy); pc != nil && pc.observed != nil && up.AllowOrigin == r.Origin {
		pc.observed.ServiceCredentials(r.Origin)
	}
}

// observedHandler serves the summaries as JSON: GET /observed.
func observedHandler(m *Metrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, m.obs.document())
	})
}
