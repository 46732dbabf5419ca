package importer

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/corsproc/corsproc/policy"
)

// Kubernetes objects are decoded into the few fields the converters read,
// with the YAML library the policy loader already uses: the module does
// not take on k8s.io/api for five structs.

type objectMeta struct {
	Name        string         `yaml:"name"`
	Namespace   string         `yaml:"namespace"`
	Annotations map[string]any `yaml:"annotations"`
}

type object struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	// raw is the document, decoded again into the kind's own struct.
	raw []byte
	// where names the object in messages.
	where string
}

func (o *object) id() string {
	if o.Metadata.Namespace != "" {
		return o.Metadata.Namespace + "/" + o.Metadata.Name
	}
	return o.Metadata.Name
}

// readObjects decodes every document of every input; a "kind: List" is
// opened into its items, as kubectl get -o yaml prints them.
func readObjects(inputs []Input) ([]*object, error) {
	var out []*object
	for _, in := range inputs {
		dec := yaml.NewDecoder(bytes.NewReader(in.Data))
		for n := 1; ; n++ {
			var doc any
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, &InputError{in.Name, "not valid YAML: " + firstLine(yaml.FormatError(err, false, false))}
			}
			if doc == nil {
				continue
			}
			objs, err := splitList(doc)
			if err != nil {
				return nil, &InputError{fmt.Sprintf("%s: document %d", in.Name, n), err.Error()}
			}
			for _, raw := range objs {
				o := &object{raw: raw}
				if err := yaml.Unmarshal(raw, o); err != nil {
					return nil, &InputError{fmt.Sprintf("%s: document %d", in.Name, n), "not a Kubernetes object: " + firstLine(yaml.FormatError(err, false, false))}
				}
				o.where = fmt.Sprintf("%s: %s %s", in.Name, o.Kind, o.id())
				out = append(out, o)
			}
		}
	}
	return out, nil
}

