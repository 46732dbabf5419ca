package policy

// Reading CORSPolicy objects from files, written from docs/contract.md §6:
// what a team applies is read as kubectl reads it, each problem named by
// the file, the object and the key, with its line.

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const obTeamA = `# team-a's CORS
apiVersion: corsproc.io/v1alpha1
kind: CORSPolicy
metadata:
  name: api
  namespace: team-a
  labels: {app: api}
spec:
  match:
    hosts: [api.a.example.com]
  allowed_origins: ["https://www.a.example.com"]
`

func TestParseCORSPoliciesReadsObjectsAsKubectlDoes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		data      string
		namespace string
		objects   []string // NAMESPACE/NAME of the objects read
		problems  []string // "LINE FILE: key: words"
		// routeHosts are the RouteHosts every object read gets
		routeHosts []string
	}{
		{name: "one object is read with its namespace and name",
			data: obTeamA, objects: []string{"team-a/api"}},
		{name: "several documents are read in order, status ignored",
			data:    obTeamA + "---\napiVersion: corsproc.io/v1alpha1\nkind: CORSPolicy\nmetadata: {name: web, namespace: team-a}\nspec: {match: {hosts: [a.example.com]}}\nstatus: {observedGeneration: 3}\n",
			objects: []string{"team-a/api", "team-a/web"}},
		{name: "an object without a namespace gets the one given, as kubectl apply -n does",
			data: "apiVersion: corsproc.io/v1alpha1\nkind: CORSPolicy\nmetadata: {name: web}\nspec: {}\n", namespace: "team-b", objects: []string{"team-b/web"}},
		{name: "an object without a namespace is refused when none is given",
			data:     "apiVersion: corsproc.io/v1alpha1\nkind: CORSPolicy\nmetadata:\n  name: web\nspec: {}\n",
			problems: []string{"4 f.yaml: CORSPolicy web: metadata.namespace: missing; the guardrails are per namespace"}},
		{name: "a document of another kind is refused, naming it, while the others are read",
			data:     obTeamA + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n",
			objects:  []string{"team-a/api"},
			problems: []string{"14 f.yaml: document 2: kind: this document is a Deployment, not a CORSPolicy"}},
		{name: "an HTTPRoute among the objects gives its namespace's objects its hostnames, and is no object itself",
			data: obTeamA + "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: web, namespace: team-a}\nspec: {hostnames: [web.a.example.com]}\n" +
				"---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: other, namespace: team-b}\nspec: {hostnames: [b.example.com]}\n",
			objects: []string{"team-a/api"}, routeHosts: []string{"web.a.example.com"}},
		{name: "another apiVersion is refused with the one to write",
			data:     strings.Replace(obTeamA, "corsproc.io/v1alpha1", "corsproc.io/v1", 1),
			problems: []string{`2 f.yaml: CORSPolicy team-a/api: apiVersion "corsproc.io/v1": corsproc serves CORSPolicy as corsproc.io/v1alpha1`}},
		{name: "an unknown top-level key is refused",
			data:     obTeamA + "specs: {}\n",
			problems: []string{"12 f.yaml: CORSPolicy team-a/api: specs: unknown key; a CORSPolicy takes apiVersion, kind, metadata, spec, status"}},
		{name: "an object without a name or a spec is refused",
			data:     "apiVersion: corsproc.io/v1alpha1\nkind: CORSPolicy\nmetadata: {namespace: team-a}\n",
			problems: []string{"1 f.yaml: document 1: spec: missing", "3 f.yaml: document 1: metadata.name: missing"}},
		{name: "the same object twice is refused at the second",
			data:     obTeamA + "---\n" + obTeamA,
			objects:  []string{"team-a/api"},
			problems: []string{`17 f.yaml: CORSPolicy team-a/api: metadata.name "api": CORSPolicy team-a/api is also document 1`}},
		{name: "YAML that does not parse is refused",
			data:     "apiVersion: [\n",
			problems: []string{"f.yaml: not valid YAML"}},
		{name: "a file of comments only holds no object",
			data:     "# nothing yet\n",
			problems: []string{"0 f.yaml: holds no document"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, err := ParseCORSPolicies("f.yaml", []byte(tc.data), tc.namespace)
			var names []string
			for _, c := range cs {
				names = append(names, c.Namespace+"/"+c.Name)
				if c.Source != "f.yaml: CORSPolicy "+c.Namespace+"/"+c.Name {
					t.Errorf("Source %q", c.Source)
				}
			}
			if !slices.Equal(names, tc.objects) {
				t.Errorf("objects %v, want %v", names, tc.objects)
			}
			for _, c := range cs {
				if !slices.Equal(c.RouteHosts, tc.routeHosts) {
					t.Errorf("%s/%s has RouteHosts %q, want %q", c.Namespace, c.Name, c.RouteHosts, tc.routeHosts)
				}
			}
			var got []string
			var e *Error
			if errors.As(err, &e) {
				for _, p := range e.Problems {
					got = append(got, itoa(p.Line)+" "+p.String())
				}
			} else if err != nil {
				t.Fatalf("%T %v, want an *Error", err, err)
			}
			if len(got) != len(tc.problems) {
				t.Fatalf("problems:\n%s\nwant %d: %q", strings.Join(got, "\n"), len(tc.problems), tc.problems)
			}
			for i, w := range tc.problems {
				if !strings.HasPrefix(got[i], w) && !strings.Contains(got[i], w) {
					t.Errorf("problem %d:\n\t%s\nwant it to start with\n\t%s", i, got[i], w)
				}
			}
		})
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestAdmitNamesTheLinesOfAnObjectReadFromAFile(t *testing.T) {
	data := strings.Replace(obTeamA, `["https://www.a.example.com"]`, `["https://www.a.example.com", "https://evil.example.org"]`, 1) + "  allow_private_network: true\n"
	cs, err := ParseCORSPolicies("team-a.yaml", []byte(data), "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ctSet(t, grCentral).Admit(cs[0])
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("admitted: %v", err)
	}
	var got []string
	for _, p := range e.Problems {
		got = append(got, p.File+":"+itoa(p.Line)+": "+p.Key)
	}
	want := []string{"team-a.yaml: CORSPolicy team-a/api:11: spec.allowed_origins[1]", "team-a.yaml: CORSPolicy team-a/api:12: spec.allow_private_network"}
	if !slices.Equal(got, want) {
		t.Errorf("problems at\n%q\nwant\n%q", got, want)
	}
}

func TestHoldsObjectsTellsObjectsFromAPolicyFile(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want bool
	}{
		{"a CORSPolicy holds objects", obTeamA, true},
		{"a policy file does not", ctCentral, false},
		{"a policy file with a commented-out kind does not", "# kind: CORSPolicy\n" + ctCentral, false},
		{"objects after a separator do", "---\nkind: CORSPolicy\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HoldsObjects([]byte(tc.data)); got != tc.want {
				t.Errorf("HoldsObjects = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzParseCORSPolicies: whatever the bytes, reading objects and admitting
// them never panics, and every problem names the file.
//
//	go test -run '^$' -fuzz '^FuzzParseCORSPolicies$' -fuzztime 30s -fuzzminimizetime 3s ./policy
func FuzzParseCORSPolicies(f *testing.F) {
	f.Add(obTeamA)
	f.Add(obTeamA + "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n")
	for _, tc := range grCases {
		f.Add("apiVersion: corsproc.io/v1alpha1\nkind: CORSPolicy\nmetadata: {name: x, namespace: " + tc.namespace + "}\nspec: " + tc.spec + "\n")
	}
	s := ctSet(f, grCentral)
	f.Fuzz(func(t *testing.T, data string) {
		cs, err := ParseCORSPolicies("f.yaml", []byte(data), "team-a")
		var e *Error
		if err != nil && !errors.As(err, &e) {
			if !strings.HasPrefix(err.Error(), "f.yaml:") {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		if e != nil {
			for _, p := range e.Problems {
				if !strings.HasPrefix(p.File, "f.yaml") || p.Message == "" {
					t.Errorf("problem not named by the file: %#v", p)
				}
			}
		}
		for _, c := range cs {
			if _, err := s.Admit(c); err != nil && !errors.As(err, &e) {
				t.Fatalf("Admit: %T %v", err, err)
			}
		}
	})
}
