package deploy

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// corsproc --kubernetes (docs/deploy.md, "Teams own their CORS") reads
// CORSPolicy objects. k8s/components/kubernetes and the chart's
// kubernetes.enabled switch it on; the checks here hold both to the same
// CRD, to RBAC that is exactly what docs/contract.md's "Policies from
// Kubernetes" needs, and to a Deployment that can reach the API server.
// That the RBAC is enough is proved against a real API server by
// internal/kube's tests.

// kubernetesGrants are the permissions corsproc --kubernetes holds, and
// all of them: "*" is cluster-wide, "NS" the Deployment's own namespace.
var kubernetesGrants = []string{
	"* corsproc.io corspolicies get", "* corsproc.io corspolicies list", "* corsproc.io corspolicies watch",
	"* corsproc.io corspolicies/status get", "* corsproc.io corspolicies/status update", "* corsproc.io corspolicies/status patch",
	"* gateway.networking.k8s.io httproutes get", "* gateway.networking.k8s.io httproutes list", "* gateway.networking.k8s.io httproutes watch",
	"* core events create", "* core events patch",
	"NS coordination.k8s.io leases get", "NS coordination.k8s.io leases create", "NS coordination.k8s.io leases update",
}

// runsKubernetes reports whether args switch on --kubernetes.
func runsKubernetes(args []string) bool {
	return slices.Contains(args, "--kubernetes") || slices.Contains(args, "--kubernetes=true")
}

// grants lists what the bindings of a rendering give the service account
// ns/name, one "SCOPE GROUP RESOURCE VERB" per permission, with the
// Deployment's namespace written NS. A rule naming resourceNames or
// nonResourceURLs shows as such, so that it cannot pass for a plain grant.
func grants(t *testing.T, r *rendering, ns, name string) []string {
	t.Helper()
	isSubject := func(subjects []rbacv1.Subject) bool {
		for _, s := range subjects {
			if s.Kind == rbacv1.ServiceAccountKind && s.Name == name && s.Namespace == ns {
				return true
			}
		}
		return false
	}
	var out []string
	add := func(scope string, rules []rbacv1.PolicyRule) {
		if scope == ns {
			scope = "NS"
		}
		for _, rule := range rules {
			for _, g := range rule.APIGroups {
				if g == "" {
					g = "core"
				}
				for _, res := range rule.Resources {
					for _, v := range rule.Verbs {
						out = append(out, strings.Join([]string{scope, g, res, v}, " "))
					}
				}
			}
			if len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
				out = append(out, scope+" resourceNames/nonResourceURLs "+strings.Join(append(rule.ResourceNames, rule.NonResourceURLs...), ","))
			}
		}
	}
	clusterRole := func(name string) []rbacv1.PolicyRule {
		cr, ok := find[*rbacv1.ClusterRole](r, "", name)
		if !ok {
			t.Errorf("a binding names ClusterRole %s, which is not rendered", name)
			return nil
		}
		return cr.Rules
	}
	for _, b := range all[*rbacv1.ClusterRoleBinding](r) {
		if isSubject(b.Subjects) {
			add("*", clusterRole(b.RoleRef.Name))
		}
	}
	for _, b := range all[*rbacv1.RoleBinding](r) {
		if !isSubject(b.Subjects) {
			continue
		}
		if b.RoleRef.Kind == "ClusterRole" {
			add(b.Namespace, clusterRole(b.RoleRef.Name))
			continue
		}
		role, ok := find[*rbacv1.Role](r, b.Namespace, b.RoleRef.Name)
		if !ok {
			t.Errorf("RoleBinding %s/%s names Role %s, which is not rendered in its namespace", b.Namespace, b.Name, b.RoleRef.Name)
			continue
		}
		add(b.Namespace, role.Rules)
	}
	slices.Sort(out)
	return out
}