func splitList(doc any) ([][]byte, error) {
	m, ok := doc.(map[string]any)
	if !ok {
		return nil, errors.New("not a Kubernetes object (a mapping with apiVersion and kind)")
	}
	if items, ok := m["items"].([]any); ok && strings.HasSuffix(fmt.Sprint(m["kind"]), "List") {
		var out [][]byte
		for _, it := range items {
			b, err := yaml.Marshal(it)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
		return out, nil
	}
	b, err := yaml.Marshal(doc)
	return [][]byte{b}, err
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// decodeAs decodes o's document into v; a field of the wrong type is an
// input error naming the object.
func decodeAs(o *object, v any) error {
	if err := yaml.Unmarshal(o.raw, v); err != nil {
		return &InputError{o.where, "cannot read it: " + firstLine(yaml.FormatError(err, false, false))}
	}
	return nil
}

func (c *converter) kube(format string, inputs []Input) error {
	objs, err := readObjects(inputs)
	if err != nil {
		return err
	}
	switch format {
	case "ingress-nginx":
		return c.ingressNginx(objs)
	case "istio":
		return c.istio(objs)
	case "envoy-gateway":
		return c.envoyGateway(objs)
	}
	return c.gatewayAPI(objs)
}

// corsSpec is a source's CORS settings, in the terms the sources share.
type corsSpec struct {
	origins     []originSpec
	methods     []string
	headers     []string
	expose      []string
	maxAge      int
	credentials bool
}

type originKind int

const (
	originExact    originKind = iota
	originPattern             // corsproc's own wildcard grammar
	originRegex               // RE2, whole-origin
	originPrefix              // a string prefix
	originAll                 // every origin
	originSafeList            // reflected by the source, exact
)

type originSpec struct {
	kind  originKind
	value string
}

// apply writes spec into d; sourceAll describes how the source answers
// every origin, for the warning when that comes with credentials.
func (c *converter) apply(d *draft, spec corsSpec, sourceAll string) {
	d.s.AllowedOrigins = []string{}
	all := false
	for _, o := range spec.origins {
		switch o.kind {
		case originAll:
			all = true
		case originExact, originPattern:
			d.s.AllowedOrigins = append(d.s.AllowedOrigins, o.value)
		case originRegex:
			d.s.AllowedOriginRegexes = append(d.s.AllowedOriginRegexes, o.value)
		case originPrefix:
			q := regexp.QuoteMeta(o.value)
			if !spec.credentials {
				d.s.AllowedOriginRegexes = append(d.s.AllowedOriginRegexes, q+".*")
				d.note("allowed_origin_regexes", "prefix %q: any origin that starts with it, such as %q", o.value, lookAlike(o.value))
				continue
			}
			pinned := q + `(?::[0-9]{1,5})?`
			d.s.AllowedOriginRegexes = append(d.s.AllowedOriginRegexes, pinned)
			d.note("allowed_origin_regexes", "WARNING: prefix %q with credentials lets any origin that starts with it,\n"+
				"such as %q, read users' data; corsproc refuses that, so it is pinned to\n"+
				"the prefix itself (a port may follow).", o.value, lookAlike(o.value))
			c.warn(d.where, "origin prefix %q with credentials admits look-alike hosts, which corsproc refuses; imported as %q", o.value, pinned)
		}
	}
	if all {
		d.s.AllowAllOrigins = ptr(true)
		if len(d.s.AllowedOrigins) > 0 || len(d.s.AllowedOriginRegexes) > 0 {
			d.note("allow_all_origins", "every origin is allowed, so the listed ones are left out")
		}
		d.s.AllowedOrigins, d.s.AllowedOriginRegexes = nil, nil
		if spec.credentials {
			d.note("allow_all_origins", "WARNING: the source allows every origin with credentials: %s.\n"+
				"corsproc refuses that: any site could read your users' data. This policy keeps\n"+
				"every origin but WITHOUT credentials. To keep credentials, list the origins that\n"+
				"need them in allowed_origins, remove allow_all_origins and set allow_credentials: true.", sourceAll)
			c.warn(d.where, "every origin with credentials (%s), which corsproc refuses; imported as every origin WITHOUT credentials: list the origins that need credentials", sourceAll)
			spec.credentials = false
			d.note("allow_credentials", "WARNING: credentials dropped; see allow_all_origins above.")
		}
	}
	d.s.AllowMethods = spec.methods
	d.s.AllowHeaders = spec.headers
	if len(spec.expose) > 0 {
		d.s.ExposeHeaders = spec.expose
	}
	d.s.PreflightMaxAge = ptr(spec.maxAge)
	d.s.AllowCredentials = ptr(spec.credentials)
}

// lookAlike is an origin a prefix admits that its author did not mean.
func lookAlike(prefix string) string {
	if strings.HasSuffix(prefix, ".") {
		return prefix + "evil.example"
	}
	return prefix + ".evil.example"
}

// splitComma splits a comma-separated annotation value.
func splitComma(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// pathCond is one path condition of a route: the paths it matches.
type pathCond struct {
	kind  string // "prefix" (string prefix), "segments" (element-wise prefix), "exact", "regex"
	value string
}

// setPaths writes a route's path conditions (ORed) into d's match block.
func setPaths(d *draft, conds []pathCond) {
	if len(conds) == 0 {
		return
	}
	if d.match == nil {
		d.match = &policy.Match{}
	}
	var prefixes, parts []string
	for _, pc := range conds {
		switch pc.kind {
		case "prefix":
			if pc.value == "/" || pc.value == "" {
				return // every path
			}
			prefixes = append(prefixes, pc.value)
			parts = append(parts, regexp.QuoteMeta(pc.value)+".*")
		case "segments":
			v := strings.TrimSuffix(pc.value, "/")
			if v == "" {
				return // "/": every path
			}
			parts = append(parts, regexp.QuoteMeta(v)+"(?:/.*)?")
		case "exact":
			parts = append(parts, regexp.QuoteMeta(pc.value))
		case "regex":
			parts = append(parts, pc.value)
		}
	}
	if len(prefixes) == len(conds) {
		d.match.PathPrefixes = prefixes
		return
	}
	if len(parts) == 1 {
		d.match.PathRegex = parts[0]
		return
	}
	d.match.PathRegex = "(?:" + strings.Join(parts, ")|(?:") + ")"
}

// uniqueName returns name, or name-2, name-3... when it is taken.
func (c *converter) uniqueName(name string) string {
	taken := func(n string) bool {
		return slices.ContainsFunc(c.drafts, func(d *draft) bool { return d.name == n })
	}
	if !taken(name) {
		return name
	}
	for i := 2; ; i++ {
		if n := name + "-" + strconv.Itoa(i); !taken(n) {
			return n
		}
	}
}

// seconds reads a protobuf or Gateway API duration ("86400s", "24h", "1h30m").
func seconds(s string) (int, bool) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < 0 || d > 1<<31*time.Second {
		return 0, false
	}
	return int(d / time.Second), true
}

// ---- ingress-nginx

const nginxPrefix = "nginx.ingress.kubernetes.io/"

// ingress-nginx's defaults, from internal/ingress/annotations/cors/main.go.
const (
	nginxDefaultMethods = "GET, PUT, POST, DELETE, PATCH, OPTIONS"
	nginxDefaultHeaders = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"
	nginxDefaultMaxAge  = 1728000
)

// The values ingress-nginx accepts; others it skips or replaces with its
// default (same file).
var (
	nginxOriginRE  = regexp.MustCompile(`^(https?://(\*\.)?[A-Za-z0-9\-\.]*(:[0-9]+)?|\*)?$`)
	nginxMethodsRE = regexp.MustCompile(`^([A-Za-z]+,?\s?)+$`)
	nginxHeadersRE = regexp.MustCompile(`^([A-Za-z0-9\-\_]+,?\s?)+$`)
	nginxExposeRE  = regexp.MustCompile(`^(([A-Za-z0-9\-\_]+|\*),?\s?)+$`)
)

type ingressSpec struct {
	Spec struct {
		DefaultBackend any `yaml:"defaultBackend"`
		Rules          []struct {
			Host string `yaml:"host"`
			HTTP struct {
				Paths []struct {
					Path     string `yaml:"path"`
					PathType string `yaml:"pathType"`
				} `yaml:"paths"`
			} `yaml:"http"`
		} `yaml:"rules"`
	} `yaml:"spec"`
}

func (c *converter) ingressNginx(objs []*object) error {
	for _, o := range objs {
		if o.Kind != "Ingress" {
			c.inform(o.where, "not an Ingress; skipped")
			continue
		}
		ann := map[string]string{}
		for k, v := range o.Metadata.Annotations {
			if name, ok := strings.CutPrefix(k, nginxPrefix); ok {
				ann[name] = fmt.Sprint(v)
			}
		}
		if on, err := strconv.ParseBool(ann["enable-cors"]); err != nil || !on {
			c.inform(o.where, "enable-cors is not true; skipped")
			continue
		}
		var ing ingressSpec
		if err := decodeAs(o, &ing); err != nil {
			return err
		}
		d := &draft{name: c.uniqueName(o.id()), where: o.where}
		d.comments = append(d.comments, "From "+o.where+".")
		c.drafts = append(c.drafts, d)

		spec := corsSpec{maxAge: nginxDefaultMaxAge, credentials: true}
		origins, ok := ann["cors-allow-origin"]
		if !ok {
			origins = "*"
			d.note("allow_all_origins", "cors-allow-origin is not set: ingress-nginx's default is \"*\"")
		}
		sawAll := false
		for _, og := range strings.Split(origins, ",") {
			og = strings.TrimSpace(og)
			switch {
			case og == "":
			case og == "*":
				sawAll = true
			case !nginxOriginRE.MatchString(og):
				d.note("allowed_origins", "%q is skipped, as ingress-nginx skips it: not an http(s) origin it accepts", og)
				c.inform(o.where, "cors-allow-origin %q is skipped, as ingress-nginx skips it", og)
			case strings.Contains(og, "*"):
				// ingress-nginx turns "*" into [A-Za-z0-9\-]+: exactly one
				// label, matched case-insensitively.
				re := strings.Replace(regexp.QuoteMeta(strings.ToLower(og)), `\*`, `[a-z0-9-]+`, 1)
				spec.origins = append(spec.origins, originSpec{originRegex, re})
				d.note("allowed_origin_regexes", "%q: ingress-nginx's wildcard stands for exactly one label", og)
			default:
				spec.origins = append(spec.origins, originSpec{originExact, strings.ToLower(og)})
			}
			if sawAll {
				break // ingress-nginx stops at "*" too
			}
		}
		if sawAll {
			spec.origins = []originSpec{{kind: originAll}}
		} else if len(spec.origins) == 0 {
			d.note("allowed_origins", "WARNING: no origin ingress-nginx accepts is listed; this policy allows none")
			c.warn(o.where, "cors-allow-origin lists no origin ingress-nginx accepts; imported as allowing none")
		}
		spec.methods = splitComma(nginxDefaultMethods)
		if v, ok := ann["cors-allow-methods"]; ok && nginxMethodsRE.MatchString(v) {
			spec.methods = splitComma(v)
		} else {
			d.note("allow_methods", "ingress-nginx's default")
		}
		spec.headers = splitComma(nginxDefaultHeaders)
		if v, ok := ann["cors-allow-headers"]; ok && nginxHeadersRE.MatchString(v) {
			spec.headers = splitComma(v)
		} else {
			d.note("allow_headers", "ingress-nginx's default")
		}
		if v, ok := ann["cors-expose-headers"]; ok && nginxExposeRE.MatchString(v) {
			spec.expose = splitComma(v)
		}
		if v, ok := ann["cors-allow-credentials"]; ok {
			if b, err := strconv.ParseBool(v); err == nil {
				spec.credentials = b
			}
		}
		if !spec.credentials {
			d.note("allow_credentials", "cors-allow-credentials: false")
		} else if _, set := ann["cors-allow-credentials"]; !set {
			d.note("allow_credentials", "cors-allow-credentials is not set: ingress-nginx's default is true")
		}
		if v, ok := ann["cors-max-age"]; ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				spec.maxAge = n
			}
		} else {
			d.note("preflight_max_age", "ingress-nginx's default (20 days; browsers cap it at hours)")
		}
		if sawAll && spec.credentials {
			d.note("allow_all_origins", `ingress-nginx answers "*" with access-control-allow-credentials: true, a pair browsers`+"\n"+
				"refuse for requests with cookies: pages without credentials work as they did.")
		}
		c.apply(d, spec, `cors-allow-origin "*"`)
		c.ingressMatch(d, o, &ing)
	}
	return nil
}

