package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/corsproc/corsproc/internal/importer"
)

// stdin is where "import FORMAT -" reads from; a variable so that tests
// can hand it a file.
var stdin io.Reader = os.Stdin

func runImport(args []string, stdout, stderr io.Writer) int {
	about := "Formats: " + strings.Join(importer.Formats, ", ") + `.
FILE may be "-" for standard input. Several django files are read in order,
later ones overriding earlier ones (base.py, then production.py).
Exit 0 converted, 1 converted with warnings about changed meaning, 2 unreadable input.
`
	fs := newCommandFlags("import", "import [--name NAME] [--host HOST]... FORMAT FILE...", about, stdout, stderr)
	name := fs.String("name", "", "django: the policy's name (default django)")
	var hosts multiFlag
	fs.Var(&hosts, "host", "django: a host the service answers on, for match.hosts (repeat for several)")
	rest, code, ok := fs.parse(args)
	if !ok {
		return code
	}
	if len(rest) < 2 {
		return fs.usageError("name a format and at least one file")
	}
	format, files := rest[0], rest[1:]
	var inputs []importer.Input
	var err error
	for _, f := range files {
		var data []byte
		if f == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			fmt.Fprintf(stderr, "corsproc import: %s\n", err)
			return 2
		}
		inputs = append(inputs, importer.Input{Name: f, Data: data})
	}
	res, err := importer.Convert(format, inputs, importer.Options{Name: *name, Hosts: hosts})
	if err != nil {
		// An unreadable input, an unknown format, or a converted policy
		// that does not load: nothing is printed on stdout.
		fmt.Fprintf(stderr, "corsproc import: %s\n", err)
		return 2
	}
	printResult(res, stdout, stderr)
	if len(res.Warnings) > 0 {
		fmt.Fprintf(stderr, "corsproc import: %s change what the source allowed; read the WARNING comments in the policy\n", plural(len(res.Warnings), "warning", "warnings"))
		return 1
	}
	return 0
}

// printResult prints a generated policy on stdout, and on stderr what the
// user must read about it: notes, the loader's warnings, and where the
// policy's meaning differs from the source's. import and suggest share it.
func printResult(res *importer.Result, stdout, stderr io.Writer) {
	stdout.Write(res.YAML)
	for _, n := range res.Notes {
		fmt.Fprintf(stderr, "note: %s\n", n)
	}
	for _, p := range res.Checks {
		fmt.Fprintf(stderr, "validate: %s\n", p)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "WARNING: %s\n", w)
	}
}
