package deploy

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	corev1 "k8s.io/api/core/v1"
	gwv1 "sigs.k8s.io/gateway-api/apis/v1"

	corsprocv1alpha1 "github.com/corsproc/corsproc/api/v1alpha1"
	"github.com/corsproc/corsproc/policy"
)

// k8s/examples/teams is docs/deploy.md's walk-through, "Teams own their
// CORS": two teams' namespaces, HTTPRoutes and CORSPolicy objects next to a
// central file with guardrails. It is checked as every kustomization is,
// and each object is put through the very checks corsproc --kubernetes
// runs (policy.Set.Admit against the central file), so that what the
// walk-through says is accepted is, what it says is refused is, with the
// words it quotes.

const teamsExample = "k8s/examples/teams"

// contribution turns a CORSPolicy into what corsproc admits, with the
// hostnames of its namespace's HTTPRoutes, as the controller reads them.
func contribution(t *testing.T, r *rendering, p *corsprocv1alpha1.CORSPolicy) policy.Contribution {
	t.Helper()
	spec, err := json.Marshal(p.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, route := range all[*gwv1.HTTPRoute](r) {
		if route.Namespace == p.Namespace {
			for _, h := range route.Spec.Hostnames {
				hosts = append(hosts, string(h))
			}
		}
	}
	return policy.Contribution{Namespace: p.Namespace, Name: p.Name, Source: "CORSPolicy " + p.Namespace + "/" + p.Name, Spec: spec, RouteHosts: hosts}
}

// centralPolicy parses the policy file of the rendering's ConfigMap under
// the name corsproc loads it by (--config), which its messages quote.
func centralPolicy(t *testing.T, r *rendering) *policy.Set {
	t.Helper()
	_, c := corsprocContainer(t, r)
	name, ok := flagValue(c.Args, "config")
	if !ok {
		t.Fatal("no --config")
	}
	for _, cm := range all[*corev1.ConfigMap](r) {
		if strings.HasPrefix(cm.Name, "corsproc-policy") {
			set, err := policy.Parse(name, []byte(cm.Data["policy.yaml"]))
			if err != nil {
				t.Fatal(err)
			}
			return set
		}
	}
	t.Fatalf("%s renders no corsproc-policy ConfigMap", r.Dir)
	return nil
}

func TestKubernetesTeamsExample(t *testing.T) {
	r := render(t, teamsExample)
	checkNamespaces(t, r, "default", "envoy-gateway-system")
	checkWorkloads(t, r)
	checkCorsproc(t, r, envoyGatewayProxy)
	checkKubernetes(t, r, nil)
	crdSchemaOf := func(v string) *jsonschema.Schema {
		return crdSchema(t, repoPath(crdFiles[0]), "corsproc.io", "CORSPolicy", v)
	}
	checkAgainstCRD(t, r, "CORSPolicy", crdSchemaOf)

	t.Run("the ConfigMap holds the example's central file as written", func(t *testing.T) {
		for _, cm := range all[*corev1.ConfigMap](r) {
			if strings.HasPrefix(cm.Name, "corsproc-policy") && cm.Data["policy.yaml"] != string(readRepoFile(t, teamsExample+"/policy.yaml")) {
				t.Errorf("ConfigMap %s is not %s/policy.yaml", cm.Name, teamsExample)
			}
		}
	})

	central := centralPolicy(t, r)
	var admitted []*policy.Admitted
	for _, p := range all[*corsprocv1alpha1.CORSPolicy](r) {
		t.Run("CORSPolicy "+p.Namespace+"/"+p.Name+" is accepted within the guardrails", func(t *testing.T) {
			a, err := central.Admit(contribution(t, r, p))
			if err != nil {
				t.Fatalf("refused:\n%v", err)
			}
			for _, w := range a.Warnings() {
				t.Errorf("warned: %s", w.String())
			}
			admitted = append(admitted, a)
		})
	}
	if len(admitted) != 2 {
		t.Fatalf("%d CORSPolicy objects admitted, want team-a's and team-b's", len(admitted))
	}

	t.Run("the teams' policies run after the file's, whatever order they come in", func(t *testing.T) {
		set, err := central.With([]*policy.Admitted{admitted[1], admitted[0]})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, p := range set.Policies() {
			names = append(names, p.Name)
		}
		if want := []string{"api", "public-assets", "team-a/shop-api", "team-b/catalog"}; !slices.Equal(names, want) {
			t.Errorf("policies %v, want %v", names, want)
		}
		// A preflight of the app to team-a's API, with cookies: team-a's
		// policy answers it.
		d := set.Decide(&policy.Request{Method: "OPTIONS", Host: "shop.example.com", Path: "/api/cart",
			Origin: "https://app.example.com", RequestMethod: "PUT", HasRequestMethod: true})
		if d.Policy != "team-a/shop-api" || d.Outcome != policy.Allowed {
			t.Errorf("the app's preflight to shop.example.com/api/cart: policy %q, %v (%s), want team-a/shop-api allowed", d.Policy, d.Outcome, d.Reason)
		}
	})

	t.Run("team-b's widened object is refused by the guardrails, with the words docs/deploy.md quotes", func(t *testing.T) {
		var p corsprocv1alpha1.CORSPolicy
		if _, _, err := strictDecoder.Decode(readRepoFile(t, teamsExample+"/team-b/corspolicy-widened.yaml"), nil, &p); err != nil {
			t.Fatal(err)
		}
		if err := validateYAML(t, crdSchemaOf("v1alpha1"), "team-b/corspolicy-widened.yaml", readRepoFile(t, teamsExample+"/team-b/corspolicy-widened.yaml")); err != nil {
			t.Errorf("the API server would refuse it before corsproc sees it: %v", err)
		}
		_, err := central.Admit(contribution(t, r, &p))
		var perr *policy.Error
		if !errors.As(err, &perr) {
			t.Fatalf("admitted (err %v)", err)
		}
		docs := string(readRepoFile(t, "docs/deploy.md"))
		var errs int
		for _, pr := range perr.Problems {
			if pr.Severity != policy.SeverityError {
				continue
			}
			errs++
			if !strings.Contains(docs, pr.String()) {
				t.Errorf("docs/deploy.md does not quote the problem as corsproc words it:\n%s", pr.String())
			}
		}
		if errs != 2 {
			t.Errorf("%d problems, want two (an origin outside the guardrails, credentials with a wildcard):\n%v", errs, err)
		}
	})
}
