package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/corsproc/corsproc/policy"
)

// multiFlag collects a repeatable string flag: each use is one header line.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " | ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("explain", "explain [--config FILE] [--origin O] [--method M] [--request-method M] [--request-headers \"a, b\"] [--private-network] [--host H] [--path P] [--route R] [--debug-headers] [--json]", stderr)
	config := fs.String("config", "", "policy file (default: the embedded development policy)")
	origin := fs.String("origin", "", "the request's origin header; omit for a request without one")
	method := fs.String("method", "", "the request's method (default GET, or OPTIONS with --request-method)")
	reqMethod := fs.String("request-method", "", "access-control-request-method: makes an OPTIONS request a preflight")
	var reqHeaders multiFlag
	fs.Var(&reqHeaders, "request-headers", "access-control-request-headers, e.g. \"content-type, x-api-key\" (repeat for several header lines)")
	pna := fs.Bool("private-network", false, "send access-control-request-private-network: true")
	host := fs.String("host", "", "the request's :authority (host), e.g. api.example.com")
	path := fs.String("path", "/", "the request's :path")
	route := fs.String("route", "", "the Envoy route name (xds.route_name)")
	debug := fs.Bool("debug-headers", false, "decide as serve --debug-headers does")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	rest, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if len(rest) > 0 {
		fmt.Fprintf(stderr, "corsproc explain: unexpected argument %q; every input is a flag\n", rest[0])
		return 2
	}
	set := policy.Default()
	if *config != "" {
		set, err = policy.Load(*config)
		if err != nil {
			var perr *policy.Error
			if errors.As(err, &perr) {
				fmt.Fprintf(stderr, "corsproc explain: %s is invalid:\n%s\n", *config, err)
			} else {
				fmt.Fprintf(stderr, "corsproc explain: %s\n", err)
			}
			return 2
		}
	}
	seen := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { seen[f.Name] = true })
	m := *method
	if m == "" {
		m = "GET"
		if seen["request-method"] {
			m = "OPTIONS"
		}
	}
	req := policy.Request{
		Method:           m,
		Host:             *host,
		Path:             *path,
		Route:            *route,
		Origin:           *origin,
		RequestMethod:    *reqMethod,
		HasRequestMethod: seen["request-method"],
		RequestHeaders:   reqHeaders,
		PrivateNetwork:   *pna,
		Debug:            *debug,
	}
	if seen["origin"] {
		req.Origins = 1 // an empty --origin "" is an empty origin header, not none
	}
	x := set.Explain(&req)
	if *asJSON {
		out := struct {
			Config string `json:"config"`
			policy.Explanation
		}{set.File(), x}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(stderr, "corsproc explain:", err)
			return 2
		}
	} else {
		printExplanation(stdout, set.File(), &req, x)
	}
	if x.Decision == policy.Denied.String() {
		return 1
	}
	return 0
}

func printExplanation(w io.Writer, file string, r *policy.Request, x policy.Explanation) {
	fmt.Fprintf(w, "config:    %s\n", file)
	fmt.Fprintf(w, "request:   %s\n", describeRequest(r))
	if x.Policy == "" {
		fmt.Fprintf(w, "policy:    none\n")
	} else {
		fmt.Fprintf(w, "policy:    %s (%s)\n", x.Policy, x.Mode)
	}
	fmt.Fprintf(w, "class:     %s\n", x.Class)
	fmt.Fprintf(w, "decision:  %s\n", x.Decision)
	fmt.Fprintf(w, "reason:    %s: %s\n", x.Reason, x.Message)
	switch {
	case !x.Forwarded:
		fmt.Fprintf(w, "answer:    corsproc answers %d itself; the service never sees the request\n", x.Status)
	case x.Mode == policy.Report.String():
		fmt.Fprintf(w, "answer:    forwarded; report mode changes nothing and compares the service's own CORS headers with the policy\n")
	case x.KeepsUpstreamCORS:
		fmt.Fprintf(w, "answer:    forwarded; a response on which the service sets access-control-allow-origin is left exactly as sent;\n           on any other, corsproc removes the service's access-control-* headers, then sets the headers below\n")
	case x.RemovesUpstreamCORS:
		fmt.Fprintf(w, "answer:    forwarded; on the response corsproc removes the service's access-control-* headers, then sets the headers below\n")
	default:
		fmt.Fprintf(w, "answer:    forwarded untouched\n")
	}
	if x.Forwarded && !x.ResponsePhase {
		fmt.Fprintf(w, "response:  not sent to corsproc (mode_override: response_header_mode SKIP)\n")
	}
	if len(x.Headers) == 0 {
		fmt.Fprintf(w, "headers:   none\n")
		return
	}
	fmt.Fprintf(w, "headers:\n")
	for _, h := range x.Headers {
		fmt.Fprintf(w, "  %s: %s\n", h.Name, h.Value)
	}
}

func describeRequest(r *policy.Request) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteString(" ")
	if r.Host != "" {
		b.WriteString(r.Host)
	} else {
		b.WriteString("(any host)")
	}
	b.WriteString(r.Path)
	if r.Route != "" {
		fmt.Fprintf(&b, " route %s", r.Route)
	}
	if r.Origins > 0 {
		fmt.Fprintf(&b, " from origin %q", r.Origin)
	} else {
		b.WriteString(" without origin")
	}
	if r.HasRequestMethod {
		fmt.Fprintf(&b, ", asking for %s", r.RequestMethod)
		if len(r.RequestHeaders) > 0 {
			fmt.Fprintf(&b, " with headers %q", strings.Join(r.RequestHeaders, ", "))
		}
	}
	if r.PrivateNetwork {
		b.WriteString(", private network")
	}
	return b.String()
}
