package kube_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/corsproc/corsproc/internal/kube"
	"github.com/corsproc/corsproc/internal/kubetest"
	"github.com/corsproc/corsproc/internal/testutil"
)

// TestTheCRDRefusesAMistypedSpec: the shipped CRD's schema refuses, at
// the API server, a spec no policy file would take, before corsproc sees it.
func TestTheCRDRefusesAMistypedSpec(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "crd", 1)
	ns := e.teams[0]
	cases := []struct {
		name, spec, want string
	}{
		{"a list written as a string is refused", "allowed_origins: https://app.example.com\n", "spec.allowed_origins"},
		{"a boolean written as a string is refused", "allow_credentials: \"yes\"\n", "spec.allow_credentials"},
		{"a number written as a string is refused", "preflight_max_age: \"ten\"\n", "spec.preflight_max_age"},
		{"a hosts list written as a string is refused", "match: {hosts: a.example.com}\n", "spec.match.hosts"},
		{"a misspelt key is refused under strict field validation", "allowed_orgins: [\"https://app.example.com\"]\n", "allowed_orgins"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj := policyObject(t, ns, "mistyped-"+string(rune('a'+i)), tc.spec)
			_, err := e.admin.dyn.Resource(kube.CORSPolicies).Namespace(ns).Create(context.Background(), obj,
				metav1.CreateOptions{FieldValidation: "Strict"}) // what kubectl apply asks
			if err == nil {
				t.Fatalf("the API server took spec %q", tc.spec)
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("refused with %v, want Invalid or BadRequest", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the refusal %q does not name %s", err, tc.want)
			}
		})
	}
}

// TestAnObjectIsAcceptedUpdatedRefusedAndDeleted follows one CORSPolicy
// through its life, checking at each step what corsproc answers over gRPC,
// its status and its Events.
func TestAnObjectIsAcceptedUpdatedRefusedAndDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "life", 1)
	ns := e.teams[0]
	host := ns + ".example.com"
	c := e.serve(t, centralFor(ns))

	// Created: it runs, status and an Event say so.
	e.admin.apply(t, ns, "api", spec(host, "https://one.example.com"))
	c.eventually(t, host, "https://one.example.com", true)
	st := e.admin.statusOf(t, ns, "api", kube.ReasonAccepted)
	if st.Status != "True" || st.AcceptedGeneration != 1 || st.AcceptedSpec == nil {
		t.Errorf("status after create: %+v, want Accepted True for generation 1 with its spec", st)
	}
	evs := e.admin.waitEvents(t, ns, "api", 1)
	if evs[0].Type != "Normal" || evs[0].Reason != kube.ReasonAccepted || evs[0].Source.Component != "corsproc" {
		t.Errorf("the first Event: %s %s from %s, want Normal Accepted from corsproc", evs[0].Type, evs[0].Reason, evs[0].Source.Component)
	}
	if !c.allows(t, "central.example.com", "https://central.example.com") {
		t.Error("the policy file's own policy no longer runs")
	}
	if got := sourceOf(c.config(t), ns+"/api"); got != "CORSPolicy "+ns+"/api" {
		t.Errorf("/config gives policy %s/api the source %q", ns, got)
	}
	if got := sourceOf(c.config(t), "central"); got != c.path {
		t.Errorf("/config gives the file's policy the source %q, want %s", got, c.path)
	}
	if _, body := c.admin(t, "/metrics"); !strings.Contains(string(body), `corsproc_policy_info{policy="`+ns+`/api",source="CORSPolicy `+ns+`/api"} 1`) {
		t.Error("corsproc_policy_info does not say where the object's policy came from")
	}

	// Updated: the new spec runs instead.
	e.admin.apply(t, ns, "api", spec(host, "https://two.example.com"))
	c.eventually(t, host, "https://two.example.com", true)
	c.eventually(t, host, "https://one.example.com", false)
	st = e.admin.statusOf(t, ns, "api", kube.ReasonAccepted)
	if st.AcceptedGeneration != 2 {
		t.Errorf("acceptedGeneration after the update: %d, want 2", st.AcceptedGeneration)
	}

	// Made invalid: refused, and generation 2 keeps running, as status says.
	e.admin.apply(t, ns, "api", "match: {hosts: ["+host+"]}\nallowed_origins: [\"https://three.example.com/path\"]\n")
	st = e.admin.statusOf(t, ns, "api", kube.ReasonRefusedKeepsAccepted)
	if st.Status != "False" || st.AcceptedGeneration != 2 || !strings.Contains(st.Message, "spec.allowed_origins[0]") ||
		!strings.Contains(st.Message, "generation 2) keeps running") {
		t.Errorf("status of the refused update: %+v, want Accepted False naming spec.allowed_origins[0], generation 2 running", st)
	}
	if !c.allows(t, host, "https://two.example.com") {
		t.Error("the last accepted spec stopped running when a later one was refused")
	}
	evs = e.admin.waitEvents(t, ns, "api", 3)
	if last := evs[len(evs)-1]; last.Type != "Warning" || last.Reason != kube.ReasonRefusedKeepsAccepted {
		t.Errorf("the Event of the refusal: %s %s, want Warning %s", last.Type, last.Reason, kube.ReasonRefusedKeepsAccepted)
	}

	// Deleted: nothing runs for it any more; the file's policy still does.
	e.admin.delete(t, ns, "api")
	c.eventually(t, host, "https://two.example.com", false)
	if !c.allows(t, "central.example.com", "https://central.example.com") {
		t.Error("the policy file's own policy stopped running when the object was deleted")
	}
	if got := sourceOf(c.config(t), ns+"/api"); got != "" {
		t.Errorf("/config still lists the deleted object's policy, from %q", got)
	}
}

