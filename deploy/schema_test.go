package deploy

import (
	"bytes"
	"path"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The schema is generated, and checked to be current, by package policy
// (go generate ./policy); the checks here read it with a real validator.
const (
	schemaPath = "schema/policy.schema.json"
	schemaID   = "https://raw.githubusercontent.com/corsproc/corsproc/main/schema/policy.schema.json"
)

// compilePolicySchema compiles the committed schema with a real JSON Schema
// (2020-12) validator.
func compilePolicySchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(readRepoFile(t, schemaPath)))
	if err != nil {
		t.Fatalf("%s is not JSON: %v", schemaPath, err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(schemaID)
	if err != nil {
		t.Fatalf("%s does not compile as a JSON Schema: %v", schemaPath, err)
	}
	return s
}

func validateYAML(t *testing.T, s *jsonschema.Schema, name string, data []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(yamlToJSON(t, name, data)))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(inst)
}

func TestPolicySchemaAcceptsEveryPolicyFileInTheRepository(t *testing.T) {
	s := compilePolicySchema(t)
	for _, rel := range policyFiles(t) {
		t.Run(rel+" conforms to the schema", func(t *testing.T) {
			if err := validateYAML(t, s, rel, readRepoFile(t, rel)); err != nil {
				t.Errorf("%v", err)
			}
		})
	}
}

func TestPolicySchemaRefusesWhatThePolicyFileRefuses(t *testing.T) {
	s := compilePolicySchema(t)
	tests := []struct {
		name string
		yaml string
	}{
		{"an unknown top-level key is refused", "policies: []\npolicy: []\n"},
		{"an unknown policy key is refused", "policies:\n  - name: a\n    allowed_origin: [\"https://a.example\"]\n"},
		{"an unknown match key is refused", "policies:\n  - name: a\n    match: {host: [a.example]}\n"},
		{"an unknown defaults key is refused", "defaults: {allow_origins: []}\npolicies: []\n"},
		{"a mode outside enforce, report and off is refused", "policies:\n  - name: a\n    mode: audit\n"},
		{"upstream_cors_headers outside replace and keep is refused", "policies:\n  - name: a\n    upstream_cors_headers: merge\n"},
		{"a preflight_status other than 200 or 204 is refused", "policies:\n  - name: a\n    preflight_status: 201\n"},
		{"a preflight_max_age below -1 is refused", "policies:\n  - name: a\n    preflight_max_age: -2\n"},
		{"a method that is not a token is refused", "policies:\n  - name: a\n    allow_methods: [\"GET POST\"]\n"},
		{"a policy without a name is refused", "policies:\n  - mode: off\n"},
		{"a file without policies is refused", "defaults: {mode: report}\n"},
		{"a string where a boolean belongs is refused", "policies:\n  - name: a\n    allow_credentials: \"yes\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateYAML(t, s, tt.name, []byte(tt.yaml)); err == nil {
				t.Errorf("the schema accepted:\n%s", tt.yaml)
			}
		})
	}
}

func TestPolicySchemaAcceptsWhatThePolicyFileAccepts(t *testing.T) {
	s := compilePolicySchema(t)
	for _, tt := range []struct{ name, yaml string }{
		{"preflight_max_age -1 (send 0, no caching) is accepted", "policies:\n  - name: a\n    preflight_max_age: -1\n"},
		{"preflight_max_age 0 (omit the header) is accepted", "policies:\n  - name: a\n    preflight_max_age: 0\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := validateYAML(t, s, tt.name, []byte(tt.yaml)); err != nil {
				t.Errorf("the schema refused:\n%s\n%v", tt.yaml, err)
			}
		})
	}
}

// The modeline makes editors that speak the YAML language server complete
// and check keys. It must be the first line and point at the schema.
func TestExamplePoliciesNameTheSchemaInTheirModeline(t *testing.T) {
	for _, rel := range shippedPolicies {
		t.Run(rel+" names the schema on its first line", func(t *testing.T) {
			line := firstLine(readRepoFile(t, rel))
			ref, ok := strings.CutPrefix(line, "# yaml-language-server: $schema=")
			if !ok {
				t.Fatalf("first line is %q, want the yaml-language-server modeline", line)
			}
			if ref == schemaID {
				return
			}
			if resolved := path.Join(path.Dir(rel), ref); resolved != schemaPath {
				t.Errorf("modeline points at %s (%q), want %s", resolved, ref, schemaPath)
			}
		})
	}
}
