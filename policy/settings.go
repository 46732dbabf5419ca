package policy

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// This file is the one place a CORS key is declared: its field (the json
// tag is its name), and, in the settings table below, its builtin default,
// how it is decoded and the checks of a value as written. How a key
// combines with the others is checked in compile.go, once per concern.

// Settings are the CORS keys of a policy (and of defaults).
type Settings struct {
	// Mode is "enforce" (default), "report" or "off".
	Mode *string `json:"mode,omitempty"`
	// AllowedOrigins are exact origins, "https://*.example.com" wildcard
	// subdomains, "http://localhost:*" port wildcards, or the literal "null".
	AllowedOrigins []string `json:"allowed_origins,omitempty"`
	// AllowedOriginRegexes are RE2 expressions matched against the whole
	// origin.
	AllowedOriginRegexes []string `json:"allowed_origin_regexes,omitempty"`
	// AllowAllOrigins admits every origin, "null" included; never with
	// credentials.
	AllowAllOrigins *bool `json:"allow_all_origins,omitempty"`
	// AllowMethods are the methods a preflight may ask for, or ["*"].
	AllowMethods []string `json:"allow_methods,omitempty"`
	// AllowHeaders are the request headers a preflight may ask for, or ["*"],
	// or ["*", "authorization"].
	AllowHeaders []string `json:"allow_headers,omitempty"`
	// ExposeHeaders are response headers the page may read beyond the
	// CORS-safelisted ones.
	ExposeHeaders []string `json:"expose_headers,omitempty"`
	// PreflightMaxAge is how long, in seconds, a browser may cache a
	// preflight; 0 omits the header (the browser's default applies), -1
	// sends 0 (no caching, while a policy is being changed).
	PreflightMaxAge *int `json:"preflight_max_age,omitempty"`
	// AllowCredentials lets the page send cookies and read the answer.
	AllowCredentials *bool `json:"allow_credentials,omitempty"`
	// AllowPrivateNetwork answers Private Network Access preflights.
	AllowPrivateNetwork *bool `json:"allow_private_network,omitempty"`
	// PreflightStatus is the status of an allowed preflight: 200 or 204.
	PreflightStatus *int `json:"preflight_status,omitempty"`
	// UpstreamCORSHeaders is "replace" (default) or "keep".
	UpstreamCORSHeaders *string `json:"upstream_cors_headers,omitempty"`
}

// settings describes every key of Settings, in any order: the struct's
// field order is the order the documentation and the messages list them.
// The builtin defaults are django-cors-headers' own, so its users find
// what they know.
var settings = []setting{
	choice(func(s *Settings) **string { return &s.Mode }, "enforce", "report", "off"),
	list(func(s *Settings) *[]string { return &s.AllowedOrigins }, []string{}, checkOrigins).
		withExample(`["https://app.example.com", "https://*.example.com", "http://localhost:*"]`),
	list(func(s *Settings) *[]string { return &s.AllowedOriginRegexes }, []string{}, checkOriginRegexes),
	opt(func(s *Settings) **bool { return &s.AllowAllOrigins }, false, asBool, nil),
	list(func(s *Settings) *[]string { return &s.AllowMethods },
		[]string{"DELETE", "GET", "OPTIONS", "PATCH", "POST", "PUT"}, checkMethods).ofTokens(),
	list(func(s *Settings) *[]string { return &s.AllowHeaders },
		[]string{"accept", "authorization", "content-type", "user-agent", "x-csrftoken", "x-requested-with"}, checkRequestHeaderNames).ofTokens(),
	list(func(s *Settings) *[]string { return &s.ExposeHeaders }, []string{}, checkExposeHeaderNames).ofTokens(),
	opt(func(s *Settings) **int { return &s.PreflightMaxAge }, 86400, integer("a whole number of seconds, e.g. 86400"), checkMaxAge).
		withMinimum(-1),
	opt(func(s *Settings) **bool { return &s.AllowCredentials }, false, asBool, nil),
	opt(func(s *Settings) **bool { return &s.AllowPrivateNetwork }, false, asBool, nil),
	opt(func(s *Settings) **int { return &s.PreflightStatus }, 204, integer("200 or 204"), checkPreflightStatus).
		withEnum("200", "204"),
	choice(func(s *Settings) **string { return &s.UpstreamCORSHeaders }, "replace", "keep"),
}

