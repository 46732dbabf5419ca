package deploy

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dfparser "github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// instruction is one Dockerfile instruction, as BuildKit parses it.
type instruction struct {
	Cmd   string // lower case: from, run, copy, ...
	Args  []string
	Flags []string
	Line  int
	JSON  bool // exec form
}

// stage is one FROM and what follows it.
type stage struct {
	From         string
	Instructions []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.Instructions {
		if in.Cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// parseDockerfile parses with BuildKit's own parser (docker build's).
func parseDockerfile(t *testing.T, data []byte) []stage {
	t.Helper()
	res, err := dfparser.Parse(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("Dockerfile line %d: %s", w.Location.Start.Line, w.Short)
	}
	var stages []stage
	for _, n := range res.AST.Children {
		in := instruction{Cmd: strings.ToLower(n.Value), Flags: n.Flags, Line: n.StartLine, JSON: n.Attributes["json"]}
		for a := n.Next; a != nil; a = a.Next {
			in.Args = append(in.Args, a.Value)
		}
		if in.Cmd == "from" {
			stages = append(stages, stage{From: in.Args[0]})
		}
		if len(stages) > 0 {
			stages[len(stages)-1].Instructions = append(stages[len(stages)-1].Instructions, in)
		}
	}
	return stages
}

func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, readRepoFile(t, "Dockerfile"))
	if len(stages) < 2 {
		t.Fatalf("%d stages: the image must be built in one stage and shipped from another", len(stages))
	}
	build, final := stages[0], stages[len(stages)-1]

	t.Run("the final image is distroless or scratch and runs as non-root", func(t *testing.T) {
		if !strings.HasPrefix(final.From, "gcr.io/distroless/static") && final.From != "scratch" {
			t.Errorf("final stage is FROM %s", final.From)
		}
		users := final.all("user")
		if len(users) == 0 {
			t.Fatal("no USER: the image would run as root")
		}
		user := users[len(users)-1].Args[0]
		uid, _, _ := strings.Cut(user, ":")
		if uid == "0" || uid == "root" || !regexp.MustCompile(`^[0-9]+$`).MatchString(uid) {
			t.Errorf("USER %s: want a numeric non-root uid, so that runAsNonRoot can verify it", user)
		}
	})
	t.Run("only the gRPC and admin ports are exposed", func(t *testing.T) {
		var ports []string
		for _, in := range final.all("expose") {
			ports = append(ports, in.Args...)
		}
		slices.Sort(ports)
		if !slices.Equal(ports, []string{"9001", "9002"}) {
			t.Errorf("EXPOSE %v, want 9001 9002", ports)
		}
	})
	t.Run("there is no HEALTHCHECK: orchestrators probe corsproc themselves", func(t *testing.T) {
		for _, s := range stages {
			if hc := s.all("healthcheck"); len(hc) > 0 {
				t.Errorf("HEALTHCHECK on line %d", hc[0].Line)
			}
		}
	})
	t.Run("the binary is static, trimmed, version-stamped, and built from cmd/corsproc", func(t *testing.T) {
		var run string
		for _, in := range build.all("run") {
			if j := strings.Join(in.Args, " "); strings.Contains(j, "go build") {
				run = j
			}
		}
		for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X " + buildinfoPkg + ".version=", "-X " + buildinfoPkg + ".commit=", "./cmd/corsproc"} {
			if !strings.Contains(run, want) {
				t.Errorf("the go build step lacks %q:\n%s", want, run)
			}
		}
	})
	t.Run("the image runs corsproc serve by default", func(t *testing.T) {
		ep, cmd := final.all("entrypoint"), final.all("cmd")
		if len(ep) != 1 || !ep[0].JSON || len(cmd) != 1 || !cmd[0].JSON {
			t.Fatalf("want one exec-form ENTRYPOINT and one exec-form CMD")
		}
		var copied bool
		for _, in := range final.all("copy") {
			copied = copied || in.Args[len(in.Args)-1] == ep[0].Args[0]
		}
		if !copied {
			t.Errorf("ENTRYPOINT %s is not a file the final stage copies in", ep[0].Args[0])
		}
		if !slices.Equal(cmd[0].Args, []string{"serve"}) {
			t.Errorf("CMD %v, want [serve]", cmd[0].Args)
		}
	})
	t.Run("the Go image is at least the go.mod's Go version", func(t *testing.T) {
		mf, err := modfile.ParseLax("go.mod", readRepoFile(t, "go.mod"), nil)
		if err != nil {
			t.Fatal(err)
		}
		// An ARG before the first FROM is global; the stages above hold only
		// what follows a FROM, so read it from the file.
		m := regexp.MustCompile(`(?m)^ARG GO_VERSION=(\S+)`).FindSubmatch(readRepoFile(t, "Dockerfile"))
		if m == nil {
			t.Fatal("no ARG GO_VERSION")
		}
		goVersion := string(m[1])
		if semver.Compare("v"+goVersion, "v"+mf.Go.Version) < 0 {
			t.Errorf("the build image has Go %s, go.mod needs %s", goVersion, mf.Go.Version)
		}
	})
	t.Run("buildinfo declares the string variables the ldflags stamp", func(t *testing.T) {
		// -X silently does nothing for a variable that does not exist or is
		// not a string, so the image would report an empty version.
		vars := packageStringVars(t, repoPath("internal/buildinfo"))
		for _, v := range []string{"version", "commit"} {
			if !vars[v] {
				t.Errorf("package %s has no string variable %q", buildinfoPkg, v)
			}
		}
	})
}

