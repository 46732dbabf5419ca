package importer

import (
	"slices"
	"strings"
	"testing"
)

// pyCases are settings lines and what CORS_X reads as: the literal's
// strings joined with "|", or "?" when it cannot be read. Fuzz seeds too.
var pyCases = []struct {
	name string
	src  string
	want string
}{
	{"a list of strings reads", `CORS_X = ["a", 'b']`, "a|b"},
	{"a tuple with a trailing comma reads", `CORS_X = ("a",)`, "a"},
	{"a parenthesised string is a string", `CORS_X = ("a")`, "a"},
	{"a set reads", `CORS_X = {"a", "b"}`, "a|b"},
	{"adjacent literals concatenate", `CORS_X = ["a" 'b' r"\d"]`, `ab\d`},
	{"a raw string keeps its backslashes", `CORS_X = [r"^https://\w+\.x\.com$"]`, `^https://\w+\.x\.com$`},
	{"a plain string keeps an unknown escape, as Python does", `CORS_X = ["^https://\w+\.x$"]`, `^https://\w+\.x$`},
	{"a plain string decodes its escapes", `CORS_X = ["a\tb\x41\u00e9"]`, "a\tbAé"},
	{"a triple-quoted string reads", "CORS_X = ['''a\nb''']", "a\nb"},
	{"a list spans lines, with comments", "CORS_X = [\n  \"a\",  # first\n  \"b\",\n]", "a|b"},
	{"a backslash continues the line", "CORS_X = \\\n  [\"a\"]", "a"},
	{"default_headers unpacks into a tuple", "from corsheaders.defaults import default_headers\nCORS_X = (*default_headers, \"x\")", strings.Join(djangoDefaultHeaders, "|") + "|x"},
	{"list(default_methods) plus a list reads", "from corsheaders.defaults import default_methods\nCORS_X = list(default_methods) + [\"HEAD\"]", strings.Join(djangoDefaultMethods, "|") + "|HEAD"},
	{"an imported name can be renamed", "from corsheaders.defaults import default_methods as dm\nCORS_X = [*dm]", strings.Join(djangoDefaultMethods, "|")},
	{"+= extends the earlier value", "CORS_X = [\"a\"]\nCORS_X += [\"b\"]", "a|b"},
	{"a name assigned a literal earlier reads", "A = [\"a\"]\nCORS_X = A + [\"b\"]", "a|b"},
	{"an annotated assignment reads", `CORS_X: list[str] = ["a"]`, "a"},
	{"numbers multiply", "CORS_X = 60 * 60", "3600"},
	{"True reads", "CORS_X = True", "True"},
	{"an environment variable cannot be read", `CORS_X = os.environ["X"].split(",")`, "?"},
	{"a call cannot be read", `CORS_X = env.list("X")`, "?"},
	{"a comprehension cannot be read", `CORS_X = [h for h in H]`, "?"},
	{"an f-string cannot be read", `CORS_X = [f"https://{HOST}"]`, "?"},
	{"an unknown name cannot be read", `CORS_X = FRONTENDS`, "?"},
	{"a conditional expression cannot be read", `CORS_X = ["a"] if DEBUG else []`, "?"},
	{"an assignment inside a block cannot be read", "if DEBUG:\n    CORS_X = [\"a\"]", "?"},
	{"a later assignment inside a block makes it unknown", "CORS_X = [\"a\"]\ntry:\n    CORS_X = [\"b\"]\nexcept ImportError:\n    pass", "?"},
	{"append after the assignment cannot be read", "CORS_X = [\"a\"]\nCORS_X.append(\"b\")", "?"},
	{"a chained assignment cannot be read", `CORS_X = A = ["a"]`, "?"},
	{"a name that was reassigned from code is unknown", "A = [\"a\"]\nA = load()\nCORS_X = A", "?"},
	{"semicolons separate statements", `A = ["a"]; CORS_X = A`, "a"},
}

func readSetting(t testing.TB, src string) (string, error) {
	c := &converter{format: "django"}
	settings := map[string]*setting{}
	if err := c.djangoFile(Input{Name: "settings.py", Data: []byte(src)}, settings, map[string]pyValue{}); err != nil {
		return "", err
	}
	s := settings["CORS_X"]
	if s == nil {
		return "", nil
	}
	switch v := s.value; v.kind {
	case pyUnknown:
		if v.why == "" {
			t.Errorf("%q: an unknown value without a reason", src)
		}
		return "?", nil
	case pySeq:
		var parts []string
		for _, it := range v.items {
			parts = append(parts, it.str)
		}
		return strings.Join(parts, "|"), nil
	case pyStr:
		return v.str, nil
	default:
		return v.String(), nil
	}
}

