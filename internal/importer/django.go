package importer

import (
	"fmt"
	"net/url"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"github.com/corsproc/corsproc/policy"
)

// django-cors-headers' defaults, from corsheaders/defaults.py and
// corsheaders/conf.py.
var (
	djangoDefaultHeaders = []string{"accept", "authorization", "content-type", "user-agent", "x-csrftoken", "x-requested-with"}
	djangoDefaultMethods = []string{"DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"}
)

const djangoDefaultMaxAge = 86400

// djangoSettings are the settings django-cors-headers reads; the old names
// are read when the new one is not set, as corsheaders/conf.py does.
var djangoSettings = map[string]string{
	"CORS_ALLOWED_ORIGINS":        "",
	"CORS_ORIGIN_WHITELIST":       "CORS_ALLOWED_ORIGINS",
	"CORS_ALLOWED_ORIGIN_REGEXES": "",
	"CORS_ORIGIN_REGEX_WHITELIST": "CORS_ALLOWED_ORIGIN_REGEXES",
	"CORS_ALLOW_ALL_ORIGINS":      "",
	"CORS_ORIGIN_ALLOW_ALL":       "CORS_ALLOW_ALL_ORIGINS",
	"CORS_URLS_REGEX":             "",
	"CORS_ALLOW_METHODS":          "",
	"CORS_ALLOW_HEADERS":          "",
	"CORS_EXPOSE_HEADERS":         "",
	"CORS_PREFLIGHT_MAX_AGE":      "",
	"CORS_ALLOW_CREDENTIALS":      "",
	"CORS_ALLOW_PRIVATE_NETWORK":  "",
}

// setting is one assignment as read.
type setting struct {
	name  string
	value pyValue
	where string // file:line
}

// djangoFile reads the assignments of one settings file into settings and
// env (the names assigned literals, which later lines may refer to).
func (c *converter) djangoFile(in Input, settings map[string]*setting, env map[string]pyValue) error {
	toks, err := pyTokenize(string(in.Data))
	if err != nil {
		return &InputError{in.Name, "not Python this reader understands: " + err.Error()}
	}
	p := &pyParser{toks: toks, src: strings.Split(string(in.Data), "\n"), env: env}
	for p.peek().kind != tokEOF {
		t := p.peek()
		where := in.Name + ":" + strconv.Itoa(t.line)
		if t.kind == tokName && t.text == "from" && t.indent == 0 {
			c.djangoImport(p, where, env)
			continue
		}
		if t.kind != tokName {
			p.skipLine()
			continue
		}
		p.next()
		// NAME: annotation = value
		if p.isOp(":") {
			for t := p.peek(); t.kind != tokNewline && t.kind != tokEOF && !(t.kind == tokOp && t.text == "="); t = p.peek() {
				p.next()
			}
		}
		op := p.peek()
		isCORS := strings.HasPrefix(t.text, "CORS_")
		if op.kind != tokOp || op.text != "=" && op.text != "+=" && op.text != "|=" {
			if isCORS && op.kind == tokOp && (op.text == "." || op.text == "[") {
				c.djangoUnknown(settings, t.text, where, "it is changed by code: "+p.text(p.pos-1, p.lineEnd()))
			}
			p.skipLine()
			continue
		}
		p.next()
		if t.indent > 0 {
			// Inside an if, for, try or def: whether it runs depends on code.
			if isCORS {
				c.djangoUnknown(settings, t.text, where, "it is set inside a block (if, try, def...), so the value in effect depends on code")
			}
			delete(env, t.text)
			p.skipLine()
			continue
		}
		start := p.pos
		v := p.expr()
		if p.peek().kind != tokNewline && p.peek().kind != tokEOF || v.kind == pyUnknown {
			// "A = B = [...]" or "A = 1, 2" is more than a literal too.
			v = pyValue{why: "it is computed from " + p.text(start, p.lineEnd())}
		}
		if op.text != "=" {
			prev, ok := env[t.text]
			if !ok {
				prev = pyValue{why: "it is extended with " + op.text + " but has no earlier value in this file"}
			}
			if op.text == "|=" {
				v = pyValue{why: "it is changed with |="}
			} else {
				v = pyAdd(prev, v)
			}
		}
		p.skipLine()
		if v.kind == pyUnknown {
			delete(env, t.text)
		} else {
			env[t.text] = v
		}
		if isCORS {
			settings[t.text] = &setting{name: t.text, value: v, where: where}
		}
	}
	return nil
}