// buildinfoPkg is the package whose variables the Dockerfile stamps.
const buildinfoPkg = "github.com/corsproc/corsproc/internal/buildinfo"

// packageStringVars lists the package-level string variables of the
// non-test Go files in dir.
func packageStringVars(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				isString := false
				if id, ok := vs.Type.(*ast.Ident); ok && id.Name == "string" {
					isString = true
				}
				if vs.Type == nil && len(vs.Values) == len(vs.Names) {
					isString = true
					for _, v := range vs.Values {
						if bl, ok := v.(*ast.BasicLit); !ok || bl.Kind != token.STRING {
							isString = false
						}
					}
				}
				for _, n := range vs.Names {
					if isString {
						vars[n.Name] = true
					}
				}
			}
		}
	}
	return vars
}

// buildInputs lists the files `go build ./cmd/corsproc` reads from the
// repository: go.mod, go.sum, and the Go and embedded files of every
// package of the root module it imports. Paths are slash-separated,
// relative to the root.
func buildInputs(t *testing.T) []string {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-deps", "-json=Dir,GoFiles,EmbedFiles,Module,Standard", "./cmd/corsproc")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/corsproc: %v", err)
	}
	inputs := []string{"go.mod", "go.sum"}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			Dir        string
			GoFiles    []string
			EmbedFiles []string
			Standard   bool
			Module     *struct{ Path string }
		}
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Standard || p.Module == nil || p.Module.Path != "github.com/corsproc/corsproc" {
			continue
		}
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range append(p.GoFiles, p.EmbedFiles...) {
			inputs = append(inputs, filepath.ToSlash(filepath.Join(rel, f)))
		}
	}
	return inputs
}

func TestDockerignore(t *testing.T) {
	f, err := os.Open(repoPath(".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(t *testing.T, rel string) bool {
		t.Helper()
		m, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Run("every file the binary's build reads is sent to the builder", func(t *testing.T) {
		inputs := buildInputs(t)
		if !contains(inputs, "cmd/corsproc/main.go") {
			t.Fatalf("go list found no cmd/corsproc/main.go among %v", inputs)
		}
		for _, rel := range inputs {
			if excluded(t, rel) {
				t.Errorf("%s is excluded by .dockerignore: docker build would fail", rel)
			}
		}
	})
	t.Run("history, deployment files and the deploy checks stay out of the context", func(t *testing.T) {
		for _, rel := range []string{".git/HEAD", "deploy/go.mod", "k8s/base/deployment.yaml", "envoy/envoy.yaml", "docs/deploy.md", "README.md"} {
			if !excluded(t, rel) {
				t.Errorf("%s is sent to the builder", rel)
			}
		}
	})
}
