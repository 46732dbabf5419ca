package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"
	psaapi "k8s.io/pod-security-admission/api"
	psapolicy "k8s.io/pod-security-admission/policy"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/corsproc/corsproc/policy"
)

// The kustomizations this repository ships.
var kustomizations = []string{
	"k8s/base",
	"k8s/overlays/envoy-gateway",
	"k8s/overlays/istio",
	"k8s/overlays/plain-envoy",
	"k8s/grafana",
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme,
		egv1a1.AddToScheme, gwv1b1.AddToScheme, istionet.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strictDecoder refuses unknown and duplicate fields, as `kubectl apply`
// does with server-side field validation (the default since 1.27).
var strictDecoder = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// object is one rendered manifest.
type object struct {
	Kind, APIVersion, Name, Namespace string
	YAML                              []byte
	Obj                               runtime.Object
}

func (o object) String() string { return o.Kind + " " + o.Namespace + "/" + o.Name }

// rendering is a kustomization's output, each object strict-decoded into
// its Go type.
type rendering struct {
	Dir     string
	Objects []object
}

var renderCache sync.Map // dir -> *rendering

// render runs kustomize (the library inside `kubectl apply -k`) on a
// folder of the repository and decodes every object.
func render(t *testing.T, rel string) *rendering {
	t.Helper()
	if r, ok := renderCache.Load(rel); ok {
		return r.(*rendering)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), repoPath(rel))
	if err != nil {
		t.Fatalf("kustomize build %s: %v", rel, err)
	}
	r := &rendering{Dir: rel}
	for _, res := range m.Resources() {
		y, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		o := object{Kind: res.GetKind(), APIVersion: res.GetApiVersion(), Name: res.GetName(), Namespace: res.GetNamespace(), YAML: y}
		obj, _, err := strictDecoder.Decode(y, nil, nil)
		if err != nil {
			t.Fatalf("%s: %s does not decode strictly into its Go type: %v", rel, o, err)
		}
		o.Obj = obj
		r.Objects = append(r.Objects, o)
	}
	renderCache.Store(rel, r)
	return r
}

