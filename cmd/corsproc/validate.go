package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/corsproc/corsproc/policy"
)

// stdinName stands for standard input ("validate -") in messages.
const stdinName = "<stdin>"

const validateAbout = `Check policy files and print every problem at once, as FILE:LINE: lines an
editor can jump to, each naming the policy and the key. "-" reads the policy
from standard input. Files over 16 MiB, or not UTF-8 text, are refused.
Exit 0 when every file is valid (warnings allowed), 1 when one is not, 2 on
a usage error.
`

// validateReport is one file's result, as --json prints it.
type validateReport struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	Policies int              `json:"policies"`
	Problems []policy.Problem `json:"problems"`
	Error    string           `json:"error,omitempty"` // the file could not be read
}

func runValidate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newCommandFlags("validate", "validate [--json] FILE... (- for standard input)", validateAbout, stdout, stderr)
	asJSON := fs.Bool("json", false, "print one JSON report per file instead of text")
	files, code, ok := fs.parse(args)
	if !ok {
		return code
	}
	if len(files) == 0 {
		return fs.usageError("name at least one policy file, or - for standard input")
	}
	stdinUses := 0
	for _, f := range files {
		if f == "-" {
			stdinUses++
		}
	}
	if stdinUses > 1 {
		return fs.usageError(`"-" (standard input) can be given once`)
	}
	var reports []validateReport
	for _, file := range files {
		var r validateReport
		if file == "-" {
			r = validateData(stdinName, func() ([]byte, error) { return policy.ReadFrom(stdinName, stdin) })
		} else {
			r = validateData(file, func() ([]byte, error) { return policy.ReadFile(file) })
		}
		if !r.Valid {
			code = 1
		}
		if *asJSON {
			reports = append(reports, r)
			continue
		}
		printReport(stdout, &r)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(reports); err != nil {
			fmt.Fprintln(stderr, "corsproc validate:", err)
			return 2
		}
	}
	return code
}

// printReport writes one file's problems as FILE:LINE: lines, then a
// summary line.
func printReport(w io.Writer, r *validateReport) {
	if r.Error != "" {
		fmt.Fprintln(w, r.Error)
		return
	}
	errs, warns := 0, 0
	for _, p := range r.Problems {
		fmt.Fprintln(w, problemLine(p))
		if p.Severity == policy.SeverityError {
			errs++
		} else {
			warns++
		}
	}
	if r.Valid {
		fmt.Fprintf(w, "%s: valid: %s, %s\n", r.File, plural(r.Policies, "policy", "policies"), plural(warns, "warning", "warnings"))
	} else {
		fmt.Fprintf(w, "%s: invalid: %s, %s\n", r.File, plural(errs, "error", "errors"), plural(warns, "warning", "warnings"))
	}
}

// problemLine renders a problem as compilers do, so that editors and CI
// annotations jump to it: `FILE:LINE: warning: policies[1] "shop": key
// "value": message` (no LINE when it is unknown, no "warning: " for errors).
func problemLine(p policy.Problem) string {
	s := strings.TrimPrefix(p.String(), "warning: ")
	s = strings.TrimPrefix(s, p.File+": ")
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":")
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Severity == policy.SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(s)
	return b.String()
}

func validateData(file string, read func() ([]byte, error)) validateReport {
	r := validateReport{File: file, Problems: []policy.Problem{}}
	data, err := read()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	set, err := policy.Parse(file, data)
	var perr *policy.Error
	switch {
	case errors.As(err, &perr):
		r.Problems = perr.Problems
	case err != nil:
		r.Error = err.Error()
	default:
		r.Valid = true
		r.Policies = len(set.Policies())
		r.Problems = append(r.Problems, set.Warnings()...)
	}
	return r
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
