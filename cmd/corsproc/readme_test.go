package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/corsproc/corsproc/internal/testutil"
)

// repoRoot is where the README's commands run, as a reader runs them.
const repoRoot = "../.."

// readmeCommand is one command of the README: from a sh block (run, its
// output not shown) or a console block (its output compared byte for
// byte).
type readmeCommand struct {
	line   int    // in README.md
	text   string // as written, continuation lines joined
	args   []string
	stdin  string // a heredoc's body
	output string // console blocks: the output shown
	shown  bool   // console blocks: output is compared
}

// TestReadmeCommandsRun runs every `go run ./cmd/corsproc` command of
// README.md from the repository's root against a corsproc built once, and
// compares the output of each console block byte for byte: the README is
// what a newcomer copies first.
func TestReadmeCommandsRun(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := fencedBlocks(string(readme))
	bin := buildCorsproc(t)

	var corsproc, curls, tests []readmeCommand
	for _, b := range blocks {
		switch b.lang {
		case "sh":
			for _, c := range shellCommands(t, b) {
				switch {
				case len(c.args) > 2 && c.args[0] == "go" && c.args[1] == "run" && c.args[2] == "./cmd/corsproc":
					corsproc = append(corsproc, c)
				case len(c.args) > 0 && c.args[0] == "curl":
					curls = append(curls, c)
				case len(c.args) > 1 && c.args[0] == "go" && c.args[1] == "test":
					tests = append(tests, c)
				default:
					// Commands on other systems (kubectl, an installed
					// corsproc on a file of one's own) cannot run here.
					t.Logf("README.md:%d: not checked: %q", c.line, c.text)
				}
			}
		case "console":
			for _, c := range consoleCommands(t, b) {
				if len(c.args) < 3 || c.args[0] != "go" || c.args[1] != "run" || c.args[2] != "./cmd/corsproc" {
					t.Logf("README.md:%d: not checked (not go run ./cmd/corsproc from the root): %q", c.line, c.text)
					continue
				}
				corsproc = append(corsproc, c)
			}
		}
	}
	if len(corsproc) < 4 || len(curls) == 0 || len(tests) == 0 {
		t.Fatalf("found %d corsproc commands, %d curl lines, %d test commands: the README parser is broken", len(corsproc), len(curls), len(tests))
	}

	for _, c := range corsproc {
		t.Run(fmt.Sprintf("README.md:%d %s", c.line, strings.Join(c.args[3:], " ")), func(t *testing.T) {
			t.Parallel()
			if c.args[3] == "serve" {
				runServeAndCurls(t, bin, c, curls)
				return
			}
			cmd := exec.Command(bin, c.args[3:]...)
			cmd.Dir = repoRoot
			cmd.Stdin = strings.NewReader(c.stdin)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			if err != nil && code < 0 {
				t.Fatal(err)
			}
			if code != 0 && code != 1 {
				t.Fatalf("exit code %d (a usage error: the command does not run as written)\n%s%s", code, stdout.String(), stderr.String())
			}
			if stderr.Len() > 0 {
				t.Errorf("stderr:\n%s", stderr.String())
			}
			if c.shown && stdout.String() != c.output {
				t.Errorf("output differs from the README:\n--- got\n%s--- README\n%s", stdout.String(), c.output)
			}
		})
	}

	t.Run("the test command is the one CI runs, and every package named exists", func(t *testing.T) {
		ci, err := os.ReadFile(filepath.Join(repoRoot, ".ci", "run"))
		if err != nil {
			t.Fatal(err)
		}
		inCI := false
		for _, c := range tests {
			inCI = inCI || bytes.Contains(ci, []byte("\n"+c.text+"\n"))
			dir := repoRoot
			for i, a := range c.args {
				switch {
				case a == "-C" && i+1 < len(c.args):
					dir = filepath.Join(repoRoot, c.args[i+1])
				case strings.HasPrefix(a, "./"):
					pkg := filepath.Join(dir, strings.TrimSuffix(strings.TrimSuffix(a, "..."), "/"))
					if fi, err := os.Stat(pkg); err != nil || !fi.IsDir() {
						t.Errorf("README.md:%d: %q names %s, which is not a folder", c.line, c.text, a)
					}
				}
			}
		}
		if !inCI {
			t.Errorf("no go test command of the README is a line of .ci/run")
		}
	})
}

