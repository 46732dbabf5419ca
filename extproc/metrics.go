package extproc

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/corsproc/corsproc/internal/buildinfo"
	"github.com/corsproc/corsproc/internal/observe"
	"github.com/corsproc/corsproc/policy"
)

// Metrics are corsproc's Prometheus metrics (docs/contract.md §4), on a private
// registry so that tests and several servers in one process never collide.
// Every metric is named here; the hot path only touches pre-resolved
// counters and observers, so counting allocates nothing (but once, on a
// policy's first denial for a reason, which creates that series).
type Metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.CounterVec // policy, class, decision
	denials    *prometheus.CounterVec // policy, reason
	mismatches *prometheus.CounterVec // policy
	streamErrs *prometheus.CounterVec // reason
	phases     *prometheus.HistogramVec
	reloads    *prometheus.CounterVec // result
	lastOK     prometheus.Gauge       // config_last_reload_success_timestamp_seconds
	lastResult prometheus.Gauge       // config_last_reload_successful
	info       *prometheus.GaugeVec   // config_info{sha256}
	sources    *prometheus.GaugeVec   // policy_info{policy, source}
	streams    prometheus.Gauge       // streams_active

	infoMu      sync.Mutex
	infoSHA     string             // the sha256 label config_info has now
	infoSources map[[2]string]bool // the policy_info series there are now

	// seriesMu orders creating a per-policy series off the hot path
	// against deleting the series of policies a reload dropped.
	seriesMu sync.Mutex

	obs observers

	errs        [numStreamErrors]prometheus.Counter
	phaseReq    prometheus.Observer
	phaseResp   prometheus.Observer
	reloadOK    prometheus.Counter
	reloadFail  prometheus.Counter
	noPolicyReq prometheus.Counter
}

// streamError is a bounded reason for corsproc_stream_errors_total.
type streamError uint8

const (
	errEmptyMessage  streamError = iota // a ProcessingRequest with no request set
	errInvalidOutput                    // a header the policy produced failed the final check
	errRecv                             // the stream broke while receiving, other than a normal end
	errDecode                           // the message could not be decoded
	errSend                             // the reply could not be sent, other than a normal end
	errPanic                            // a bug: the stream was recovered from a panic
	numStreamErrors
)

var streamErrorNames = [numStreamErrors]string{
	errEmptyMessage:  "empty_message",
	errInvalidOutput: "invalid_output_header",
	errRecv:          "recv",
	errDecode:        "decode",
	errSend:          "send",
	errPanic:         "panic",
}

func (e streamError) String() string { return streamErrorNames[e] }

// phaseBuckets are microsecond-scale: a decision takes a few µs, so the
// default buckets (5 ms and up) would put everything in the first one. They
// reach past 200 ms, the message_timeout the shipped Envoy configurations
// set, so that a p99 over it can be told (histogram_quantile never answers
// more than the last finite bound).
var phaseBuckets = []float64{
	1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 200e-3, 500e-3, 1,
}

// NewMetrics registers every corsproc metric, with the Go and process
// collectors, on a new private registry; /observed keeps the
// DefaultObserveK most frequent items per policy.
func NewMetrics() *Metrics { return NewMetricsObserving(DefaultObserveK) }