// all returns the rendered objects of Go type T.
func all[T runtime.Object](r *rendering) []T {
	var out []T
	for _, o := range r.Objects {
		if v, ok := o.Obj.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

func find[T interface {
	runtime.Object
	GetName() string
	GetNamespace() string
}](r *rendering, namespace, name string) (T, bool) {
	for _, v := range all[T](r) {
		if v.GetName() == name && v.GetNamespace() == namespace {
			return v, true
		}
	}
	var zero T
	return zero, false
}

func mustFind[T interface {
	runtime.Object
	GetName() string
	GetNamespace() string
}](t *testing.T, r *rendering, namespace, name string) T {
	t.Helper()
	v, ok := find[T](r, namespace, name)
	if !ok {
		var zero T
		t.Fatalf("%s renders no %T %s/%s", r.Dir, zero, namespace, name)
	}
	return v
}

func selects(t *testing.T, sel *metav1.LabelSelector, labels map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return !s.Empty() && s.Matches(mapLabels(labels))
}

type mapLabels map[string]string

func (m mapLabels) Has(k string) bool              { _, ok := m[k]; return ok }
func (m mapLabels) Get(k string) string            { return m[k] }
func (m mapLabels) Lookup(k string) (string, bool) { v, ok := m[k]; return v, ok }

// containerPort resolves a probe's or a Service's port (a number or a
// name) against a container's declared ports.
func containerPort(c corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

func probePort(p *corev1.Probe) (intstr.IntOrString, bool) {
	switch {
	case p == nil:
		return intstr.IntOrString{}, false
	case p.GRPC != nil:
		return intstr.FromInt32(p.GRPC.Port), true
	case p.HTTPGet != nil:
		return p.HTTPGet.Port, true
	case p.TCPSocket != nil:
		return p.TCPSocket.Port, true
	}
	return intstr.IntOrString{}, false
}

// checkWorkloads holds every Deployment of a rendering to what makes it
// start and stay up the first time: labels and selectors agree, probes and
// Service ports hit declared ports, mounted ConfigMaps exist, resources
// are set, and the pod passes the "restricted" Pod Security Standard.
func checkWorkloads(t *testing.T, r *rendering) {
	eval, err := psapolicy.NewEvaluator(psapolicy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range all[*appsv1.Deployment](r) {
		pod := d.Spec.Template
		t.Run("Deployment "+d.Name+" selects its own pods", func(t *testing.T) {
			if !selects(t, d.Spec.Selector, pod.Labels) {
				t.Errorf("selector %v does not match template labels %v", d.Spec.Selector.MatchLabels, pod.Labels)
			}
			for _, tsc := range pod.Spec.TopologySpreadConstraints {
				if !selects(t, tsc.LabelSelector, pod.Labels) {
					t.Errorf("topology spread on %s does not select the pods", tsc.TopologyKey)
				}
			}
		})
		t.Run("Deployment "+d.Name+" runs at least two replicas", func(t *testing.T) {
			if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
				t.Errorf("replicas %v", d.Spec.Replicas)
			}
		})
		t.Run("Deployment "+d.Name+" passes the restricted Pod Security Standard", func(t *testing.T) {
			res := psapolicy.AggregateCheckResults(eval.EvaluatePod(
				psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec))
			if !res.Allowed {
				t.Errorf("forbidden: %s", res.ForbiddenDetail())
			}
		})
		t.Run("Deployment "+d.Name+" has a read-only root, no token, and resources", func(t *testing.T) {
			if pod.Spec.AutomountServiceAccountToken == nil || *pod.Spec.AutomountServiceAccountToken {
				t.Errorf("the service account token is mounted")
			}
			for _, c := range pod.Spec.Containers {
				sc := c.SecurityContext
				if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("container %s: root filesystem is writable", c.Name)
				}
				for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					if _, ok := c.Resources.Requests[res]; !ok {
						t.Errorf("container %s: no %s request", c.Name, res)
					}
					if _, ok := c.Resources.Limits[res]; !ok {
						t.Errorf("container %s: no %s limit", c.Name, res)
					}
				}
			}
		})
		t.Run("Deployment "+d.Name+" probes declared ports", func(t *testing.T) {
			for _, c := range pod.Spec.Containers {
				for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
					port, ok := probePort(p)
					if !ok {
						t.Errorf("container %s has no %s probe", c.Name, what)
						continue
					}
					if _, ok := containerPort(c, port); !ok {
						t.Errorf("container %s: %s probe on port %s, which the container does not declare", c.Name, what, port.String())
					}
				}
			}
		})
		t.Run("Deployment "+d.Name+" mounts only what exists", func(t *testing.T) {
			if sa := pod.Spec.ServiceAccountName; sa != "" && sa != "default" {
				if _, ok := find[*corev1.ServiceAccount](r, d.Namespace, sa); !ok {
					t.Errorf("service account %q is not rendered", sa)
				}
			}
			for _, v := range pod.Spec.Volumes {
				if v.ConfigMap != nil {
					if _, ok := find[*corev1.ConfigMap](r, d.Namespace, v.ConfigMap.Name); !ok {
						t.Errorf("volume %s: ConfigMap %q is not rendered", v.Name, v.ConfigMap.Name)
					}
				}
			}
			for _, c := range pod.Spec.Containers {
				for _, m := range c.VolumeMounts {
					if m.SubPath != "" || m.SubPathExpr != "" {
						t.Errorf("container %s mounts %s with a subPath: it would never see a ConfigMap update", c.Name, m.Name)
					}
				}
			}
		})
	}

	for _, s := range all[*corev1.Service](r) {
		t.Run("Service "+s.Name+" selects pods and their ports", func(t *testing.T) {
			var matched []*appsv1.Deployment
			for _, d := range all[*appsv1.Deployment](r) {
				if d.Namespace == s.Namespace && len(s.Spec.Selector) > 0 &&
					selects(t, &metav1.LabelSelector{MatchLabels: s.Spec.Selector}, d.Spec.Template.Labels) {
					matched = append(matched, d)
				}
			}
			if len(matched) != 1 {
				t.Fatalf("selector %v matches %d Deployments, want 1", s.Spec.Selector, len(matched))
			}
			for _, sp := range s.Spec.Ports {
				target := sp.TargetPort
				if target.Type == intstr.Int && target.IntVal == 0 {
					target = intstr.FromInt32(sp.Port)
				}
				found := false
				for _, c := range matched[0].Spec.Template.Spec.Containers {
					_, ok := containerPort(c, target)
					found = found || ok
				}
				if !found {
					t.Errorf("port %s targets %s, which no container declares", sp.Name, target.String())
				}
			}
		})
	}
	for _, p := range all[*policyv1.PodDisruptionBudget](r) {
		t.Run("PodDisruptionBudget "+p.Name+" covers a Deployment that can lose a pod", func(t *testing.T) {
			ok := false
			for _, d := range all[*appsv1.Deployment](r) {
				ok = ok || (d.Namespace == p.Namespace && selects(t, p.Spec.Selector, d.Spec.Template.Labels))
			}
			if !ok {
				t.Errorf("selector %v matches no Deployment", p.Spec.Selector.MatchLabels)
			}
		})
	}
	for _, h := range all[*autoscalingv2.HorizontalPodAutoscaler](r) {
		t.Run("HorizontalPodAutoscaler "+h.Name+" scales a Deployment that requests CPU", func(t *testing.T) {
			ref := h.Spec.ScaleTargetRef
			d, ok := find[*appsv1.Deployment](r, h.Namespace, ref.Name)
			if !ok || ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" {
				t.Fatalf("scale target %+v is not a rendered Deployment", ref)
			}
			if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
				t.Errorf("minReplicas %v, want at least 2", h.Spec.MinReplicas)
			}
			if d.Spec.Replicas != nil && h.Spec.MinReplicas != nil && *d.Spec.Replicas < *h.Spec.MinReplicas {
				t.Errorf("the Deployment's %d replicas are below the HPA's minimum", *d.Spec.Replicas)
			}
			for _, c := range d.Spec.Template.Spec.Containers {
				if _, ok := c.Resources.Requests[corev1.ResourceCPU]; !ok {
					t.Errorf("container %s has no CPU request: CPU utilisation is undefined", c.Name)
				}
			}
		})
	}
}

