// Package doctor reads an Envoy admin /config_dump and tells whether
// corsproc's ext_proc filter is placed and configured so that CORS works:
// before authentication, with the headers it needs, allowed to write its
// answer, and the only CORS answer on the chain.
//
// Everything here is a pure function over go-control-plane types: Decode
// turns the dump's JSON into an admin ConfigDump, Analyze turns that into
// findings. The facts each check rests on are in the project's notes on
// Envoy's filter chain (local replies, forward_rules, mutation_rules, the
// composite filter) and are cited in the findings' texts.
package doctor

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"

	"github.com/corsproc/corsproc/policy"
)

// Severity says how much a finding matters.
type Severity string

// Severities, worst first.
const (
	// Error: CORS breaks for some requests (a preflight refused, an answer
	// dropped, two answers).
	Error Severity = "error"
	// Warning: CORS works but something costs round trips, leaks headers to
	// corsproc, or breaks in a case the configuration does not rule out.
	Warning Severity = "warning"
	// Info: worth knowing; no change needed.
	Info Severity = "info"
)

func (s Severity) rank() int {
	switch s {
	case Error:
		return 0
	case Warning:
		return 1
	}
	return 2
}

// Where locates a finding in the dump. Empty fields do not apply.
type Where struct {
	// Section is a config dump section, for findings about the dump itself.
	Section string `json:"section,omitempty"`
	// Listener is the listener's name.
	Listener string `json:"listener,omitempty"`
	// FilterChain is the filter chain's name or, unnamed, its index
	// ("0", "default").
	FilterChain string `json:"filter_chain,omitempty"`
	// Filter is the HTTP filter's name, inside a composite filter written
	// "outer > inner".
	Filter string `json:"filter,omitempty"`
	// FilterIndex is the filter's position in http_filters, from 0.
	FilterIndex *int `json:"filter_index,omitempty"`
	// RouteConfig, VirtualHost and Route name a route configuration, one of
	// its virtual hosts and one of its routes.
	RouteConfig string `json:"route_config,omitempty"`
	VirtualHost string `json:"virtual_host,omitempty"`
	Route       string `json:"route,omitempty"`
}

// String renders w as "listener ingress, filter chain 0, http_filters[1]
// envoy.filters.http.jwt_authn, virtual host demo, route orders".
func (w Where) String() string {
	var parts []string
	add := func(label, v string) {
		if v != "" {
			parts = append(parts, label+v)
		}
	}
	add("section ", w.Section)
	add("listener ", w.Listener)
	add("filter chain ", w.FilterChain)
	if w.FilterIndex != nil {
		parts = append(parts, fmt.Sprintf("http_filters[%d] %s", *w.FilterIndex, w.Filter))
	} else {
		add("filter ", w.Filter)
	}
	add("route config ", w.RouteConfig)
	add("virtual host ", w.VirtualHost)
	add("route ", w.Route)
	if len(parts) == 0 {
		return "the dump"
	}
	return strings.Join(parts, ", ")
}

// Finding is one problem or remark.
type Finding struct {
	Severity Severity `json:"severity"`
	// Check is a stable identifier of the kind of finding, for scripts.
	Check string `json:"check"`
	Where Where  `json:"where"`
	// Message says what was found; Why, what it does to CORS or to
	// latency; Fix, what to change.
	Message string `json:"message"`
	Why     string `json:"why"`
	Fix     string `json:"fix"`
}

// Options tune the analysis.
type Options struct {
	// Cluster names corsproc's cluster exactly. Empty: any ext_proc filter
	// whose gRPC service's cluster name (or Google gRPC target) contains
	// "corsproc" is corsproc, which the shipped configurations (plain
	// Envoy "corsproc", Envoy Gateway "envoyextensionpolicy/<ns>/corsproc/…",
	// Istio "outbound|9001||corsproc.corsproc.svc.cluster.local") all meet.
	Cluster string
	// Policy, when set, enables the checks that need the policy file:
	// route names, and virtual hosts no policy matches.
	Policy *policy.Set
}

// Analyze checks every HTTP filter chain in the dump and returns the
// findings, worst first and then in dump order.
func Analyze(d *adminv3.ConfigDump, o Options) []Finding {
	a := &analysis{opts: o, dump: d}
	a.run()
	slices.SortStableFunc(a.findings, func(x, y Finding) int {
		return cmp.Compare(x.Severity.rank(), y.Severity.rank())
	})
	return a.findings
}

// Count returns how many findings have each severity.
func Count(fs []Finding) (errors, warnings, infos int) {
	for _, f := range fs {
		switch f.Severity {
		case Error:
			errors++
		case Warning:
			warnings++
		default:
			infos++
		}
	}
	return errors, warnings, infos
}