// NewMetricsObserving is NewMetrics with /observed keeping the k most
// frequent origins, methods and headers per policy (serve --observe-top).
func NewMetricsObserving(k int) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), obs: observers{k: k}}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "corsproc_requests_total",
		Help: "Requests judged, by matched policy (\"\" for none), class (preflight, actual, no_origin, unmatched) and decision (allowed, denied, skipped).",
	}, []string{"policy", "class", "decision"})
	m.denials = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "corsproc_denials_total",
		Help: "Denied requests by policy and reason code (report mode included: there nothing is refused, the denial is only counted).",
	}, []string{"policy", "reason"})
	m.mismatches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "corsproc_report_mismatches_total",
		Help: "Responses of a report-mode policy whose own CORS headers disagree with what the policy would send.",
	}, []string{"policy"})
	m.streamErrs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "corsproc_stream_errors_total",
		Help: "ext_proc streams that ended in error or carried input corsproc refused, by reason.",
	}, []string{"reason"})
	m.phases = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "corsproc_phase_duration_seconds",
		Help:    "Time corsproc spends on one ext_proc message, from receipt to reply ready, by phase.",
		Buckets: phaseBuckets,
	}, []string{"phase"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "corsproc_config_reloads_total",
		Help: "Policy reloads after start (file change or SIGHUP), by result (success, failure). A failure keeps the running policy.",
	}, []string{"result"})
	m.lastOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "corsproc_config_last_reload_success_timestamp_seconds",
		Help: "Unix time at which the running policy was loaded.",
	})
	m.lastResult = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "corsproc_config_last_reload_successful",
		Help: "1 when the last load of the policy file succeeded, 0 when it failed and an older policy is still running.",
	})
	m.info = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "corsproc_config_info",
		Help: "Always 1; sha256 is the digest of the running policy: the policy file's, or with serve --kubernetes the file's and every admitted CORSPolicy's, the same on every replica holding the same objects.",
	}, []string{"sha256"})
	m.sources = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "corsproc_policy_info",
		Help: "Always 1, one series per running policy; source says where it came from: the policy file's name, or \"CORSPolicy NAMESPACE/NAME\" for a policy admitted from Kubernetes.",
	}, []string{"policy", "source"})
	m.streams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "corsproc_streams_active",
		Help: "ext_proc streams open now.",
	})
	build := buildinfo.Get()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "corsproc_build_info",
		Help: "Always 1; the labels say which corsproc runs: version, commit and the Go version that built it.",
		ConstLabels: prometheus.Labels{
			"version": build.Version, "commit": build.Commit, "goversion": build.GoVersion,
		},
	})
	buildInfo.Set(1)
	for _, c := range []prometheus.Collector{
		buildInfo, m.requests, m.denials, m.mismatches, m.streamErrs, m.phases,
		m.reloads, m.lastOK, m.lastResult, m.info, m.sources, m.streams,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		f(c)
	}
	for e := range numStreamErrors {
		m.errs[e] = m.streamErrs.WithLabelValues(e.String())
	}
	m.phaseReq = m.phases.WithLabelValues("request_headers")
	m.phaseResp = m.phases.WithLabelValues("response_headers")
	m.reloadOK = m.reloads.WithLabelValues("success")
	m.reloadFail = m.reloads.WithLabelValues("failure")
	m.noPolicyReq = m.requests.WithLabelValues("", policy.Unmatched.String(), policy.Skipped.String())
	return m
}

// Handler serves the metrics in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *Metrics) streamError(e streamError) { m.errs[e].Inc() }

// loaded records a policy set that now runs; reload says whether it
// replaced an earlier one (the first load is not a reload).
func (m *Metrics) loaded(set *policy.Set, at time.Time, reload bool) {
	if reload {
		m.reloadOK.Inc()
	}
	m.lastOK.Set(float64(at.UnixNano()) / 1e9)
	m.lastResult.Set(1)
	m.running(set)
}

// running records the set that runs now, loaded from the file or composed
// with policies from Kubernetes: its digest and each policy's source.
func (m *Metrics) running(set *policy.Set) {
	// The new series first, then the old ones dropped: a scrape in between
	// sees both for a moment, never none (absent(corsproc_config_info)
	// would fire).
	m.infoMu.Lock()
	defer m.infoMu.Unlock()
	sum := set.SHA256()
	m.info.WithLabelValues(sum).Set(1)
	if m.infoSHA != "" && m.infoSHA != sum {
		m.info.DeleteLabelValues(m.infoSHA)
	}
	m.infoSHA = sum
	now := make(map[[2]string]bool, len(set.Policies()))
	for i, p := range set.Policies() {
		k := [2]string{p.Name, set.PolicySource(i)}
		now[k] = true
		m.sources.WithLabelValues(k[0], k[1]).Set(1)
	}
	for k := range m.infoSources {
		if !now[k] {
			m.sources.DeleteLabelValues(k[0], k[1])
		}
	}
	m.infoSources = now
}

// reloadFailed records a policy file that was refused; the old set runs on.
func (m *Metrics) reloadFailed() {
	m.reloadFail.Inc()
	m.lastResult.Set(0)
}

// setCounters are the counters of one policy set, resolved when the set is
// loaded so that the hot path indexes a slice (by the decision's policy
// index) and does an atomic add.
type setCounters struct {
	m        *Metrics
	policies []*policyCounters // by position in the set
	noPolicy *metadataCache    // the metadata of requests no policy matched
	// retired is set, under m.seriesMu, once a newer set runs and the series
	// of the policies it dropped are deleted: a stream still holding this
	// set must not bring them back by creating a series.
	retired bool
}

type policyCounters struct {
	name     string
	requests [4][3]prometheus.Counter // [Class][Outcome]; nil for a pair the policy never produces
	// denials are created on a policy's first denial for that reason, not
	// up front: nine reasons for every policy would be most of a large
	// set's scrape, and almost all of them zero forever.
	denials  []atomic.Pointer[counterRef] // by Reason
	mismatch prometheus.Counter           // report mode only
	// observed is the policy's traffic summary; nil when it is off.
	observed *observe.Policy
	// meta is the policy's dynamic metadata, kept here because this is
	// what the hot path already looks up by the decision's policy index.
	meta *metadataCache
}

// counterRef holds a counter behind an atomic pointer.
type counterRef struct{ prometheus.Counter }

