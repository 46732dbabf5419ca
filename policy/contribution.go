package policy

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/token"
)

// Policies from Kubernetes (docs/contract.md §6):
// a team declares one policy as a CORSPolicy object; it is checked by the
// loader's own checks, as if it were written in the file, and then by the
// file's guardrails, and it runs only if nothing is wrong with it.

// Contribution is a policy declared outside the policy file: a CORSPolicy.
type Contribution struct {
	// Namespace is the object's namespace.
	Namespace string
	// Name is the object's name; the policy is named "NAMESPACE/NAME".
	Name string
	// Source is how problems name it (Problem.File), e.g.
	// "CORSPolicy team-a/api" or "team-a.yaml: CORSPolicy team-a/api".
	Source string
	// Spec is the spec as JSON (or YAML): match and CORS keys, no name.
	Spec []byte
	// RouteHosts are the hostnames of the namespace's HTTPRoutes, for
	// guardrails that derive hosts from them.
	RouteHosts []string

	// spec is the spec's node in a YAML file read by ReadCORSPolicies,
	// decoded instead of Spec so that problems carry the file's lines.
	spec ast.Node
}

// Admitted is a Contribution that passed every check of one Set: compiled
// and immutable.
type Admitted struct {
	base      *Set // the file's Set that admitted it
	namespace string
	name      string
	source    string
	policy    Policy    // effective: defaults applied, origins normalised
	c         *compiled // its index is set by With, on a copy
	written   []byte    // the spec as written, canonical, for the digest
	warnings  []Problem
}

// Name is the policy's name: "NAMESPACE/NAME".
func (a *Admitted) Name() string { return a.namespace + "/" + a.name }

// Warnings are the problems that did not refuse the contribution, named
// as its errors would be.
func (a *Admitted) Warnings() []Problem { return slices.Clone(a.warnings) }

// fileSet is the file's Set: s itself, or the one a Set made by With
// extends.
func (s *Set) fileSet() *Set {
	if s.base != nil {
		return s.base
	}
	return s
}

// Admit checks c with the loader's own checks and words (keys as
// "spec.allowed_origins[0]"), then against s's guardrails; on failure an
// [*Error] lists every problem. Never panics on any bytes. The policy
// inherits the file's defaults. A file without a guardrails section
// admits nothing. On a Set made by [Set.With], Admit checks
// against the file's Set it extends.
func (s *Set) Admit(c Contribution) (*Admitted, error) { return s.fileSet().admit(c, true) }

// Check checks c with the loader's own checks alone: no policy file, so
// no defaults and no guardrails. It is what validate does with a
// CORSPolicy when no central file is given. On failure an [*Error] lists
// every problem; otherwise Check returns the warnings.
func (c Contribution) Check() ([]Problem, error) {
	a, err := (&Set{}).admit(c, false)
	if err != nil {
		return nil, err
	}
	return a.warnings, nil
}

