// Package importer converts the CORS configuration teams run today
// (django-cors-headers settings, ingress-nginx annotations, Istio
// VirtualServices, Envoy Gateway SecurityPolicies and Gateway API HTTPRoute
// CORS filters) into a corsproc policy file that behaves as the source does.
//
// Every converter reads its input as data and never executes it. What it
// cannot carry over exactly is said twice: as a comment in the policy file,
// next to the key it concerns, and as a [Warning] the caller prints on
// stderr. A warning means the policy behaves differently from the source;
// a [Note] explains a conversion that keeps the meaning.
//
// The policy file is checked by the same loader `corsproc validate` uses
// ([policy.Parse]) before it is returned.
package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/corsproc/corsproc/policy"
)

// Formats are the source formats Convert understands, in the order the
// help text lists them.
var Formats = []string{"django", "ingress-nginx", "istio", "envoy-gateway", "gateway-api"}

// Input is one source file.
type Input struct {
	// Name is the file's name as the user gave it ("-" for stdin); it is
	// quoted in messages.
	Name string
	// Data is the file's content.
	Data []byte
}

// Options adjust a conversion.
type Options struct {
	// Name is the policy name for a django import (default "django").
	Name string
	// Hosts, when given, become match.hosts of a django import: a Django
	// settings file does not say which host the service answers on.
	Hosts []string
}

// Message is one thing the user should know about the conversion.
type Message struct {
	// Where names the source: file, and line or object, e.g.
	// "settings.py:12" or "ingress.yaml: Ingress shop/api".
	Where string
	// Text says what happened and what to do about it.
	Text string
}

func (m Message) String() string { return m.Where + ": " + m.Text }

// Result is a converted policy file.
type Result struct {
	// YAML is the policy file, comments included; it loads with
	// [policy.Parse].
	YAML []byte
	// Warnings are conversions that change what the source allowed: the
	// command exits 1 when there is one.
	Warnings []Message
	// Notes explain conversions that keep the meaning.
	Notes []Message
	// Checks are what the loader says about the file (warnings only: a
	// refused file is an error).
	Checks []policy.Problem
}

// InputError is an input that cannot be read as its format: the command
// exits 2.
type InputError struct {
	Where string
	Msg   string
}

func (e *InputError) Error() string { return e.Where + ": " + e.Msg }

// draft is a policy being built, with the comments to print around it.
type draft struct {
	name     string
	comments []string // above the policy
	match    *policy.Match
	s        policy.Settings
	keyNotes map[string][]string // comments above a key
	// itemNotes, when a key has them, are one comment per list item: the
	// list is written one item a line, the comment after it.
	itemNotes map[string][]string
	where     string // the source, for messages about this policy
}

func (d *draft) note(key, format string, args ...any) {
	if d.keyNotes == nil {
		d.keyNotes = map[string][]string{}
	}
	d.keyNotes[key] = append(d.keyNotes[key], sprintf(format, args...))
}

// converter collects drafts and messages for one run.
type converter struct {
	format   string
	label    string // the policy's name in the loader's messages
	sources  []string
	header   []string
	drafts   []*draft
	warnings []Message
	notes    []Message
}

func (c *converter) warn(where, format string, args ...any) {
	c.warnings = append(c.warnings, Message{where, sprintf(format, args...)})
}

func (c *converter) inform(where, format string, args ...any) {
	m := Message{where, sprintf(format, args...)}
	if slices.Contains(c.notes, m) {
		return // rules of one Ingress share their lists, and their notes
	}
	c.notes = append(c.notes, m)
}

// sprintf is fmt.Sprintf with %q quoting as [show] does: a regex quoted in
// a comment reads as it is written in the source, backslashes single.
func sprintf(format string, args ...any) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' || i+1 == len(format) {
			b.WriteByte(format[i])
			continue
		}
		verb := format[i+1]
		i++
		if verb == '%' {
			b.WriteByte('%')
			continue
		}
		if n >= len(args) {
			b.WriteString("%!" + string(verb) + "(MISSING)")
			continue
		}
		if s, ok := args[n].(string); ok && verb == 'q' {
			b.WriteString(show(s))
		} else {
			fmt.Fprintf(&b, "%"+string(verb), args[n])
		}
		n++
	}
	return b.String()
}

