package deploy

import (
	"encoding/json"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"google.golang.org/protobuf/encoding/protojson"
	istioapi "istio.io/api/networking/v1alpha3"
	istionet "istio.io/client-go/pkg/apis/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"
)

func TestKubernetesBase(t *testing.T) {
	r := render(t, "k8s/base")
	checkNamespaces(t, r)
	checkWorkloads(t, r)
	// Alone, the base admits pods labelled corsproc.io/gateway=true.
	checkCorsproc(t, r, pod{"any-namespace", map[string]string{"corsproc.io/gateway": "true"}})
	t.Run("the base has every object the deployment needs", func(t *testing.T) {
		mustFind[*corev1.Namespace](t, r, "", corsprocNS)
		mustFind[*corev1.ServiceAccount](t, r, corsprocNS, "corsproc")
		mustFind[*policyv1.PodDisruptionBudget](t, r, corsprocNS, "corsproc")
		mustFind[*autoscalingv2.HorizontalPodAutoscaler](t, r, corsprocNS, "corsproc")
		if d := mustFind[*appsv1.Deployment](t, r, corsprocNS, "corsproc"); *d.Spec.Replicas != 2 {
			t.Errorf("replicas %d, want 2", *d.Spec.Replicas)
		}
	})
	t.Run("the namespace enforces the restricted Pod Security Standard", func(t *testing.T) {
		ns := mustFind[*corev1.Namespace](t, r, "", corsprocNS)
		if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			t.Errorf("labels %v", ns.Labels)
		}
	})
	t.Run("the ConfigMap holds k8s/base/policy.yaml as written", func(t *testing.T) {
		found := false
		for _, cm := range all[*corev1.ConfigMap](r) {
			if strings.HasPrefix(cm.Name, "corsproc-policy") {
				found = true
				if cm.Data["policy.yaml"] != string(readRepoFile(t, "k8s/base/policy.yaml")) {
					t.Errorf("ConfigMap %s differs from k8s/base/policy.yaml", cm.Name)
				}
			}
		}
		if !found {
			t.Errorf("no corsproc-policy ConfigMap")
		}
	})
}

// The pods of Envoy Gateway's proxies, as Envoy Gateway labels them
// (internal/infrastructure/kubernetes/proxy/resource.go, EnvoyAppLabel), in
// its default namespace.
var envoyGatewayProxy = pod{"envoy-gateway-system", map[string]string{
	"app.kubernetes.io/name":       "envoy",
	"app.kubernetes.io/component":  "proxy",
	"app.kubernetes.io/managed-by": "envoy-gateway",
}}

