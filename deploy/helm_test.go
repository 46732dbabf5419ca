package deploy

import (
	"bytes"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/corsproc/corsproc/policy"
)

const chartDir = "charts/corsproc"

// renderChart renders the chart with Helm's own engine, as `helm template
// corsproc charts/corsproc -n corsproc --include-crds` with these values
// does (values.schema.json applied), and strict-decodes every object like
// a kustomization's.
func renderChart(t *testing.T, values string) (*rendering, error) {
	t.Helper()
	ch, err := loader.Load(repoPath(chartDir))
	if err != nil {
		t.Fatal(err)
	}
	vals, err := chartutil.ReadValues([]byte(values))
	if err != nil {
		t.Fatal(err)
	}
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{Name: "corsproc", Namespace: corsprocNS, IsInstall: true}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, err
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return nil, err
	}
	// helm install applies crds/ first, whatever the values, and never
	// templates it.
	for _, c := range ch.CRDObjects() {
		files[c.Filename] = string(c.File.Data)
	}
	r := &rendering{Dir: chartDir + " " + values}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		rd := kyaml.NewYAMLReader(bufioReader(files[name]))
		for {
			doc, err := rd.Read()
			if err != nil {
				break
			}
			if len(bytes.TrimSpace(stripComments(doc))) == 0 {
				continue
			}
			var meta struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				Metadata   struct{ Name, Namespace string }
			}
			if err := yaml.Unmarshal(doc, &meta); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			obj, _, err := strictDecoder.Decode(doc, nil, nil)
			if err != nil {
				t.Fatalf("%s: %s %s does not decode strictly into its Go type: %v", name, meta.Kind, meta.Metadata.Name, err)
			}
			r.Objects = append(r.Objects, object{Kind: meta.Kind, APIVersion: meta.APIVersion, Name: meta.Metadata.Name,
				Namespace: meta.Metadata.Namespace, YAML: doc, Obj: obj})
		}
	}
	return r, nil
}

func mustRenderChart(t *testing.T, values string) *rendering {
	t.Helper()
	r, err := renderChart(t, values)
	if err != nil {
		t.Fatalf("render with %q: %v", values, err)
	}
	return r
}

func TestHelmChartLints(t *testing.T) {
	for _, values := range []string{"", "envoyGateway: {enabled: true}", "istio: {enabled: true}", "kubernetes: {enabled: true, namespaces: [team-a]}",
		"monitoring: {serviceMonitor: {enabled: true}, prometheusRule: {enabled: true}}"} {
		t.Run("helm lint passes with "+strings.TrimSpace("values "+values), func(t *testing.T) {
			vals, err := chartutil.ReadValues([]byte(values))
			if err != nil {
				t.Fatal(err)
			}
			l := lint.All(repoPath(chartDir), vals, corsprocNS, false)
			for _, m := range l.Messages {
				if m.Severity > support.InfoSev { // info: "icon is recommended"
					t.Errorf("%s", m)
				}
			}
		})
	}
}