// Convert reads inputs as format and returns the policy file. The error is
// an [*InputError] when an input cannot be read, or says the format is
// unknown.
func Convert(format string, inputs []Input, opts Options) (*Result, error) {
	c := &converter{format: format}
	c.label = "imported policy"
	for _, in := range inputs {
		c.sources = append(c.sources, in.Name)
	}
	var err error
	switch format {
	case "django":
		err = c.django(inputs, opts)
	case "ingress-nginx", "istio", "envoy-gateway", "gateway-api":
		err = c.kube(format, inputs)
	default:
		return nil, fmt.Errorf("unknown format %q; want one of %s", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return nil, err
	}
	if len(c.drafts) == 0 {
		return nil, &InputError{strings.Join(c.sources, ", "), "no CORS configuration found for format " + format}
	}
	return c.finish()
}

// finish renders the drafts and loads the result with the policy loader.
// Entries the loader refuses (forbidden request headers, an origin corsproc
// will not trust with credentials) are taken out one by one, each with a
// comment and a message, and the file is loaded again: the user gets a
// policy that loads, and is told what was taken out.
func (c *converter) finish() (*Result, error) {
	for range 4 {
		data := c.render()
		set, err := policy.Parse(c.label, data)
		var perr *policy.Error
		switch {
		case err == nil:
			return &Result{YAML: data, Warnings: c.warnings, Notes: c.notes, Checks: set.Warnings()}, nil
		case !errors.As(err, &perr):
			return nil, err
		}
		if !c.repair(perr.Problems) {
			return nil, fmt.Errorf("the converted policy does not load; this is a bug in corsproc import:\n%s\n--- policy\n%s", err, data)
		}
	}
	return nil, errors.New("the converted policy still does not load after removing what the loader refused; this is a bug in corsproc import")
}

var indexedKey = regexp.MustCompile(`^(allowed_origins|allowed_origin_regexes|allow_headers|allow_methods|expose_headers)\[([0-9]+)\]$`)

// repair removes the list entries the loader refused; false when a problem
// is not one it can remove.
func (c *converter) repair(problems []policy.Problem) bool {
	type hit struct {
		d   *draft
		key string
		i   int
		msg string
	}
	var hits []hit
	for _, p := range problems {
		if p.Severity != policy.SeverityError {
			continue
		}
		m := indexedKey.FindStringSubmatch(p.Key)
		if m == nil || p.Policy < 0 || p.Policy >= len(c.drafts) {
			return false
		}
		i, _ := strconv.Atoi(m[2])
		d := c.drafts[p.Policy]
		if i >= len(*listOf(&d.s, m[1])) {
			return false
		}
		hits = append(hits, hit{d, m[1], i, p.Message})
	}
	// Say what goes in file order, then remove from the end so that
	// earlier indexes stay valid. A list may be shared with another draft
	// (rules of one Ingress): removal builds a new one.
	for _, h := range hits {
		v := (*listOf(&h.d.s, h.key))[h.i]
		switch h.key {
		case "allow_headers", "allow_methods", "expose_headers":
			// Browsers never send or expose these: leaving them out changes
			// nothing a page can do.
			h.d.note(h.key, "%q left out: %s", v, h.msg)
			c.inform(h.d.where, "%s %q left out: %s", h.key, v, h.msg)
		default:
			h.d.note(h.key, "WARNING: %q left out, corsproc refuses it: %s", v, h.msg)
			c.warn(h.d.where, "%s %q left out, corsproc refuses it: %s", h.key, v, h.msg)
		}
	}
	slices.SortStableFunc(hits, func(a, b hit) int { return b.i - a.i })
	for _, h := range hits {
		list := listOf(&h.d.s, h.key)
		*list = append(slices.Clone((*list)[:h.i]), (*list)[h.i+1:]...)
		if notes := h.d.itemNotes[h.key]; h.i < len(notes) {
			h.d.itemNotes[h.key] = append(slices.Clone(notes[:h.i]), notes[h.i+1:]...)
		}
	}
	return len(hits) > 0
}

func listOf(s *policy.Settings, key string) *[]string {
	switch key {
	case "allowed_origins":
		return &s.AllowedOrigins
	case "allowed_origin_regexes":
		return &s.AllowedOriginRegexes
	case "allow_headers":
		return &s.AllowHeaders
	case "allow_methods":
		return &s.AllowMethods
	}
	return &s.ExposeHeaders
}

// render writes the drafts as a policy file with comments.
func (c *converter) render() []byte {
	var b strings.Builder
	if c.format != "suggest" {
		fmt.Fprintf(&b, "# Imported by `corsproc import %s` from %s.\n", c.format, strings.Join(c.sources, ", "))
		b.WriteString("# Check it with `corsproc validate`, try requests with `corsproc explain`,\n")
		b.WriteString("# and run it in mode: report before enforcing it.\n")
	}
	for _, h := range c.header {
		writeComment(&b, "", h)
	}
	b.WriteString("policies:\n")
	for i, d := range c.drafts {
		if i > 0 {
			b.WriteString("\n")
		}
		for _, line := range d.comments {
			writeComment(&b, "  ", line)
		}
		fmt.Fprintf(&b, "  - name: %s\n", quote(d.name))
		// Notes about matching stand where the match block is, or would be.
		for _, line := range d.keyNotes["match"] {
			writeComment(&b, "    ", line)
		}
		if m := d.match; m != nil && (m.Hosts != nil || m.PathPrefixes != nil || m.PathRegex != "" || m.Routes != nil) {
			b.WriteString("    match:\n")
			if m.Hosts != nil {
				fmt.Fprintf(&b, "      hosts: %s\n", flow(m.Hosts))
			}
			if m.PathPrefixes != nil {
				fmt.Fprintf(&b, "      path_prefixes: %s\n", flow(m.PathPrefixes))
			}
			if m.PathRegex != "" {
				fmt.Fprintf(&b, "      path_regex: %s\n", quote(m.PathRegex))
			}
		}
		s := &d.s
		key := func(k, v string) {
			for _, line := range d.keyNotes[k] {
				writeComment(&b, "    ", line)
			}
			if v == "" {
				fmt.Fprintf(&b, "    %s:\n", k)
				return
			}
			fmt.Fprintf(&b, "    %s: %s\n", k, v)
		}
		if s.Mode != nil {
			key("mode", *s.Mode)
		}
		list := func(k string, v []string) {
			notes := d.itemNotes[k]
			if len(notes) != len(v) || len(v) == 0 {
				key(k, flow(v))
				return
			}
			key(k, "")
			for i, item := range v {
				fmt.Fprintf(&b, "      - %s  # %s\n", quote(item), strings.Map(printable, notes[i]))
			}
		}
		if s.AllowedOrigins != nil {
			list("allowed_origins", s.AllowedOrigins)
		}
		if s.AllowedOriginRegexes != nil {
			key("allowed_origin_regexes", flow(s.AllowedOriginRegexes))
		}
		if s.AllowAllOrigins != nil {
			key("allow_all_origins", strconv.FormatBool(*s.AllowAllOrigins))
		}
		if s.AllowMethods != nil {
			list("allow_methods", s.AllowMethods)
		}
		if s.AllowHeaders != nil {
			list("allow_headers", s.AllowHeaders)
		}
		if s.ExposeHeaders != nil {
			key("expose_headers", flow(s.ExposeHeaders))
		}
		if s.PreflightMaxAge != nil {
			key("preflight_max_age", strconv.Itoa(*s.PreflightMaxAge))
		}
		if s.AllowCredentials != nil {
			key("allow_credentials", strconv.FormatBool(*s.AllowCredentials))
		}
		if s.AllowPrivateNetwork != nil {
			key("allow_private_network", strconv.FormatBool(*s.AllowPrivateNetwork))
		}
	}
	return []byte(b.String())
}

// writeComment writes text as comment lines; every line of it, so that a
// value quoted from the source cannot end the comment and become YAML.
func writeComment(b *strings.Builder, indent, text string) {
	for line := range strings.SplitSeq(text, "\n") {
		b.WriteString(indent)
		b.WriteString("#")
		if line != "" {
			b.WriteString(" ")
			b.WriteString(strings.Map(printable, line))
		}
		b.WriteString("\n")
	}
}

// printable keeps control characters from the source out of the file.
func printable(r rune) rune {
	if r < 0x20 || r == 0x7f || r == 0x85 || r == 0x2028 || r == 0x2029 {
		return '?'
	}
	return r
}

// quote writes s as a YAML scalar: single-quoted when it holds a
// backslash (so a regex reads as written), else double-quoted, with JSON's
// escapes, which YAML shares.
func quote(s string) string {
	if strings.Contains(s, `\`) && !strings.ContainsFunc(s, func(r rune) bool { return printable(r) != r }) {
		return "'" + strings.ReplaceAll(s, "'", "''") + "'"
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<" and "&" are fine in YAML, and readable
	_ = enc.Encode(s)        // a string always encodes
	return strings.TrimSuffix(b.String(), "\n")
}

// show quotes a value from the source for a comment or message, without
// doubling its backslashes.
func show(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return printable(r) != r || r == '"' }) {
		return strconv.Quote(s)
	}
	return `"` + s + `"`
}

// flow writes a list as a YAML flow sequence of double-quoted scalars.
func flow(list []string) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = quote(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func ptr[T any](v T) *T { return &v }