func TestKubernetesEnvoyGatewayOverlay(t *testing.T) {
	r := render(t, "k8s/overlays/envoy-gateway")
	eg := moduleDir(t, "github.com/envoyproxy/gateway")
	crds := filepath.Join(eg, "charts", "gateway-helm", "charts", "crds", "crds")
	checkNamespaces(t, r, "default", "envoy-gateway-system")
	checkWorkloads(t, r)
	checkCorsproc(t, r, envoyGatewayProxy)
	checkEnvoyGatewayFilterOrder(t, r, crds)
	checkAgainstCRD(t, r, "EnvoyExtensionPolicy", func(v string) *jsonschema.Schema {
		return crdSchema(t, filepath.Join(crds, "generated", "gateway.envoyproxy.io_envoyextensionpolicies.yaml"), "gateway.envoyproxy.io", "EnvoyExtensionPolicy", v)
	})
	checkAgainstCRD(t, r, "ReferenceGrant", func(v string) *jsonschema.Schema {
		return crdSchema(t, filepath.Join(crds, "gatewayapi-crds.yaml"), "gateway.networking.k8s.io", "ReferenceGrant", v)
	})

	policies := all[*egv1a1.EnvoyExtensionPolicy](r)
	if len(policies) != 1 {
		t.Fatalf("%d EnvoyExtensionPolicies, want 1", len(policies))
	}
	p := policies[0]
	t.Run("the EnvoyExtensionPolicy targets a Gateway", func(t *testing.T) {
		if len(p.Spec.TargetRefs) == 0 {
			t.Fatal("no targetRefs")
		}
		for _, ref := range p.Spec.TargetRefs {
			if ref.Group != "gateway.networking.k8s.io" || ref.Kind != "Gateway" || ref.Name == "" {
				t.Errorf("targetRef %+v is not a Gateway", ref)
			}
		}
	})
	if len(p.Spec.ExtProc) != 1 {
		t.Fatalf("%d extProc entries, want 1", len(p.Spec.ExtProc))
	}
	ep := p.Spec.ExtProc[0]
	t.Run("the ext_proc backend is corsproc's Service on its gRPC port, granted", func(t *testing.T) {
		if len(ep.BackendRefs) != 1 {
			t.Fatalf("%d backendRefs, want 1", len(ep.BackendRefs))
		}
		ref := ep.BackendRefs[0].BackendObjectReference
		ns := p.Namespace
		if ref.Namespace != nil {
			ns = string(*ref.Namespace)
		}
		if (ref.Kind != nil && *ref.Kind != "Service") || (ref.Group != nil && *ref.Group != "") {
			t.Fatalf("backendRef %+v is not a Service", ref)
		}
		s := mustFind[*corev1.Service](t, r, ns, string(ref.Name))
		if ref.Port == nil || int32(*ref.Port) != s.Spec.Ports[0].Port || s.Spec.Ports[0].Name != "grpc" {
			t.Errorf("backendRef port %v is not the Service's grpc port", ref.Port)
		}
		if ns == p.Namespace {
			return
		}
		granted := false
		for _, g := range all[*gwv1b1.ReferenceGrant](r) {
			if g.Namespace != ns {
				continue
			}
			from, to := false, false
			for _, f := range g.Spec.From {
				from = from || (f.Group == "gateway.envoyproxy.io" && f.Kind == "EnvoyExtensionPolicy" && string(f.Namespace) == p.Namespace)
			}
			for _, x := range g.Spec.To {
				to = to || (x.Group == "" && x.Kind == "Service" && (x.Name == nil || string(*x.Name) == s.Name))
			}
			granted = granted || (from && to)
		}
		if !granted {
			t.Errorf("no ReferenceGrant in %s lets EnvoyExtensionPolicies in %s refer to Service %s: Envoy Gateway would refuse the policy", ns, p.Namespace, s.Name)
		}
	})
	t.Run("headers go both ways, bodies never, with mode override and the route name", func(t *testing.T) {
		pm := ep.ProcessingMode
		if pm == nil || pm.Request == nil || pm.Response == nil {
			t.Fatal("processingMode.request and .response must both be present, or Envoy Gateway skips that phase")
		}
		if pm.Request.Body != nil || pm.Response.Body != nil {
			t.Errorf("a body mode is set: corsproc never needs bodies")
		}
		if !pm.AllowModeOverride {
			t.Errorf("allowModeOverride is false")
		}
		if !contains(pm.Request.Attributes, routeNameAttr) {
			t.Errorf("request attributes %v lack %s", pm.Request.Attributes, routeNameAttr)
		}
	})
	t.Run("the message timeout is bounded and the policy fails open", func(t *testing.T) {
		if ep.MessageTimeout == nil {
			t.Fatal("no messageTimeout")
		}
		d, err := time.ParseDuration(string(*ep.MessageTimeout))
		if err != nil || d <= 0 || d > time.Second {
			t.Errorf("messageTimeout %q, want a bound between 0 and 1s", *ep.MessageTimeout)
		}
		if ep.FailOpen == nil || !*ep.FailOpen {
			t.Errorf("failOpen is not true; the deployment docs promise it")
		}
	})
}

// The Istio ingress gateway's pods, as Istio's default install labels them.
var istioIngress = pod{"istio-system", map[string]string{"app": "istio-ingressgateway", "istio": "ingressgateway"}}

func TestKubernetesIstioOverlay(t *testing.T) {
	r := render(t, "k8s/overlays/istio")
	checkNamespaces(t, r, "istio-system")
	checkWorkloads(t, r)
	checkCorsproc(t, r, istioIngress)
	checkIstioEnvoyFilter(t, r)
}

