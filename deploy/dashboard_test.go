package deploy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

const dashboardFile = "k8s/grafana/corsproc-dashboard.json"

// specMetrics are docs/contract.md §4's metrics and their labels.
var specMetrics = map[string][]string{
	"corsproc_requests_total":                               {"policy", "class", "decision"},
	"corsproc_denials_total":                                {"policy", "reason"},
	"corsproc_report_mismatches_total":                      {"policy"},
	"corsproc_stream_errors_total":                          {"reason"},
	"corsproc_phase_duration_seconds":                       {"phase"},
	"corsproc_config_reloads_total":                         {"result"},
	"corsproc_config_last_reload_success_timestamp_seconds": {},
	"corsproc_config_info":                                  {"sha256"},
	"corsproc_build_info":                                   {"version", "commit", "goversion"},
}

// Labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance", "namespace", "pod"}

type dashboardPanel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Datasource  *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

type dashboard struct {
	UID           string           `json:"uid"`
	Title         string           `json:"title"`
	SchemaVersion int              `json:"schemaVersion"`
	Panels        []dashboardPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaVars replaces the dashboard's variables with values PromQL parses.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$policy", ".*", "$job", ".*")

// metricName maps a series name to its contract metric: histograms expose
// _bucket, _count and _sum series.
func metricName(series string) string {
	for _, suffix := range []string{"_bucket", "_count", "_sum"} {
		if base, ok := strings.CutSuffix(series, suffix); ok {
			if _, known := specMetrics[base]; known {
				return base
			}
		}
	}
	return series
}

func TestGrafanaDashboard(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal(readRepoFile(t, dashboardFile), &d); err != nil {
		t.Fatalf("%s is not JSON: %v", dashboardFile, err)
	}
	t.Run("it has a stable uid, a title and a schema version", func(t *testing.T) {
		if d.UID == "" || d.Title == "" || d.SchemaVersion == 0 {
			t.Errorf("uid %q, title %q, schemaVersion %d", d.UID, d.Title, d.SchemaVersion)
		}
	})
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	t.Run("it picks its data source from a variable", func(t *testing.T) {
		if vars["datasource"] != "datasource" {
			t.Errorf("no datasource variable: the dashboard would be tied to one Prometheus")
		}
	})
	t.Run("panels have unique ids and do not overlap", func(t *testing.T) {
		ids := map[int]string{}
		for i, p := range d.Panels {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			g := p.GridPos
			if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
				t.Errorf("panel %q has gridPos %+v outside the 24-column grid", p.Title, g)
			}
			for _, q := range d.Panels[:i] {
				h := q.GridPos
				if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
					t.Errorf("panels %q and %q overlap", q.Title, p.Title)
				}
			}
		}
	})

	used := map[string]bool{}
	for _, p := range d.Panels {
		if p.Type == "row" {
			continue
		}
		t.Run(fmt.Sprintf("panel %q queries only contract metrics and labels, in valid PromQL", p.Title), func(t *testing.T) {
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("datasource is not ${datasource}")
			}
			if p.Description == "" {
				t.Errorf("no description")
			}
			if len(p.Targets) == 0 {
				t.Fatalf("no queries")
			}
			for _, tg := range p.Targets {
				expr, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVars.Replace(tg.Expr))
				if err != nil {
					t.Errorf("query %s: %v\n%s", tg.RefID, err, tg.Expr)
					continue
				}
				for _, err := range checkPromQL(expr, used) {
					t.Errorf("query %s: %v", tg.RefID, err)
				}
			}
		})
	}
	t.Run("every contract metric is on a panel", func(t *testing.T) {
		for m := range specMetrics {
			if !used[m] {
				t.Errorf("no panel shows %s", m)
			}
		}
	})
}

// checkPromQL reports metrics and labels the contract does not define, and
// records the contract metrics used.
func checkPromQL(expr parser.Expr, used map[string]bool) []error {
	var errs []error
	var metrics []string
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := metricName(vs.Name)
		metrics = append(metrics, name)
		labels, spec := specMetrics[name]
		switch {
		case spec:
			used[name] = true
		case strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_"):
			return nil // the Go and process collectors
		default:
			errs = append(errs, fmt.Errorf("metric %s is not in docs/contract.md §4", vs.Name))
			return nil
		}
		for _, m := range vs.LabelMatchers {
			if m.Name != "__name__" && !contains(labels, m.Name) && !contains(targetLabels, m.Name) {
				errs = append(errs, fmt.Errorf("%s has no label %q", name, m.Name))
			}
		}
		return nil
	})
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		agg, ok := n.(*parser.AggregateExpr)
		if !ok {
			return nil
		}
		for _, l := range agg.Grouping {
			known := l == "le" || contains(targetLabels, l)
			for _, m := range metrics {
				known = known || contains(specMetrics[m], l)
			}
			if !known {
				errs = append(errs, fmt.Errorf("grouping by %q, a label none of %v has", l, metrics))
			}
		}
		return nil
	})
	return errs
}
