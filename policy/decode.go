package policy

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// The file is decoded into ordered generic values first (the YAML library
// resolves anchors, aliases and merge keys and refuses duplicate keys), then
// walked here key by key, so that every unknown key and wrong type in the
// file is reported at once, each with its path, instead of the first one
// only as a strict struct decoder would.

// problems collects problems with their location.
type problems struct {
	file string
	list []Problem
}

// at records a problem. policy is -1 outside the policies list; path is the
// key path inside it.
func (ps *problems) at(sev Severity, policy int, name, key string, value *string, msg string) {
	p := Problem{Severity: sev, File: ps.file, Policy: policy, PolicyName: name, Key: key, Message: msg}
	if value != nil {
		p.Value, p.HasValue = *value, true
	}
	ps.list = append(ps.list, p)
}

// loc is where a value sits: which policy and which key path. An index
// into a list is kept as a number until a problem is reported there, so
// that checking a list of 100,000 origins builds no key strings.
type loc struct {
	ps     *problems
	policy int
	name   string
	key    string
	idx    int // the list index plus one; 0 for none
}

// path is the key path, index included.
func (l loc) path() string {
	if l.idx == 0 {
		return l.key
	}
	return l.key + "[" + strconv.Itoa(l.idx-1) + "]"
}

func (l loc) child(key string) loc {
	if p := l.path(); p != "" {
		key = p + "." + key
	}
	l.key, l.idx = key, 0
	return l
}

func (l loc) index(i int) loc {
	l.key, l.idx = l.path(), i+1
	return l
}

func (l loc) errorf(format string, args ...any) {
	l.ps.at(SeverityError, l.policy, l.name, l.path(), nil, fmt.Sprintf(format, args...))
}

func (l loc) valueError(v, msg string) { l.ps.at(SeverityError, l.policy, l.name, l.path(), &v, msg) }

func (l loc) valueWarning(v, msg string) {
	l.ps.at(SeverityWarning, l.policy, l.name, l.path(), &v, msg)
}

// hasError reports whether an error was already found under one of keys,
// in policy i or, for the keys it inherits, in defaults: checks that build
// on those values say nothing more about them.
func (ps *problems) hasError(i int, inherited map[string]bool, keys ...string) bool {
	for _, p := range ps.list {
		if p.Severity != SeverityError {
			continue
		}
		for _, k := range keys {
			if p.Policy == i && i >= 0 && keyUnder(p.Key, k) || inherited[k] && p.Policy == -1 && keyUnder(p.Key, "defaults."+k) {
				return true
			}
		}
	}
	return false
}

// keyUnder reports whether path is key or an element or child of it.
func keyUnder(path, key string) bool {
	rest, ok := strings.CutPrefix(path, key)
	return ok && (rest == "" || rest[0] == '[' || rest[0] == '.')
}

func (l loc) warnf(format string, args ...any) {
	l.ps.at(SeverityWarning, l.policy, l.name, l.path(), nil, fmt.Sprintf(format, args...))
}

var matchKeys = []string{"hosts", "path_prefixes", "path_regex", "routes"}