func sourceOf(policies []configPolicy, name string) string {
	for _, p := range policies {
		if p.Name == name {
			return p.Source
		}
	}
	return ""
}

// TestGuardrailsRefuseAnObjectWithoutDisturbingOthers: an object that
// breaks a guardrail is refused whole, its status names the guardrail and
// the spec key, nothing runs for it, and its neighbours run on.
func TestGuardrailsRefuseAnObjectWithoutDisturbingOthers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "guard", 2)
	team, outsider := e.teams[0], e.teams[1]
	host := team + ".example.com"
	// Only the first namespace is listed in the guardrails.
	c := e.serve(t, centralFor(team))
	e.admin.apply(t, team, "good", spec(host, "https://good.example.com"))
	cases := []struct {
		name, ns, spec string
		want           []string // in the status message
	}{
		{"a host outside the namespace's hosts is refused", team,
			spec("central.example.com", "https://good.example.com"), []string{"spec.match.hosts[0]", "guardrails.namespaces"}},
		{"an origin outside the allowed origins is refused", team,
			spec("x."+host, "https://evil.test"), []string{"spec.allowed_origins[0]", "guardrails.allowed_origins"}},
		{"allow_all_origins is refused unless the guardrails allow it", team,
			"match: {hosts: [y." + host + "]}\nallow_all_origins: true\n", []string{"spec.allow_all_origins", "guardrails.allow_all_origins"}},
		{"a policy without match.hosts is refused", team,
			"allowed_origins: [\"https://good.example.com\"]\n", []string{"spec.match.hosts"}},
		{"a namespace the guardrails do not list is refused", outsider,
			spec(outsider+".example.com", "https://good.example.com"), []string{"guardrails.namespaces"}},
	}
	for i, tc := range cases {
		name := "bad-" + string(rune('a'+i))
		e.admin.apply(t, tc.ns, name, tc.spec)
		t.Run(tc.name, func(t *testing.T) {
			st := e.admin.statusOf(t, tc.ns, name, kube.ReasonRefused)
			for _, w := range tc.want {
				if !strings.Contains(st.Message, w) {
					t.Errorf("the status message does not name %s:\n%s", w, st.Message)
				}
			}
			if st.AcceptedSpec != nil {
				t.Errorf("a refused object got an acceptedSpec: %v", st.AcceptedSpec)
			}
			if evs := e.admin.waitEvents(t, tc.ns, name, 1); evs[0].Type != "Warning" {
				t.Errorf("the refusal's Event is %s, want Warning", evs[0].Type)
			}
		})
	}
	c.eventually(t, host, "https://good.example.com", true)
	if c.allows(t, "central.example.com", "https://good.example.com") {
		t.Error("a refused object's spec runs")
	}
	if !c.allows(t, "central.example.com", "https://central.example.com") {
		t.Error("a refused object disturbed the file's policy")
	}
	if got := sourceOf(c.config(t), outsider+"/bad-e"); got != "" {
		t.Errorf("the outsider's object runs, from %q", got)
	}
}