func TestPythonLiterals(t *testing.T) {
	t.Parallel()
	for _, tt := range pyCases {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := readSetting(t, tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("%s\nreads as %q, want %q", tt.src, got, tt.want)
			}
		})
	}
}

func TestPythonThatDoesNotTokenizeIsAnError(t *testing.T) {
	t.Parallel()
	for _, src := range []string{`CORS_X = ["a"`, `CORS_X = "a`, "CORS_X = '''a", `CORS_X = ]`, `CORS_X = "\x4"`} {
		if _, err := readSetting(t, src); err == nil {
			t.Errorf("%q: no error", src)
		}
	}
}

func TestStartRegexConversion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, py, want string
		open           bool
		why            string
	}{
		{"anchors at both ends are dropped", `^https://a\.com$`, `https://a\.com`, false, ""},
		{"no end anchor gets .*", `^https://a\.com`, `https://a\.com.*`, true, ""},
		{"\\Z is an end anchor", `^https://a\.com\Z`, `https://a\.com`, false, ""},
		{"an escaped $ is not an anchor", `^/price\$`, `/price\$.*`, true, ""},
		{"each branch keeps its own meaning", `^https://a\.com$|^https://b\.com`, `https://a\.com|https://b\.com.*`, true, ""},
		{"a | inside a group is not a branch", `^https://(a|b)\.com$`, `https://(a|b)\.com`, false, ""},
		{"an already open end gets nothing more", `^/api/.*`, `/api/.*`, true, ""},
		{"the match-all pattern stays match-all", `^.*$`, `.*`, false, ""},
		{"a lookahead is refused", `^https://(?!evil)\w+\.com$`, "", false, "lookahead"},
		{"a lookbehind is refused", `^https://\w+(?<!evil)\.com$`, "", false, "lookbehind"},
		{"a backreference is refused", `^https://(\w+)\.\1\.com$`, "", false, "backreference"},
		{"a possessive quantifier is refused", `^https://\w++\.com$`, "", false, "possessive"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, why := convertStartRegex(tt.py)
			if tt.why != "" {
				if !strings.Contains(why, tt.why) {
					t.Errorf("%q: reason %q, want one naming %q", tt.py, why, tt.why)
				}
				return
			}
			if why != "" || got.re != tt.want || got.open != tt.open {
				t.Errorf("%q: %q open %v (%s), want %q open %v", tt.py, got.re, got.open, why, tt.want, tt.open)
			}
		})
	}
}

func TestSetPaths(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name     string
		conds    []pathCond
		prefixes []string
		regex    string
	}{
		{"string prefixes stay prefixes", []pathCond{{"prefix", "/a"}, {"prefix", "/b/"}}, []string{"/a", "/b/"}, ""},
		{"a root prefix matches every path", []pathCond{{"prefix", "/a"}, {"segments", "/"}}, nil, ""},
		{"a segment prefix matches whole segments", []pathCond{{"segments", "/v1/"}}, nil, `/v1(?:/.*)?`},
		{"mixed kinds join into one regex", []pathCond{{"segments", "/v1"}, {"exact", "/a.b"}}, nil, `(?:/v1(?:/.*)?)|(?:/a\.b)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &draft{}
			setPaths(d, tt.conds)
			var prefixes []string
			var regex string
			if d.match != nil {
				prefixes, regex = d.match.PathPrefixes, d.match.PathRegex
			}
			if !slices.Equal(prefixes, tt.prefixes) || regex != tt.regex {
				t.Errorf("prefixes %q regex %q, want %q %q", prefixes, regex, tt.prefixes, tt.regex)
			}
		})
	}
}

// FuzzDjango feeds arbitrary settings files to the django converter: it
// must return a policy that loads or an input error, never panic or hang.
func FuzzDjango(f *testing.F) {
	for _, tt := range pyCases {
		f.Add(tt.src)
	}
	f.Fuzz(func(t *testing.T, src string) {
		res, err := Convert("django", []Input{{Name: "settings.py", Data: []byte(src)}}, Options{})
		if err != nil {
			if _, ok := err.(*InputError); !ok {
				t.Fatalf("%q: %v", src, err)
			}
			return
		}
		if len(res.YAML) == 0 {
			t.Fatalf("%q: an empty policy", src)
		}
	})
}