// decode reads the file into a File, collecting every problem. It also
// returns the syntax tree, for locate; nil when the YAML did not parse.
func decode(file string, data []byte, split bool) (*File, []Problem, *ast.File, []*policyChunk) {
	ps := &problems{file: file}
	top := loc{ps: ps, policy: -1}
	// One parse: the tree gives the document count, the values, and
	// later the lines of problems. A long policies list is parsed in
	// chunks (see chunk.go); on any error, the whole file is parsed again
	// so that the error reads as it always has.
	src := data
	var (
		skeleton []byte
		chunks   []*policyChunk
		ok       bool
	)
	if split {
		skeleton, chunks, ok = splitPolicies(data)
	}
	if ok && parseChunks(chunks) {
		src = skeleton
	} else {
		chunks = nil
	}
	tree, root, err := parseYAML(src)
	if err != nil && chunks != nil {
		chunks = nil
		tree, root, err = parseYAML(data)
	}
	if err == errMultipleDocuments {
		top.errorf("the file holds %d YAML documents; a policy file is one document: remove the \"---\" separators", countDocuments(tree))
		return nil, ps.list, tree, nil
	}
	if err != nil {
		top.errorf("not valid YAML: %s", yamlErrorText(err))
		var located interface{ GetToken() *token.Token }
		if errors.As(err, &located) && located.GetToken() != nil {
			ps.list[len(ps.list)-1].Line = located.GetToken().Position.Line
		}
		return nil, ps.list, nil, nil
	}
	f := &File{}
	if root == nil {
		top.child("policies").errorf("the file is empty; it needs a policies list")
		return f, ps.list, tree, chunks
	}
	m, ok := root.(yaml.MapSlice)
	if !ok {
		top.errorf("the top level must be a mapping with the keys defaults, guardrails and policies, not %s", kind(root))
		return nil, ps.list, tree, chunks
	}
	sawPolicies := false
	for _, item := range m {
		key, _ := item.Key.(string)
		l := top.child(key)
		switch key {
		case "defaults":
			decodeDefaults(l, item.Value, &f.Defaults)
		case "guardrails":
			f.Guardrails = decodeGuardrails(l, item.Value)
		case "policies":
			sawPolicies = true
			f.Policies = append(f.Policies, decodePolicies(l, item.Value, chunks)...)
		default:
			hint := "the top level has only defaults, guardrails and policies"
			if slices.Contains(settingKeys, key) {
				hint = "put " + key + " under defaults or under a policy"
			}
			l.errorf("unknown key; %s", hint)
		}
	}
	if !sawPolicies {
		top.child("policies").errorf("missing; list at least one policy")
	}
	return f, ps.list, tree, chunks
}

// decodeDefaults decodes the defaults block into s.
func decodeDefaults(l loc, v any, s *Settings) {
	dm, ok := asMap(l, v)
	if !ok {
		return
	}
	for _, kv := range dm {
		k, _ := kv.Key.(string)
		if !decodeSetting(l.child(k), k, kv.Value, s) {
			hint := "defaults takes only the CORS keys: " + strings.Join(settingKeys, ", ")
			if k == "name" || k == "match" {
				hint = k + " belongs to a policy, not to defaults"
			}
			l.child(k).errorf("unknown key; %s", hint)
		}
	}
}

// decodePolicies decodes the policies list; a list parsed in chunks (v is
// nil then) is gathered from them.
func decodePolicies(l loc, v any, chunks []*policyChunk) []Policy {
	if chunks != nil && v == nil {
		all := make([]any, 0, chunks[len(chunks)-1].first+chunks[len(chunks)-1].n)
		for _, c := range chunks {
			all = append(all, c.list...)
			c.list = nil
		}
		v = all
	}
	list, ok := v.([]any)
	if !ok {
		if v == nil {
			l.errorf("needs a list of policies")
		} else {
			l.errorf("must be a list of policies, not %s", kind(v))
		}
		return nil
	}
	if len(list) == 0 {
		l.warnf("the list is empty: corsproc will not touch any request")
	}
	policies := make([]Policy, 0, len(list))
	for i, pv := range list {
		policies = append(policies, decodePolicy(l.ps, i, pv))
	}
	return policies
}

// errMultipleDocuments says the file holds more than one document.
var errMultipleDocuments = errors.New("more than one YAML document")

// parseYAML parses data and decodes its one document into ordered generic
// values.
func parseYAML(data []byte) (*ast.File, any, error) {
	tree, err := parser.ParseBytes(data, 0)
	if err != nil {
		return nil, nil, err
	}
	// The decoder would read the first document only: a second one would
	// be ignored without a word.
	if countDocuments(tree) > 1 {
		return tree, nil, errMultipleDocuments
	}
	var root any
	for _, d := range tree.Docs {
		if d != nil && d.Body != nil {
			err = yaml.NodeToValue(d.Body, &root, yaml.UseOrderedMap())
			break
		}
	}
	return tree, root, err
}

// countDocuments counts the non-empty documents of a parsed file.
func countDocuments(f *ast.File) int {
	n := 0
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			n++
		}
	}
	return n
}