// lineEnd is the index of the NEWLINE ending the current logical line.
func (p *pyParser) lineEnd() int {
	i := p.pos
	for i < len(p.toks) && p.toks[i].kind != tokNewline && p.toks[i].kind != tokEOF {
		i++
	}
	return i
}

func (c *converter) djangoUnknown(settings map[string]*setting, name, where, why string) {
	settings[name] = &setting{name: name, value: pyValue{why: why}, where: where}
}

// djangoImport reads "from corsheaders.defaults import ...": the names
// settings files extend.
func (c *converter) djangoImport(p *pyParser, where string, env map[string]pyValue) {
	p.next()
	var module strings.Builder
	for t := p.peek(); t.kind == tokName && t.text != "import" || t.kind == tokOp && t.text == "."; t = p.peek() {
		module.WriteString(p.next().text)
	}
	if p.peek().text != "import" {
		p.skipLine()
		return
	}
	p.next()
	mod := module.String()
	defaults := map[string][]string{"default_headers": djangoDefaultHeaders, "default_methods": djangoDefaultMethods}
	for {
		t := p.next()
		if t.kind == tokNewline || t.kind == tokEOF {
			return
		}
		switch {
		case t.kind == tokOp && t.text == "*":
			if mod == "corsheaders.defaults" {
				for name, list := range defaults {
					env[name] = strSeq(list)
				}
			} else {
				c.warn(where, "imports every name from %s; CORS settings made there are not seen: name that file too, before this one (later files override earlier ones)", mod)
			}
		case t.kind == tokName:
			name := t.text
			if p.peek().text == "as" {
				p.next()
				name = p.next().text
			}
			if list, ok := defaults[t.text]; ok && mod == "corsheaders.defaults" {
				env[name] = strSeq(list)
			} else {
				delete(env, name)
			}
		}
	}
}

func strSeq(list []string) pyValue {
	v := pyValue{kind: pySeq}
	for _, s := range list {
		v.items = append(v.items, pyValue{kind: pyStr, str: s})
	}
	return v
}

