package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/rules"
	corev1 "k8s.io/api/core/v1"

	"github.com/corsproc/corsproc/internal/envoytest"
)

// renderWithComponent renders k8s/base with a component of
// k8s/components, as an overlay that adds it would.
func renderWithComponent(t *testing.T, component string) *rendering {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(repoPath("k8s"))); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "overlays", "with-"+component)
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	k := "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../base]\ncomponents: [../../components/" + component + "]\n"
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return renderDir(t, "k8s/base + k8s/components/"+component, overlay)
}

func TestMonitoringComponent(t *testing.T) {
	r := renderWithComponent(t, "monitoring")
	checkWorkloads(t, r)
	sms := all[*monitoringv1.ServiceMonitor](r)
	if len(sms) != 1 {
		t.Fatalf("%d ServiceMonitors, want 1", len(sms))
	}
	checkServiceMonitor(t, r, sms[0])
	prs := all[*monitoringv1.PrometheusRule](r)
	if len(prs) != 1 {
		t.Fatalf("%d PrometheusRules, want 1", len(prs))
	}
	checkPrometheusRule(t, prs[0], "corsproc", "corsproc")
}

// checkServiceMonitor asserts that sm selects corsproc's Service in its
// namespace and scrapes the port serving /metrics.
func checkServiceMonitor(t *testing.T, r *rendering, sm *monitoringv1.ServiceMonitor) {
	t.Run("the ServiceMonitor scrapes corsproc's metrics port", func(t *testing.T) {
		var svc *corev1.Service
		for _, s := range all[*corev1.Service](r) {
			if s.Namespace == sm.Namespace && selects(t, &sm.Spec.Selector, s.Labels) {
				if svc != nil {
					t.Fatalf("the selector matches Services %s and %s", svc.Name, s.Name)
				}
				svc = s
			}
		}
		if svc == nil {
			t.Fatalf("the selector %v matches no Service in namespace %q", sm.Spec.Selector, sm.Namespace)
		}
		if len(sm.Spec.Endpoints) != 1 {
			t.Fatalf("%d endpoints, want 1", len(sm.Spec.Endpoints))
		}
		ep := sm.Spec.Endpoints[0]
		if ep.Path != "" && ep.Path != "/metrics" {
			t.Errorf("path %q, want /metrics", ep.Path)
		}
		_, c := corsprocContainer(t, r)
		for _, p := range svc.Spec.Ports {
			if p.Name != ep.Port {
				continue
			}
			cp, ok := containerPort(c, p.TargetPort)
			if !ok || cp.ContainerPort != 9002 {
				t.Errorf("Service port %s leads to container port %v, want the admin port 9002", p.Name, cp.ContainerPort)
			}
			return
		}
		t.Errorf("the Service has no port named %q", ep.Port)
	})
}

// alertCase is a metrics sample for one alert, in promqltest's load
// notation (one sample a minute from time 0), and how long to evaluate it.
type alertCase struct {
	alert  string
	fires  bool
	name   string
	series string
	until  time.Duration
}