// setting is one key of Settings, whatever its type.
type setting interface {
	// keyName is the key as written in a policy file.
	keyName() string
	// decodeInto decodes a written value into the key's field of s.
	decodeInto(l loc, v any, s *Settings)
	// inherit sets the key's field of eff from own, else defaults, else the
	// builtin default (a copy, sharing nothing), and reports whether the
	// value came from defaults.
	inherit(eff, own, defaults *Settings) (fromDefaults bool)
	// check validates the value a block sets itself, on its own.
	check(l loc, s *Settings)
	// hints are what the JSON Schema says of the key beyond its type.
	hints() schemaHints
	// fieldOf points at the key's field of s, to find its name.
	fieldOf(s *Settings) reflect.Value
	setName(name string)
	// copyInto sets the key's field of dst to a copy of src's, sharing
	// nothing.
	copyInto(dst, src *Settings)
}

// schemaHints are what the JSON Schema says of a key beyond its Go type,
// to help while typing; corsproc validate remains the authority.
type schemaHints struct {
	builtin string   // the builtin default as JSON; "" for none worth showing
	enum    []string // the allowed values, as JSON
	minimum *int
	tokens  bool   // list items are HTTP tokens
	example string // an example value as JSON
}

// key is a setting whose field has type F: a pointer (nil is unset) or a
// list (nil is unset; an empty list written in the file is set).
type key[F any] struct {
	name     string
	field    func(*Settings) *F
	builtin  F
	isSet    func(F) bool
	clone    func(F) F
	decode   func(loc, any) F
	validate func(loc, F) // nil: every decoded value is fine alone
	schema   schemaHints
}

// opt declares a key held as *T.
func opt[T any](field func(*Settings) **T, builtin T, decode func(loc, any) *T, validate func(loc, T)) *key[*T] {
	k := &key[*T]{field: field, builtin: &builtin, isSet: func(p *T) bool { return p != nil }, clone: clonePtr[T], decode: decode}
	if validate != nil {
		k.validate = func(l loc, p *T) { validate(l, *p) }
	}
	return k
}

// choice declares a key held as *string whose value is one of allowed;
// the first is the builtin default.
func choice(field func(*Settings) **string, allowed ...string) *key[*string] {
	k := opt(field, allowed[0], enum(allowed...), nil)
	for _, a := range allowed {
		k.schema.enum = append(k.schema.enum, strconv.Quote(a))
	}
	return k
}

// list declares a key held as a list of strings.
func list(field func(*Settings) *[]string, builtin []string, validate func(loc, []string)) *key[[]string] {
	return &key[[]string]{field: field, builtin: builtin, isSet: func(s []string) bool { return s != nil }, clone: slices.Clone[[]string], decode: asStrings, validate: validate}
}

// withEnum, withMinimum, ofTokens and withExample add to the schema what
// the key's check enforces, or an example.
func (k *key[F]) withEnum(json ...string) *key[F] { k.schema.enum = json; return k }
func (k *key[F]) withMinimum(n int) *key[F]       { k.schema.minimum = &n; return k }
func (k *key[F]) ofTokens() *key[F]               { k.schema.tokens = true; return k }
func (k *key[F]) withExample(json string) *key[F] { k.schema.example = json; return k }

func (k *key[F]) hints() schemaHints {
	h := k.schema
	if b, err := json.Marshal(k.builtin); err == nil && string(b) != "[]" {
		h.builtin = string(b)
	}
	return h
}

func (k *key[F]) keyName() string     { return k.name }
func (k *key[F]) setName(name string) { k.name = name }