// checkNamespaces asserts every namespaced object lives in a namespace the
// rendering creates, or in one its gateway brings.
func checkNamespaces(t *testing.T, r *rendering, external ...string) {
	t.Run("every object's namespace exists", func(t *testing.T) {
		for _, o := range r.Objects {
			if o.Kind == "Namespace" || o.Namespace == "" || contains(external, o.Namespace) {
				continue
			}
			if _, ok := find[*corev1.Namespace](r, "", o.Namespace); !ok {
				t.Errorf("%s is in namespace %q, which is not rendered", o, o.Namespace)
			}
		}
	})
}

const corsprocNS = "corsproc"

// pod describes a pod that must or must not reach corsproc.
type pod struct {
	Namespace string
	Labels    map[string]string
}

// admits evaluates a NetworkPolicy for a connection from a pod to a named
// or numbered port of the selected pods, as the CNI would.
func admits(t *testing.T, np *networkingv1.NetworkPolicy, target corev1.Container, from pod, port string) bool {
	t.Helper()
	for _, rule := range np.Spec.Ingress {
		portOK := len(rule.Ports) == 0
		for _, p := range rule.Ports {
			if p.Port == nil {
				portOK = true
				continue
			}
			if cp, ok := containerPort(target, *p.Port); ok && (cp.Name == port || strconv.Itoa(int(cp.ContainerPort)) == port) {
				portOK = true
			}
		}
		if !portOK {
			continue
		}
		peerOK := len(rule.From) == 0
		for _, peer := range rule.From {
			if peer.IPBlock != nil {
				continue
			}
			nsOK := peer.NamespaceSelector == nil && from.Namespace == np.Namespace
			if peer.NamespaceSelector != nil {
				s, err := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
				if err != nil {
					t.Fatal(err)
				}
				nsOK = s.Matches(mapLabels{"kubernetes.io/metadata.name": from.Namespace})
			}
			podOK := peer.PodSelector == nil
			if peer.PodSelector != nil {
				s, err := metav1.LabelSelectorAsSelector(peer.PodSelector)
				if err != nil {
					t.Fatal(err)
				}
				podOK = s.Matches(mapLabels(from.Labels))
			}
			peerOK = peerOK || (nsOK && podOK)
		}
		if peerOK {
			return true
		}
	}
	return false
}

