package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/corsproc/corsproc/internal/doctor"
	"github.com/corsproc/corsproc/policy"
)

const (
	// maxDumpBytes bounds a config dump read from a file, standard input or
	// a live Envoy: large meshes dump tens of megabytes; past this it is no
	// dump doctor should hold in memory.
	maxDumpBytes = 256 << 20
	// adminFetchTimeout bounds fetching /config_dump from a live Envoy,
	// body included; generous, as a large dump on a loaded proxy is slow.
	adminFetchTimeout = 30 * time.Second
)

const doctorAbout = `Checks an Envoy /config_dump (saved as JSON; "-" reads standard input) for
everything that stops corsproc from answering CORS: its place in each
listener's HTTP filter chain, header modes, forward and mutation rules, a
second CORS answer. Exit 0 clean, 1 problems, 2 usage or unreadable input.
`

// doctorStdin is where "doctor -" reads; tests replace it.
var doctorStdin io.Reader = os.Stdin

// doctorReport is what --json prints.
type doctorReport struct {
	Dump     string           `json:"dump"`
	Config   string           `json:"config,omitempty"`
	Clean    bool             `json:"clean"`
	Errors   int              `json:"errors"`
	Warnings int              `json:"warnings"`
	Infos    int              `json:"infos"`
	Findings []doctor.Finding `json:"findings"`
}

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newCommandFlags("doctor", "doctor [--config POLICY] [--cluster NAME] [--json] FILE|-|--admin URL", doctorAbout, stdout, stderr)
	config := fs.String("config", "", "policy file: also check route names and virtual hosts against its policies")
	cluster := fs.String("cluster", "", `corsproc's cluster name, exactly (default: any ext_proc cluster whose name contains "corsproc")`)
	admin := fs.String("admin", "", "fetch URL/config_dump from a live Envoy's admin interface instead of reading FILE")
	asJSON := fs.Bool("json", false, "print JSON for scripts")
	rest, code, ok := fs.parse(args)
	if !ok {
		return code
	}
	usageErr := func(msg string) int { return fs.usageError("%s", msg) }
	switch {
	case *admin != "" && len(rest) > 0:
		return usageErr("give a dump FILE or --admin URL, not both")
	case *admin == "" && len(rest) != 1:
		return usageErr("name one config dump: a file saved from Envoy's admin /config_dump, - for standard input, or --admin URL")
	}
	opts := doctor.Options{Cluster: *cluster}
	if *config != "" {
		set, err := policy.Load(*config)
		if err != nil {
			var perr *policy.Error
			if errors.As(err, &perr) {
				fmt.Fprintf(stderr, "corsproc doctor: %s is invalid:\n%s\n", *config, err)
			} else {
				fmt.Fprintf(stderr, "corsproc doctor: %s\n", err)
			}
			return 2
		}
		opts.Policy = set
	}
	var data []byte
	var err error
	source := ""
	if *admin != "" {
		source = dumpURL(*admin)
		data, err = fetchDump(ctx, source, maxDumpBytes)
	} else {
		source = rest[0]
		data, err = readDump(source, maxDumpBytes)
	}
	if err != nil {
		fmt.Fprintf(stderr, "corsproc doctor: %v\n", err)
		return 2
	}
	dump, notes, err := doctor.Decode(data)
	if err != nil {
		fmt.Fprintf(stderr, "corsproc doctor: %s: %v\n", source, err)
		return 2
	}
	findings := append(doctor.Analyze(dump, opts), notes...)
	errs, warns, infos := doctor.Count(findings)
	r := doctorReport{Dump: source, Clean: errs+warns == 0, Errors: errs, Warnings: warns, Infos: infos, Findings: findings}
	if findings == nil {
		r.Findings = []doctor.Finding{}
	}
	if opts.Policy != nil {
		r.Config = opts.Policy.File()
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			fmt.Fprintln(stderr, "corsproc doctor:", err)
			return 2
		}
	} else {
		printDoctor(stdout, &r)
	}
	if !r.Clean {
		return 1
	}
	return 0
}

func printDoctor(w io.Writer, r *doctorReport) {
	fmt.Fprintf(w, "dump:   %s\n", r.Dump)
	if r.Config != "" {
		fmt.Fprintf(w, "config: %s\n", r.Config)
	}
	for _, f := range r.Findings {
		fmt.Fprintf(w, "\n%-7s %s [%s]\n", f.Severity, f.Message, f.Check)
		fmt.Fprintf(w, "  where: %s\n", f.Where)
		fmt.Fprintf(w, "  why:   %s\n", f.Why)
		fmt.Fprintf(w, "  fix:   %s\n", f.Fix)
	}
	verdict := "clean"
	if !r.Clean {
		verdict = "problems"
	}
	fmt.Fprintf(w, "\n%s: %s, %s, %s\n", verdict, plural(r.Errors, "error", "errors"), plural(r.Warnings, "warning", "warnings"), plural(r.Infos, "note", "notes"))
}

// readDump reads a file, or standard input for "-", refusing more than
// limit bytes.
func readDump(name string, limit int64) ([]byte, error) {
	var in io.Reader
	if name == "-" {
		in = doctorStdin
		name = "standard input"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		in = f
	}
	data, err := io.ReadAll(io.LimitReader(in, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d MiB; no config dump is", name, limit>>20)
	}
	return data, nil
}

// dumpURL turns an admin address into its /config_dump URL:
// "localhost:9901" and "http://localhost:9901/" both become
// "http://localhost:9901/config_dump"; a URL naming /config_dump (with a
// query) is kept.
func dumpURL(admin string) string {
	if !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}
	if strings.Contains(admin, "/config_dump") {
		return admin
	}
	return strings.TrimSuffix(admin, "/") + "/config_dump"
}

// fetchDump GETs url within adminFetchTimeout, refusing a body over limit
// bytes or a status other than 200.
func fetchDump(ctx context.Context, url string, limit int64) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, adminFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("--admin: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch the config dump: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch %s: %s (is this Envoy's admin address?)", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", url, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("fetch %s: body larger than %d bytes; no config dump is", url, limit)
	}
	return data, nil
}
