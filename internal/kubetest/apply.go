package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/corsproc/corsproc/internal/testutil"
)

// Objects decodes the YAML documents of data (as kubectl reads a file),
// skipping empty ones and kustomize's own kustomization.yaml.
func Objects(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*unstructured.Unstructured
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		if u.GetKind() == "Kustomization" {
			continue
		}
		out = append(out, u)
	}
}

// ReadObjects is [Objects] of the repository files at paths (from the
// repository's root), in order.
func ReadObjects(paths ...string) ([]*unstructured.Unstructured, error) {
	var out []*unstructured.Unstructured
	for _, p := range paths {
		data, err := os.ReadFile(RepoFile(p))
		if err != nil {
			return nil, err
		}
		objs, err := Objects(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// Apply creates or updates objs with server-side apply, as `kubectl apply
// --server-side` does. A namespaced object without a namespace goes into
// namespace, and so does a ServiceAccount subject of a binding without
// one, as kustomize's namespace: does for the manifests of k8s/.
func (s *Server) Apply(ctx context.Context, namespace string, objs ...*unstructured.Unstructured) error {
	dyn, mapper, err := s.dynamic()
	if err != nil {
		return err
	}
	for _, o := range objs {
		o = o.DeepCopy()
		gvk := o.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return fmt.Errorf("%s %s: %w", gvk.Kind, o.GetName(), err)
		}
		var r dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if o.GetNamespace() == "" {
				o.SetNamespace(namespace)
			}
			r = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		defaultSubjects(o, namespace)
		if _, err := r.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "kubetest", Force: true}); err != nil {
			return fmt.Errorf("applying %s %s: %w", gvk.Kind, o.GetName(), err)
		}
		if gvk.Kind == "CustomResourceDefinition" {
			if err := waitEstablished(ctx, dyn, o.GetName()); err != nil {
				return err
			}
		}
	}
	return nil
}

func defaultSubjects(o *unstructured.Unstructured, namespace string) {
	subjects, ok, _ := unstructured.NestedSlice(o.Object, "subjects")
	if !ok {
		return
	}
	for _, sub := range subjects {
		m, ok := sub.(map[string]any)
		if ok && m["kind"] == "ServiceAccount" && m["namespace"] == nil {
			m["namespace"] = namespace
		}
	}
	_ = unstructured.SetNestedSlice(o.Object, subjects, "subjects")
}

// dynamic returns a dynamic client and a REST mapper read from discovery
// now, so that it knows the CRDs installed so far.
func (s *Server) dynamic() (*dynamic.DynamicClient, meta.RESTMapper, error) {
	cfg := s.Config()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		return nil, nil, err
	}
	return dyn, restmapper.NewDiscoveryRESTMapper(groups), nil
}

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// waitEstablished waits until the CRD is served: a CRD applied a moment
// ago may not be yet.
func waitEstablished(ctx context.Context, dyn dynamic.Interface, name string) error {
	return wait.PollUntilContextTimeout(ctx, 50*time.Millisecond, testutil.Patience(), true, func(ctx context.Context) (bool, error) {
		u, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
}

// CRDFiles are the CORSPolicy CustomResourceDefinition as shipped: the one
// the tests install, so that the tests check its schema.
var CRDFiles = []string{"k8s/crd/corsproc.io_corspolicies.yaml"}

// RBACFiles are the RBAC of k8s/components/kubernetes, applied as shipped
// by the tests that run corsproc as its ServiceAccount.
var RBACFiles = []string{"k8s/components/kubernetes/rbac.yaml"}

// InstallCRD installs the CORSPolicy CRD from the repository's k8s/crd
// (applying it again changes nothing).
func (s *Server) InstallCRD(ctx context.Context) error {
	objs, err := ReadObjects(CRDFiles...)
	if err != nil {
		return err
	}
	return s.Apply(ctx, "", objs...)
}

// CreateNamespace creates namespace name unless it exists.
func (s *Server) CreateNamespace(ctx context.Context, name string) error {
	cs, err := corev1client.NewForConfig(s.Config())
	if err != nil {
		return err
	}
	_, err = cs.Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// InstallRBAC applies the shipped RBAC (RBACFiles) as an installation in
// namespace would have it, as kustomize's namespace: and nameSuffix: make
// it: its namespaced objects and the ServiceAccount it binds in namespace,
// its cluster-wide objects named with "-"+namespace, so that tests in
// parallel each have their own. It returns the configuration of that
// ServiceAccount, corsproc's identity.
func (s *Server) InstallRBAC(ctx context.Context, namespace string) (*rest.Config, error) {
	objs, err := ReadObjects(RBACFiles...)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		switch o.GetKind() {
		case "ClusterRole", "ClusterRoleBinding":
			o.SetName(o.GetName() + "-" + namespace)
		default:
			o.SetNamespace(namespace)
		}
		if ref, ok, _ := unstructured.NestedString(o.Object, "roleRef", "name"); ok && o.GetKind() == "ClusterRoleBinding" {
			_ = unstructured.SetNestedField(o.Object, ref+"-"+namespace, "roleRef", "name")
		}
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		for _, sub := range subjects {
			if m, ok := sub.(map[string]any); ok && m["kind"] == "ServiceAccount" {
				m["namespace"] = namespace
			}
		}
		if subjects != nil {
			_ = unstructured.SetNestedSlice(o.Object, subjects, "subjects")
		}
	}
	if err := s.Apply(ctx, namespace, objs...); err != nil {
		return nil, err
	}
	return s.AsServiceAccount(namespace, ServiceAccount), nil
}

// ServiceAccount is the name of corsproc's ServiceAccount in k8s/.
const ServiceAccount = "corsproc"
