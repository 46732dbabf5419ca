package policy

//go:generate go test -run ^TestPolicySchemaIsCurrent$ -update

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The JSON Schema of the policy file, schema/policy.schema.json, is
// written from the File types and the settings table, so that editors can
// complete and check policy files before corsproc sees them. It is strict
// where the file is (unknown keys are refused) but cannot say everything
// corsproc validate checks; validate remains the authority.

const (
	schemaPath = "../schema/policy.schema.json"
	schemaID   = "https://raw.githubusercontent.com/corsproc/corsproc/main/schema/policy.schema.json"
	// tokenPattern is an HTTP token (RFC 9110 section 5.6.2): what a method
	// or a header name must be. "*" is a token character, so the wildcard
	// passes.
	tokenPattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
)

func TestPolicySchemaIsCurrent(t *testing.T) {
	want, err := policySchema(".")
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(schemaPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is stale: Settings, its table or a doc comment changed since it was generated.\n"+
			"Regenerate it with:  go generate ./policy", filepath.Clean(schemaPath))
	}
}

// jsonSchema is the part of JSON Schema 2020-12 the policy file needs, its
// fields in the order the committed file has always had them.
type jsonSchema struct {
	Version              string            `json:"$schema,omitempty"`
	ID                   string            `json:"$id,omitempty"`
	Ref                  string            `json:"$ref,omitempty"`
	Defs                 properties        `json:"$defs,omitempty"`
	Items                *jsonSchema       `json:"items,omitempty"`
	Properties           properties        `json:"properties,omitempty"`
	AdditionalProperties *bool             `json:"additionalProperties,omitempty"`
	Type                 string            `json:"type,omitempty"`
	Enum                 []json.RawMessage `json:"enum,omitempty"`
	Minimum              *int              `json:"minimum,omitempty"`
	MinLength            *int              `json:"minLength,omitempty"`
	Pattern              string            `json:"pattern,omitempty"`
	Required             []string          `json:"required,omitempty"`
	Title                string            `json:"title,omitempty"`
	Description          string            `json:"description,omitempty"`
	Default              json.RawMessage   `json:"default,omitempty"`
	Examples             []json.RawMessage `json:"examples,omitempty"`
}

// properties is a JSON object that keeps its keys in order.
type properties []property

type property struct {
	name   string
	schema *jsonSchema
}

func (ps properties) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(p.name)
		v, err := json.Marshal(p.schema)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (ps properties) get(name string) *jsonSchema {
	for _, p := range ps {
		if p.name == name {
			return p.schema
		}
	}
	return nil
}

// policySchema writes the schema, its descriptions taken from the doc
// comments of the package in dir.
func policySchema(dir string) ([]byte, error) {
	docs, err := docComments(dir)
	if err != nil {
		return nil, err
	}
	s := &jsonSchema{
		Version: "https://json-schema.org/draft/2020-12/schema",
		ID:      schemaID,
		Ref:     "#/$defs/File",
		Title:   "corsproc policy file",
		Description: "The CORS policies corsproc enforces at an Envoy gateway. " +
			"Check a file with `corsproc validate FILE`: it also checks what a schema cannot " +
			"(origin syntax, regexes, forbidden headers, credentials rules).",
	}
	for _, t := range []reflect.Type{reflect.TypeFor[File](), reflect.TypeFor[Match](), reflect.TypeFor[Policy](), reflect.TypeFor[Settings](),
		reflect.TypeFor[Guardrails](), reflect.TypeFor[NamespaceGuardrail]()} {
		s.Defs = append(s.Defs, property{t.Name(), objectSchema(t, docs)})
	}
	addGuardrailHints(s.Defs.get("Guardrails"), s.Defs.get("NamespaceGuardrail"))
	policy := s.Defs.get("Policy")
	policy.Properties.get("name").MinLength = ptr(1)
	for _, key := range matchKeys {
		if p := s.Defs.get("Match").Properties.get(key); p.Items != nil {
			p.Items.MinLength = ptr(1)
		}
	}
	for _, def := range []*jsonSchema{policy, s.Defs.get("Settings")} {
		for _, name := range settingKeys {
			addHints(def.Properties.get(name), settingByKey[name].hints())
		}
	}
	out, err := json.MarshalIndent(s, "", "  ")
	return append(out, '\n'), err
}