func decodePolicy(ps *problems, i int, v any) Policy {
	var p Policy
	l := loc{ps: ps, policy: i}
	m, ok := asMap(l, v)
	if !ok {
		return p
	}
	// The name first, so that every other problem can quote it.
	for _, kv := range m {
		if kv.Key == "name" {
			if s, ok := kv.Value.(string); ok {
				p.Name = s
				l.name = s
			}
		}
	}
	hasName := false
	for _, kv := range m {
		key, _ := kv.Key.(string)
		kl := l.child(key)
		switch {
		case key == "name":
			hasName = true
			s, ok := asString(kl, kv.Value)
			if ok && strings.TrimSpace(s) == "" {
				kl.errorf("must not be empty; name the policy, e.g. name: shop-api")
			}
		case !decodePolicyKey(kl, key, kv.Value, &p):
			kl.errorf("unknown key; a policy takes name, match and %s", strings.Join(settingKeys, ", "))
		}
	}
	if !hasName {
		l.child("name").errorf("missing; every policy needs a unique name")
	}
	return p
}

// decodePolicyKey decodes match or a CORS key of a policy into p; false
// means the key is neither. A policy of the file and a CORSPolicy spec
// share it, so that both read the same keys with the same words.
func decodePolicyKey(l loc, key string, v any, p *Policy) bool {
	if key == "match" {
		p.Match = decodeMatch(l, v)
		return true
	}
	return decodeSetting(l, key, v, &p.Settings)
}

func decodeMatch(l loc, v any) *Match {
	mt := &Match{}
	m, ok := asMap(l, v)
	if !ok {
		return mt
	}
	for _, kv := range m {
		key, _ := kv.Key.(string)
		kl := l.child(key)
		switch key {
		case "hosts":
			mt.Hosts = asStrings(kl, kv.Value)
		case "path_prefixes":
			mt.PathPrefixes = asStrings(kl, kv.Value)
		case "routes":
			mt.Routes = asStrings(kl, kv.Value)
		case "path_regex":
			mt.PathRegex, _ = asString(kl, kv.Value)
		default:
			kl.errorf("unknown key; match takes %s", strings.Join(matchKeys, ", "))
		}
	}
	return mt
}

func asMap(l loc, v any) (yaml.MapSlice, bool) {
	m, ok := v.(yaml.MapSlice)
	if !ok {
		if v == nil {
			l.errorf("needs a mapping of keys, not an empty value")
		} else {
			l.errorf("must be a mapping of keys, not %s", kind(v))
		}
		return nil, false
	}
	for _, kv := range m {
		if _, ok := kv.Key.(string); !ok {
			l.errorf("key %v must be a string", kv.Key)
			return nil, false
		}
	}
	return m, true
}

func asString(l loc, v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		l.errorf("must be a string, not %s", kind(v))
	}
	return s, ok
}

