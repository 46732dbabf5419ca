package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/corsproc/corsproc/policy"
)

// stdinName stands for standard input ("validate -") in messages.
const stdinName = "<stdin>"

const validateAbout = `Check policy files and print every problem at once, as FILE:LINE: lines an
editor can jump to, each naming the policy and the key. "-" reads the policy
from standard input. Files over 16 MiB, or not UTF-8 text, are refused.

A file of CORSPolicy objects (apiVersion corsproc.io/v1alpha1, kind
CORSPolicy; one or many YAML documents) gets the checks of a policy in a
policy file; with --config CENTRAL, each object is also held to CENTRAL's
defaults and guardrails as serve --kubernetes would, offline, so that a
team's CI can check a change before it is applied. HTTPRoute documents
in the same file give their namespace's hostnames to guardrails with
hosts_from_httproutes, as the cluster's routes do.

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
	// Objects are the CORSPolicy objects of a file of them, as
	// NAMESPACE/NAME; Policies counts them.
	Objects []string `json:"objects,omitempty"`
	// Central is the file whose guardrails the objects were held to.
	Central string `json:"central,omitempty"`

	set *policy.Set // a valid policy file, compiled
}

func runValidate(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newCommandFlags("validate", "validate [--json] [--config CENTRAL] [--namespace NS] FILE... (- for standard input)", validateAbout, stdout, stderr)
	asJSON := fs.Bool("json", false, "print one JSON report per file instead of text")
	config := fs.String("config", "", "central policy file: hold CORSPolicy objects to its defaults and guardrails, as serve --kubernetes does")
	namespace := fs.String("namespace", "", "namespace of CORSPolicy objects that name none, as kubectl apply -n gives it")
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
	var central *policy.Set
	if *config != "" {
		r := validateData(*config, func() ([]byte, error) { return policy.ReadFile(*config) }, nil)
		if !r.Valid {
			// The objects cannot be held to guardrails that do not load.
			fmt.Fprintf(stderr, "corsproc validate: --config %s is invalid, so no file was checked against it:\n", *config)
			printReport(stderr, &r)
			return 1
		}
		central = r.set
	}
	v := &objectValidation{namespace: *namespace, central: central, seen: map[string]string{}}
	var reports []validateReport
	for _, file := range files {
		var r validateReport
		if file == "-" {
			r = validateData(stdinName, func() ([]byte, error) { return policy.ReadFrom(stdinName, stdin) }, v)
		} else {
			r = validateData(file, func() ([]byte, error) { return policy.ReadFile(file) }, v)
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
		fmt.Fprintln(w, objectProblemLine(r.File, p))
		if p.Severity == policy.SeverityError {
			errs++
		} else {
			warns++
		}
	}
	switch {
	case r.Valid && r.Objects != nil && r.Central != "":
		fmt.Fprintf(w, "%s: valid: %s admitted by the guardrails of %s, %s\n", r.File, plural(r.Policies, "CORSPolicy object", "CORSPolicy objects"), r.Central, plural(warns, "warning", "warnings"))
	case r.Valid && r.Objects != nil:
		fmt.Fprintf(w, "%s: valid: %s, %s (not checked against guardrails: give --config CENTRAL)\n", r.File, plural(r.Policies, "CORSPolicy object", "CORSPolicy objects"), plural(warns, "warning", "warnings"))
	case r.Valid:
		fmt.Fprintf(w, "%s: valid: %s, %s\n", r.File, plural(r.Policies, "policy", "policies"), plural(warns, "warning", "warnings"))
	default:
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

// objectValidation is how files of CORSPolicy objects are checked: the
// central file, if any, and the objects seen so far.
type objectValidation struct {
	namespace string
	central   *policy.Set
	seen      map[string]string
}

// validateData checks one file: a policy file, or with v a file of
// CORSPolicy objects when it holds them.
func validateData(file string, read func() ([]byte, error), v *objectValidation) validateReport {
	r := validateReport{File: file, Problems: []policy.Problem{}}
	data, err := read()
	if err != nil {
		r.Error = err.Error()
		return r
	}
	if v != nil && policy.HoldsObjects(data) {
		oc := checkObjects(file, data, v.namespace, v.central, v.seen)
		r.Objects = append([]string{}, oc.objects...)
		r.Policies = len(oc.objects)
		r.Problems = append(r.Problems, oc.problems...)
		r.Valid = !slices.ContainsFunc(oc.problems, func(p policy.Problem) bool { return p.Severity == policy.SeverityError })
		if v.central != nil {
			r.Central = v.central.File()
		}
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
		r.set = set
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
