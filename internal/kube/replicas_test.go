package kube_test

import (
	"context"
	"os"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"

	"github.com/corsproc/corsproc/internal/kube"
	"github.com/corsproc/corsproc/internal/kubetest"
	"github.com/corsproc/corsproc/internal/testutil"
)

// TestAReloadOfThePolicyFileAdmitsEveryObjectAgain: the guardrails live in
// the file, so a reload decides anew for every object, both ways.
func TestAReloadOfThePolicyFileAdmitsEveryObjectAgain(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "reload", 2)
	listed, later := e.teams[0], e.teams[1]
	c := e.serve(t, centralFor(listed))
	e.admin.apply(t, listed, "api", spec(listed+".example.com", "https://a.example.com"))
	e.admin.apply(t, later, "api", spec(later+".example.com", "https://b.example.com"))
	c.eventually(t, listed+".example.com", "https://a.example.com", true)
	e.admin.statusOf(t, later, "api", kube.ReasonRefused)

	// The file now lists the second namespace, and no longer the first.
	write(t, c.path, centralFor(later))
	c.eventually(t, later+".example.com", "https://b.example.com", true)
	c.eventually(t, listed+".example.com", "https://a.example.com", false)
	if st := e.admin.statusOf(t, later, "api", kube.ReasonAccepted); st.AcceptedGeneration != 1 {
		t.Errorf("the newly listed namespace's object: %+v, want accepted at generation 1", st)
	}
	// Its accepted spec is refused too now: nothing runs, and status says why.
	st := e.admin.statusOf(t, listed, "api", kube.ReasonRefused)
	if !strings.Contains(st.Message, "is refused too") {
		t.Errorf("the unlisted namespace's status does not say its accepted spec is refused too:\n%s", st.Message)
	}
}

// write replaces path's content at once, as an editor's save does.
func write(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestTheWatchSurvivesAnAPIServerRestart: corsproc keeps enforcing what it
// has while the API server is away, and picks up changes made after it is
// back. Not parallel: the other tests share the API server.
func TestTheWatchSurvivesAnAPIServerRestart(t *testing.T) {
	e := newEnv(t, "restart", 1)
	ns := e.teams[0]
	host := ns + ".example.com"
	c := e.serve(t, centralFor(ns))
	e.admin.apply(t, ns, "before", spec("before."+host, "https://before.example.com"))
	c.eventually(t, "before."+host, "https://before.example.com", true)

	if err := e.server.RestartAPIServer(); err != nil {
		t.Fatal(err)
	}
	if !c.allows(t, "before."+host, "https://before.example.com") {
		t.Error("the restart made corsproc drop what it was running")
	}
	e.admin.apply(t, ns, "after", spec("after."+host, "https://after.example.com"))
	c.eventually(t, "after."+host, "https://after.example.com", true)
	e.admin.statusOf(t, ns, "after", kube.ReasonAccepted)
	e.admin.delete(t, ns, "before")
	c.eventually(t, "before."+host, "https://before.example.com", false)
}

// TestTwoReplicasConvergeAndOnlyTheLeaseHolderWrites: two corsproc
// replicas on the same objects run the same set (the same config_info
// sha256), and only the one holding the Lease writes status and Events;
// when it stops, the other takes over.
func TestTwoReplicasConvergeAndOnlyTheLeaseHolderWrites(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "replicas", 2)
	policyFile := centralFor(e.teams...)
	a, b := e.serve(t, policyFile), e.serve(t, policyFile)
	for i, ns := range e.teams {
		e.admin.apply(t, ns, "api", spec(ns+".example.com", "https://app.example.com"))
		e.admin.apply(t, ns, "refused", spec("central.example.com", "https://app.example.com"))
		e.admin.statusOf(t, e.teams[i], "api", kube.ReasonAccepted)
		e.admin.statusOf(t, e.teams[i], "refused", kube.ReasonRefused)
	}
	for _, c := range []*corsproc{a, b} {
		for _, ns := range e.teams {
			c.eventually(t, ns+".example.com", "https://app.example.com", true)
		}
	}
	testutil.WaitUntil(t, "both replicas report the same corsproc_config_info sha256", func() bool {
		return a.sha256(t) == b.sha256(t)
	})

	leases, err := coordinationv1client.NewForConfig(e.server.Config())
	if err != nil {
		t.Fatal(err)
	}
	holder := func() string {
		l, err := leases.Leases(e.own).Get(context.Background(), "corsproc", metav1.GetOptions{})
		if err != nil || l.Spec.HolderIdentity == nil {
			return ""
		}
		return *l.Spec.HolderIdentity
	}
	leader, other := a, b
	if holder() == b.r.Kubernetes().Identity() {
		leader, other = b, a
	}
	if holder() != leader.r.Kubernetes().Identity() {
		t.Fatalf("the Lease is held by %q, neither replica (%s, %s)", holder(), a.r.Kubernetes().Identity(), b.r.Kubernetes().Identity())
	}
	for _, ns := range e.teams {
		for _, name := range []string{"api", "refused"} {
			for _, ev := range e.admin.events(t, ns, name) {
				if ev.Source.Host != leader.r.Kubernetes().Identity() {
					t.Errorf("an Event about %s/%s came from %q, not the Lease holder", ns, name, ev.Source.Host)
				}
			}
		}
	}
	if strings.Contains(other.log.String(), "wrote CORSPolicy status") {
		t.Error("the replica without the Lease wrote status")
	}
	if !strings.Contains(leader.log.String(), "wrote CORSPolicy status") {
		t.Error("the Lease holder's log shows no status written")
	}

	// The holder stops (and releases the Lease): the other writes next.
	leader.shutdown(t)
	testutil.WaitUntil(t, "the remaining replica holds the Lease", func() bool { return holder() == other.r.Kubernetes().Identity() })
	ns := e.teams[0]
	e.admin.apply(t, ns, "api", spec(ns+".example.com", "https://next.example.com"))
	if st := e.admin.statusOf(t, ns, "api", kube.ReasonAccepted); st.AcceptedGeneration != 2 {
		t.Errorf("after the takeover: %+v, want generation 2 accepted", st)
	}
	other.eventually(t, ns+".example.com", "https://next.example.com", true)
}