// checkIstioEnvoyFilter holds a rendering's one EnvoyFilter to its CRD and
// to what corsproc needs: INSERT_FIRST at the ingress gateway, corsproc's
// ext_proc settings, the corsproc Service as cluster.
func checkIstioEnvoyFilter(t *testing.T, r *rendering) {
	crds := filepath.Join(moduleDir(t, "istio.io/api"), "kubernetes", "customresourcedefinitions.gen.yaml")
	checkAgainstCRD(t, r, "EnvoyFilter", func(v string) *jsonschema.Schema {
		return crdSchema(t, crds, "networking.istio.io", "EnvoyFilter", v)
	})

	filters := all[*istionet.EnvoyFilter](r)
	if len(filters) != 1 {
		t.Fatalf("%d EnvoyFilters, want 1", len(filters))
	}
	ef := filters[0]
	// Istio's own JSON decoding lets unknown fields through; decode the spec
	// again with protojson, which does not.
	var raw struct {
		Spec json.RawMessage `json:"spec"`
	}
	for _, o := range r.Objects {
		if o.Kind == "EnvoyFilter" {
			if err := yaml.Unmarshal(o.YAML, &raw); err != nil {
				t.Fatal(err)
			}
		}
	}
	spec := &istioapi.EnvoyFilter{}
	t.Run("the EnvoyFilter's spec decodes strictly", func(t *testing.T) {
		if err := protojson.Unmarshal(raw.Spec, spec); err != nil {
			t.Fatalf("%v", err)
		}
	})
	t.Run("it applies to the ingress gateway's pods, in Istio's root namespace", func(t *testing.T) {
		if ef.Namespace != "istio-system" {
			t.Errorf("namespace %s", ef.Namespace)
		}
		sel := spec.GetWorkloadSelector().GetLabels()
		if len(sel) == 0 || !selects(t, &metav1.LabelSelector{MatchLabels: sel}, istioIngress.Labels) {
			t.Errorf("workloadSelector %v does not select the ingress gateway %v", sel, istioIngress.Labels)
		}
	})
	patches := spec.GetConfigPatches()
	if len(patches) != 1 {
		t.Fatalf("%d config patches, want 1", len(patches))
	}
	cp := patches[0]
	// envoy-filter-chain.md §C: Istio puts ext_authz, jwt_authn and rbac
	// ahead of everything it does not know; INSERT_BEFORE a named filter
	// inserts nothing when that filter is absent; INSERT_FIRST always
	// prepends.
	t.Run("it inserts corsproc's filter first, ahead of Istio's ext_authz, jwt_authn and rbac", func(t *testing.T) {
		lm := cp.GetMatch().GetListener()
		if cp.GetApplyTo() != istioapi.EnvoyFilter_HTTP_FILTER ||
			cp.GetMatch().GetContext() != istioapi.EnvoyFilter_GATEWAY ||
			cp.GetPatch().GetOperation() != istioapi.EnvoyFilter_Patch_INSERT_FIRST ||
			lm.GetFilterChain().GetFilter().GetName() != hcmFilterName {
			t.Errorf("patch %v: want INSERT_FIRST into the gateway's %s", cp, hcmFilterName)
		}
	})
	t.Run("the inserted filter is corsproc's ext_proc, pointed at the corsproc Service", func(t *testing.T) {
		value, err := protojson.Marshal(cp.GetPatch().GetValue())
		if err != nil {
			t.Fatal(err)
		}
		hf := &hcmv3.HttpFilter{}
		decodeEnvoyYAML(t, "EnvoyFilter patch value", value, hf)
		if hf.GetName() != extProcFilterName {
			t.Fatalf("filter name %q", hf.GetName())
		}
		cluster := checkExtProc(t, unpack(t, hf.GetTypedConfig(), &extprocv3.ExternalProcessor{}))
		// Istio names a Service's cluster outbound|PORT||HOST.
		parts := strings.Split(cluster, "|")
		if len(parts) != 4 || parts[0] != "outbound" || parts[2] != "" {
			t.Fatalf("cluster %q is not an Istio outbound cluster", cluster)
		}
		name, ns, ok := strings.Cut(strings.TrimSuffix(parts[3], ".svc.cluster.local"), ".")
		if !ok {
			t.Fatalf("cluster host %q is not a Service's name", parts[3])
		}
		s := mustFind[*corev1.Service](t, r, ns, name)
		for _, sp := range s.Spec.Ports {
			if strconv.Itoa(int(sp.Port)) == parts[1] {
				if sp.AppProtocol == nil || *sp.AppProtocol != "grpc" {
					t.Errorf("Service port %d has no appProtocol: grpc, so Istio would not speak HTTP/2 to it", sp.Port)
				}
				return
			}
		}
		t.Errorf("Service %s/%s has no port %s", ns, name, parts[1])
	})
}

