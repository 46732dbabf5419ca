package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// Severity says whether a Problem refuses the file or only warns.
type Severity uint8

// The severities.
const (
	// SeverityError refuses the file.
	SeverityError Severity = iota
	// SeverityWarning lets the file load.
	SeverityWarning
)

// String returns "error" or "warning".
func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// MarshalText writes "error" or "warning": what validate --json and the
// admin /config endpoint show, so that scripts need not know the numbers.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (s *Severity) UnmarshalText(b []byte) error {
	switch string(b) {
	case "error":
		*s = SeverityError
	case "warning":
		*s = SeverityWarning
	default:
		return fmt.Errorf("unknown severity %q; want error or warning", b)
	}
	return nil
}

// Problem is one thing wrong with a policy file.
type Problem struct {
	// Severity says whether the problem refuses the file.
	Severity Severity `json:"severity"`
	// File is the file's name as given to Load or Parse.
	File string `json:"file"`
	// Line is the 1-based line of the offending value, 0 when unknown.
	Line int `json:"line,omitempty"`
	// Policy is the index in policies, or -1 for defaults, top-level keys
	// and CORSPolicy objects (whose File names the object).
	Policy int `json:"policy"`
	// PolicyName is the policy's name, "" when unknown.
	PolicyName string `json:"policy_name,omitempty"`
	// Key is the key path inside the policy, e.g. "allowed_origins[2]" or
	// "match.hosts[0]"; for top-level problems the full path.
	Key string `json:"key"`
	// Value is the offending value, when there is one.
	Value string `json:"value,omitempty"`
	// HasValue distinguishes an empty offending value from none.
	HasValue bool `json:"-"`
	// Message says what is wrong and how to fix it.
	Message string `json:"message"`
}

// String renders the problem as
// `FILE: policies[i] "name": key "value": message`, with "warning: " in
// front of warnings.
func (p Problem) String() string {
	var b strings.Builder
	if p.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(p.File)
	b.WriteString(": ")
	if p.Policy >= 0 {
		b.WriteString("policies[")
		b.WriteString(strconv.Itoa(p.Policy))
		b.WriteString("]")
		if p.PolicyName != "" {
			b.WriteString(" ")
			b.WriteString(strconv.Quote(p.PolicyName))
		}
		b.WriteString(": ")
	}
	if p.Key != "" {
		b.WriteString(p.Key)
		if p.HasValue {
			b.WriteString(" ")
			b.WriteString(strconv.Quote(p.Value))
		}
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Error is returned when a policy file is refused. It holds every problem
// found, errors and warnings, in file order.
type Error struct {
	// File is the file's name as given to Load or Parse.
	File string
	// Problems are sorted by policy, then line.
	Problems []Problem
}

// Error lists the errors (not the warnings), one per line.
func (e *Error) Error() string {
	var lines []string
	for _, p := range e.Problems {
		if p.Severity == SeverityError {
			lines = append(lines, p.String())
		}
	}
	if len(lines) == 0 {
		return e.File + ": invalid policy file"
	}
	return strings.Join(lines, "\n")
}
