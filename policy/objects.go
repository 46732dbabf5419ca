package policy

import (
	"bufio"
	"bytes"
	"cmp"
	"regexp"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// CORSPolicy objects as files hold them (docs/contract.md §6): what a team
// applies with kubectl, read offline so that validate and explain can
// check it against the central file's guardrails before it is applied.
// api/v1alpha1 holds the type; it imports this package, so the names are
// repeated here.
const (
	// CORSPolicyAPIVersion is the apiVersion of CORSPolicy objects.
	CORSPolicyAPIVersion = "corsproc.io/v1alpha1"
	// CORSPolicyKind is their kind.
	CORSPolicyKind = "CORSPolicy"
)

// objectLine is a top-level apiVersion or kind key: no policy file has
// one (they are unknown keys there), and every Kubernetes object does.
var objectLine = regexp.MustCompile(`^(apiVersion|kind)\s*:`)

// HoldsObjects reports whether data looks like Kubernetes objects (a
// top-level apiVersion or kind) rather than a policy file. It reads lines
// only, so that telling the two apart costs no YAML parse.
func HoldsObjects(data []byte) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for sc.Scan() {
		if objectLine.Match(sc.Bytes()) {
			return true
		}
	}
	return false
}

var objectKeys = []string{"apiVersion", "kind", "metadata", "spec", "status"}

// ParseCORSPolicies reads the CORSPolicy objects of a YAML stream, one or
// more documents separated by "---". An object without metadata.namespace
// gets namespace, as kubectl apply -n gives it; with namespace "" it is a
// problem. Each Contribution's Source is "FILE: CORSPolicy NAMESPACE/NAME",
// and the problems Admit finds in it carry the file's lines. On failure an
// [*Error] lists every problem (a document of another kind, a missing
// name, an object given twice), and the objects that could be read are
// returned beside it, so that they can be checked too. HTTPRoute
// documents (gateway.networking.k8s.io) among them are no objects of
// corsproc's: their spec.hostnames become the RouteHosts of the objects of
// their namespace, as serve --kubernetes takes them from the cluster. It
// never panics on any bytes.
func ParseCORSPolicies(file string, data []byte, namespace string) ([]Contribution, error) {
	ps := &problems{file: file}
	if err := checkText(file, data); err != nil {
		return nil, err
	}
	tree, err := parser.ParseBytes(data, 0)
	if err != nil {
		l := loc{ps: ps, policy: -1}
		l.errorf("not valid YAML: %s", yamlErrorText(err))
		return nil, &Error{File: file, Problems: ps.list}
	}
	var out []Contribution
	routes := map[string][]string{}
	seen := map[string]int{}
	n := 0
	for _, doc := range tree.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		n++
		c, ok := parseObject(file, doc, n, namespace, ps, routes)
		if !ok {
			continue
		}
		name := c.Namespace + "/" + c.Name
		if first, dup := seen[name]; dup {
			ps.list = append(ps.list, Problem{File: c.Source, Policy: -1, PolicyName: name, Key: "metadata.name", Value: c.Name, HasValue: true,
				Line:    locatePath(docFile(doc), "$.metadata.name"),
				Message: "CORSPolicy " + name + " is also document " + strconv.Itoa(first) + "; an object is given once: rename one or remove it"})
			continue
		}
		seen[name] = n
		out = append(out, c)
	}
	for i := range out {
		out[i].RouteHosts = routes[out[i].Namespace]
	}
	if n == 0 {
		l := loc{ps: ps, policy: -1}
		l.errorf("holds no document; write a CORSPolicy (apiVersion: %s, kind: %s)", CORSPolicyAPIVersion, CORSPolicyKind)
	}
	sortProblems(ps.list)
	for _, p := range ps.list {
		if p.Severity == SeverityError {
			return out, &Error{File: file, Problems: ps.list}
		}
	}
	return out, nil
}

func docFile(doc *ast.DocumentNode) *ast.File { return &ast.File{Docs: []*ast.DocumentNode{doc}} }