func TestKubernetesPlainEnvoyOverlay(t *testing.T) {
	r := render(t, "k8s/overlays/plain-envoy")
	checkNamespaces(t, r)
	checkWorkloads(t, r)
	envoyDeploy := mustFind[*appsv1.Deployment](t, r, corsprocNS, "envoy")
	checkCorsproc(t, r, pod{envoyDeploy.Namespace, envoyDeploy.Spec.Template.Labels})

	c := envoyDeploy.Spec.Template.Spec.Containers[0]
	args := append(append([]string{}, c.Command...), c.Args...)
	cfgPath, ok := flagValue(args, "config-path")
	if !ok {
		t.Fatalf("envoy's command %q names no --config-path", args)
	}
	var cm *corev1.ConfigMap
	t.Run("Envoy loads its configuration from the rendered ConfigMap", func(t *testing.T) {
		for _, m := range c.VolumeMounts {
			if m.MountPath != path.Dir(cfgPath) {
				continue
			}
			for _, v := range envoyDeploy.Spec.Template.Spec.Volumes {
				if v.Name == m.Name && v.ConfigMap != nil {
					cm, _ = find[*corev1.ConfigMap](r, envoyDeploy.Namespace, v.ConfigMap.Name)
				}
			}
		}
		if cm == nil {
			t.Fatalf("no rendered ConfigMap is mounted at %s", path.Dir(cfgPath))
		}
		if _, ok := cm.Data[path.Base(cfgPath)]; !ok {
			t.Fatalf("ConfigMap %s has no key %s", cm.Name, path.Base(cfgPath))
		}
	})
	if cm == nil {
		return
	}
	b := loadBootstrap(t, "ConfigMap "+cm.Name, []byte(cm.Data[path.Base(cfgPath)]))
	clusters := clustersByName(b)
	ingress := listenerByName(t, b, "ingress")
	hcm := connectionManagers(t, ingress)[0]
	t.Run("every route is named and goes to a defined cluster", func(t *testing.T) {
		checkRoutes(t, hcm, clusters)
	})
	var cluster string
	t.Run("corsproc's filter runs first, with corsproc's settings", func(t *testing.T) {
		cluster = checkExtProc(t, checkHTTPFilters(t, hcm))
	})
	t.Run("every response carries vary: origin, added by Envoy", func(t *testing.T) {
		checkVaryOrigin(t, hcm)
	})
	t.Run("the ext_proc cluster speaks HTTP/2 to every corsproc pod through a headless Service", func(t *testing.T) {
		cl, ok := clusters[cluster]
		if !ok {
			t.Fatalf("ext_proc names cluster %q, which is not defined", cluster)
		}
		checkGRPCCluster(t, cl)
		for _, ep := range clusterEndpoints(cl) {
			name, ns, ok := strings.Cut(strings.TrimSuffix(ep.Host, ".svc.cluster.local"), ".")
			if !ok {
				t.Fatalf("endpoint %v is not a Service's DNS name", ep)
			}
			s := mustFind[*corev1.Service](t, r, ns, name)
			if s.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("Service %s is not headless: each Envoy would send every stream to one pod", s.Name)
			}
			d, cc := corsprocContainer(t, r)
			if !selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, d.Spec.Template.Labels) {
				t.Errorf("Service %s does not select corsproc's pods", s.Name)
			}
			// A headless Service's DNS answers pod IPs: Envoy connects to the
			// pods' port directly.
			if _, ok := containerPort(cc, intstr.FromInt32(int32(ep.Port))); !ok || ep.Port != grpcPort {
				t.Errorf("endpoint %v: corsproc's gRPC port is %d", ep, grpcPort)
			}
		}
	})
	t.Run("Envoy's ports are the listeners' ports, and the Service reaches the ingress listener", func(t *testing.T) {
		for name, listener := range map[string]string{"http": "ingress", "readiness": "readiness"} {
			cp, ok := containerPort(c, intstr.FromString(name))
			want := listenerByName(t, b, listener).GetAddress().GetSocketAddress().GetPortValue()
			if !ok || uint32(cp.ContainerPort) != want {
				t.Errorf("container port %s is %d, listener %s is on %d", name, cp.ContainerPort, listener, want)
			}
		}
		port, _ := probePort(c.ReadinessProbe)
		if port.String() != "readiness" || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/ready" {
			t.Errorf("the readiness probe does not ask the readiness listener's /ready")
		}
		s := mustFind[*corev1.Service](t, r, corsprocNS, "envoy")
		if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.String() != "http" {
			t.Errorf("Service envoy does not target the ingress listener")
		}
	})
	t.Run("the admin interface listens on loopback only", func(t *testing.T) {
		if sa := b.GetAdmin().GetAddress().GetSocketAddress(); !isLoopback(sa) {
			t.Errorf("admin address is %q", sa.GetAddress())
		}
	})
}

func TestKubernetesGrafanaDashboard(t *testing.T) {
	r := render(t, "k8s/grafana")
	cms := all[*corev1.ConfigMap](r)
	if len(cms) != 1 {
		t.Fatalf("%d ConfigMaps, want 1", len(cms))
	}
	cm := cms[0]
	t.Run("the dashboard ConfigMap carries the sidecar's label and the dashboard as written", func(t *testing.T) {
		if cm.Labels["grafana_dashboard"] != "1" {
			t.Errorf("labels %v lack grafana_dashboard: \"1\"", cm.Labels)
		}
		if cm.Data[path.Base(dashboardFile)] != string(readRepoFile(t, dashboardFile)) {
			t.Errorf("the ConfigMap's dashboard differs from %s", dashboardFile)
		}
		if size := len(cm.Data[path.Base(dashboardFile)]); size > 256*1024 {
			t.Errorf("the dashboard is %d bytes: over the 256 KiB annotation limit of kubectl apply", size)
		}
	})
}