// admit is Admit on the file's Set; guard false skips the guardrails.
func (s *Set) admit(c Contribution, guard bool) (*Admitted, error) {
	name := c.Namespace + "/" + c.Name
	source := c.Source
	if source == "" {
		source = "CORSPolicy " + name
	}
	tree, root, msg := c.decodeSpec()
	ps := &problems{file: source}
	l := loc{ps: ps, policy: 0, name: name}
	p := Policy{Name: name}
	if msg != "" {
		l.errorf("%s", msg)
	} else {
		decodeSpec(l, root, &p)
	}
	var resolved []Policy
	var compiledOne []*compiled
	if msg == "" {
		resolved, compiledOne, ps.list = compile(source, &File{Defaults: s.defaults, Policies: []Policy{p}}, ps.list)
	}
	// The loader's problems, from the one-policy file it was given, are
	// renamed as the object's: keys under spec, no policies index.
	all := &problems{file: source}
	for _, pr := range ps.list {
		if pr.Policy != 0 {
			continue // the file's defaults speak for themselves, in the file
		}
		pr.Policy = -1
		pr.Key = strings.TrimSuffix("spec."+pr.Key, ".")
		all.list = append(all.list, pr)
	}
	top := loc{ps: all, policy: -1, name: name}
	checkObjectName(top.child("metadata").child("namespace"), c.Namespace)
	checkObjectName(top.child("metadata").child("name"), c.Name)
	for _, fp := range s.resolved {
		if fp.Name == name {
			top.child("metadata").child("name").valueError(c.Name, "the policy file "+s.file+" already has a policy named "+name+"; rename the object or the file's policy, names must be unique")
		}
	}
	if guard && msg == "" && !ps.hasError(0, nil, "") { // a spec that is not a mapping has nothing to hold to the guardrails
		eff, inherited := merge(&p.Settings, &s.defaults)
		s.guardrails.admit(&admission{
			top: top, spec: top.child("spec"), file: s.file, namespace: c.Namespace,
			match: p.Match, eff: &eff, inherited: inherited, routeHosts: c.RouteHosts,
			badMatch: ps.matchBroken(0),
		})
	}
	list := all.list
	// A spec on one line (JSON from the API server) has no line worth
	// naming: every problem would be at line 1.
	if tree != nil && (c.spec != nil || bytes.IndexByte(c.Spec, '\n') >= 0) {
		for i := range list {
			if rest, ok := strings.CutPrefix(list[i].Key, "spec"); ok && list[i].Line == 0 {
				list[i].Line = locatePath(tree, "$"+rest)
			}
		}
	}
	sortProblems(list)
	for _, pr := range list {
		if pr.Severity == SeverityError {
			return nil, &Error{File: source, Problems: list}
		}
	}
	return &Admitted{
		base: s, namespace: c.Namespace, name: c.Name, source: source,
		policy: resolved[0], c: compiledOne[0], written: canonicalSpec(&p), warnings: list,
	}, nil
}

// checkObjectName refuses what Kubernetes never names an object with, so
// that NAMESPACE/NAME names one policy only.
func checkObjectName(l loc, v string) {
	switch {
	case v == "":
		l.errorf("missing; a CORSPolicy is named by its namespace and name")
	case strings.ContainsAny(v, "/ \t\r\n"):
		l.valueError(v, "a Kubernetes name has no \"/\" or white space")
	}
}

// decodeSpec parses the spec into ordered generic values, with its
// syntax tree for locating problems; msg says why it could not.
func (c *Contribution) decodeSpec() (tree *ast.File, root any, msg string) {
	if c.spec != nil {
		tree = &ast.File{Docs: []*ast.DocumentNode{ast.Document(&token.Token{}, c.spec)}}
		if err := yaml.NodeToValue(c.spec, &root, yaml.UseOrderedMap()); err != nil {
			return nil, nil, "not valid YAML: " + yamlErrorText(err)
		}
		return tree, root, ""
	}
	if len(c.Spec) > MaxFileSize {
		return nil, nil, "the spec is over 16 MiB; a policy is a few kilobytes"
	}
	if err := checkText("", c.Spec); err != nil {
		// checkText speaks of a file and its path; keep its finding only.
		_, finding, _ := strings.Cut(err.Error(), "not a text file: ")
		finding, _, _ = strings.Cut(finding, "; a policy file")
		return nil, nil, "not text: " + finding + "; a spec is YAML or JSON in UTF-8"
	}
	tree, root, err := parseYAML(c.Spec)
	switch {
	case err == errMultipleDocuments:
		return nil, nil, "the spec holds more than one YAML document; it is one mapping"
	case err != nil:
		return nil, nil, "not valid YAML or JSON: " + yamlErrorText(err)
	}
	return tree, root, ""
}

// decodeSpec decodes a CORSPolicy spec into p: a policy's keys, less its
// name.
func decodeSpec(l loc, v any, p *Policy) {
	if v == nil {
		return // an empty spec: a policy without keys
	}
	m, ok := asMap(l, v)
	if !ok {
		return
	}
	for _, kv := range m {
		key, _ := kv.Key.(string)
		kl := l.child(key)
		switch {
		case key == "name":
			kl.errorf("unknown key; the object's namespace and name name the policy (NAMESPACE/NAME): remove name from the spec")
		case !decodePolicyKey(kl, key, kv.Value, p):
			kl.errorf("unknown key; a CORSPolicy spec takes match and %s", strings.Join(settingKeys, ", "))
		}
	}
}