// TestTheShippedRBACGrantsNoMoreThanCorsprocNeeds: every other test runs
// corsproc as the ServiceAccount the shipped RBAC binds, which shows the
// grants are enough; here the API server's own authorizer says what that
// account may not do.
func TestTheShippedRBACGrantsNoMoreThanCorsprocNeeds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "rbac", 1)
	team := e.teams[0]
	sar, err := authorizationv1client.NewForConfig(e.server.Config())
	if err != nil {
		t.Fatal(err)
	}
	user := "system:serviceaccount:" + e.own + ":" + kubetest.ServiceAccount
	groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + e.own, "system:authenticated"}
	cases := []struct {
		name  string
		attrs authorizationv1.ResourceAttributes
		want  bool
	}{
		{"it may list CORSPolicy objects in every namespace", ra("list", "corsproc.io", "corspolicies", "", ""), true},
		{"it may watch CORSPolicy objects in every namespace", ra("watch", "corsproc.io", "corspolicies", "", ""), true},
		{"it may patch a CORSPolicy's status", ra("patch", "corsproc.io", "corspolicies", "status", team), true},
		{"it may create Events", ra("create", "", "events", "", team), true},
		{"it may update the Lease in its own namespace", ra("update", "coordination.k8s.io", "leases", "", e.own), true},
		{"it may watch HTTPRoutes", ra("watch", "gateway.networking.k8s.io", "httproutes", "", ""), true},
		{"it may not write a CORSPolicy's spec", ra("update", "corsproc.io", "corspolicies", "", team), false},
		{"it may not patch a CORSPolicy's spec", ra("patch", "corsproc.io", "corspolicies", "", team), false},
		{"it may not create CORSPolicy objects", ra("create", "corsproc.io", "corspolicies", "", team), false},
		{"it may not delete CORSPolicy objects", ra("delete", "corsproc.io", "corspolicies", "", team), false},
		{"it may not read Secrets", ra("get", "", "secrets", "", e.own), false},
		{"it may not list Secrets anywhere", ra("list", "", "secrets", "", ""), false},
		{"it may not read ConfigMaps", ra("get", "", "configmaps", "", team), false},
		{"it may not take a Lease in another namespace", ra("update", "coordination.k8s.io", "leases", "", team), false},
		{"it may not list Leases cluster-wide", ra("list", "coordination.k8s.io", "leases", "", ""), false},
		{"it may not delete its Lease", ra("delete", "coordination.k8s.io", "leases", "", e.own), false},
		{"it may not change HTTPRoutes", ra("update", "gateway.networking.k8s.io", "httproutes", "", team), false},
		{"it may not delete Events", ra("delete", "", "events", "", team), false},
		{"it may not change the CRD", ra("update", "apiextensions.k8s.io", "customresourcedefinitions", "", ""), false},
		{"it may not grant itself more", ra("bind", "rbac.authorization.k8s.io", "clusterroles", "", ""), false},
		{"it may not act as someone else", ra("impersonate", "", "serviceaccounts", "", e.own), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			attrs := tc.attrs
			r, err := sar.SubjectAccessReviews().Create(context.Background(), &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: groups, ResourceAttributes: &attrs},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if r.Status.Allowed != tc.want {
				t.Errorf("%s %s/%s in %q: allowed=%v, want %v (%s)", attrs.Verb, attrs.Resource, attrs.Subresource, attrs.Namespace, r.Status.Allowed, tc.want, r.Status.Reason)
			}
		})
	}
}

func ra(verb, group, resource, subresource, namespace string) authorizationv1.ResourceAttributes {
	return authorizationv1.ResourceAttributes{Verb: verb, Group: group, Resource: resource, Subresource: subresource, Namespace: namespace}
}