// runServeAndCurls starts the README's serve command, on loopback ports
// the system picks instead of :9001 and :9002 (through the environment
// variables the README documents), and runs the quick start's curl lines
// against it.
func runServeAndCurls(t *testing.T, bin string, c readmeCommand, curls []readmeCommand) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, c.args[3:]...)
	cmd.Dir = repoRoot
	cmd.Env = append(os.Environ(), "CORSPROC_GRPC_ADDR=127.0.0.1:0", "CORSPROC_ADMIN_ADDR=127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()

	admin := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Admin string `json:"admin_addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Admin != "" {
				admin <- line.Admin
			}
		}
	}()
	var addr string
	select {
	case addr = <-admin:
	case <-time.After(testutil.Patience()):
		t.Fatalf("serve logged no admin_addr within %v", testutil.Patience())
	}
	client := &http.Client{Timeout: testutil.Patience()}
	for _, curl := range curls {
		raw := curl.args[len(curl.args)-1]
		u, err := url.Parse("http://" + strings.TrimPrefix(raw, "http://"))
		if err != nil || u.Host != "localhost:9002" {
			t.Logf("README.md:%d: not checked (not the quick start's admin listener): %q", curl.line, curl.text)
			continue
		}
		u.Host = addr
		resp, err := client.Get(u.String())
		if err != nil {
			t.Errorf("README.md:%d: %v", curl.line, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("README.md:%d: %s answered %d: %s", curl.line, u.Path, resp.StatusCode, body)
		}
	}
}

// buildCorsproc builds corsproc for the README's commands, which run the
// binary as `go run` would.
func buildCorsproc(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "corsproc")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// fencedBlock is a ``` block of the README.
type fencedBlock struct {
	lang   string
	line   int    // of the first line inside the block
	indent string // of the fence, taken off every line
	lines  []string
}

func fencedBlocks(md string) []fencedBlock {
	var out []fencedBlock
	var cur *fencedBlock
	for i, line := range strings.Split(md, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && strings.HasPrefix(trimmed, "```"):
			cur = &fencedBlock{lang: strings.TrimPrefix(trimmed, "```"), line: i + 2, indent: line[:len(line)-len(strings.TrimLeft(line, " "))]}
		case cur != nil && trimmed == "```":
			out = append(out, *cur)
			cur = nil
		case cur != nil:
			cur.lines = append(cur.lines, strings.TrimPrefix(line, cur.indent)) // a block inside a list item
		}
	}
	return out
}

// shellCommands splits a sh block into commands: continuation lines
// joined, comments and blank lines dropped.
func shellCommands(t *testing.T, b fencedBlock) []readmeCommand {
	var out []readmeCommand
	for i := 0; i < len(b.lines); i++ {
		c := readmeCommand{line: b.line + i}
		text := b.lines[i]
		for strings.HasSuffix(text, "\\") && i+1 < len(b.lines) {
			i++
			text = strings.TrimSuffix(text, "\\") + " " + strings.TrimSpace(b.lines[i])
		}
		words, comment := splitWords(t, text)
		if len(words) == 0 {
			continue
		}
		c.text = strings.TrimSpace(text[:comment])
		c.args = words
		out = append(out, c)
	}
	return out
}

// consoleCommands splits a console block into "$ " commands, each with
// the output shown after it and a heredoc's body as its input.
func consoleCommands(t *testing.T, b fencedBlock) []readmeCommand {
	var out []readmeCommand
	for i := 0; i < len(b.lines); {
		line := b.lines[i]
		if !strings.HasPrefix(line, "$ ") {
			t.Errorf("README.md:%d: console block line %q is neither a command nor its output", b.line+i, line)
			i++
			continue
		}
		c := readmeCommand{line: b.line + i, shown: true}
		text := strings.TrimPrefix(line, "$ ")
		for strings.HasSuffix(text, "\\") && i+1 < len(b.lines) {
			i++
			text = strings.TrimSuffix(text, "\\") + " " + strings.TrimSpace(b.lines[i])
		}
		i++
		words, _ := splitWords(t, text)
		if n := len(words); n > 0 && strings.HasPrefix(words[n-1], "<<") {
			end := strings.TrimPrefix(words[n-1], "<<")
			words = words[:n-1]
			for ; i < len(b.lines) && b.lines[i] != end; i++ {
				c.stdin += b.lines[i] + "\n"
			}
			i++ // the end marker
		}
		for ; i < len(b.lines) && !strings.HasPrefix(b.lines[i], "$ "); i++ {
			c.output += b.lines[i] + "\n"
		}
		c.text, c.args = text, words
		out = append(out, c)
	}
	return out
}

