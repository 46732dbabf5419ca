package importer

import (
	"cmp"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/net/publicsuffix"

	"github.com/corsproc/corsproc/internal/observe"
	"github.com/corsproc/corsproc/policy"
)

// WildcardMin is how many distinct subdomains of one parent domain must
// have been seen before Suggest writes a subdomain wildcard instead of
// listing them.
const WildcardMin = 5

// Suggest writes the minimal policy file that allows what obs recorded and
// nothing more: the origins seen, exactly, or a subdomain wildcard when at
// least [WildcardMin] subdomains of one registrable domain were seen (never
// over a public suffix); never every origin; credentials only where the
// service itself answered with them; the methods and headers preflights
// asked for. Each line says how many requests it covers. With cfg, each
// policy keeps the match block of the running policy of the same name.
func Suggest(obs observe.Observed, source string, cfg *policy.Set) (*Result, error) {
	c := &converter{format: "suggest", label: "suggested policy", sources: []string{source}}
	c.header = append(c.header, fmt.Sprintf("Suggested by `corsproc suggest` from what corsproc saw (the %d most frequent values per list).", obs.K))
	running := map[string]policy.Policy{}
	if cfg != nil {
		for _, p := range cfg.Policies() {
			running[p.Name] = p
		}
	}
	for _, sum := range obs.Policies {
		d := &draft{name: sum.Name, where: source + ": policy " + sum.Name}
		d.comments = append(d.comments, fmt.Sprintf("%s: %d requests with an origin seen, %d allowed and %d denied by the running policy.", sum.Name, sum.Allowed+sum.Denied, sum.Allowed, sum.Denied))
		if p, ok := running[sum.Name]; ok {
			d.match = p.Match
		} else if cfg != nil {
			d.comments = append(d.comments, "Not in the running policy file: add a match block.")
		}
		c.drafts = append(c.drafts, d)
		d.itemNotes = map[string][]string{}

		origins, notes := suggestOrigins(sum.Origins)
		for _, n := range notes {
			d.note("allowed_origins", "%s", n)
		}
		d.s.AllowedOrigins = []string{}
		for _, o := range origins {
			d.s.AllowedOrigins = append(d.s.AllowedOrigins, o.Value)
			d.itemNotes["allowed_origins"] = append(d.itemNotes["allowed_origins"], covers(o))
		}
		d.s.AllowMethods = []string{}
		for _, m := range sum.Methods {
			d.s.AllowMethods = append(d.s.AllowMethods, m.Value)
			d.itemNotes["allow_methods"] = append(d.itemNotes["allow_methods"], covers(m))
		}
		if len(sum.Methods) == 0 {
			d.note("allow_methods", "no preflight was seen: GET, HEAD and POST need none")
		}
		d.s.AllowHeaders = []string{}
		for _, h := range sum.Headers {
			d.s.AllowHeaders = append(d.s.AllowHeaders, h.Value)
			d.itemNotes["allow_headers"] = append(d.itemNotes["allow_headers"], covers(h))
		}
		creds := len(sum.ServiceCredentials) > 0
		d.s.AllowCredentials = ptr(creds)
		if creds {
			var n uint64
			for _, e := range sum.ServiceCredentials {
				n += e.Count
			}
			d.note("allow_credentials", "the service itself answered %d requests with credentials", n)
		} else {
			d.note("allow_credentials", "the service never answered with credentials while corsproc watched (report mode)")
		}
		if p, ok := running[sum.Name]; ok && p.PreflightMaxAge != nil {
			d.s.PreflightMaxAge = ptr(*p.PreflightMaxAge)
		}
	}
	if len(c.drafts) == 0 {
		return nil, &InputError{source, "no policy has observations yet"}
	}
	return c.finish()
}

func covers(e observe.Entry) string {
	if e.Error > 0 {
		return fmt.Sprintf("%d requests (at most %d of them counted for another value)", e.Count, e.Error)
	}
	if e.Count == 1 {
		return "1 request"
	}
	return strconv.FormatUint(e.Count, 10) + " requests"
}

// suggestOrigins turns the origins seen into allowed_origins entries.
func suggestOrigins(seen []observe.Entry) ([]observe.Entry, []string) {
	var notes []string
	type group struct {
		key     string // scheme://*.domain[:port]
		entries []observe.Entry
	}
	var exact []observe.Entry
	groups := map[string]*group{}
	for _, e := range seen {
		u, err := url.Parse(e.Value)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
			notes = append(notes, fmt.Sprintf("%s (%s) left out: not an http(s) origin", show(e.Value), covers(e)))
			continue
		}
		// Siblings share a parent: a.preview.example.com and
		// b.preview.example.com make *.preview.example.com, and never a
		// wildcard over a public suffix (s1.github.io, s2.github.io).
		host := u.Hostname()
		_, parent, _ := strings.Cut(host, ".")
		if _, err := publicsuffix.EffectiveTLDPlusOne(host); err != nil || parent == "" || !strings.Contains(parent, ".") {
			exact = append(exact, e)
			continue
		}
		if ps, _ := publicsuffix.PublicSuffix(parent); ps == parent {
			exact = append(exact, e)
			continue
		}
		key := u.Scheme + "://*." + parent
		if p := u.Port(); p != "" {
			key += ":" + p
		}
		g := groups[key]
		if g == nil {
			g = &group{key: key}
			groups[key] = g
		}
		g.entries = append(g.entries, e)
	}
	out := exact
	for _, g := range groups {
		if len(g.entries) < WildcardMin {
			out = append(out, g.entries...)
			continue
		}
		var n, errs uint64
		for _, e := range g.entries {
			n += e.Count
			errs += e.Error
		}
		out = append(out, observe.Entry{Value: g.key, Count: n, Error: errs})
		notes = append(notes, fmt.Sprintf("%s covers the %d subdomains seen", show(g.key), len(g.entries)))
	}
	slices.SortFunc(out, func(a, b observe.Entry) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Value, b.Value))
	})
	slices.Sort(notes)
	return out, notes
}