// forSet pre-creates the request series each policy of set can produce,
// so that dashboards show zeros instead of gaps, and the mismatch series
// of report-mode policies, whose zero is what says enforcing is safe.
func (m *Metrics) forSet(set *policy.Set) *setCounters {
	sc := &setCounters{m: m, noPolicy: newMetadataCache("")}
	observed := m.obs.forSet(set)
	reasons := len(policy.Reasons())
	for i, p := range set.Policies() {
		pc := &policyCounters{name: p.Name, denials: make([]atomic.Pointer[counterRef], reasons), observed: observed[p.Name],
			meta: newMetadataCache(p.Name)}
		req := func(c policy.Class, o policy.Outcome) {
			pc.requests[c][o] = m.requests.WithLabelValues(p.Name, c.String(), o.String())
		}
		mode := set.PolicyMode(i)
		if mode == policy.Off {
			req(policy.Unmatched, policy.Skipped)
		} else {
			req(policy.Preflight, policy.Allowed)
			req(policy.Preflight, policy.Denied)
			req(policy.Actual, policy.Allowed)
			req(policy.Actual, policy.Denied)
			req(policy.NoOrigin, policy.Skipped)
			if mode == policy.Report {
				pc.mismatch = m.mismatches.WithLabelValues(p.Name)
			}
		}
		sc.policies = append(sc.policies, pc)
	}
	return sc
}

// replaced retires old, the counters of the set that ran until now, and
// deletes every series of the policies that next does not have, in every
// vector labelled by policy, so that renaming policies does not grow the
// scrape. The policies next keeps keep their series and counts. Counts a
// stream still deciding with old adds to a deleted series are lost, as
// they would be for a policy that no longer exists.
func (m *Metrics) replaced(old, next *setCounters) {
	m.seriesMu.Lock()
	defer m.seriesMu.Unlock()
	old.retired = true
	kept := make(map[string]bool, len(next.policies))
	for _, pc := range next.policies {
		kept[pc.name] = true
	}
	for _, pc := range old.policies {
		if kept[pc.name] {
			continue
		}
		l := prometheus.Labels{"policy": pc.name}
		m.requests.DeletePartialMatch(l)
		m.denials.DeletePartialMatch(l)
		m.mismatches.DeletePartialMatch(l)
	}
}

// series returns the series of vec for labels, creating it unless sc is
// retired (then nil: the count is dropped rather than bring back a series
// of a policy that is gone). The rare path: a series not resolved up front.
func (sc *setCounters) series(vec *prometheus.CounterVec, labels ...string) prometheus.Counter {
	sc.m.seriesMu.Lock()
	defer sc.m.seriesMu.Unlock()
	if sc.retired {
		return nil
	}
	return vec.WithLabelValues(labels...)
}

// decided counts one decision and returns the dynamic metadata that
// reports it to Envoy (nil in the cases that cannot happen).
func (sc *setCounters) decided(d *policy.Decision) *decisionMeta {
	i := d.PolicyIndex()
	if i < 0 {
		sc.m.noPolicyReq.Inc()
		return sc.noPolicy.of(d)
	}
	pc := sc.policy(i, d.Policy)
	if pc == nil { // a set without this policy: cannot happen, but never panic
		if c := sc.series(sc.m.requests, d.Policy, d.Class.String(), d.Outcome.String()); c != nil {
			c.Inc()
		}
		return nil
	}
	meta := pc.meta.of(d)
	c := pc.requests[d.Class][d.Outcome]
	if c == nil {
		c = sc.series(sc.m.requests, d.Policy, d.Class.String(), d.Outcome.String())
		if c == nil {
			return meta
		}
	}
	c.Inc()
	if d.Outcome != policy.Denied || int(d.Reason) >= len(pc.denials) {
		return meta
	}
	ref := pc.denials[d.Reason].Load()
	if ref == nil {
		dc := sc.series(sc.m.denials, d.Policy, d.Reason.String())
		if dc == nil {
			return meta
		}
		ref = &counterRef{dc}
		pc.denials[d.Reason].Store(ref) // a racing first denial stores the same child
	}
	ref.Inc()
	return meta
}

// mismatched counts a report-mode response whose CORS headers disagree.
func (sc *setCounters) mismatched(d *policy.Decision) {
	if pc := sc.policy(d.PolicyIndex(), d.Policy); pc != nil && pc.mismatch != nil {
		pc.mismatch.Inc()
		return
	}
	if c := sc.series(sc.m.mismatches, d.Policy); c != nil {
		c.Inc()
	}
}

// policy returns the counters of policy i, named name, or nil when this
// set has no such policy (a decision of another set: cannot happen, since
// a snapshot pairs the set with its counters, but never count it wrongly).
func (sc *setCounters) policy(i int, name string) *policyCounters {
	if i < 0 || i >= len(sc.policies) || sc.policies[i].name != name {
		return nil
	}
	return sc.policies[i]
}
