package extproc

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/corsproc/corsproc/policy"
)

// Metrics are corsproc's Prometheus metrics (SPEC §4), on a private
// registry so that tests and several servers in one process never collide.
// Every metric is named here; the hot path only touches pre-resolved
// counters and observers, so counting allocates nothing.
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
	streams    prometheus.Gauge       // streams_active

	infoMu  sync.Mutex
	infoSHA string // the sha256 label config_info has now

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
// default buckets (5 ms and up) would put everything in the first one.
var phaseBuckets = []float64{
	1e-6, 2.5e-6, 5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6,
	1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3,
}

// NewMetrics registers every corsproc metric, with the Go and process
// collectors, on a new private registry.
func NewMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
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
		Help: "Always 1; sha256 is the digest of the running policy file.",
	}, []string{"sha256"})
	m.streams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "corsproc_streams_active",
		Help: "ext_proc streams open now.",
	})
	for _, c := range []prometheus.Collector{
		m.requests, m.denials, m.mismatches, m.streamErrs, m.phases,
		m.reloads, m.lastOK, m.lastResult, m.info, m.streams,
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
	// The new series first, then the old one dropped: a scrape in between
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
}

// reloadFailed records a policy file that was refused; the old set runs on.
func (m *Metrics) reloadFailed() {
	m.reloadFail.Inc()
	m.lastResult.Set(0)
}

// setCounters are the counters of one policy set, resolved when the set is
// loaded so that the hot path does a map lookup and an atomic add.
type setCounters struct {
	m        *Metrics
	policies map[string]*policyCounters
}

type policyCounters struct {
	name     string
	requests [4][3]prometheus.Counter // [Class][Outcome]; nil until first use when rare
	denials  []prometheus.Counter     // by Reason; nil when not a denial reason
	mismatch prometheus.Counter
}

// forSet pre-creates the series each policy of set can produce, so that
// dashboards show zeros instead of gaps.
func (m *Metrics) forSet(set *policy.Set) *setCounters {
	sc := &setCounters{m: m, policies: map[string]*policyCounters{}}
	reasons := policy.Reasons()
	for _, p := range set.Policies() {
		pc := &policyCounters{name: p.Name, denials: make([]prometheus.Counter, len(reasons))}
		req := func(c policy.Class, o policy.Outcome) {
			pc.requests[c][o] = m.requests.WithLabelValues(p.Name, c.String(), o.String())
		}
		if p.Mode != nil && *p.Mode == policy.Off.String() {
			req(policy.Unmatched, policy.Skipped)
		} else {
			req(policy.Preflight, policy.Allowed)
			req(policy.Preflight, policy.Denied)
			req(policy.Actual, policy.Allowed)
			req(policy.Actual, policy.Denied)
			req(policy.NoOrigin, policy.Skipped)
			for _, r := range reasons {
				if r.Denial() {
					pc.denials[r] = m.denials.WithLabelValues(p.Name, r.String())
				}
			}
			if p.Mode != nil && *p.Mode == policy.Report.String() {
				pc.mismatch = m.mismatches.WithLabelValues(p.Name)
			}
		}
		sc.policies[p.Name] = pc
	}
	return sc
}

// decided counts one decision.
func (sc *setCounters) decided(d *policy.Decision) {
	if d.Policy == "" {
		sc.m.noPolicyReq.Inc()
		return
	}
	pc := sc.policies[d.Policy]
	if pc == nil { // a set without this policy: cannot happen, but never panic
		sc.m.requests.WithLabelValues(d.Policy, d.Class.String(), d.Outcome.String()).Inc()
		return
	}
	c := pc.requests[d.Class][d.Outcome]
	if c == nil {
		c = sc.m.requests.WithLabelValues(d.Policy, d.Class.String(), d.Outcome.String())
	}
	c.Inc()
	if d.Outcome != policy.Denied {
		return
	}
	var dc prometheus.Counter
	if int(d.Reason) < len(pc.denials) {
		dc = pc.denials[d.Reason]
	}
	if dc == nil {
		dc = sc.m.denials.WithLabelValues(d.Policy, d.Reason.String())
	}
	dc.Inc()
}

// mismatched counts a report-mode response whose CORS headers disagree.
func (sc *setCounters) mismatched(d *policy.Decision) {
	if pc := sc.policies[d.Policy]; pc != nil && pc.mismatch != nil {
		pc.mismatch.Inc()
		return
	}
	sc.m.mismatches.WithLabelValues(d.Policy).Inc()
}