func (k *key[F]) fieldOf(s *Settings) reflect.Value { return reflect.ValueOf(k.field(s)) }

func (k *key[F]) decodeInto(l loc, v any, s *Settings) { *k.field(s) = k.decode(l, v) }

func (k *key[F]) inherit(eff, own, defaults *Settings) bool {
	v, fromDefaults := inherit(*k.field(own), *k.field(defaults), k.builtin, k.isSet)
	*k.field(eff) = k.clone(v)
	return fromDefaults
}

func (k *key[F]) copyInto(dst, src *Settings) { *k.field(dst) = k.clone(*k.field(src)) }

func (k *key[F]) check(l loc, s *Settings) {
	if v := *k.field(s); k.validate != nil && k.isSet(v) {
		k.validate(l.child(k.name), v)
	}
}

// DeepCopyInto copies s into out, sharing no pointer or list, so that a
// Settings can live in a Kubernetes object (see api/v1alpha1).
func (s *Settings) DeepCopyInto(out *Settings) {
	for _, k := range settings {
		k.copyInto(out, s)
	}
}

// DeepCopy returns a copy of s that shares nothing with it.
func (s *Settings) DeepCopy() *Settings {
	if s == nil {
		return nil
	}
	out := new(Settings)
	s.DeepCopyInto(out)
	return out
}

// inherit returns own if it is set, else defaults if it is set (and says
// so), else builtin.
func inherit[F any](own, defaults, builtin F, isSet func(F) bool) (F, bool) {
	switch {
	case isSet(own):
		return own, false
	case isSet(defaults):
		return defaults, true
	}
	return builtin, false
}

// settingKeys are the keys defaults and policies share, in the order of
// the Settings fields; settingByKey finds a key's descriptor by name. Both
// are read from the struct's json tags once, here.
var settingKeys, settingByKey = keysOf(settings)

func keysOf(table []setting) ([]string, map[string]setting) {
	var s Settings
	rv := reflect.ValueOf(&s).Elem()
	var names []string
	byName := map[string]setting{}
	for i := range rv.NumField() {
		f := rv.Type().Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		for _, k := range table {
			p := k.fieldOf(&s)
			if p.Pointer() == rv.Field(i).Addr().Pointer() && p.Type().Elem() == f.Type {
				k.setName(name)
				names = append(names, name)
				byName[name] = k
			}
		}
	}
	return names, byName
}

// decodeSetting decodes one CORS key into s; false means the key is unknown.
func decodeSetting(l loc, name string, v any, s *Settings) bool {
	k, ok := settingByKey[name]
	if ok {
		k.decodeInto(l, v, s)
	}
	return ok
}

// merge merges a policy's settings over defaults over the builtin
// defaults, and says which effective values came from defaults, for
// messages. The result shares nothing with builtin, the File, another
// policy or the compiled matchers.
func merge(own, defaults *Settings) (eff Settings, fromDefaults map[string]bool) {
	fromDefaults = map[string]bool{}
	for _, k := range settings {
		if k.inherit(&eff, own, defaults) {
			fromDefaults[k.keyName()] = true
		}
	}
	return eff, fromDefaults
}

// checkValues validates the values a block sets itself, each on its own.
func checkValues(l loc, s *Settings) {
	for _, name := range settingKeys {
		settingByKey[name].check(l, s)
	}
}

func enum(allowed ...string) func(loc, any) *string {
	return func(l loc, v any) *string { return asEnum(l, v, allowed...) }
}

func integer(want string) func(loc, any) *int {
	return func(l loc, v any) *int { return asInt(l, v, want) }
}

func ptr[T any](v T) *T { return &v }

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	return ptr(*p)
}