// django converts settings files; later files override earlier ones, as
// "from .base import *" at the top of a production settings file does.
func (c *converter) django(inputs []Input, opts Options) error {
	settings := map[string]*setting{}
	env := map[string]pyValue{}
	for _, in := range inputs {
		if err := c.djangoFile(in, settings, env); err != nil {
			return err
		}
	}
	name := opts.Name
	if name == "" {
		name = "django"
	}
	d := &draft{name: name, where: strings.Join(c.sources, ", ")}
	c.drafts = append(c.drafts, d)
	if len(opts.Hosts) > 0 {
		d.match = &policy.Match{Hosts: opts.Hosts}
	} else {
		d.comments = append(d.comments, "No match block: this policy applies to every request Envoy sends to corsproc.\nAdd match.hosts (or import with --host) for the host this Django service answers on.")
	}
	// Which of each pair is in effect, as corsheaders/conf.py reads them.
	get := func(name string) *setting {
		if s, ok := settings[name]; ok {
			return s
		}
		for old, newName := range djangoSettings {
			if newName == name {
				if s, ok := settings[old]; ok {
					return s
				}
			}
		}
		return nil
	}
	for _, s := range sortedSettings(settings) {
		if _, known := djangoSettings[s.name]; !known {
			c.inform(s.where, "%s is not a setting django-cors-headers reads for its headers; it has no corsproc equivalent and is left out", s.name)
			continue
		}
		if newName := djangoSettings[s.name]; newName != "" && settings[newName] != nil {
			c.inform(s.where, "%s is the old name of %s, which is also set and wins", s.name, newName)
		}
	}
	// unknown reports a setting that could not be read and returns true.
	unknown := func(s *setting, key, consequence string) bool {
		if s == nil || s.value.kind != pyUnknown {
			return false
		}
		d.note(key, "WARNING: %s (%s) cannot be read: %s.\nThis import runs no code: %s.", s.name, s.where, s.value.why, consequence)
		c.warn(s.where, "%s cannot be read: %s; this import runs no code: %s", s.name, s.value.why, consequence)
		return true
	}
	strs := func(s *setting, key string) ([]string, bool) {
		if s == nil {
			return nil, false
		}
		if unknown(s, key, "set "+key+" by hand") {
			return nil, false
		}
		var out []string
		if s.value.kind == pySeq {
			for _, it := range s.value.items {
				if it.kind != pyStr {
					s.value = pyValue{why: "it holds " + it.String() + " where django-cors-headers expects strings"}
					unknown(s, key, "set "+key+" by hand")
					return nil, false
				}
				out = append(out, it.str)
			}
			return out, true
		}
		s.value = pyValue{why: "it is " + s.value.String() + " where django-cors-headers expects a list of strings"}
		unknown(s, key, "set "+key+" by hand")
		return nil, false
	}
	boolean := func(name, key string) bool {
		s := get(name)
		if s == nil || unknown(s, key, "set "+key+" by hand") {
			return false
		}
		return s.value.truthy()
	}

	credentials := boolean("CORS_ALLOW_CREDENTIALS", "allow_credentials")
	allowAll := boolean("CORS_ALLOW_ALL_ORIGINS", "allow_all_origins")

	// Paths.
	if s := get("CORS_URLS_REGEX"); s != nil && !unknown(s, "match", "CORS headers now apply to every path; narrow match.path_regex by hand") {
		if s.value.kind != pyStr {
			s.value = pyValue{why: "it is " + s.value.String() + " where a regex string is expected"}
			unknown(s, "match", "CORS headers now apply to every path; narrow match.path_regex by hand")
		} else {
			c.djangoPaths(d, s)
		}
	}

	// Origins.
	if origins, ok := strs(get("CORS_ALLOWED_ORIGINS"), "allowed_origins"); ok {
		d.s.AllowedOrigins = []string{}
		for _, o := range origins {
			// django-cors-headers compares scheme and netloc only, so a
			// trailing "/" is harmless there; corsproc wants the origin
			// as browsers send it.
			if u, err := url.Parse(o); err == nil && u.Path == "/" && u.RawQuery == "" && u.Fragment == "" && strings.HasSuffix(o, "/") {
				d.note("allowed_origins", "%q written without its trailing \"/\": an origin has no path", o)
				o = strings.TrimSuffix(o, "/")
			}
			d.s.AllowedOrigins = append(d.s.AllowedOrigins, o)
		}
	}
	if regexes, ok := strs(get("CORS_ALLOWED_ORIGIN_REGEXES"), "allowed_origin_regexes"); ok {
		c.djangoOriginRegexes(d, get("CORS_ALLOWED_ORIGIN_REGEXES"), regexes, credentials)
	}
	if allowAll {
		d.s.AllowAllOrigins = ptr(true)
		if credentials {
			s := get("CORS_ALLOW_ALL_ORIGINS")
			d.note("allow_all_origins", "WARNING: %s with CORS_ALLOW_CREDENTIALS = True makes django-cors-headers reflect\n"+
				"every origin with credentials: any site can read your users' data. corsproc refuses that.\n"+
				"This policy keeps every origin but WITHOUT credentials, so pages that send cookies\n"+
				"stop working. To keep them, list their origins in allowed_origins, remove\n"+
				"allow_all_origins and set allow_credentials: true.", s.name)
			c.warn(s.where, "%s with CORS_ALLOW_CREDENTIALS reflects any origin with credentials, which corsproc refuses; imported as every origin WITHOUT credentials: list the origins that need credentials", s.name)
			credentials = false
			d.note("allow_credentials", "WARNING: CORS_ALLOW_CREDENTIALS = True dropped; see allow_all_origins above.")
		}
		if d.s.AllowedOrigins != nil || d.s.AllowedOriginRegexes != nil {
			d.note("allow_all_origins", "django-cors-headers ignores the origin lists when every origin is allowed; so does corsproc.")
			d.s.AllowedOrigins, d.s.AllowedOriginRegexes = nil, nil
		}
	} else if d.s.AllowedOrigins == nil && d.s.AllowedOriginRegexes == nil {
		d.s.AllowedOrigins = []string{}
		if get("CORS_ALLOWED_ORIGINS") == nil && get("CORS_ALLOWED_ORIGIN_REGEXES") == nil {
			d.note("allowed_origins", "no origin is allowed in the settings, so none is here: every cross-origin request is denied")
		}
	}

	// Methods and headers: django-cors-headers' defaults where unset, written
	// out so that the policy says what it allows.
	d.s.AllowMethods = slices.Clone(djangoDefaultMethods)
	if m, ok := strs(get("CORS_ALLOW_METHODS"), "allow_methods"); ok {
		d.s.AllowMethods = m
	} else if get("CORS_ALLOW_METHODS") == nil {
		d.note("allow_methods", "django-cors-headers' default_methods")
	}
	d.s.AllowHeaders = slices.Clone(djangoDefaultHeaders)
	if h, ok := strs(get("CORS_ALLOW_HEADERS"), "allow_headers"); ok {
		d.s.AllowHeaders = h
	} else if get("CORS_ALLOW_HEADERS") == nil {
		d.note("allow_headers", "django-cors-headers' default_headers")
	}
	if h, ok := strs(get("CORS_EXPOSE_HEADERS"), "expose_headers"); ok && len(h) > 0 {
		d.s.ExposeHeaders = h
	}
	d.s.PreflightMaxAge = ptr(djangoDefaultMaxAge)
	if s := get("CORS_PREFLIGHT_MAX_AGE"); s != nil && !unknown(s, "preflight_max_age", "set preflight_max_age by hand") {
		switch {
		case s.value.kind == pyInt && s.value.num >= 0:
			d.s.PreflightMaxAge = ptr(s.value.num)
		case !s.value.truthy():
			// django-cors-headers sends no max-age for a false value.
			d.s.PreflightMaxAge = ptr(0)
		default:
			s.value = pyValue{why: "it is " + s.value.String() + " where a number of seconds is expected"}
			unknown(s, "preflight_max_age", "set preflight_max_age by hand")
		}
	}
	d.s.AllowCredentials = ptr(credentials)
	d.s.AllowPrivateNetwork = ptr(boolean("CORS_ALLOW_PRIVATE_NETWORK", "allow_private_network"))
	return nil
}

