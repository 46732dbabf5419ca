package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/corsproc/corsproc/policy"
)

// multiFlag collects a repeatable string flag: each use is one header line.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, " | ") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

const explainAbout = `Show what corsproc does with one request: the policy that matched (and, for
each policy before it, the condition that failed), the request class, the
decision and its reason, and the exact status and headers. Every input is a
flag; inputs a browser never sends (an origin with a path or in upper case, a
path without "/", request headers outside a preflight) are refused with what
a browser would send instead. Without --config, the embedded development
policy is used.

--corspolicies FILE adds the CORSPolicy objects of FILE (repeat it for
several files) as serve --kubernetes would run them beside --config: each
held to its guardrails, the admitted ones placed as they say, the refused
ones listed with every problem.

Exit 0 allowed or skipped, 1 denied, 2 error.
`

func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := newCommandFlags("explain", "explain [--config FILE [--corspolicies FILE]... [--namespace NS]] [--origin O] [--method M] [--request-method M] [--request-headers \"a, b\"] [--private-network] [--host H] [--path P] [--route R] [--debug-headers] [--json]", explainAbout, stdout, stderr)
	config := fs.String("config", "", "policy file (default: the embedded development policy)")
	var objectFiles multiFlag
	fs.Var(&objectFiles, "corspolicies", "a file of CORSPolicy objects to run beside --config, held to its guardrails (repeat for several files)")
	namespace := fs.String("namespace", "", "namespace of CORSPolicy objects that name none, as kubectl apply -n gives it")
	origin := fs.String("origin", "", "the request's origin header, as a browser sends it: scheme://host[:port]; omit for a request without one")
	method := fs.String("method", "", "the request's method (default GET, or OPTIONS with --request-method)")
	reqMethod := fs.String("request-method", "", "access-control-request-method: makes an OPTIONS request a preflight")
	var reqHeaders multiFlag
	fs.Var(&reqHeaders, "request-headers", "access-control-request-headers of a preflight, e.g. \"content-type, x-api-key\" (repeat for several header lines; needs --request-method)")
	pna := fs.Bool("private-network", false, "send access-control-request-private-network: true on a preflight (needs --request-method)")
	host := fs.String("host", "", "the request's :authority (host[:port]), e.g. api.example.com")
	path := fs.String("path", "/", "the request's :path, starting with \"/\"")
	route := fs.String("route", "", "the Envoy route name (xds.route_name)")
	debug := fs.Bool("debug-headers", false, "decide as serve --debug-headers does")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	rest, code, ok := fs.parse(args)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		return fs.fail("unexpected argument %q; every input is a flag (--origin, --host, --path, ...)", rest[0])
	}
	seen := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { seen[f.Name] = true })
	if msg := checkExplainInput(seen, *origin, *host, *path, *method); msg != "" {
		return fs.fail("%s", msg)
	}
	set := policy.Default()
	if *config != "" {
		var err error
		set, err = policy.Load(*config)
		if err != nil {
			var perr *policy.Error
			if errors.As(err, &perr) {
				fmt.Fprintf(stderr, "corsproc explain: %s is invalid (run corsproc validate %s for the warnings too):\n", *config, *config)
				for _, p := range perr.Problems {
					if p.Severity == policy.SeverityError {
						fmt.Fprintln(stderr, problemLine(p))
					}
				}
			} else {
				fmt.Fprintf(stderr, "corsproc explain: %s\n", err)
			}
			return 2
		}
	}
	var objects *objectsRun
	if len(objectFiles) > 0 {
		if *config == "" {
			return fs.usageError("--corspolicies needs --config CENTRAL: its guardrails decide which objects run")
		}
		var code int
		if objects, code = runObjects(set, objectFiles, *namespace, stderr); objects == nil {
			return code
		}
		set = objects.set
	}
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
			Config       string    `json:"config"`
			Admitted     []string  `json:"admitted,omitempty"`
			Refused      []refusal `json:"refused,omitempty"`
			PolicySource string    `json:"policy_source,omitempty"`
			policy.Explanation
		}{Config: set.File(), Explanation: x}
		if objects != nil {
			out.Admitted, out.Refused = objects.admittedNames(), objects.refused
			if d := set.Decide(&req); d.PolicyIndex() >= 0 {
				out.PolicySource = set.PolicySource(d.PolicyIndex())
			}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			fmt.Fprintln(stderr, "corsproc explain:", err)
			return 2
		}
	} else {
		printExplanation(stdout, set, objects, &req, x)
	}
	if x.Decision == policy.Denied.String() {
		return 1
	}
	return 0
}

func printExplanation(w io.Writer, set *policy.Set, objects *objectsRun, r *policy.Request, x policy.Explanation) {
	fmt.Fprintf(w, "config:    %s\n", set.File())
	if objects != nil {
		objects.print(w)
	}
	fmt.Fprintf(w, "request:   %s\n", describeRequest(r))
	switch d := set.Decide(r); {
	case x.Policy == "":
		fmt.Fprintf(w, "policy:    none\n")
	case objects != nil:
		fmt.Fprintf(w, "policy:    %s (%s), from %s\n", x.Policy, x.Mode, set.PolicySource(d.PolicyIndex()))
	default:
		fmt.Fprintf(w, "policy:    %s (%s)\n", x.Policy, x.Mode)
	}
	if len(x.PassedOver) > 0 {
		fmt.Fprintf(w, "passed over:\n")
		for _, m := range x.PassedOver {
			fmt.Fprintf(w, "  policies[%d] %q: %s\n", m.Index, m.Policy, m.Message)
		}
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

// checkExplainInput refuses a request no browser sends: explain would
// answer it faithfully, and the user would learn about the wrong request.
// It returns "" when the input is one a browser could send.
func checkExplainInput(seen map[string]bool, origin, host, path, method string) string {
	if seen["origin"] && origin != "" { // --origin "" asks about an empty header on purpose
		if sent, problem := policy.BrowserOrigin(origin); problem != "" {
			msg := fmt.Sprintf("--origin %q is not what a browser sends: %s", origin, problem)
			if sent != "" {
				msg += fmt.Sprintf("; it would send %q: run with --origin %s", sent, sent)
			}
			return msg
		}
	}
	if !seen["request-method"] {
		// A browser sends these only in a preflight, which always carries
		// access-control-request-method; without it they would be ignored
		// and the answer would be for a request the user did not mean.
		for _, name := range []string{"request-headers", "private-network"} {
			if seen[name] {
				return fmt.Sprintf("--%s is sent only in a preflight, which also has access-control-request-method: add --request-method with the method the page will use (e.g. --request-method PUT)", name)
			}
		}
	} else if method != "" && method != "OPTIONS" {
		return fmt.Sprintf("--request-method makes a preflight, which is always OPTIONS, not %s: drop --method (it defaults to OPTIONS), or drop --request-method for the actual request", method)
	}
	if u, err := url.Parse(path); err == nil && u.Scheme != "" && u.Host != "" {
		p := u.EscapedPath()
		if p == "" {
			p = "/"
		}
		if u.RawQuery != "" {
			p += "?" + u.RawQuery
		}
		return fmt.Sprintf("--path %q is a URL; split it: run with --host %s --path %s", path, u.Host, p)
	}
	if !strings.HasPrefix(path, "/") {
		return fmt.Sprintf("--path %q does not start with \"/\", as every request's :path does: run with --path /%s", path, path)
	}
	if strings.Contains(host, "/") {
		return fmt.Sprintf("--host %q is a URL; --host is the :authority alone, e.g. api.example.com (and --path the rest)", host)
	}
	return ""
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
