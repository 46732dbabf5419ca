package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/corsproc/corsproc/policy"
)

// validateReport is one file's result, as --json prints it.
type validateReport struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	Policies int              `json:"policies"`
	Problems []policy.Problem `json:"problems"`
	Error    string           `json:"error,omitempty"` // the file could not be read
}

func runValidate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "validate [--json] FILE...", stderr)
	asJSON := fs.Bool("json", false, "print one JSON report per file instead of text")
	files, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(files) == 0 {
		fmt.Fprintln(stderr, "corsproc validate: name at least one policy file")
		fs.Usage()
		return 2
	}
	code := 0
	var reports []validateReport
	for _, file := range files {
		r := validateFile(file)
		if !r.Valid {
			code = 1
		}
		if *asJSON {
			reports = append(reports, r)
			continue
		}
		if r.Error != "" {
			fmt.Fprintf(stdout, "%s: %s\n", file, r.Error)
			continue
		}
		errs, warns := 0, 0
		for _, p := range r.Problems {
			fmt.Fprintln(stdout, p.String())
			if p.Severity == policy.SeverityError {
				errs++
			} else {
				warns++
			}
		}
		if r.Valid {
			fmt.Fprintf(stdout, "%s: valid: %s, %s\n", file, plural(r.Policies, "policy", "policies"), plural(warns, "warning", "warnings"))
		} else {
			fmt.Fprintf(stdout, "%s: invalid: %s, %s\n", file, plural(errs, "error", "errors"), plural(warns, "warning", "warnings"))
		}
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

func validateFile(file string) validateReport {
	r := validateReport{File: file, Problems: []policy.Problem{}}
	set, err := policy.Load(file)
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
