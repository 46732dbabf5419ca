package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
)

// cliFlags are the flag names package main in cmd/corsproc defines, read
// from its source: every fs.String/Bool/Duration/Int/Var... call whose name
// argument is a string literal.
func cliFlags(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(repoPath("cmd/corsproc/*.go"))
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			var nameArg int
			switch sel.Sel.Name {
			case "String", "Bool", "Duration", "Int", "Int64", "Uint", "Float64", "Func", "BoolFunc":
				nameArg = 0
			case "StringVar", "BoolVar", "DurationVar", "IntVar", "Int64Var", "UintVar", "Float64Var", "Var", "TextVar":
				nameArg = 1
			default:
				return true
			}
			if len(call.Args) <= nameArg {
				return true
			}
			if lit, ok := call.Args[nameArg].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if name, err := strconv.Unquote(lit.Value); err == nil {
					flags[name] = true
				}
			}
			return true
		})
	}
	if !flags["config"] || !flags["grpc-addr"] {
		t.Fatalf("found flags %v in cmd/corsproc, not even --config and --grpc-addr: has the CLI moved?", flags)
	}
	return flags
}

func TestDeploymentFilesPassOnlyFlagsCorsprocKnows(t *testing.T) {
	known := cliFlags(t)
	project, err := loadCompose(t, repoPath(composeFile))
	if err != nil {
		t.Fatal(err)
	}
	commands := map[string][]string{composeFile + " corsproc": project.Services["corsproc"].Command}
	for _, dir := range kustomizations {
		for _, d := range all[*appsv1.Deployment](render(t, dir)) {
			for _, c := range d.Spec.Template.Spec.Containers {
				if c.Name == "corsproc" {
					commands[dir+" Deployment "+d.Name] = c.Args
				}
			}
		}
	}
	for where, args := range commands {
		t.Run(where+" passes known flags to corsproc serve", func(t *testing.T) {
			if len(args) == 0 || args[0] != "serve" {
				t.Fatalf("args %q do not start with serve", args)
			}
			for _, a := range args[1:] {
				name, ok := strings.CutPrefix(a, "--")
				if !ok {
					continue // a flag's value
				}
				name, _, _ = strings.Cut(name, "=")
				if !known[name] {
					t.Errorf("--%s is not a flag of corsproc: serve would exit with a usage error", name)
				}
			}
		})
	}
}
