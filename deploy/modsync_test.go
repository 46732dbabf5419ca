package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// The product (root module) and these checks (deploy module) build many of
// the same packages: policy/ itself, go-control-plane, grpc, protobuf and
// golang.org/x/net, whose public-suffix list decides what `validate` accepts.
// go.work makes one build list for both while developing, but a user's
// `go install ./cmd/corsproc` reads the root go.mod alone (GOWORK=off). When
// the two drift, deploy/ checks the product with dependencies the product does
// not ship with. These tests keep them in step.

func TestModulesUseOneGoVersion(t *testing.T) {
	rootMod := parseModFile(t, "go.mod")
	deployMod := parseModFile(t, "deploy/go.mod")
	work, err := modfile.ParseWork("go.work", readRepoFile(t, "go.work"), nil)
	if err != nil {
		t.Fatalf("go.work: %v", err)
	}
	if rootMod.Go.Version != deployMod.Go.Version {
		t.Errorf("go.mod says go %s and deploy/go.mod says go %s: make them equal", rootMod.Go.Version, deployMod.Go.Version)
	}
	if work.Go == nil || work.Go.Version != rootMod.Go.Version {
		t.Errorf("go.work's go directive should be %s, as in go.mod", rootMod.Go.Version)
	}
	var uses []string
	for _, u := range work.Use {
		uses = append(uses, u.Path)
	}
	if strings.Join(uses, " ") != ". ./deploy" {
		t.Errorf("go.work uses %q, want both modules: . and ./deploy", uses)
	}
}

func TestSharedDependenciesHaveOneVersion(t *testing.T) {
	rootBuild := buildModules(t, root)
	deployBuild := buildModules(t, repoPath("deploy"))
	for path, rv := range rootBuild {
		dv, ok := deployBuild[path]
		if !ok || dv == rv {
			continue
		}
		fix := "in the root module: go get " + path + "@" + dv
		if semver.Compare(dv, rv) < 0 {
			fix = "in deploy/: go get " + path + "@" + rv
		}
		t.Errorf("%s: the product builds %s, deploy/ builds %s; run %s (then go mod tidy)", path, rv, dv, fix)
	}
}

func parseModFile(t *testing.T, rel string) *modfile.File {
	t.Helper()
	f, err := modfile.ParseLax(rel, readRepoFile(t, rel), nil)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	return f
}

// buildModules lists the module version behind every package that the
// module in dir builds, tests included, with the workspace off: what each
// module's own go.mod selects.
func buildModules(t *testing.T, dir string) map[string]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-test", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in %s: %v\n%s", dir, err, stderr.Bytes())
	}
	mods := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		path, version, ok := strings.Cut(sc.Text(), " ")
		if ok && version != "" { // the main module and replaced ones have none
			mods[path] = version
		}
	}
	return mods
}
