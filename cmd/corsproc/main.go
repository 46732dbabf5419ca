// Command corsproc enforces CORS at the edge: an Envoy external processor
// (ext_proc, gRPC) that answers preflights and writes the CORS response
// headers for every service behind the gateway, from one policy file.
//
// Usage:
//
//	corsproc serve [flags]       run the ext_proc and admin servers
//	corsproc validate FILE...    check policy files
//	corsproc explain [flags]     show what corsproc does with one request
//	corsproc import FORMAT FILE  convert django, ingress-nginx, istio, envoy-gateway or gateway-api CORS
//	corsproc suggest --admin URL print the minimal policy for the traffic corsproc observed
//	corsproc version             print version, commit and Go version
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `corsproc: CORS at the edge, as an Envoy ext_proc server.

Usage:
  corsproc serve [flags]       run the ext_proc gRPC server and the admin HTTP server
  corsproc validate FILE...    check policy files; exit 0 valid, 1 invalid, 2 usage
  corsproc explain [flags]     show what corsproc does with one request; exit 0 allowed, 1 denied, 2 error
  corsproc import FORMAT FILE... convert CORS from django, ingress-nginx, istio, envoy-gateway or gateway-api
  corsproc suggest --admin URL print the minimal policy for the traffic a running corsproc observed
  corsproc version             print version, commit and Go version

Run "corsproc COMMAND --help" for a command's flags.
`

func main() {
	// Only serve catches signals (see serveProcess): the other commands
	// end on Ctrl-C as any command does.
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches to a command and returns the process's exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serveProcess(ctx, rest, stdout, stderr)
	case "validate":
		return runValidate(rest, stdout, stderr)
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

// newFlagSet returns a FlagSet that reports errors instead of exiting, with
// the command's usage text.
func newFlagSet(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: corsproc %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// flagExit maps a flag parsing error to an exit code: --help is success.
func flagExit(err error) int {
	if err == flag.ErrHelp {
		return 0
	}
	return 2
}