// alertCases hold every alert of the PrometheusRule to a sample that must
// fire it and one (or more) that must not. ns and deploy are where the
// rule expects corsproc.
func alertCases(ns, deploy string) []alertCase {
	pod := fmt.Sprintf(`namespace=%q, pod="corsproc-a"`, ns)
	den := func(policy string) string {
		return fmt.Sprintf(`corsproc_denials_total{%s, policy=%q, reason="origin_not_allowed"}`, pod, policy)
	}
	req := func(policy string) string {
		return fmt.Sprintf(`corsproc_requests_total{%s, policy=%q, class="actual", decision="allowed"} 0+100x100`, pod, policy)
	}
	bucket := func(le, values string) string {
		return fmt.Sprintf("corsproc_phase_duration_seconds_bucket{%s, phase=\"request_headers\", le=%q} %s\n", pod, le, values)
	}
	return []alertCase{
		{"CorsprocPolicyReloadFailing", true, "a pod refusing its file for 20 minutes",
			fmt.Sprintf("corsproc_config_last_reload_successful{%s} 1 1 0x20", pod), 22 * time.Minute},
		{"CorsprocPolicyReloadFailing", false, "a refusal fixed within 3 minutes",
			fmt.Sprintf("corsproc_config_last_reload_successful{%s} 1 1 0 0 0 1x20", pod), 25 * time.Minute},
		{"CorsprocStreamErrors", true, "a decode error every minute",
			fmt.Sprintf(`corsproc_stream_errors_total{%s, reason="decode"} 0+1x40`, pod), 40 * time.Minute},
		{"CorsprocStreamErrors", false, "stream error counters at zero",
			fmt.Sprintf(`corsproc_stream_errors_total{%s, reason="decode"} 0x40`, pod), 40 * time.Minute},
		{"CorsprocNoReadyReplica", true, "the Deployment down to no available replica",
			fmt.Sprintf(`kube_deployment_status_replicas_available{namespace=%q, deployment=%q} 2 2 0x10`, ns, deploy), 12 * time.Minute},
		{"CorsprocNoReadyReplica", false, "one available replica of two",
			fmt.Sprintf(`kube_deployment_status_replicas_available{namespace=%q, deployment=%q} 2 2 1x10`, ns, deploy), 12 * time.Minute},
		{"CorsprocDenialsRising", true, "a policy's denials jumping from 1 to 60 a minute",
			den("shop") + " 0+1x70 130+60x29\n" + req("shop"), 100 * time.Minute},
		{"CorsprocDenialsRising", true, "a policy that never denied starting to deny 60 a minute",
			den("shop") + " _x80 0+60x20\n" + req("shop"), 100 * time.Minute},
		{"CorsprocDenialsRising", false, "a policy denying 60 a minute all along",
			den("shop") + " 0+60x100\n" + req("shop"), 100 * time.Minute},
		{"CorsprocDenialsRising", false, "a jump too small to matter, 1 to 6 a minute",
			den("shop") + " 0+1x70 76+6x29\n" + req("shop"), 100 * time.Minute},
		{"CorsprocPhaseLatencyOverMessageTimeout", true, "most messages between 200 and 500 ms",
			bucket("0.001", "0+1x30") + bucket("0.2", "0+1x30") + bucket("0.5", "0+100x30") + bucket("1", "0+100x30") + bucket("+Inf", "0+100x30"),
			30 * time.Minute},
		{"CorsprocPhaseLatencyOverMessageTimeout", false, "every message under a millisecond",
			bucket("0.001", "0+100x30") + bucket("0.2", "0+100x30") + bucket("0.5", "0+100x30") + bucket("1", "0+100x30") + bucket("+Inf", "0+100x30"),
			30 * time.Minute},
		{"CorsprocPolicyDrift", true, "two pods on different policies for 20 minutes",
			fmt.Sprintf("corsproc_config_info{%s, sha256=\"aaa\"} 1x20\ncorsproc_config_info{namespace=%q, pod=\"corsproc-b\", sha256=\"bbb\"} 1x20", pod, ns), 20 * time.Minute},
		{"CorsprocPolicyDrift", false, "two pods on the same policy",
			fmt.Sprintf("corsproc_config_info{%s, sha256=\"aaa\"} 1x20\ncorsproc_config_info{namespace=%q, pod=\"corsproc-b\", sha256=\"aaa\"} 1x20", pod, ns), 20 * time.Minute},
	}
}