// objectSchema describes struct type t: one property per field, an
// embedded struct's fields in its place, required unless omitted when
// empty.
func objectSchema(t reflect.Type, docs map[string]string) *jsonSchema {
	s := &jsonSchema{AdditionalProperties: ptr(false), Type: "object", Description: doc.Synopsis(docs[t.Name()])}
	for f := range t.Fields() {
		if f.Anonymous {
			s.Properties = append(s.Properties, objectSchema(f.Type, docs).Properties...)
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		p := typeSchema(f.Type)
		p.Description = docs[t.Name()+"."+f.Name]
		s.Properties = append(s.Properties, property{name, p})
		if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
			s.Required = append(s.Required, name)
		}
	}
	return s
}

func typeSchema(t reflect.Type) *jsonSchema {
	switch t.Kind() {
	case reflect.Pointer:
		return typeSchema(t.Elem())
	case reflect.Struct:
		return &jsonSchema{Ref: "#/$defs/" + t.Name()}
	case reflect.Slice:
		return &jsonSchema{Items: typeSchema(t.Elem()), Type: "array"}
	case reflect.Bool:
		return &jsonSchema{Type: "boolean"}
	case reflect.Int:
		return &jsonSchema{Type: "integer"}
	}
	return &jsonSchema{Type: "string"}
}

// addGuardrailHints says what the guardrails' checks enforce that a
// schema can say: their defaults, order's values, a namespace name's form.
func addGuardrailHints(g, ns *jsonSchema) {
	for _, key := range []string{"allow_all_origins", "credentials_with_wildcards", "private_network", "origin_regexes"} {
		g.Properties.get(key).Default = json.RawMessage("false")
	}
	order := g.Properties.get("order")
	order.Enum = []json.RawMessage{json.RawMessage(`"after"`), json.RawMessage(`"before"`)}
	order.Default = json.RawMessage(`"after"`)
	g.Properties.get("allowed_origins").Examples = []json.RawMessage{json.RawMessage(`["https://example.com", "https://*.example.com"]`)}
	name := ns.Properties.get("name")
	name.MinLength = ptr(1)
	name.Pattern = dnsLabel.String()
	ns.Properties.get("hosts").Items.MinLength = ptr(1)
	ns.Properties.get("hosts_from_httproutes").Default = json.RawMessage("false")
}

func addHints(p *jsonSchema, h schemaHints) {
	for _, e := range h.enum {
		p.Enum = append(p.Enum, json.RawMessage(e))
	}
	p.Minimum = h.minimum
	if h.tokens {
		p.Items.Pattern = tokenPattern
	}
	if h.builtin != "" {
		p.Default = json.RawMessage(h.builtin)
	}
	if h.example != "" {
		p.Examples = []json.RawMessage{json.RawMessage(h.example)}
	}
}

// docComments maps "Type" and "Type.Field" to their doc comments.
func docComments(dir string) (map[string]string, error) {
	fset := token.NewFileSet()
	docs := map[string]string{}
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.TYPE {
				continue
			}
			for _, spec := range g.Specs {
				ts := spec.(*ast.TypeSpec)
				docs[ts.Name.Name] = strings.TrimSpace(g.Doc.Text() + ts.Doc.Text())
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, f := range st.Fields.List {
					for _, n := range f.Names {
						docs[ts.Name.Name+"."+n.Name] = strings.TrimSpace(f.Doc.Text())
					}
				}
			}
		}
	}
	return docs, nil
}
