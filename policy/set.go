package policy

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"slices"
)

// Set is a compiled policy file: immutable and safe for concurrent use.
type Set struct {
	file     string
	sha256   string
	policies []*compiled
	resolved []Policy // effective policies, defaults applied, origins normalised
	warnings []Problem

	// defaults are the file's own, which admitted policies inherit.
	defaults Settings
	// base is the file's Set a Set made by With extends; nil for a file's.
	base *Set
	// guardrails hold contributed policies to the file's rules; nil when
	// the file has no guardrails section, and then none is admitted.
	guardrails *guardrails
	// byHost finds the candidate policies of a host in a large Set.
	byHost *hostIndex
	// sources name where each policy came from, for a Set made by With;
	// nil when every policy is the file's.
	sources []string
}

// Load reads and compiles the policy file at path. On failure the error is
// an [*Error] listing every problem, or the error from [ReadFile].
func Load(path string) (*Set, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse compiles policy file content; file names it in messages. On failure
// the error is an [*Error] listing every problem, warnings included.
func Parse(file string, data []byte) (*Set, error) { return parse(file, data, true) }

// parse is Parse; split false parses the file whole, as a test compares.
func parse(file string, data []byte, split bool) (*Set, error) {
	f, problems, tree, chunks := decode(file, data, split)
	s := &Set{file: file}
	if f != nil {
		s.resolved, s.policies, problems = compile(file, f, problems)
		s.defaults = f.Defaults
		s.byHost = indexHosts(s.policies)
		s.guardrails, problems = checkGuardrails(file, f, problems)
	}
	locate(tree, chunks, problems)
	sortProblems(problems)
	for _, p := range problems {
		if p.Severity == SeverityError {
			return nil, &Error{File: file, Problems: problems}
		}
	}
	sum := sha256.Sum256(data)
	s.sha256 = hex.EncodeToString(sum[:])
	s.warnings = problems
	return s, nil
}

//go:embed default.yaml
var defaultPolicy []byte

// DefaultFile is the name the embedded development policy goes by.
const DefaultFile = "(embedded development policy)"

// Default returns the embedded development policy: http://localhost:* and
// http://127.0.0.1:* allowed, without credentials. Never for production.
func Default() *Set {
	s, err := Parse(DefaultFile, defaultPolicy)
	if err != nil {
		panic("embedded default policy is invalid: " + err.Error()) // a build defect, caught by tests
	}
	return s
}

// DefaultYAML returns the embedded development policy's source.
func DefaultYAML() []byte { return append([]byte(nil), defaultPolicy...) }

// File is the name the Set was loaded from.
func (s *Set) File() string { return s.file }

// SHA256 is the hex digest of the file's bytes.
func (s *Set) SHA256() string { return s.sha256 }

// Warnings are the problems that did not refuse the file.
func (s *Set) Warnings() []Problem { return s.warnings }

// Policies returns the effective policies, defaults applied and origins
// normalised, for display. The slice is the caller's own; decisions never
// read it, so what a caller does with it cannot change the Set.
func (s *Set) Policies() []Policy { return slices.Clone(s.resolved) }

// PolicyMode is the mode of policy i of [Set.Policies].
func (s *Set) PolicyMode(i int) Mode { return s.policies[i].mode }