// checkPrometheusRule parses every rule's PromQL and evaluates each alert,
// with Prometheus' rule engine, `for` included, on samples that must fire
// it and samples that must not; every alert has both.
func checkPrometheusRule(t *testing.T, pr *monitoringv1.PrometheusRule, ns, deploy string) {
	byName := map[string]monitoringv1.Rule{}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("rule %q is not an alert", r.Record)
				continue
			}
			byName[r.Alert] = r
		}
	}
	cases := alertCases(ns, deploy)
	for name := range byName {
		fire := slices.ContainsFunc(cases, func(c alertCase) bool { return c.alert == name && c.fires })
		quiet := slices.ContainsFunc(cases, func(c alertCase) bool { return c.alert == name && !c.fires })
		if !fire || !quiet {
			t.Errorf("alert %s has no sample that fires it or none that must not", name)
		}
	}
	for _, c := range cases {
		verb := map[bool]string{true: "fires on", false: "stays quiet on"}[c.fires]
		t.Run(c.alert+" "+verb+" "+c.name, func(t *testing.T) {
			r, ok := byName[c.alert]
			if !ok {
				t.Fatalf("the PrometheusRule has no alert %s", c.alert)
			}
			if got := firesAlert(t, r, c.series, c.until); got != c.fires {
				t.Errorf("fired: %v, want %v", got, c.fires)
			}
		})
	}
	t.Run("the latency alert's threshold is the shipped Envoy message_timeout", func(t *testing.T) {
		r, ok := byName["CorsprocPhaseLatencyOverMessageTimeout"]
		if !ok {
			t.Fatal("no latency alert")
		}
		threshold := comparisonThreshold(t, r.Expr.String())
		for _, f := range []string{"envoy/envoy.yaml", "envoy/envoy-no-composite.yaml", "k8s/overlays/plain-envoy/envoy.yaml"} {
			cfg, err := envoytest.FromBootstrapFile(repoPath(f), "ingress")
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MessageTimeout.Seconds() != threshold {
				t.Errorf("%s: message_timeout %v, the alert's threshold %vs", f, cfg.MessageTimeout, threshold)
			}
		}
	})
}

// comparisonThreshold returns the number the expression's top-level
// comparison compares with.
func comparisonThreshold(t *testing.T, expr string) float64 {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := e.(*parser.BinaryExpr)
	if !ok || !b.Op.IsComparisonOperator() {
		t.Fatalf("%s is not a comparison", expr)
	}
	n, ok := b.RHS.(*parser.NumberLiteral)
	if !ok {
		t.Fatalf("%s does not compare with a number", expr)
	}
	return n.Val
}

// firesAlert loads series (promqltest's load notation, one sample a
// minute from time 0), evaluates rule every minute until until, as a rule
// group does, and reports whether it is firing then.
func firesAlert(t *testing.T, rule monitoringv1.Rule, series string, until time.Duration) bool {
	t.Helper()
	expr, err := parser.NewParser(parser.Options{}).ParseExpr(rule.Expr.String())
	if err != nil {
		t.Fatalf("alert %s: %v", rule.Alert, err)
	}
	var hold time.Duration
	if rule.For != nil {
		d, err := model.ParseDuration(string(*rule.For))
		if err != nil {
			t.Fatalf("alert %s: for %q: %v", rule.Alert, *rule.For, err)
		}
		hold = time.Duration(d)
	}
	storage := promqltest.LoadedStorage(t, "load 1m\n"+series)
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	ar := rules.NewAlertingRule(rule.Alert, expr, hold, 0, labels.FromMap(rule.Labels), labels.FromMap(rule.Annotations), labels.EmptyLabels(), "", true, nil)
	query := rules.EngineQueryFunc(engine, storage)
	for ts := time.Duration(0); ts <= until; ts += time.Minute {
		if _, err := ar.Eval(context.Background(), 0, time.Unix(0, 0).Add(ts), query, nil, 0); err != nil {
			t.Fatalf("alert %s at %v: %v", rule.Alert, ts, err)
		}
	}
	for _, a := range ar.ActiveAlerts() {
		if a.State == rules.StateFiring {
			return true
		}
	}
	return false
}
