package main

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/corsproc/corsproc/policy"
)

// CORSPolicy objects in files, checked offline as serve --kubernetes
// checks them (docs/contract.md §6), so that a
// team's CI can check a change before it is applied.

// objectCheck is what became of the CORSPolicy objects of one file.
type objectCheck struct {
	objects  []string           // NAMESPACE/NAME, in file order
	admitted []*policy.Admitted // with a central file, the objects it admits
	refused  []refusal          // with a central file, the others
	problems []policy.Problem   // every problem, the file's own and each object's
}

// refusal is one object the central file's guardrails refused.
type refusal struct {
	Object   string           `json:"object"`
	Source   string           `json:"source"`
	Problems []policy.Problem `json:"problems"`
}

// checkObjects reads the CORSPolicy objects of one file and checks each:
// against central's guardrails when central is not nil, else with the
// loader's checks alone. seen holds the objects of the files before, so
// that an object given twice is a problem.
func checkObjects(file string, data []byte, namespace string, central *policy.Set, seen map[string]string) objectCheck {
	var r objectCheck
	cs, err := policy.ParseCORSPolicies(file, data, namespace)
	var perr *policy.Error
	if errors.As(err, &perr) {
		r.problems = append(r.problems, perr.Problems...)
	} else if err != nil {
		r.problems = append(r.problems, policy.Problem{File: file, Policy: -1, Message: err.Error()})
	}
	for _, c := range cs {
		name := c.Namespace + "/" + c.Name
		r.objects = append(r.objects, name)
		if other, dup := seen[name]; dup {
			r.problems = append(r.problems, policy.Problem{File: c.Source, Policy: -1, PolicyName: name, Key: "metadata.name", Value: c.Name, HasValue: true,
				Message: "CORSPolicy " + name + " is also in " + other + "; an object is applied once: rename one or remove it"})
			continue
		}
		seen[name] = file
		if central == nil {
			warnings, err := c.Check()
			r.problems = append(r.problems, warnings...)
			if errors.As(err, &perr) {
				r.problems = append(r.problems, perr.Problems...)
			}
			continue
		}
		a, err := central.Admit(c)
		switch {
		case errors.As(err, &perr):
			r.problems = append(r.problems, perr.Problems...)
			r.refused = append(r.refused, refusal{Object: name, Source: c.Source, Problems: perr.Problems})
		case err != nil:
			r.problems = append(r.problems, policy.Problem{File: c.Source, Policy: -1, PolicyName: name, Message: err.Error()})
		default:
			r.problems = append(r.problems, a.Warnings()...)
			r.admitted = append(r.admitted, a)
		}
	}
	return r
}

// objectProblemLine renders a problem of an object read from file as
// compilers do, the file's line first so that editors jump to it:
// `FILE:LINE: [warning: ]CORSPolicy NS/NAME: spec.key "value": message`.
func objectProblemLine(file string, p policy.Problem) string {
	object, ok := strings.CutPrefix(p.File, file+": ")
	if !ok {
		return problemLine(p)
	}
	s := strings.TrimPrefix(p.String(), "warning: ")
	s = strings.TrimPrefix(s, p.File+": ")
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Severity == policy.SeverityWarning {
		b.WriteString("warning: ")
	}
	b.WriteString(object + ": " + s)
	return b.String()
}

// objectsRun is the set explain runs with CORSPolicy objects: the central
// file's with the admitted objects, and the refused ones.
type objectsRun struct {
	set      *policy.Set
	admitted []objectRef
	refused  []refusal
}

// objectRef names an admitted object and where it came from.
type objectRef struct{ name, source string }

// runObjects reads and admits the objects of files as serve --kubernetes
// would beside central. A file that cannot be read, or holds something
// other than CORSPolicy objects, is an error (nil, exit code 2): explain
// would answer for objects the user did not mean.
func runObjects(central *policy.Set, files []string, namespace string, stderr io.Writer) (*objectsRun, int) {
	run := &objectsRun{}
	seen := map[string]string{}
	var admitted []*policy.Admitted
	for _, file := range files {
		data, err := policy.ReadFile(file)
		if err != nil {
			fmt.Fprintf(stderr, "corsproc explain: %s\n", err)
			return nil, 2
		}
		if !policy.HoldsObjects(data) {
			fmt.Fprintf(stderr, "corsproc explain: --corspolicies %s holds no CORSPolicy object (no apiVersion or kind); a policy file is given with --config\n", file)
			return nil, 2
		}
		oc := checkObjects(file, data, namespace, central, seen)
		// Problems outside any admitted or refused object (a document of
		// another kind, an object given twice) make the file unusable.
		var own []policy.Problem
		for _, p := range oc.problems {
			if p.Severity == policy.SeverityError && !slices.ContainsFunc(oc.refused, func(r refusal) bool { return r.Source == p.File }) {
				own = append(own, p)
			}
		}
		if len(own) > 0 {
			fmt.Fprintf(stderr, "corsproc explain: --corspolicies %s is invalid (run corsproc validate --config %s %s):\n", file, central.File(), file)
			for _, p := range own {
				fmt.Fprintln(stderr, objectProblemLine(file, p))
			}
			return nil, 2
		}
		for _, a := range oc.admitted {
			run.admitted = append(run.admitted, objectRef{a.Name(), file})
		}
		admitted = append(admitted, oc.admitted...)
		run.refused = append(run.refused, oc.refused...)
	}
	set, err := central.With(admitted)
	if err != nil {
		fmt.Fprintf(stderr, "corsproc explain: %s\n", err)
		return nil, 2
	}
	run.set = set
	// As With orders them: by namespace, then name.
	slices.SortFunc(run.admitted, func(a, b objectRef) int {
		ans, an, _ := strings.Cut(a.name, "/")
		bns, bn, _ := strings.Cut(b.name, "/")
		return cmp.Or(strings.Compare(ans, bns), strings.Compare(an, bn))
	})
	return run, 0
}

func (o *objectsRun) admittedNames() []string {
	names := make([]string, len(o.admitted))
	for i, a := range o.admitted {
		names[i] = a.name
	}
	return names
}

// print lists the admitted and the refused objects, each refusal with
// every problem, as validate prints them.
func (o *objectsRun) print(w io.Writer) {
	if len(o.admitted) == 0 {
		fmt.Fprintf(w, "admitted:  none\n")
	}
	for _, a := range o.admitted {
		fmt.Fprintf(w, "admitted:  CORSPolicy %s (%s)\n", a.name, a.source)
	}
	for _, r := range o.refused {
		file, _, _ := strings.Cut(r.Source, ": ")
		fmt.Fprintf(w, "refused:   CORSPolicy %s (%s), which does not run:\n", r.Object, file)
		for _, p := range r.Problems {
			if p.Severity == policy.SeverityError {
				fmt.Fprintf(w, "  %s\n", objectProblemLine(file, p))
			}
		}
	}
}