// parseObject reads document n; its problems are named "FILE: document
// N" until the object's name is known, then as the object.
func parseObject(file string, doc *ast.DocumentNode, n int, namespace string, ps *problems, routes map[string][]string) (Contribution, bool) {
	df := docFile(doc)
	start := len(ps.list)
	src := file + ": document " + strconv.Itoa(n)
	l := loc{ps: ps, policy: -1}
	defer func() {
		for i := start; i < len(ps.list); i++ {
			p := &ps.list[i]
			if p.File == file {
				p.File = src // the object's name, once known
			}
			if p.Line == 0 {
				p.Line = locatePath(df, "$."+p.Key)
			}
			if p.Line == 0 {
				p.Line = doc.Body.GetToken().Position.Line
			}
		}
	}()
	var root any
	if err := yaml.NodeToValue(doc.Body, &root, yaml.UseOrderedMap()); err != nil {
		l.errorf("not valid YAML: %s", yamlErrorText(err))
		return Contribution{}, false
	}
	m, ok := asMap(l, root)
	if !ok {
		return Contribution{}, false
	}
	var c Contribution
	var apiVersion, kind string
	hasSpec, hasMeta := false, false
	for _, kv := range m {
		k, _ := kv.Key.(string)
		kl := l.child(k)
		switch k {
		case "apiVersion":
			apiVersion, _ = asString(kl, kv.Value)
		case "kind":
			kind, _ = asString(kl, kv.Value)
		case "metadata":
			hasMeta = true
			c.Namespace, c.Name = objectMeta(kl, kv.Value)
		case "spec":
			hasSpec = true
		case "status":
			// Written by corsproc; what a file says of it changes nothing.
		default:
			kl.errorf("unknown key; a CORSPolicy takes %s", strings.Join(objectKeys, ", "))
		}
	}
	if kind == httpRouteKind && strings.HasPrefix(apiVersion, gatewayAPIGroup+"/") {
		// Offline, an HTTPRoute beside the objects stands for the one in
		// the cluster, for guardrails with hosts_from_httproutes.
		if !ps.hasTopErrorSince(start, "") && routes != nil {
			ns := cmp.Or(c.Namespace, namespace)
			routes[ns] = append(routes[ns], routeHostnames(l, m)...)
		}
		return Contribution{}, false
	}
	if kind != CORSPolicyKind && !ps.hasTopErrorSince(start, "kind") {
		what := "has no kind"
		if kind != "" {
			what = "is a " + kind
		}
		l.child("kind").errorf("this document %s, not a %s: validate and explain read CORSPolicy objects (apiVersion: %s, kind: %s); check other objects with kubectl apply --dry-run=server",
			what, CORSPolicyKind, CORSPolicyAPIVersion, CORSPolicyKind)
		return Contribution{}, false
	}
	if apiVersion != CORSPolicyAPIVersion && !ps.hasTopErrorSince(start, "apiVersion") {
		if apiVersion == "" {
			l.child("apiVersion").errorf("missing; write apiVersion: %s", CORSPolicyAPIVersion)
		} else {
			l.child("apiVersion").valueError(apiVersion, "corsproc serves CORSPolicy as "+CORSPolicyAPIVersion+"; write apiVersion: "+CORSPolicyAPIVersion)
		}
	}
	if !hasMeta {
		l.child("metadata").errorf("missing; a CORSPolicy needs metadata.name (and metadata.namespace, or run with --namespace)")
	}
	if c.Namespace == "" && hasMeta && !ps.hasTopErrorSince(start, "metadata") {
		if namespace == "" {
			l.child("metadata").child("namespace").errorf("missing; the guardrails are per namespace: write the namespace the object is applied in, or give it with --namespace")
		}
		c.Namespace = namespace
	}
	switch {
	case c.Name != "" && c.Namespace != "":
		src = file + ": " + CORSPolicyKind + " " + c.Namespace + "/" + c.Name
		c.Source = src
	case c.Name != "":
		src = file + ": " + CORSPolicyKind + " " + c.Name
	}
	if !hasSpec {
		l.child("spec").errorf("missing; a CORSPolicy needs a spec with match.hosts and the CORS keys, as one policy of a policy file")
	}
	if len(ps.list) > start && ps.hasTopErrorSince(start, "") {
		return Contribution{}, false
	}
	if spec, err := yaml.PathString("$.spec"); err == nil {
		if node, err := spec.FilterFile(df); err == nil && node != nil {
			c.spec = node
			c.Spec = []byte(node.String())
		}
	}
	return c, true
}

// HTTPRoutes may sit among the objects (kustomize build output, or a
// route file given with the policies), for hosts_from_httproutes.
const (
	httpRouteKind   = "HTTPRoute"
	gatewayAPIGroup = "gateway.networking.k8s.io"
)

// routeHostnames reads an HTTPRoute's spec.hostnames, which is all that
// guardrails take from it; the rest of the route is Gateway API's business.
func routeHostnames(l loc, m yaml.MapSlice) []string {
	for _, kv := range m {
		if kv.Key != "spec" {
			continue
		}
		spec, ok := asMap(l.child("spec"), kv.Value)
		if !ok {
			return nil
		}
		for _, skv := range spec {
			if skv.Key == "hostnames" {
				return asStrings(l.child("spec").child("hostnames"), skv.Value)
			}
		}
	}
	return nil
}

// objectMeta reads metadata.name and metadata.namespace; the other keys
// of metadata (labels, annotations, ...) are Kubernetes' business.
func objectMeta(l loc, v any) (namespace, name string) {
	m, ok := asMap(l, v)
	if !ok {
		return "", ""
	}
	sawName := false
	for _, kv := range m {
		switch kv.Key {
		case "name":
			sawName = true
			name, _ = asString(l.child("name"), kv.Value)
		case "namespace":
			namespace, _ = asString(l.child("namespace"), kv.Value)
		}
	}
	if !sawName {
		l.child("name").errorf("missing; the policy is named NAMESPACE/NAME after the object")
	}
	return namespace, name
}

// hasTopErrorSince reports whether an error was found under key among
// the problems from index start on; key "" means any.
func (ps *problems) hasTopErrorSince(start int, key string) bool {
	for _, p := range ps.list[start:] {
		if p.Severity == SeverityError && (key == "" || keyUnder(p.Key, key)) {
			return true
		}
	}
	return false
}