// checkKubernetes holds a rendering with corsproc --kubernetes to the
// contract: the CRD as generated, the RBAC as listed and no more, and a
// Deployment with the flag, its namespace and a token. namespaces are the
// --kubernetes-namespaces wanted, nil for every namespace.
func checkKubernetes(t *testing.T, r *rendering, namespaces []string) {
	d, c := corsprocContainer(t, r)
	t.Run("the CRD is the generated one", func(t *testing.T) {
		var want apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(readRepoFile(t, crdFiles[0]), &want); err != nil {
			t.Fatal(err)
		}
		got := mustFind[*apiextensionsv1.CustomResourceDefinition](t, r, "", want.Name)
		if !reflect.DeepEqual(got.Spec, want.Spec) {
			t.Errorf("the rendered CRD's spec differs from %s", crdFiles[0])
		}
	})
	t.Run("corsproc runs with --kubernetes", func(t *testing.T) {
		if !runsKubernetes(c.Args) {
			t.Errorf("args %q lack --kubernetes", c.Args)
		}
		got, ok := flagValue(c.Args, "kubernetes-namespaces")
		if want := strings.Join(namespaces, ","); got != want || ok != (namespaces != nil) {
			t.Errorf("--kubernetes-namespaces=%q (given: %v), want %q", got, ok, want)
		}
	})
	t.Run("corsproc knows its namespace, where its Lease lives", func(t *testing.T) {
		for _, e := range c.Env {
			if e.Name == "POD_NAMESPACE" {
				if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
					t.Errorf("POD_NAMESPACE is %+v, not the pod's metadata.namespace", e)
				}
				return
			}
		}
		t.Errorf("no POD_NAMESPACE in env %v", c.Env)
	})
	t.Run("the service account holds the listed permissions and no more", func(t *testing.T) {
		want := slices.Sorted(slices.Values(kubernetesGrants))
		got := grants(t, r, d.Namespace, d.Spec.Template.Spec.ServiceAccountName)
		for _, g := range got {
			if !slices.Contains(want, g) {
				t.Errorf("granted beyond what corsproc needs: %s", g)
			}
		}
		for _, w := range want {
			if !slices.Contains(got, w) {
				t.Errorf("not granted: %s", w)
			}
		}
	})
}

func TestKubernetesComponent(t *testing.T) {
	r := renderWithComponent(t, "kubernetes")
	checkNamespaces(t, r)
	checkWorkloads(t, r)
	checkCorsproc(t, r, pod{"any-namespace", map[string]string{"corsproc.io/gateway": "true"}})
	checkKubernetes(t, r, nil)
	t.Run("the grants check refuses a wider role", func(t *testing.T) {
		wide := *r
		wide.Objects = slices.Clone(r.Objects)
		for i, o := range wide.Objects {
			if cr, ok := o.Obj.(*rbacv1.ClusterRole); ok {
				cr = cr.DeepCopy()
				cr.Rules = append(cr.Rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}})
				wide.Objects[i].Obj = cr
			}
		}
		got := grants(t, &wide, corsprocNS, "corsproc")
		if !slices.Contains(got, "* core secrets get") {
			t.Errorf("grants %v miss the added rule", got)
		}
	})
}

// checkEgress holds the NetworkPolicy's egress to what corsproc opens:
// nothing, or with --kubernetes the API server's ports alone.
func checkEgress(t *testing.T, np *networkingv1.NetworkPolicy, args []string) {
	if !contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Fatalf("egress is not restricted")
	}
	if !runsKubernetes(args) {
		if len(np.Spec.Egress) != 0 {
			t.Errorf("egress is open: corsproc needs no outbound connection")
		}
		return
	}
	if len(np.Spec.Egress) != 1 {
		t.Fatalf("%d egress rules, want one: to the API server", len(np.Spec.Egress))
	}
	var ports []string
	for _, p := range np.Spec.Egress[0].Ports {
		if p.Protocol == nil || *p.Protocol != corev1.ProtocolTCP || p.Port == nil || p.EndPort != nil {
			t.Errorf("egress port %+v is not one TCP port", p)
			continue
		}
		ports = append(ports, p.Port.String())
	}
	if slices.Sort(ports); !slices.Equal(ports, []string{"443", "6443"}) {
		t.Errorf("egress to ports %v, want the API server's 443 and 6443 only", ports)
	}
}

// kubernetesDeployments are the Deployments of the renderings that run
// corsproc --kubernetes, for the flag check.
func kubernetesDeployments(t *testing.T) map[string]*appsv1.Deployment {
	t.Helper()
	out := map[string]*appsv1.Deployment{}
	for _, d := range all[*appsv1.Deployment](renderWithComponent(t, "kubernetes")) {
		out["k8s/base + k8s/components/kubernetes Deployment "+d.Name] = d
	}
	for _, d := range all[*appsv1.Deployment](mustRenderChart(t, "kubernetes: {enabled: true, namespaces: [team-a]}")) {
		out[chartDir+" kubernetes.enabled Deployment "+d.Name] = d
	}
	return out
}