// corsprocContainer returns the corsproc Deployment and its container.
func corsprocContainer(t *testing.T, r *rendering) (*appsv1.Deployment, corev1.Container) {
	t.Helper()
	d := mustFind[*appsv1.Deployment](t, r, corsprocNS, "corsproc")
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "corsproc" {
			return d, c
		}
	}
	t.Fatalf("the corsproc Deployment has no container corsproc")
	return nil, corev1.Container{}
}

// checkCorsproc holds the corsproc Deployment, Service, ConfigMap and
// NetworkPolicy of a rendering to the SPEC: ports, probes, flags, policy,
// and who may connect.
func checkCorsproc(t *testing.T, r *rendering, gateway pod) {
	d, c := corsprocContainer(t, r)
	args := c.Args
	grpcAddr, ok := flagValue(args, "grpc-addr")
	if !ok {
		grpcAddr = ":9001"
	}
	adminAddr, ok := flagValue(args, "admin-addr")
	if !ok {
		adminAddr = ":9002"
	}
	t.Run("corsproc serves gRPC and admin on the declared ports, and only those", func(t *testing.T) {
		if len(args) == 0 || args[0] != "serve" {
			t.Fatalf("args %q, want serve ...", args)
		}
		g, a := addrPort(t, grpcAddr), addrPort(t, adminAddr)
		if g != grpcPort || a != adminPort {
			t.Errorf("gRPC on %d and admin on %d, SPEC says %d and %d", g, a, grpcPort, adminPort)
		}
		want := map[string]int32{"grpc": int32(g), "metrics": int32(a)}
		if len(c.Ports) != len(want) {
			t.Errorf("container declares %d ports, want %d", len(c.Ports), len(want))
		}
		for name, port := range want {
			if cp, ok := containerPort(c, intstr.FromString(name)); !ok || cp.ContainerPort != port {
				t.Errorf("no container port %s = %d", name, port)
			}
		}
	})
	t.Run("corsproc's readiness and liveness probes ask the gRPC health service", func(t *testing.T) {
		for what, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			if p == nil || p.GRPC == nil {
				t.Errorf("%s probe is not a gRPC probe", what)
				continue
			}
			if uint32(p.GRPC.Port) != addrPort(t, grpcAddr) {
				t.Errorf("%s probe on port %d, gRPC is on %s", what, p.GRPC.Port, grpcAddr)
			}
		}
	})
	t.Run("Prometheus finds the metrics by annotation", func(t *testing.T) {
		ann := d.Spec.Template.Annotations
		if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" ||
			ann["prometheus.io/port"] != strconv.Itoa(int(addrPort(t, adminAddr))) {
			t.Errorf("annotations %v do not point at the admin port's /metrics", ann)
		}
	})
	t.Run("the pod outlives corsproc's shutdown grace", func(t *testing.T) {
		grace := 15 * time.Second
		if v, ok := flagValue(args, "shutdown-grace"); ok {
			var err error
			if grace, err = time.ParseDuration(v); err != nil {
				t.Fatal(err)
			}
		}
		tg := d.Spec.Template.Spec.TerminationGracePeriodSeconds
		if tg == nil || time.Duration(*tg)*time.Second <= grace {
			t.Errorf("terminationGracePeriodSeconds %v is not longer than --shutdown-grace %v: the kubelet would kill corsproc mid-drain", tg, grace)
		}
	})
	t.Run("the policy corsproc loads is the ConfigMap's, and it passes corsproc validate", func(t *testing.T) {
		cfg, ok := flagValue(args, "config")
		if !ok {
			t.Fatal("no --config: corsproc would run the embedded development policy")
		}
		var mount *corev1.VolumeMount
		for i, m := range c.VolumeMounts {
			if path.Dir(cfg) == m.MountPath {
				mount = &c.VolumeMounts[i]
			}
		}
		if mount == nil {
			t.Fatalf("no volume is mounted at %s", path.Dir(cfg))
		}
		var cmName string
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.Name == mount.Name && v.ConfigMap != nil {
				cmName = v.ConfigMap.Name
			}
		}
		cm, ok := find[*corev1.ConfigMap](r, corsprocNS, cmName)
		if !ok {
			t.Fatalf("volume %s is not a rendered ConfigMap", mount.Name)
		}
		data, ok := cm.Data[path.Base(cfg)]
		if !ok {
			t.Fatalf("ConfigMap %s has no key %s", cm.Name, path.Base(cfg))
		}
		if _, err := policy.Parse("ConfigMap "+cm.Name+"/"+path.Base(cfg), []byte(data)); err != nil {
			t.Errorf("%v", err)
		}
	})
	t.Run("the Service speaks gRPC to corsproc's gRPC port", func(t *testing.T) {
		s := mustFind[*corev1.Service](t, r, corsprocNS, "corsproc")
		for _, sp := range s.Spec.Ports {
			cp, _ := containerPort(c, sp.TargetPort)
			if uint32(cp.ContainerPort) == addrPort(t, grpcAddr) {
				if sp.AppProtocol == nil || *sp.AppProtocol != "grpc" {
					t.Errorf("port %s has no appProtocol: grpc: gateways would speak HTTP/1.1 to it", sp.Name)
				}
				return
			}
		}
		t.Errorf("no Service port reaches gRPC")
	})

	np := mustFind[*networkingv1.NetworkPolicy](t, r, corsprocNS, "corsproc")
	t.Run("the NetworkPolicy covers corsproc's pods and blocks egress", func(t *testing.T) {
		if !selects(t, &np.Spec.PodSelector, d.Spec.Template.Labels) {
			t.Errorf("podSelector does not select corsproc's pods")
		}
		if !contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) || len(np.Spec.Egress) != 0 {
			t.Errorf("egress is not closed: corsproc needs no outbound connection")
		}
	})
	prometheus := pod{"monitoring", map[string]string{"app.kubernetes.io/name": "prometheus"}}
	stranger := pod{"default", map[string]string{"app": "shop"}}
	tests := []struct {
		name string
		from pod
		port string
		want bool
	}{
		{"the gateway reaches the gRPC port", gateway, "grpc", true},
		{"the gateway does not reach the admin port", gateway, "metrics", false},
		{"Prometheus reaches the metrics port", prometheus, "metrics", true},
		{"Prometheus does not reach the gRPC port", prometheus, "grpc", false},
		{"another pod reaches neither port", stranger, "grpc", false},
		{"another pod does not reach the metrics port", stranger, "metrics", false},
	}
	for _, tt := range tests {
		t.Run("NetworkPolicy: "+tt.name, func(t *testing.T) {
			if got := admits(t, np, c, tt.from, tt.port); got != tt.want {
				t.Errorf("pod %v in %s to port %s: admitted %v, want %v", tt.from.Labels, tt.from.Namespace, tt.port, got, tt.want)
			}
		})
	}
}