// TestCorsprocIsNotReadyUntilItHasListedTheObjects: a replica that cannot
// list the CORSPolicy objects (here: an account without RBAC) must not be
// sent traffic, which it would judge by the file's policies alone.
func TestCorsprocIsNotReadyUntilItHasListedTheObjects(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "notready", 1)
	kubeconfig, err := e.server.KubeconfigAs(t.TempDir(), e.server.As("nobody"))
	if err != nil {
		t.Fatal(err)
	}
	c := start(t, kubeconfig, centralFor(e.teams...), e.own, e.teams...)
	testutil.WaitUntil(t, "corsproc tried to list the objects and was refused", func() bool {
		return strings.Contains(c.log.String(), "forbidden")
	})
	code, body := c.admin(t, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "listing the CORSPolicy objects") {
		t.Errorf("/readyz: %d %q, want 503 saying it is listing the CORSPolicy objects", code, body)
	}
	if !c.allows(t, "central.example.com", "https://central.example.com") {
		t.Error("while not ready, the policy file's policies do not run")
	}
}

// httpRouteCRD is the Gateway API's HTTPRoute, cut to what corsproc reads
// (spec.hostnames): the root module has no Gateway API dependency, and
// deploy/ checks the real CRDs.
const httpRouteCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: httproutes.gateway.networking.k8s.io
  # As the Gateway API's own CRDs say: its group is protected.
  annotations: {api-approved.kubernetes.io: "https://github.com/kubernetes-sigs/gateway-api/pull/1538"}
spec:
  group: gateway.networking.k8s.io
  scope: Namespaced
  names: {kind: HTTPRoute, listKind: HTTPRouteList, plural: httproutes, singular: httproute}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              hostnames: {type: array, items: {type: string}}
`

// TestAGuardrailMayAllowTheHostnamesOfTheNamespacesHTTPRoutes: with
// hosts_from_httproutes, an object may match the hostnames its namespace's
// HTTPRoutes declare, as soon as a route declares them.
func TestAGuardrailMayAllowTheHostnamesOfTheNamespacesHTTPRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "routes", 1)
	ns := e.teams[0]
	crd, err := kubetest.Objects([]byte(httpRouteCRD))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.server.Apply(context.Background(), "", crd...); err != nil {
		t.Fatal(err)
	}
	policyFile := "guardrails:\n  allowed_origins: [\"https://*.example.com\"]\n  namespaces:\n    - {name: " + ns + ", hosts_from_httproutes: true}\n" +
		"policies:\n  - name: central\n    match: {hosts: [central.example.com]}\n    allowed_origins: [\"https://central.example.com\"]\n"
	c := e.serve(t, policyFile)
	host := "shop." + ns + ".example.com"
	e.admin.apply(t, ns, "shop", spec(host, "https://app.example.com"))
	st := e.admin.statusOf(t, ns, "shop", kube.ReasonRefused)
	if !strings.Contains(st.Message, "spec.match.hosts[0]") {
		t.Errorf("before any route, the refusal does not name spec.match.hosts[0]:\n%s", st.Message)
	}
	route, err := kubetest.Objects([]byte("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: shop}\nspec: {hostnames: [" + host + "]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.server.Apply(context.Background(), ns, route...); err != nil {
		t.Fatal(err)
	}
	e.admin.statusOf(t, ns, "shop", kube.ReasonAccepted)
	c.eventually(t, host, "https://app.example.com", true)
}