func sortedSettings(m map[string]*setting) []*setting {
	out := make([]*setting, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *setting) int { return strings.Compare(a.name, b.name) })
	return out
}

// djangoPaths carries CORS_URLS_REGEX, matched with re.match against
// request.path_info, into the policy's match block.
func (c *converter) djangoPaths(d *draft, s *setting) {
	r, why := convertStartRegex(s.value.str)
	if why != "" {
		d.note("match", "WARNING: CORS_URLS_REGEX %q %s; CORS now applies to every path: write match.path_regex by hand", s.value.str, why)
		c.warn(s.where, "CORS_URLS_REGEX %q %s; imported without a path condition", s.value.str, why)
		return
	}
	if d.match == nil {
		d.match = &policy.Match{}
	}
	note := fmt.Sprintf("from CORS_URLS_REGEX %q (%s): django-cors-headers matches it with re.match,\n"+
		"from the start of the path only; corsproc matches whole paths", s.value.str, s.where)
	if len(r.branches) == 1 && r.branches[0].open {
		if r.branches[0].body == "" {
			return // "^.*" and the like: every path, django-cors-headers' default
		}
		if lit, ok := literalPrefix(r.branches[0].body); ok && strings.HasPrefix(lit, "/") {
			d.match.PathPrefixes = []string{lit}
			d.note("match", "%s, so a literal start is a path prefix.\nDjango matches request.path_info, the path below the script prefix where the app is mounted.", note)
			return
		}
	}
	if len(r.branches) == 1 && r.branches[0].body == "" && !r.branches[0].open {
		return
	}
	d.match.PathRegex = r.re
	if r.open {
		note += `, so ".*" is added where the pattern had no "$"`
	}
	d.note("match", "%s.\nDjango matches request.path_info, the path below the script prefix where the app is mounted.", note)
}

