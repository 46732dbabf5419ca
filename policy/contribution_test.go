package policy

// Contribution tests, written from docs/contract.md §6: a CORSPolicy's
// spec gets the loader's own checks and words, keys under "spec.",
// inherits the file's defaults, and runs after the file's policies,
// ordered by namespace then name.

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

const ctCentral = `
defaults:
  allowed_origins: ["https://app.example.com"]
  preflight_max_age: 600
guardrails:
  namespaces:
    - {name: team-a, hosts: [a.example.com, "*.a.example.com"]}
    - {name: a, hosts: ["*.example.com"]}
    - {name: a-b, hosts: ["*.example.com"]}
  allowed_origins: ["https://app.example.com", "https://*.example.com"]
policies:
  - name: admin
    match: {hosts: [admin.example.com]}
`

func ctSet(t testing.TB, src string) *Set {
	t.Helper()
	s, err := Parse("central.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ctProblem is one expected problem: its key, its line (0: none, as for
// a spec on one line) and a few words of its message.
type ctProblem struct {
	sev  Severity
	key  string
	line int
	says string
}

type ctAdmitCase struct {
	name      string
	namespace string // "team-a" when empty
	spec      string
	refused   bool
	problems  []ctProblem
}

var ctAdmitCases = []ctAdmitCase{
	{name: "a JSON spec with hosts and origins is admitted",
		spec: `{"match":{"hosts":["a.example.com"]},"allowed_origins":["https://a.example.com"]}`},
	{name: "a YAML spec is admitted as a JSON one is",
		spec: "match:\n  hosts: [a.example.com]\nallowed_origins: [\"https://a.example.com\"]\n"},
	{name: "a spec with hosts alone is admitted, inheriting every other key from the file's defaults",
		spec: `{"match":{"hosts":["a.example.com"]}}`},
	{name: "an origin the loader would normalise is admitted with the loader's warning",
		spec:     `{"match":{"hosts":["a.example.com"]},"allowed_origins":["https://A.example.com:443"]}`,
		problems: []ctProblem{{SeverityWarning, "spec.allowed_origins[0]", 0, "normalised to"}}},
	{name: "an unknown key is refused with the keys a spec takes",
		spec: "match: {hosts: [a.example.com]}\nallowed_origin: [\"https://a.example.com\"]\n", refused: true,
		problems: []ctProblem{{SeverityError, "spec.allowed_origin", 2, "a CORSPolicy spec takes match and mode, allowed_origins"}}},
	{name: "a name in the spec is refused: the object's namespace and name name it",
		spec: `{"name":"api","match":{"hosts":["a.example.com"]}}`, refused: true,
		problems: []ctProblem{{SeverityError, "spec.name", 0, "NAMESPACE/NAME"}}},
	{name: "an unknown match key is refused with the loader's words",
		spec: "match:\n  host: [a.example.com]\n", refused: true,
		problems: []ctProblem{{SeverityError, "spec.match.host", 2, "match takes hosts"}}},
	{name: "every problem is reported at once, each at its line",
		spec:    "match:\n  hosts: [\"a.example.com:8080\"]\nallowed_origins:\n  - https://a.example.com/\nallow_credentials: yes\n",
		refused: true,
		problems: []ctProblem{
			{SeverityError, "spec.match.hosts[0]", 2, "without its port"},
			{SeverityError, "spec.allowed_origins[0]", 4, "no path"},
			{SeverityError, "spec.allow_credentials", 5, "true or false"},
		}},
	{name: "credentials with an inherited origin are checked as in the file",
		spec: `{"match":{"hosts":["a.example.com"]},"allow_credentials":true,"expose_headers":["*"]}`, refused: true,
		problems: []ctProblem{{SeverityError, "spec.expose_headers[0]", 0, "cannot expose headers with allow_credentials: true"}}},
	{name: "a spec that is not a mapping is refused",
		spec: `["https://a.example.com"]`, refused: true,
		problems: []ctProblem{{SeverityError, "spec", 0, "must be a mapping"}}},
	{name: "a spec that is not YAML is refused, not half read",
		spec: "match: {hosts: [a.example.com\n", refused: true,
		problems: []ctProblem{{SeverityError, "spec", 0, "not valid YAML or JSON"}}},
	{name: "a spec of two documents is refused",
		spec: "mode: report\n---\nmode: off\n", refused: true,
		problems: []ctProblem{{SeverityError, "spec", 0, "more than one YAML document"}}},
	{name: "a spec with bytes that are not text is refused with them escaped",
		spec: "mode: \"\xff\"\n", refused: true,
		problems: []ctProblem{{SeverityError, "spec", 0, `not text: byte 7 is not UTF-8 text (near "mode: \"\xff\"\n"); a spec is YAML or JSON in UTF-8`}}},
	{name: "a namespace with a slash is refused, since NAMESPACE/NAME must name one policy",
		namespace: "team/a", spec: `{"match":{"hosts":["a.example.com"]}}`, refused: true,
		problems: []ctProblem{{SeverityError, "metadata.namespace", 0, `no "/"`}, {SeverityError, "metadata.namespace", 0, "not listed in guardrails.namespaces"}}},
}

func TestAdmitChecksASpecAsTheLoaderDoes(t *testing.T) {
	s := ctSet(t, ctCentral)
	for _, tc := range ctAdmitCases {
		t.Run(tc.name, func(t *testing.T) {
			ns := cmpOr(tc.namespace, "team-a")
			a, err := s.Admit(Contribution{Namespace: ns, Name: "api", Source: "CORSPolicy " + ns + "/api", Spec: []byte(tc.spec)})
			var got []Problem
			var e *Error
			switch {
			case tc.refused && !errors.As(err, &e):
				t.Fatalf("admitted (err %v), want refused", err)
			case tc.refused:
				if e.File != "CORSPolicy "+ns+"/api" {
					t.Errorf("Error.File = %q, want the contribution's Source", e.File)
				}
				got = e.Problems
			case err != nil:
				t.Fatalf("refused: %v", err)
			default:
				got = a.Warnings()
				if a.Name() != ns+"/api" {
					t.Errorf("Name() = %q, want %q", a.Name(), ns+"/api")
				}
			}
			for _, w := range tc.problems {
				i := slices.IndexFunc(got, func(p Problem) bool {
					return p.Key == w.key && p.Severity == w.sev && strings.Contains(p.String(), w.says)
				})
				if i < 0 {
					t.Errorf("no %s at %s saying %q; got:\n%s", w.sev, w.key, w.says, ctList(got))
					continue
				}
				p := got[i]
				if p.Line != w.line {
					t.Errorf("%s is at line %d, want %d", w.key, p.Line, w.line)
				}
				if p.File != "CORSPolicy "+ns+"/api" || p.PolicyName != ns+"/api" || p.Policy != -1 {
					t.Errorf("%s is named File %q, PolicyName %q, Policy %d; want the Source, NAMESPACE/NAME and -1", w.key, p.File, p.PolicyName, p.Policy)
				}
			}
			if tc.refused && len(tc.problems) > 0 {
				errs := 0
				for _, p := range got {
					if p.Severity == SeverityError {
						errs++
					}
				}
				if want := ctErrors(tc.problems); errs != want {
					t.Errorf("%d errors, want %d:\n%s", errs, want, ctList(got))
				}
			}
		})
	}
}

func ctErrors(ps []ctProblem) int {
	n := 0
	for _, p := range ps {
		if p.Severity() == SeverityError {
			n++
		}
	}
	return n
}

func (p ctProblem) Severity() Severity { return p.sev }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func ctList(ps []Problem) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteString("\t" + p.String() + "\n")
	}
	return b.String()
}

