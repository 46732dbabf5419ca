package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/corsproc/corsproc/policy"
)

// root is the repository root: the deploy module sits one level down.
var root = func() string {
	abs, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return abs
}()

// repoPath turns a slash-separated path relative to the repository root into
// a file path.
func repoPath(rel string) string { return filepath.Join(root, filepath.FromSlash(rel)) }

func readRepoFile(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(repoPath(rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return data
}

// yamlToJSON converts one YAML document to JSON, as Envoy and kubectl do.
func yamlToJSON(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: not YAML: %v", name, err)
	}
	return j
}

// policyFiles finds every policy file in the repository: a *.yaml or *.yml
// whose top level has a "policies" key. testdata folders are left out:
// they hold deliberately broken files. Paths are slash-separated, relative
// to the root, sorted.
func policyFiles(t *testing.T) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "node_modules", "vendor":
				return filepath.SkipDir
			}
			return nil
		}
		if ext := filepath.Ext(p); ext != ".yaml" && ext != ".yml" {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var top map[string]json.RawMessage
		if yaml.Unmarshal(data, &top) != nil {
			return nil // not a single mapping: a manifest stream, not a policy
		}
		if _, ok := top["policies"]; ok {
			rel, _ := filepath.Rel(root, p)
			found = append(found, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk the repository: %v", err)
	}
	sort.Strings(found)
	return found
}

// contains reports whether list has s.
func contains[T comparable](list []T, s T) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// firstLine is the first line of data.
func firstLine(data []byte) string {
	line, _, _ := bytes.Cut(data, []byte("\n"))
	return strings.TrimSpace(string(line))
}

// loadPolicyFile decodes a policy file into the policy package's own File
// type, for tests that read what a policy says.
func loadPolicyFile(t *testing.T, rel string) policy.File {
	t.Helper()
	var f policy.File
	if err := yaml.UnmarshalStrict(readRepoFile(t, rel), &f); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return f
}

// bufioReader reads a string.
func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// stripComments drops YAML comment lines, to tell an empty document.
func stripComments(doc []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(doc, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l...)
			out = append(out, '\n')
		}
	}
	return out
}