// asStrings returns a non-nil slice for a present key, even an empty one,
// so that an explicit [] overrides defaults. A value that is not a list is
// an error and leaves the key unset (nil), like the other keys' decoders
// do, so that no check built on the key reports the same mistake again
// (an empty match list, for one, would warn that it never matches).
func asStrings(l loc, v any) []string {
	list, ok := v.([]any)
	if !ok {
		if s, isStr := v.(string); isStr {
			l.errorf("must be a list of strings; write [%q]", s)
		} else {
			l.errorf("must be a list of strings, not %s", kind(v))
		}
		return nil
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := e.(string)
		if !ok {
			switch {
			case e == nil && strings.HasSuffix(l.path(), "allowed_origins"):
				l.index(i).errorf("is empty (YAML null); for the null origin write it in quotes: \"null\"")
			case e == nil:
				l.index(i).errorf("is empty (YAML null); remove it or write a value")
			default:
				l.index(i).errorf("must be a string, not %s; quote it", kind(e))
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

func asBool(l loc, v any) *bool {
	b, ok := v.(bool)
	if !ok {
		l.errorf("must be true or false, not %s", kind(v))
		return nil
	}
	return &b
}

func asInt(l loc, v any, want string) *int {
	var n int
	switch x := v.(type) {
	case uint64:
		if x > math.MaxInt32 {
			l.errorf("%d is too large; want %s", x, want)
			return nil
		}
		n = int(x)
	case int64:
		if x < math.MinInt32 || x > math.MaxInt32 {
			l.errorf("%d is out of range; want %s", x, want)
			return nil
		}
		n = int(x)
	case int:
		n = x
	default:
		l.errorf("must be %s, not %s", want, kind(v))
		return nil
	}
	return &n
}

func asEnum(l loc, v any, allowed ...string) *string {
	s, ok := v.(string)
	if !ok {
		l.errorf("must be one of %s, not %s", strings.Join(allowed, ", "), kind(v))
		return nil
	}
	if !slices.Contains(allowed, s) {
		l.valueError(s, "must be one of "+strings.Join(allowed, ", "))
		return nil
	}
	return &s
}

// kind names a decoded YAML value's type the way a user wrote it.
func kind(v any) string {
	switch x := v.(type) {
	case nil:
		return "an empty value"
	case string:
		return "the string " + strconv.Quote(x)
	case bool:
		return "the boolean " + strconv.FormatBool(x)
	case uint64, int64, int:
		return fmt.Sprintf("the number %v", x)
	case float64:
		// 86400.0 must not read as "not the number 86400".
		f := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(f, ".eEnN") {
			f += ".0"
		}
		return "the number " + f
	case []any:
		return "a list"
	case yaml.MapSlice:
		return "a mapping"
	}
	return fmt.Sprintf("a %T", v)
}

func yamlErrorText(err error) string {
	// The library's message includes a source excerpt over several lines;
	// the first line carries the position and the cause.
	msg := yaml.FormatError(err, false, false)
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

// locate fills in each problem's line from the YAML syntax tree, where the
// key path can be followed. Best effort: aliases and odd keys give no line.
// Problems inside a policies entry parsed in a chunk are looked up in that
// chunk.
func locate(f *ast.File, chunks []*policyChunk, list []Problem) {
	for i := range list {
		p := &list[i]
		if p.Line > 0 {
			continue
		}
		if p.Policy >= 0 && chunks != nil {
			if c := chunkOf(chunks, p.Policy); c != nil {
				p.Line = c.locate(p.Policy, p.Key)
			}
			continue
		}
		if f == nil {
			continue
		}
		path := "$"
		if p.Policy >= 0 {
			path += ".policies[" + strconv.Itoa(p.Policy) + "]"
		}
		if p.Key != "" {
			path += "." + p.Key
		}
		p.Line = locatePath(f, path)
	}
}

// chunkOf returns the chunk that holds policies entry i.
func chunkOf(chunks []*policyChunk, i int) *policyChunk {
	j, _ := slices.BinarySearchFunc(chunks, i, func(c *policyChunk, i int) int { return cmp.Compare(c.first+c.n-1, i) })
	if j < len(chunks) && chunks[j].first <= i {
		return chunks[j]
	}
	return nil
}

// locatePath returns the line of the node at path, or of its nearest
// ancestor that exists; 0 when none but the root does.
func locatePath(f *ast.File, path string) int {
	for path != "$" {
		if !plainPath.MatchString(path) {
			// A user's key such as "0[0" panics the library's path
			// parser: locate such a key by its parent.
			path = path[:strings.LastIndexAny(path, ".[")]
			continue
		}
		yp, err := yaml.PathString(path)
		if err == nil {
			if n, err := yp.FilterFile(f); err == nil && n != nil {
				return n.GetToken().Position.Line
			}
		}
		// An unknown or missing key has no node of its own: point at
		// its parent instead.
		cut := strings.LastIndexAny(path, ".[")
		if cut < 1 {
			break
		}
		path = path[:cut]
	}
	return 0
}

// plainPath is a YAML path of plain keys and indexes, the only kind locate
// hands to the YAML library.
var plainPath = regexp.MustCompile(`^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[[0-9]{1,9}\])+$`)

// sortProblems orders problems as they appear in the file, by policy then
// line; problems at the same place keep the order they were found in.
func sortProblems(list []Problem) {
	slices.SortStableFunc(list, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.Policy, b.Policy), cmp.Compare(a.Line, b.Line), naturalCompare(a.Key, b.Key))
	})
}

// naturalCompare orders key paths with their indexes as numbers, so that
// allowed_origins[2] comes before allowed_origins[10].
func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitRun(a), digitRun(b)
		if da > 0 && db > 0 {
			na, _ := strconv.Atoi(a[:da])
			nb, _ := strconv.Atoi(b[:db])
			if c := cmp.Compare(na, nb); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitRun(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