// moduleDir is where the go command keeps a dependency's source.
func moduleDir(t *testing.T, mod string) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", mod).Output()
	if err != nil {
		t.Fatalf("go list -m %s: %v", mod, err)
	}
	return strings.TrimSpace(string(out))
}

// crdSchema finds the CustomResourceDefinition of group/kind in a file of
// CRDs that the gateway project ships, and compiles the openAPIV3Schema of
// version as a JSON Schema. It fails if the version is not served.
func crdSchema(t *testing.T, file, group, kind, version string) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := kyaml.NewYAMLReader(bufio.NewReader(f))
	for {
		doc, err := rd.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Kind string `json:"kind"`
			Spec struct {
				Group    string                `json:"group"`
				Names    struct{ Kind string } `json:"names"`
				Versions []struct {
					Name       string `json:"name"`
					Served     bool   `json:"served"`
					Deprecated bool   `json:"deprecated"`
					Schema     struct {
						OpenAPIV3Schema json.RawMessage `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(doc, &crd); err != nil || crd.Kind != "CustomResourceDefinition" ||
			crd.Spec.Group != group || crd.Spec.Names.Kind != kind {
			continue
		}
		for _, v := range crd.Spec.Versions {
			if v.Name != version {
				continue
			}
			if !v.Served || v.Deprecated {
				t.Fatalf("%s.%s %s is not served, or deprecated, by the CRD in %s", kind, group, version, file)
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(v.Schema.OpenAPIV3Schema))
			if err != nil {
				t.Fatal(err)
			}
			// A CRD's schema is an OpenAPI 3.0 schema object: draft 4
			// keywords plus x-kubernetes-* extensions, which a JSON Schema
			// validator ignores.
			c := jsonschema.NewCompiler()
			c.DefaultDraft(jsonschema.Draft4)
			url := "mem:///" + group + "/" + version + "/" + kind
			if err := c.AddResource(url, doc); err != nil {
				t.Fatal(err)
			}
			s, err := c.Compile(url)
			if err != nil {
				t.Fatalf("the CRD schema of %s does not compile: %v", kind, err)
			}
			return s
		}
	}
	t.Fatalf("no CRD for %s.%s %s in %s", kind, group, version, file)
	return nil
}

// checkAgainstCRD validates every rendered object of a kind against the
// schema of the CRD its gateway installs: enums, patterns, required fields
// and types that the Go types alone do not enforce.
func checkAgainstCRD(t *testing.T, r *rendering, kind string, schema func(version string) *jsonschema.Schema) {
	for _, o := range r.Objects {
		if o.Kind != kind {
			continue
		}
		t.Run(o.String()+" conforms to its CRD's schema", func(t *testing.T) {
			gv := strings.SplitN(o.APIVersion, "/", 2)
			inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(yamlToJSON(t, o.String(), o.YAML)))
			if err != nil {
				t.Fatal(err)
			}
			if err := schema(gv[len(gv)-1]).Validate(inst); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
}

func TestKustomizationsRenderIntoStrictlyValidObjects(t *testing.T) {
	for _, dir := range kustomizations {
		t.Run(dir+" renders and every object decodes strictly", func(t *testing.T) {
			r := render(t, dir)
			if len(r.Objects) == 0 {
				t.Fatalf("%s renders nothing", dir)
			}
		})
	}
	t.Run("the strict decoder refuses an unknown field", func(t *testing.T) {
		_, _, err := strictDecoder.Decode([]byte("apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {selectr: {a: b}}\n"), nil, nil)
		if err == nil {
			t.Errorf("decoded without error")
		}
	})
	t.Run("the strict decoder refuses a kind it does not know", func(t *testing.T) {
		_, _, err := strictDecoder.Decode([]byte("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a}\n"), nil, nil)
		if err == nil {
			t.Errorf("decoded without error")
		}
	})
}

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
	checkNamespaces(t, r, "default")
	checkWorkloads(t, r)
	checkCorsproc(t, r, envoyGatewayProxy)
	eg := moduleDir(t, "github.com/envoyproxy/gateway")
	crds := filepath.Join(eg, "charts", "gateway-helm", "charts", "crds", "crds")
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
	t.Run("it inserts an HTTP filter before the gateway's router", func(t *testing.T) {
		lm := cp.GetMatch().GetListener()
		if cp.GetApplyTo() != istioapi.EnvoyFilter_HTTP_FILTER ||
			cp.GetMatch().GetContext() != istioapi.EnvoyFilter_GATEWAY ||
			cp.GetPatch().GetOperation() != istioapi.EnvoyFilter_Patch_INSERT_BEFORE ||
			lm.GetFilterChain().GetFilter().GetName() != hcmFilterName ||
			lm.GetFilterChain().GetFilter().GetSubFilter().GetName() != routerFilterName {
			t.Errorf("patch %v", cp)
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
	t.Run("the ext_proc filter runs before the router with corsproc's settings", func(t *testing.T) {
		cluster = checkExtProc(t, checkHTTPFilters(t, hcm))
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
