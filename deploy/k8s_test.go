package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"
	istionet "istio.io/client-go/pkg/apis/networking/v1alpha3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/util/intstr"
	kyaml "k8s.io/apimachinery/pkg/util/yaml"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	corsprocv1alpha1 "github.com/corsproc/corsproc/api/v1alpha1"
)

// This file renders the kustomizations and decodes what they render: the
// helpers every Kubernetes check uses, and the CRD schemas of the gateways.
// The checks shared by every rendering are in k8s_checks_test.go, one test
// per kustomization in k8s_overlays_test.go.

// The kustomizations this repository ships.
var kustomizations = []string{
	"k8s/base",
	"k8s/crd",
	"k8s/overlays/envoy-gateway",
	"k8s/overlays/istio",
	"k8s/overlays/plain-envoy",
	"k8s/grafana",
	"k8s/examples/teams",
}

var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		autoscalingv2.AddToScheme, networkingv1.AddToScheme,
		egv1a1.AddToScheme, gwv1.Install, gwv1b1.AddToScheme, istionet.AddToScheme,
		monitoringv1.AddToScheme, apiextensionsv1.AddToScheme, rbacv1.AddToScheme,
		corsprocv1alpha1.AddToScheme,
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
	return renderDir(t, rel, repoPath(rel))
}

// renderDir renders the kustomization in dir, cached under name.
func renderDir(t *testing.T, rel, dir string) *rendering {
	t.Helper()
	if r, ok := renderCache.Load(rel); ok {
		return r.(*rendering)
	}
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	m, err := k.Run(filesys.MakeFsOnDisk(), dir)
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