// ingressMatch matches the Ingress's hosts and paths. Rules with different
// paths cannot share one match block: those become policies of their own.
func (c *converter) ingressMatch(d *draft, o *object, ing *ingressSpec) {
	useRegex := false
	for k, v := range o.Metadata.Annotations {
		if k == nginxPrefix+"use-regex" || k == nginxPrefix+"rewrite-target" {
			if b, err := strconv.ParseBool(fmt.Sprint(v)); err == nil && b || k == nginxPrefix+"rewrite-target" {
				useRegex = true
			}
		}
	}
	type group struct {
		hosts []string
		conds []pathCond
		key   string
		any   bool // a rule without host: every host
	}
	var groups []*group
	for _, r := range ing.Spec.Rules {
		var conds []pathCond
		for _, p := range r.HTTP.Paths {
			path := p.Path
			if path == "" {
				path = "/"
			}
			switch {
			case useRegex:
				sr, why := convertStartRegex(path)
				if why != "" {
					c.warn(o.where, "path %q %s; left out of match, so the policy covers more paths", path, why)
					conds = append(conds, pathCond{"prefix", "/"})
					continue
				}
				conds = append(conds, pathCond{"regex", "(?i)" + sr.re})
			case p.PathType == "Exact":
				conds = append(conds, pathCond{"exact", path})
			case p.PathType == "Prefix":
				conds = append(conds, pathCond{"segments", path})
			default: // ImplementationSpecific: an nginx prefix location
				conds = append(conds, pathCond{"prefix", path})
			}
		}
		key := fmt.Sprint(conds)
		host := strings.ToLower(r.Host)
		i := slices.IndexFunc(groups, func(g *group) bool { return g.key == key })
		if i < 0 {
			groups = append(groups, &group{key: key, conds: conds})
			i = len(groups) - 1
		}
		if host == "" {
			groups[i].any = true
		} else if !slices.Contains(groups[i].hosts, host) {
			groups[i].hosts = append(groups[i].hosts, host)
		}
	}
	if useRegex {
		d.note("match", "paths are regexes (use-regex or rewrite-target): nginx matches them case-insensitively from the start of the path")
	}
	for i, g := range groups {
		target := d
		if i > 0 {
			cp := *d
			cp.keyNotes = map[string][]string{}
			for k, v := range d.keyNotes {
				if k != "match" {
					cp.keyNotes[k] = slices.Clone(v)
				}
			}
			cp.name = c.uniqueName(d.name)
			cp.comments = []string{"From " + o.where + ", its rule with other paths."}
			cp.match = nil
			target = &cp
			c.drafts = append(c.drafts, target)
		}
		if !g.any && len(g.hosts) > 0 {
			target.match = &policy.Match{Hosts: g.hosts}
			for _, h := range g.hosts {
				if strings.HasPrefix(h, "*.") {
					target.note("match", "%q: Kubernetes matches exactly one label there, corsproc one or more", h)
				}
			}
		}
		setPaths(target, g.conds)
	}
	if len(ing.Spec.Rules) == 0 {
		d.note("match", "the Ingress has only a default backend: every host and path")
	}
}
