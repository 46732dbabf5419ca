// Package schemagen generates the JSON Schema of the corsproc policy file
// (schema/policy.schema.json) from the Go types in package policy, so that
// editors can complete and check policy files before corsproc sees them.
//
// The schema is strict where the file is: unknown keys are refused
// (additionalProperties: false) and the keys with a fixed set of values carry
// an enum. It cannot express everything `corsproc validate` checks (origin
// syntax, regexes, forbidden headers, credentials rules); validate remains
// the authority, and the schema only helps while typing.
package schemagen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"

	"github.com/invopop/jsonschema"

	"github.com/corsproc/corsproc/policy"
)

// ID is the schema's $id: where the published copy lives.
const ID = "https://raw.githubusercontent.com/corsproc/corsproc/main/schema/policy.schema.json"

// Path is where the schema is kept, relative to the repository root.
const Path = "schema/policy.schema.json"

const module = "github.com/corsproc/corsproc"

// tokenPattern is an HTTP token (RFC 9110 section 5.6.2): what a method or a
// header name must be. "*" is a token character, so the wildcard passes.
const tokenPattern = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"

// Generate returns the schema, its field descriptions taken from the doc
// comments of package policy under root (the repository root).
func Generate(root string) ([]byte, error) {
	r := &jsonschema.Reflector{}
	// AddGoComments names packages by joining base with each walked
	// directory as given, so walk from the current directory and make base
	// the import path of that directory.
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	cwd, err := filepath.Abs(".")
	if err != nil {
		return nil, err
	}
	up, err := filepath.Rel(abs, cwd)
	if err != nil {
		return nil, err
	}
	down, err := filepath.Rel(cwd, filepath.Join(abs, "policy"))
	if err != nil {
		return nil, err
	}
	if err := r.AddGoComments(path.Join(module, filepath.ToSlash(up)), down); err != nil {
		return nil, fmt.Errorf("read the doc comments of package policy: %w", err)
	}

	s := r.Reflect(&policy.File{})
	s.ID = ID
	s.Title = "corsproc policy file"
	s.Description = "The CORS policies corsproc enforces at an Envoy gateway. " +
		"Check a file with `corsproc validate FILE`: it also checks what a schema cannot " +
		"(origin syntax, regexes, forbidden headers, credentials rules)."
	for _, name := range []string{"Settings", "Policy"} {
		def, ok := s.Definitions[name]
		if !ok {
			return nil, fmt.Errorf("no definition %q in the reflected schema; has policy.File changed shape?", name)
		}
		if err := refineSettings(def); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	if err := refinePolicy(s.Definitions["Policy"], s.Definitions["Match"]); err != nil {
		return nil, err
	}

	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func prop(def *jsonschema.Schema, key string) (*jsonschema.Schema, error) {
	if def == nil || def.Properties == nil {
		return nil, fmt.Errorf("definition without properties")
	}
	p, ok := def.Properties.Get(key)
	if !ok {
		return nil, fmt.Errorf("no property %q; has the policy file's shape changed?", key)
	}
	return p, nil
}

// refineSettings adds what the Go types cannot say: the allowed values.
func refineSettings(def *jsonschema.Schema) error {
	edits := map[string]func(*jsonschema.Schema){
		"mode": func(p *jsonschema.Schema) {
			p.Enum = []any{"enforce", "report", "off"}
			p.Default = "enforce"
		},
		"upstream_cors_headers": func(p *jsonschema.Schema) {
			p.Enum = []any{"replace", "keep"}
			p.Default = "replace"
		},
		"preflight_status": func(p *jsonschema.Schema) {
			p.Enum = []any{200, 204}
			p.Default = 204
		},
		"preflight_max_age": func(p *jsonschema.Schema) {
			p.Minimum = json.Number("-1") // -1 sends access-control-max-age: 0
			p.Default = 86400
		},
		"allow_methods": func(p *jsonschema.Schema) {
			p.Items.Pattern = tokenPattern
			p.Default = []any{"DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"}
		},
		"allow_headers": func(p *jsonschema.Schema) {
			p.Items.Pattern = tokenPattern
			p.Default = []any{"accept", "authorization", "content-type", "user-agent", "x-csrftoken", "x-requested-with"}
		},
		"expose_headers": func(p *jsonschema.Schema) {
			p.Items.Pattern = tokenPattern
		},
		"allowed_origins": func(p *jsonschema.Schema) {
			p.Examples = []any{[]any{"https://app.example.com", "https://*.example.com", "http://localhost:*"}}
		},
		"allow_all_origins":     func(p *jsonschema.Schema) { p.Default = false },
		"allow_credentials":     func(p *jsonschema.Schema) { p.Default = false },
		"allow_private_network": func(p *jsonschema.Schema) { p.Default = false },
	}
	for key, edit := range edits {
		p, err := prop(def, key)
		if err != nil {
			return err
		}
		edit(p)
	}
	return nil
}

func refinePolicy(pol, match *jsonschema.Schema) error {
	name, err := prop(pol, "name")
	if err != nil {
		return err
	}
	name.MinLength = ptr(uint64(1))
	if match == nil {
		return fmt.Errorf("no definition \"Match\" in the reflected schema")
	}
	for _, key := range []string{"hosts", "path_prefixes", "routes"} {
		p, err := prop(match, key)
		if err != nil {
			return err
		}
		p.Items.MinLength = ptr(uint64(1))
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