// djangoOriginRegexes carries CORS_ALLOWED_ORIGIN_REGEXES, matched with
// re.match, into allowed_origin_regexes.
func (c *converter) djangoOriginRegexes(d *draft, s *setting, regexes []string, credentials bool) {
	d.s.AllowedOriginRegexes = []string{}
	for _, py := range regexes {
		r, why := convertStartRegex(py)
		if why != "" {
			d.note("allowed_origin_regexes", "WARNING: %q left out: it %s; origins only it admitted are now denied: rewrite it in RE2", py, why)
			c.warn(s.where, "%s %q %s; left out, so origins only it admitted are denied: rewrite it in RE2", s.name, py, why)
			continue
		}
		if !r.open {
			d.s.AllowedOriginRegexes = append(d.s.AllowedOriginRegexes, r.re)
			if r.re != py {
				d.note("allowed_origin_regexes", "%q: the anchors are dropped, corsproc matches whole origins", py)
			}
			continue
		}
		if !credentials {
			d.s.AllowedOriginRegexes = append(d.s.AllowedOriginRegexes, r.re)
			d.note("allowed_origin_regexes", "%q has no \"$\": re.match admits any origin that starts with a match,\n"+
				"such as %q; \".*\" keeps that meaning. Add \"$\" in Django and here if that was not meant.", py, exampleSuffix(r))
			continue
		}
		// With credentials an open end lets a look-alike host read users'
		// data; corsproc refuses such a regex. Pin the end: the host the
		// pattern names, with an optional port.
		var parts []string
		for _, b := range r.branches {
			parts = append(parts, b.render(`(?::[0-9]{1,5})?`))
		}
		pinned := strings.Join(parts, "|")
		d.s.AllowedOriginRegexes = append(d.s.AllowedOriginRegexes, pinned)
		d.note("allowed_origin_regexes", "WARNING: %q has no \"$\": with credentials, re.match lets any origin that starts\n"+
			"with a match, such as %q, read users' data. corsproc refuses that, so it is\n"+
			"pinned here to end where the pattern ends (a port may follow): look-alike hosts are denied.", py, exampleSuffix(r))
		c.warn(s.where, "%s %q is open-ended (no \"$\") with credentials, which corsproc refuses; imported pinned to its end as %q, so look-alike hosts such as %q are denied", s.name, py, pinned, exampleSuffix(r))
	}
}

// exampleSuffix shows an origin an open-ended regex admits that its author
// probably did not mean: the shortest match of its first open branch, with
// a look-alike domain after it.
func exampleSuffix(r startRegex) string {
	for _, b := range r.branches {
		if !b.open {
			continue
		}
		re, err := syntax.Parse(b.body, syntax.Perl)
		if err != nil {
			continue
		}
		var sb strings.Builder
		sample(&sb, re.Simplify(), 0)
		return sb.String() + ".evil.example"
	}
	return "https://match.evil.example"
}

// sample writes a short string re matches, picking letters where it can so
// that the example reads as a host.
func sample(b *strings.Builder, re *syntax.Regexp, depth int) {
	if depth > 20 {
		return
	}
	switch re.Op {
	case syntax.OpLiteral:
		b.WriteString(string(re.Rune))
	case syntax.OpCharClass:
		r := re.Rune[0]
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= 'a' && 'a' <= re.Rune[i+1] {
				r = 'a'
				break
			}
		}
		b.WriteRune(r)
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		b.WriteByte('a')
	case syntax.OpCapture:
		sample(b, re.Sub[0], depth+1)
	case syntax.OpPlus:
		sample(b, re.Sub[0], depth+1)
	case syntax.OpRepeat:
		for range re.Min {
			sample(b, re.Sub[0], depth+1)
		}
	case syntax.OpConcat:
		for _, s := range re.Sub {
			sample(b, s, depth+1)
		}
	case syntax.OpAlternate:
		sample(b, re.Sub[0], depth+1)
	}
}
