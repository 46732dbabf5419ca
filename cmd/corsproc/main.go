// Command corsproc enforces CORS at the edge: an Envoy external processor
// (ext_proc, gRPC) that answers preflights and writes the CORS response
// headers for every service behind the gateway, from one policy file.
//
// Usage:
//
//	corsproc serve [flags]       run the ext_proc and admin servers
//	corsproc validate FILE...    check policy files and CORSPolicy objects ("-" reads standard input)
//	corsproc explain [flags]     show what corsproc does with one request
//	corsproc import FORMAT FILE  convert django, ingress-nginx, istio, envoy-gateway or gateway-api CORS
//	corsproc suggest --admin URL print the minimal policy for the traffic corsproc observed
//	corsproc doctor FILE         check an Envoy config dump for what stops corsproc answering CORS
//	corsproc version             print version, commit and Go version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `corsproc: CORS at the edge, as an Envoy ext_proc server.

Usage:
  corsproc serve [flags]       run the ext_proc gRPC server and the admin HTTP server
  corsproc validate FILE...    check policy files and CORSPolicy objects ("-" reads standard input); exit 0 valid, 1 invalid, 2 usage
  corsproc explain [flags]     show what corsproc does with one request; exit 0 allowed, 1 denied, 2 error
  corsproc import FORMAT FILE... convert CORS from django, ingress-nginx, istio, envoy-gateway or gateway-api
  corsproc suggest --admin URL print the minimal policy for the traffic a running corsproc observed
  corsproc doctor FILE         check an Envoy config dump for what stops corsproc answering CORS
  corsproc version             print version, commit and Go version

Run "corsproc COMMAND --help" for a command's flags.
`

func main() {
	// Only serve catches signals (see serveProcess): the other commands
	// end on Ctrl-C as any command does.
	os.Exit(runWithStdin(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run dispatches to a command with an empty standard input and returns the
// process's exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWithStdin(ctx, args, strings.NewReader(""), stdout, stderr)
}

// runWithStdin is run with the standard input that "validate -" reads.
func runWithStdin(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serveProcess(ctx, rest, stdout, stderr)
	case "validate":
		return runValidate(rest, stdin, stdout, stderr)
	case "explain":
		return runExplain(rest, stdout, stderr)
	case "import":
		return runImport(rest, stdout, stderr)
	case "suggest":
		return runSuggest(ctx, rest, stdout, stderr)
	case "doctor":
		return runDoctor(ctx, rest, stdout, stderr)
	case "version", "--version":
		return runVersion(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "corsproc: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// parseInterleaved parses flags that may come before, between or after the
// positional arguments, as users type them ("validate a.yaml --json").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		// Parse stops at the first positional argument, or after a "--",
		// which it consumes: everything after "--" is positional.
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// commandFlags is a command's flags and usage. Its --help prints to
// stdout and exits 0, so that it pipes into less; a mistake prints the
// usage to stderr and exits 2.
type commandFlags struct {
	*flag.FlagSet
	synopsis, about string
	stdout, stderr  io.Writer
}

// newCommandFlags returns the flags of a command: synopsis is its usage
// line after "corsproc ", about a paragraph on what it does.
func newCommandFlags(name, synopsis, about string, stdout, stderr io.Writer) *commandFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr) // the flag package's own error line
	fs.Usage = func() {} // printed by parse, to the stream that fits
	return &commandFlags{FlagSet: fs, synopsis: synopsis, about: about, stdout: stdout, stderr: stderr}
}

// printUsage writes the usage line, the paragraph and, when the command
// has any, its flags.
func (c *commandFlags) printUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: corsproc %s\n", c.synopsis)
	if c.about != "" {
		fmt.Fprintf(w, "\n%s", c.about)
	}
	n := 0
	c.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(w, "\nFlags:\n")
	c.SetOutput(w)
	c.PrintDefaults()
	c.SetOutput(c.stderr)
}

// parse parses flags given before, between or after the positional
// arguments. When it returns ok false the command is over: --help was
// answered (code 0) or a mistake reported (code 2).
func (c *commandFlags) parse(args []string) (positional []string, code int, ok bool) {
	positional, err := parseInterleaved(c.FlagSet, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		c.printUsage(c.stdout)
		return nil, 0, false
	case err != nil:
		c.printUsage(c.stderr)
		return nil, 2, false
	}
	return positional, 0, true
}

// usageError reports a mistake the flag package cannot see, with the
// usage, and returns the exit code 2.
func (c *commandFlags) usageError(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "corsproc %s: %s\n\n", c.Name(), fmt.Sprintf(format, args...))
	c.printUsage(c.stderr)
	return 2
}

// fail reports a wrong input, without the usage (it would bury the one
// line that matters), and returns the exit code 2.
func (c *commandFlags) fail(format string, args ...any) int {
	fmt.Fprintf(c.stderr, "corsproc %s: %s\n", c.Name(), fmt.Sprintf(format, args...))
	return 2
}