func TestAdmittedPoliciesInheritTheFilesDefaults(t *testing.T) {
	s := ctSet(t, ctCentral)
	a, err := s.Admit(Contribution{Namespace: "team-a", Name: "api", Spec: []byte(`{"match":{"hosts":["a.example.com"]},"preflight_max_age":60}`)})
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.With([]*Admitted{a})
	if err != nil {
		t.Fatal(err)
	}
	p := w.Policies()[1]
	if p.Name != "team-a/api" || !slices.Equal(p.AllowedOrigins, []string{"https://app.example.com"}) || *p.PreflightMaxAge != 60 {
		t.Errorf("effective policy %s: origins %v, max age %d; want team-a/api with the file's origins and its own max age 60", p.Name, p.AllowedOrigins, *p.PreflightMaxAge)
	}
}

func TestAdmitRefusesANameTheFileAlreadyUses(t *testing.T) {
	s := ctSet(t, "policies:\n  - name: team-a/api\n    match: {hosts: [x.example.com]}\n")
	_, err := s.Admit(Contribution{Namespace: "team-a", Name: "api", Spec: []byte(`{}`)})
	if err == nil || !strings.Contains(err.Error(), "metadata.name \"api\": the policy file central.yaml already has a policy named team-a/api") {
		t.Errorf("err = %v, want the name clash named", err)
	}
}