// splitWords splits a shell line into words as sh does for the quoting
// the README uses ('...', "..." with \" and \\, and \ outside quotes),
// and returns where a # comment starts (len(s) when there is none).
func splitWords(t *testing.T, s string) (words []string, comment int) {
	var w strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, w.String())
			w.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			flush()
		case c == '#' && !inWord:
			flush()
			return words, i
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unterminated ' in %q", s)
			}
			w.WriteString(s[i+1 : i+1+j])
			inWord, i = true, i+1+j
		case c == '"':
			inWord = true
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
					i++
				}
				w.WriteByte(s[i])
			}
			if i >= len(s) {
				t.Fatalf("unterminated \" in %q", s)
			}
		case c == '\\' && i+1 < len(s):
			i++
			w.WriteByte(s[i])
			inWord = true
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	flush()
	return words, len(s)
}

func TestSplitWords(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in      string
		want    []string
		comment string
	}{
		{`go run ./cmd/corsproc serve`, []string{"go", "run", "./cmd/corsproc", "serve"}, ""},
		{`curl -s localhost:9002/readyz    # "ready" once`, []string{"curl", "-s", "localhost:9002/readyz"}, `# "ready" once`},
		{`x --h "content-type, x-api-key" 'a b' c\ d "q\"q"`, []string{"x", "--h", "content-type, x-api-key", "a b", "c d", `q"q`}, ""},
		{`validate - <<'EOF'`, []string{"validate", "-", "<<EOF"}, ""},
		{`a "#not" b#c`, []string{"a", "#not", "b#c"}, ""},
	} {
		words, at := splitWords(t, c.in)
		if strings.Join(words, "|") != strings.Join(c.want, "|") || c.in[at:] != c.comment {
			t.Errorf("%q: words %q, comment %q; want %q, %q", c.in, words, c.in[at:], c.want, c.comment)
		}
	}
}

// TestReadmeBrowserCaseIsRealGo checks the README's example of a browser
// test case: it must parse as Go, and every field it sets must exist in
// the harness, so that a reader can paste it.
func TestReadmeBrowserCaseIsRealGo(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var example string
	for _, b := range fencedBlocks(string(readme)) {
		if b.lang == "go" {
			example = strings.Join(b.lines, "\n")
		}
	}
	if example == "" {
		t.Fatal("README.md has no go block with a browser case")
	}
	expr, err := parser.ParseExpr("[]browserCase{" + strings.TrimSuffix(strings.TrimSpace(example), ",") + "}")
	if err != nil {
		t.Fatalf("the README's browser case is not Go: %v\n%s", err, example)
	}
	fields := map[string]bool{}
	fset := token.NewFileSet()
	harness, err := parser.ParseFile(fset, filepath.Join(repoRoot, "internal", "browsertest", "harness_test.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(harness, func(n ast.Node) bool {
		if f, ok := n.(*ast.Field); ok {
			for _, name := range f.Names {
				fields[name.Name] = true
			}
		}
		return true
	})
	ast.Inspect(expr, func(n ast.Node) bool {
		if kv, ok := n.(*ast.KeyValueExpr); ok {
			if id, ok := kv.Key.(*ast.Ident); ok && !fields[id.Name] {
				t.Errorf("the README's browser case sets %q, which internal/browsertest/harness_test.go does not declare", id.Name)
			}
		}
		return true
	})
}

// TestReadmeDevelopmentTableListsEveryPackage keeps the README's map of
// the code complete: every folder with Go files must be in the
// Development table.
func TestReadmeDevelopmentTableListsEveryPackage(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	md := string(readme)
	start := strings.Index(md, "## Development")
	if start < 0 {
		t.Fatal("README.md has no Development section")
	}
	table := md[start:]
	if end := strings.Index(table[1:], "\n## "); end >= 0 {
		table = table[:end]
	}
	want := map[string]bool{}
	err = filepath.WalkDir(repoRoot, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		parts := strings.Split(filepath.ToSlash(filepath.Dir(rel)), "/")
		switch {
		case parts[0] == ".":
		case (parts[0] == "internal" || parts[0] == "cmd") && len(parts) > 1:
			want[parts[0]+"/"+parts[1]] = true
		default:
			want[parts[0]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 5 {
		t.Fatalf("found only %v: the walk is broken", want)
	}
	for dir := range want {
		if !strings.Contains(table, "`"+dir+"`") && !strings.Contains(table, "`"+dir+"/`") {
			t.Errorf("README.md's Development table does not list %s", dir)
		}
	}
}