func checkOrigins(l loc, origins []string) {
	for i, o := range origins {
		el := l.index(i)
		p, msg := parseOriginPattern(o)
		switch {
		case msg != "":
			el.valueError(o, msg)
		case p.normalised != o:
			el.valueWarning(o, "normalised to "+strconv.Quote(p.normalised)+", as browsers send it; write it that way")
		}
		if msg == "" && p.normalised == "null" {
			el.valueWarning(o, "the null origin comes from sandboxed iframes, data: URLs, file: pages and redirects: any site can send it")
		}
	}
}

func checkOriginRegexes(l loc, regexes []string) {
	for i, r := range regexes {
		el := l.index(i)
		if err := checkRegex(r); err != "" {
			el.valueError(r, err)
			continue
		}
		if dot := unescapedDot(r); dot >= 0 {
			el.valueWarning(r, `has an unescaped "." at byte `+strconv.Itoa(dot)+`, which matches any character (so "app.example.com" also admits "appxexample.com"); write "\."`)
		}
		if regexp.MustCompile(anchor(r)).MatchString("null") { // checked just above
			el.valueWarning(r, `matches "null", but a regex never admits the null origin: only "null" written in allowed_origins does`)
		}
	}
}

func checkMaxAge(l loc, n int) {
	if n < -1 {
		l.errorf("%d is not allowed; use a number of seconds, 0 to omit the header, or -1 to send 0 (browsers then do not cache the preflight)", n)
	}
}

func checkPreflightStatus(l loc, n int) {
	if n != 200 && n != 204 {
		l.errorf("%d is not allowed; use 200 or 204", n)
	}
}

var forbiddenMethods = []string{"CONNECT", "TRACE", "TRACK"}

func checkMethods(l loc, methods []string) {
	for i, m := range methods {
		el := l.index(i)
		switch {
		case m == "*":
			if len(methods) > 1 {
				el.valueError(m, `"*" stands alone: write allow_methods: ["*"]`)
			}
		case !isToken(m):
			el.valueError(m, "not a valid method token")
		case slices.Contains(forbiddenMethods, strings.ToUpper(m)):
			el.valueError(m, "browsers never send this method from fetch or XHR; remove it")
		case m != strings.ToUpper(m) && slices.Contains([]string{"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"}, strings.ToUpper(m)):
			el.valueWarning(m, "browsers upper-case this method before sending it, so it only matches as "+strconv.Quote(strings.ToUpper(m)))
		}
	}
}

// forbiddenRequestHeaders are the Fetch standard's forbidden request-header
// names: a page can never set them, so allowing them means nothing.
var forbiddenRequestHeaders = []string{
	"accept-charset", "accept-encoding", "access-control-request-headers",
	"access-control-request-method", "connection", "content-length", "cookie",
	"cookie2", "date", "dnt", "expect", "host", "keep-alive", "origin",
	"referer", "set-cookie", "te", "trailer", "transfer-encoding", "upgrade", "via",
}

func checkRequestHeaderNames(l loc, names []string) { checkHeaderNames(l, names, true) }
func checkExposeHeaderNames(l loc, names []string)  { checkHeaderNames(l, names, false) }

func checkHeaderNames(l loc, names []string, request bool) {
	for i, h := range names {
		el := l.index(i)
		lh := strings.ToLower(h)
		switch {
		case h == "*":
			if slices.Contains(names[:i], "*") {
				el.valueError(h, `"*" is listed twice`)
			}
		case !isToken(h):
			el.valueError(h, "not a valid header name (a token: letters, digits and !#$%&'*+-.^_`|~)")
		case request && (slices.Contains(forbiddenRequestHeaders, lh) || strings.HasPrefix(lh, "proxy-") || strings.HasPrefix(lh, "sec-")):
			el.valueError(h, "a forbidden request header: browsers never let a page set it; remove it")
		case !request && (lh == "set-cookie" || lh == "set-cookie2"):
			el.valueError(h, "browsers never expose set-cookie to a page; remove it")
		case request && slices.Contains(names, "*") && lh != "authorization":
			el.valueWarning(h, `already covered by "*"; only authorization needs naming beside "*"`)
		}
	}
}