// canonicalSpec writes the keys a policy sets, in a fixed order, so that
// one spec written as YAML or as JSON, keys in any order, digests alike,
// while an explicit empty list (which overrides defaults) differs from an
// absent key.
func canonicalSpec(p *Policy) []byte {
	var b bytes.Buffer
	if p.Match != nil {
		writeSetFields(&b, "match.", reflect.ValueOf(p.Match).Elem())
	}
	writeSetFields(&b, "", reflect.ValueOf(&p.Settings).Elem())
	return b.Bytes()
}

func writeSetFields(b *bytes.Buffer, prefix string, v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		if f.IsZero() && f.Kind() != reflect.Slice || f.Kind() == reflect.Slice && f.IsNil() {
			continue
		}
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
		val, _ := json.Marshal(f.Interface()) // strings, bools and ints always marshal
		b.WriteString(prefix + name + "=")
		b.Write(val)
		b.WriteByte('\n')
	}
}

// With returns a new Set running s's policies and the admitted ones,
// placed as s's guardrails say (after the file's policies unless
// guardrails.order is "before"), ordered by namespace then name
// whatever the order given; its SHA256 covers the file and every admitted
// spec, so replicas holding the same objects report the same digest. An
// Admitted from another Set is an error. On a Set made by With, With
// starts again from the file's Set: the admitted list replaces the
// previous one. With no admitted policy, the file's Set is returned.
func (s *Set) With(admitted []*Admitted) (*Set, error) {
	base := s.fileSet()
	list := slices.Clone(admitted)
	for _, a := range list {
		switch {
		case a == nil:
			return nil, fmt.Errorf("policy: With got a nil *Admitted")
		case a.base != base:
			return nil, fmt.Errorf("policy: %s was admitted by the policy set of %s (sha256 %s), not by this one (%s, sha256 %s); admit it again", a.Name(), a.base.file, a.base.sha256, base.file, base.sha256)
		}
	}
	if len(list) == 0 {
		return base, nil
	}
	slices.SortFunc(list, func(a, b *Admitted) int {
		return cmp.Or(strings.Compare(a.namespace, b.namespace), strings.Compare(a.name, b.name))
	})
	for i := 1; i < len(list); i++ {
		if list[i].namespace == list[i-1].namespace && list[i].name == list[i-1].name {
			return nil, fmt.Errorf("policy: %s is given twice to With; give each object once", list[i].Name())
		}
	}
	n := len(base.policies) + len(list)
	out := &Set{
		file:     base.file,
		defaults: base.defaults,
		base:     base,
		policies: make([]*compiled, 0, n),
		resolved: make([]Policy, 0, n),
		sources:  make([]string, 0, n),
		warnings: slices.Clone(base.warnings),
	}
	h := sha256.New()
	h.Write([]byte(base.sha256))
	addFile := func() {
		for i, c := range base.policies {
			out.add(c, base.resolved[i], base.file)
		}
	}
	before := base.guardrails != nil && base.guardrails.before
	if !before {
		addFile()
	}
	for _, a := range list {
		out.add(a.c, a.policy, a.source)
		out.warnings = append(out.warnings, a.warnings...)
		fmt.Fprintf(h, "\n%s\n%d\n", a.Name(), len(a.written))
		h.Write(a.written)
	}
	if before {
		addFile()
	}
	out.sha256 = hex.EncodeToString(h.Sum(nil))
	out.byHost = indexHosts(out.policies)
	return out, nil
}

// add appends a policy, on a copy of its compiled form that knows its new
// place: the original may serve another Set at the same time.
func (s *Set) add(c *compiled, p Policy, source string) {
	cc := *c
	cc.index = len(s.policies)
	s.policies = append(s.policies, &cc)
	s.resolved = append(s.resolved, p)
	s.sources = append(s.sources, source)
}

// PolicySource says where policy i of Policies() came from: the file's
// name for the file's policies, the Contribution's Source for admitted
// ones.
func (s *Set) PolicySource(i int) string {
	if s.sources == nil {
		return s.file
	}
	return s.sources[i]
}