func TestWithRunsAdmittedPoliciesAfterTheFilesInNamespaceThenNameOrder(t *testing.T) {
	s := ctSet(t, ctCentral)
	admit := func(ns, name, host string) *Admitted {
		a, err := s.Admit(Contribution{Namespace: ns, Name: name, Source: "CORSPolicy " + ns + "/" + name,
			Spec: []byte(`{"match":{"hosts":["` + host + `"]},"allowed_origins":["https://` + host + `"]}`)})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	// "a-b" sorts before "a" as a string "a-b/x" < "a/x"; by namespace
	// first, "a" comes first.
	aZ, aA, ab := admit("a", "z", "z.example.com"), admit("a", "a", "admin.example.com"), admit("a-b", "x", "x.example.com")
	for _, order := range [][]*Admitted{{aZ, aA, ab}, {ab, aZ, aA}, {aA, ab, aZ}} {
		w, err := s.With(order)
		if err != nil {
			t.Fatal(err)
		}
		var names, sources []string
		for i, p := range w.Policies() {
			names = append(names, p.Name)
			sources = append(sources, w.PolicySource(i))
		}
		if want := []string{"admin", "a/a", "a/z", "a-b/x"}; !slices.Equal(names, want) {
			t.Errorf("policies %v, want %v", names, want)
		}
		if want := []string{"central.yaml", "CORSPolicy a/a", "CORSPolicy a/z", "CORSPolicy a-b/x"}; !slices.Equal(sources, want) {
			t.Errorf("sources %v, want %v", sources, want)
		}
		// The file's policy comes first: admin.example.com stays the file's.
		d := w.Decide(&Request{Method: "GET", Host: "admin.example.com", Path: "/", Origin: "https://admin.example.com"})
		if d.PolicyIndex() != 0 {
			t.Errorf("admin.example.com went to policy %d, want the file's admin (0)", d.PolicyIndex())
		}
		d = w.Decide(&Request{Method: "GET", Host: "x.example.com", Path: "/", Origin: "https://x.example.com"})
		if d.PolicyIndex() != 3 || d.Outcome != Allowed {
			t.Errorf("x.example.com went to policy %d (%s), want a-b/x (3), allowed", d.PolicyIndex(), d.Outcome)
		}
	}
	if s.PolicySource(0) != "central.yaml" || len(s.Policies()) != 1 {
		t.Errorf("With changed the file's Set: %d policies", len(s.Policies()))
	}
}

func TestWithDigestsTheFileAndEveryAdmittedSpec(t *testing.T) {
	s := ctSet(t, ctCentral)
	digest := func(specs ...string) string {
		var list []*Admitted
		for i, spec := range specs {
			a, err := s.Admit(Contribution{Namespace: "team-a", Name: string(rune('a' + i)), Spec: []byte(spec)})
			if err != nil {
				t.Fatal(err)
			}
			list = append(list, a)
		}
		w, err := s.With(list)
		if err != nil {
			t.Fatal(err)
		}
		return w.SHA256()
	}
	one := digest(`{"mode":"report","match":{"hosts":["a.example.com"]},"allowed_origins":["https://a.example.com"]}`)
	for _, tc := range []struct {
		name string
		got  string
		same bool
	}{
		{"no admitted policy leaves the file's digest", digest(), false},
		{"the same spec as YAML, keys in another order, digests alike", digest("allowed_origins: [\"https://a.example.com\"]\nmatch: {hosts: [a.example.com]}\nmode: report\n"), true},
		{"another value digests differently", digest(`{"mode":"off","match":{"hosts":["a.example.com"]},"allowed_origins":["https://a.example.com"]}`), false},
		{"an explicit empty list differs from an absent key", digest(`{"mode":"report","match":{"hosts":["a.example.com"]},"allowed_origins":["https://a.example.com"],"expose_headers":[]}`), false},
		{"one more object digests differently", digest(`{"mode":"report","match":{"hosts":["a.example.com"]},"allowed_origins":["https://a.example.com"]}`, `{"match":{"hosts":["b.a.example.com"]}}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if (tc.got == one) != tc.same {
				t.Errorf("digest %s, first %s: same = %v, want %v", tc.got, one, tc.got == one, tc.same)
			}
		})
	}
	if digest() != s.SHA256() {
		t.Errorf("With(nil) digest %s, want the file's %s", digest(), s.SHA256())
	}
}

func TestWithRefusesWhatThisSetDidNotAdmit(t *testing.T) {
	s, other := ctSet(t, ctCentral), ctSet(t, ctCentral+"\n")
	a, err := other.Admit(Contribution{Namespace: "team-a", Name: "api", Spec: []byte(`{"match":{"hosts":["a.example.com"]}}`)})
	if err != nil {
		t.Fatal(err)
	}
	mine, err := s.Admit(Contribution{Namespace: "team-a", Name: "api", Spec: []byte(`{"match":{"hosts":["a.example.com"]}}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		list []*Admitted
		says string
	}{
		{"an Admitted from another Set is refused", []*Admitted{a}, "admit it again"},
		{"a nil Admitted is refused", []*Admitted{nil}, "nil"},
		{"the same object twice is refused", []*Admitted{mine, mine}, "given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.With(tc.list); err == nil || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("err = %v, want it to say %q", err, tc.says)
			}
		})
	}
	t.Run("a Set made by With admits and composes as its file's Set", func(t *testing.T) {
		w, err := s.With([]*Admitted{mine})
		if err != nil {
			t.Fatal(err)
		}
		again, err := w.With([]*Admitted{mine})
		if err != nil || again.SHA256() != w.SHA256() || len(again.Policies()) != 2 {
			t.Errorf("With on a With Set: err %v, %d policies; want the same Set again", err, len(again.Policies()))
		}
	})
}

func TestCheckHoldsASpecToTheLoaderAlone(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		errors     int
	}{
		{"a spec without hosts passes: no guardrail asks for them", `{"allowed_origins":["https://a.example.com"]}`, 0},
		{"a spec with the loader's mistakes fails with them", `{"allowed_origins":["https://a.example.com/"],"allow_private_network":"yes"}`, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Contribution{Namespace: "team-a", Name: "api", Spec: []byte(tc.spec)}.Check()
			var e *Error
			if tc.errors == 0 && err != nil || tc.errors > 0 && (!errors.As(err, &e) || len(e.Problems) != tc.errors) {
				t.Errorf("Check() = %v, want %d errors", err, tc.errors)
			}
		})
	}
}