func TestHelmChartDefault(t *testing.T) {
	r := mustRenderChart(t, "")
	checkWorkloads(t, r)
	checkCorsproc(t, r, pod{"any", map[string]string{"corsproc.io/gateway": "true"}})
	t.Run("the chart's default policy is k8s/base's", func(t *testing.T) {
		cm := mustFind[*corev1.ConfigMap](t, r, corsprocNS, "corsproc-policy")
		chartSet, err := policy.Parse("chart", []byte(cm.Data["policy.yaml"]))
		if err != nil {
			t.Fatal(err)
		}
		baseSet, err := policy.Parse("base", readRepoFile(t, "k8s/base/policy.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(chartSet.Policies(), baseSet.Policies()) {
			t.Errorf("the policies differ:\nchart %+v\nbase  %+v", chartSet.Policies(), baseSet.Policies())
		}
	})
	t.Run("the default render equals k8s/base in substance", func(t *testing.T) {
		compareWithBase(t, r, render(t, "k8s/base"))
	})
}

// chartVsBase lists every way the chart's default render may differ from
// k8s/base, and why; anything else is a failure.
var chartVsBase = []struct{ kind, path, why string }{
	{"Namespace", "", "Helm charts do not create their namespace (helm install --create-namespace); label it for Pod Security as docs/deploy.md says"},
	{"CustomResourceDefinition", "", "Helm installs crds/ whatever the values (--skip-crds leaves it out); kustomize adds it with k8s/components/kubernetes"},
	{"*", "metadata.labels", "Helm's recommended labels (instance, managed-by, helm.sh/chart) are added"},
	{"*", "metadata.name", "the policy ConfigMap has no content hash in its name; the pod template's checksum/policy annotation rolls the pods instead"},
	{"*", "selector", "selectors add app.kubernetes.io/instance, so that two releases never select each other's pods"},
	{"Deployment", "spec.template.metadata", "the pod template's labels add the Helm labels; its annotations add checksum/policy"},
	{"Deployment", "spec.replicas", "unset while autoscaling is on: the HPA owns the count, and helm upgrade would reset it"},
	{"Deployment", "args", "--log-level is explicit (logLevel value)"},
	{"Deployment", "image", "the image tag is the chart's appVersion (image.tag to pin one)"},
}

// compareWithBase compares each object of chart with base's of the same
// kind (and, for ConfigMaps, role), field by field, after removing the
// differences chartVsBase explains.
func compareWithBase(t *testing.T, chart, base *rendering) {
	normalise := func(o object) map[string]any {
		var m map[string]any
		if err := yaml.Unmarshal(o.YAML, &m); err != nil {
			t.Fatal(err)
		}
		md := m["metadata"].(map[string]any)
		delete(md, "labels")
		delete(md, "name")
		delete(md, "annotations")
		walkDelete(m, "selector")
		walkDelete(m, "matchLabels")
		walkDelete(m, "labelSelector")
		if o.Kind == "Deployment" {
			spec := m["spec"].(map[string]any)
			delete(spec, "replicas")
			delete(spec["template"].(map[string]any), "metadata")
			pod := spec["template"].(map[string]any)["spec"].(map[string]any)
			for _, c := range pod["containers"].([]any) {
				cm := c.(map[string]any)
				delete(cm, "image")
				var args []any
				for _, a := range cm["args"].([]any) {
					if !strings.HasPrefix(a.(string), "--log-level=") {
						args = append(args, a)
					}
				}
				cm["args"] = args
			}
			for _, v := range pod["volumes"].([]any) {
				if cmv, ok := v.(map[string]any)["configMap"].(map[string]any); ok {
					delete(cmv, "name")
				}
			}
		}
		if o.Kind == "ConfigMap" {
			delete(m, "data") // compared as policies above
		}
		return m
	}
	byKind := func(r *rendering) map[string]object {
		out := map[string]object{}
		for _, o := range r.Objects {
			if _, dup := out[o.Kind]; dup {
				t.Fatalf("%s renders two %s objects", r.Dir, o.Kind)
			}
			out[o.Kind] = o
		}
		return out
	}
	// A kind listed with no path may be on one side only.
	mayLack := map[string]bool{}
	for _, d := range chartVsBase {
		if d.path == "" {
			mayLack[d.kind] = true
		}
	}
	c, b := byKind(chart), byKind(base)
	for kind := range b {
		if _, ok := c[kind]; !ok && !mayLack[kind] {
			t.Errorf("the chart renders no %s", kind)
		}
	}
	for kind, co := range c {
		bo, ok := b[kind]
		if !ok {
			if !mayLack[kind] {
				t.Errorf("the chart renders a %s that %s does not", kind, base.Dir)
			}
			continue
		}
		cm, bm := normalise(co), normalise(bo)
		if !reflect.DeepEqual(cm, bm) {
			cj, _ := yaml.Marshal(cm)
			bj, _ := yaml.Marshal(bm)
			t.Errorf("%s differs from %s beyond the listed differences:\nchart:\n%s\nkustomize:\n%s", kind, base.Dir, cj, bj)
		}
	}
	t.Logf("the chart's render differs from %s only in:", base.Dir)
	for _, d := range chartVsBase {
		t.Logf("  %s %s: %s", d.kind, d.path, d.why)
	}
}

// walkDelete removes every map key named key, at any depth.
func walkDelete(v any, key string) {
	switch x := v.(type) {
	case map[string]any:
		delete(x, key)
		for _, e := range x {
			walkDelete(e, key)
		}
	case []any:
		for _, e := range x {
			walkDelete(e, key)
		}
	}
}

func TestHelmChartSwitches(t *testing.T) {
	t.Run("Envoy Gateway", func(t *testing.T) {
		r := mustRenderChart(t, "envoyGateway: {enabled: true}")
		checkWorkloads(t, r)
		checkCorsproc(t, r, envoyGatewayProxy)
		crds := filepath.Join(moduleDir(t, "github.com/envoyproxy/gateway"), "charts", "gateway-helm", "charts", "crds", "crds")
		checkEnvoyGatewayFilterOrder(t, r, crds)
		checkAgainstCRD(t, r, "EnvoyExtensionPolicy", func(v string) *jsonschema.Schema {
			return crdSchema(t, filepath.Join(crds, "generated", "gateway.envoyproxy.io_envoyextensionpolicies.yaml"), "gateway.envoyproxy.io", "EnvoyExtensionPolicy", v)
		})
		checkAgainstCRD(t, r, "ReferenceGrant", func(v string) *jsonschema.Schema {
			return crdSchema(t, filepath.Join(crds, "gatewayapi-crds.yaml"), "gateway.networking.k8s.io", "ReferenceGrant", v)
		})
		shipped := all[*egv1a1.EnvoyExtensionPolicy](render(t, "k8s/overlays/envoy-gateway"))[0]
		got := all[*egv1a1.EnvoyExtensionPolicy](r)
		if len(got) != 1 || !reflect.DeepEqual(got[0].Spec, shipped.Spec) {
			t.Errorf("the chart's EnvoyExtensionPolicy differs from k8s/overlays/envoy-gateway's")
		}
	})
	t.Run("Istio", func(t *testing.T) {
		r := mustRenderChart(t, "istio: {enabled: true}")
		checkWorkloads(t, r)
		checkCorsproc(t, r, istioIngress)
		checkIstioEnvoyFilter(t, r)
	})
	t.Run("monitoring", func(t *testing.T) {
		r := mustRenderChart(t, "monitoring: {serviceMonitor: {enabled: true}, prometheusRule: {enabled: true}}")
		sms := all[*monitoringv1.ServiceMonitor](r)
		prs := all[*monitoringv1.PrometheusRule](r)
		if len(sms) != 1 || len(prs) != 1 {
			t.Fatalf("%d ServiceMonitors and %d PrometheusRules, want one each", len(sms), len(prs))
		}
		checkServiceMonitor(t, r, sms[0])
		checkPrometheusRule(t, prs[0], corsprocNS, "corsproc")
	})
	t.Run("Kubernetes", func(t *testing.T) {
		r := mustRenderChart(t, "kubernetes: {enabled: true, namespaces: [team-a, team-b]}")
		checkWorkloads(t, r)
		checkCorsproc(t, r, pod{"any", map[string]string{"corsproc.io/gateway": "true"}})
		checkKubernetes(t, r, []string{"team-a", "team-b"})
		t.Run("without namespaces it equals k8s/base with k8s/components/kubernetes in substance", func(t *testing.T) {
			r := mustRenderChart(t, "kubernetes: {enabled: true}")
			checkKubernetes(t, r, nil)
			compareWithBase(t, r, renderWithComponent(t, "kubernetes"))
		})
	})
	t.Run("TLS with a client CA", func(t *testing.T) {
		r := mustRenderChart(t, "tls: {enabled: true, secretName: corsproc-tls, clientCASecretName: corsproc-client-ca}")
		checkWorkloads(t, r)
		_, c := corsprocContainer(t, r)
		for _, f := range []string{"tls-cert", "tls-key", "tls-client-ca"} {
			if _, ok := flagValue(c.Args, f); !ok {
				t.Errorf("args %q lack --%s", c.Args, f)
			}
		}
		if c.ReadinessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet == nil {
			t.Errorf("with TLS the probes must be httpGet: the kubelet's gRPC probes speak no TLS")
		}
	})
	t.Run("an existing ConfigMap replaces the inline policy", func(t *testing.T) {
		r := mustRenderChart(t, "policy: {existingConfigMap: my-policy}")
		if len(all[*corev1.ConfigMap](r)) != 0 {
			t.Errorf("a ConfigMap is rendered")
		}
		d, _ := corsprocContainer(t, r)
		if d.Spec.Template.Spec.Volumes[0].ConfigMap.Name != "my-policy" {
			t.Errorf("the pods mount %v", d.Spec.Template.Spec.Volumes[0])
		}
	})
	t.Run("without autoscaling the replicas value counts", func(t *testing.T) {
		r := mustRenderChart(t, "autoscaling: {enabled: false}\nreplicas: 3")
		d := all[*appsv1.Deployment](r)[0]
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 || len(all[runtime.Object](r)) == 0 {
			t.Errorf("replicas %v, want 3", d.Spec.Replicas)
		}
	})
}

func TestHelmValuesSchemaRefusesUnknownAndMistypedValues(t *testing.T) {
	for _, c := range []struct{ name, values string }{
		{"an unknown top-level key", "replica: 3"},
		{"an unknown nested key", "image: {tag: v1, digest: sha256:abc}"},
		{"a string for a number", "replicas: three"},
		{"a number for a boolean", "autoscaling: {enabled: 1}"},
		{"an unknown log level", "logLevel: verbose"},
		{"an extra arg that is not a flag", "extraArgs: [serve]"},
		{"a misspelt switch", "envoyGateway: {enable: true}"},
		{"a namespace list given as a string", "kubernetes: {enabled: true, namespaces: team-a}"},
		{"a namespace that is not a DNS label", "kubernetes: {enabled: true, namespaces: [Team_A]}"},
		{"a namespace named twice", "kubernetes: {enabled: true, namespaces: [team-a, team-a]}"},
	} {
		t.Run("the schema refuses "+c.name, func(t *testing.T) {
			if _, err := renderChart(t, c.values); err == nil {
				t.Errorf("%q rendered", c.values)
			}
		})
	}
}
