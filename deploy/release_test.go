package deploy

import (
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/rhysd/actionlint"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const releaseWorkflow = ".github/workflows/release.yml"

// workflow is the part of a GitHub Actions workflow the release checks
// read, taken from actionlint's parse (a YAML 1.1 parser would read the
// key "on" as true).
type workflow struct {
	PushTags []string
	Env      map[string]string
	Jobs     map[string]job
}

type job struct {
	Needs []string
	Steps []step
}

type step struct {
	Uses, Run string
	With      map[string]string
}

func parseWorkflow(t *testing.T, data []byte) workflow {
	t.Helper()
	w, errs := actionlint.Parse(data)
	for _, e := range errs {
		t.Fatalf("%s:%d: %s", releaseWorkflow, e.Line, e.Message)
	}
	wf := workflow{Env: map[string]string{}, Jobs: map[string]job{}}
	for _, ev := range w.On {
		if h, ok := ev.(*actionlint.WebhookEvent); ok && h.Hook.Value == "push" && h.Tags != nil {
			for _, v := range h.Tags.Values {
				wf.PushTags = append(wf.PushTags, v.Value)
			}
		}
	}
	if w.Env != nil {
		for _, v := range w.Env.Vars {
			wf.Env[v.Name.Value] = v.Value.Value
		}
	}
	for id, j := range w.Jobs {
		var out job
		for _, n := range j.Needs {
			out.Needs = append(out.Needs, n.Value)
		}
		for _, st := range j.Steps {
			var s step
			switch e := st.Exec.(type) {
			case *actionlint.ExecRun:
				s.Run = e.Run.Value
			case *actionlint.ExecAction:
				s.Uses, s.With = e.Uses.Value, map[string]string{}
				for k, in := range e.Inputs {
					s.With[k] = in.Value.Value
				}
			}
			out.Steps = append(out.Steps, s)
		}
		wf.Jobs[id] = out
	}
	return wf
}

// TestReleaseWorkflow checks the release workflow offline: it cannot run
// here (no network, no Docker), so actionlint checks its syntax, types,
// expressions and permissions, and the rest checks what it publishes
// against what the manifests pull.
func TestReleaseWorkflow(t *testing.T) {
	t.Parallel()
	data := readRepoFile(t, releaseWorkflow)

	t.Run("actionlint finds nothing wrong", func(t *testing.T) {
		t.Parallel()
		// Shellcheck is left out (Shellcheck: ""): the machines have no
		// shellcheck binary; the run: scripts are short and set -euo pipefail.
		l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		errs, err := l.Lint(releaseWorkflow, data, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range errs {
			t.Errorf("%s:%d:%d: %s [%s]", releaseWorkflow, e.Line, e.Column, e.Message, e.Kind)
		}
	})

	t.Run("actionlint catches a broken workflow", func(t *testing.T) {
		t.Parallel()
		l, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		broken := strings.Replace(string(data), "${{ github.ref_name }}", "${{ github.ref_nam }}", 1)
		errs, err := l.Lint(releaseWorkflow, []byte(broken), nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(errs) == 0 {
			t.Error("a misspelt context property passed: the lint checks nothing")
		}
	})

	wf := parseWorkflow(t, data)

	t.Run("it runs on a version tag only", func(t *testing.T) {
		t.Parallel()
		if !slices.Equal(wf.PushTags, []string{"v*"}) {
			t.Errorf("push tags %q, want [v*]", wf.PushTags)
		}
	})

	t.Run("every action is pinned by full commit SHA with its tag in a comment", func(t *testing.T) {
		t.Parallel()
		pinned := regexp.MustCompile(`(?m)^\s*- uses: [\w.-]+/[\w.-]+@[0-9a-f]{40} # v\d+(\.\d+)*$`)
		uses := regexp.MustCompile(`(?m)^\s*-? ?uses: .*$`)
		for _, line := range uses.FindAllString(string(data), -1) {
			if !pinned.MatchString(line) {
				t.Errorf("not pinned by SHA with a version comment: %s", strings.TrimSpace(line))
			}
		}
	})

	t.Run("publishing waits for the tests", func(t *testing.T) {
		t.Parallel()
		for _, job := range []string{"binaries", "image"} {
			if !slices.Equal(wf.Jobs[job].Needs, []string{"test"}) {
				t.Errorf("job %s needs %v, want test", job, wf.Jobs[job].Needs)
			}
		}
		if !slices.ContainsFunc(wf.Jobs["test"].Steps, func(s step) bool {
			return strings.Contains(s.Run, "go test -race ./... && go -C deploy test -race ./...")
		}) {
			t.Error("the test job does not run the README's test command")
		}
	})

	t.Run("the image is multi-arch, stamped, and the one the manifests pull", func(t *testing.T) {
		t.Parallel()
		name, _ := manifestImage(t)
		if wf.Env["IMAGE"] != name {
			t.Errorf("the workflow pushes %q, the manifests pull %q", wf.Env["IMAGE"], name)
		}
		var with map[string]string
		for _, s := range wf.Jobs["image"].Steps {
			if strings.HasPrefix(s.Uses, "docker/build-push-action@") {
				with = s.With
			}
		}
		if with == nil {
			t.Fatal("the image job has no docker/build-push-action step")
		}
		platforms := strings.Split(with["platforms"], ",")
		for _, p := range []string{"linux/amd64", "linux/arm64"} {
			if !slices.Contains(platforms, p) {
				t.Errorf("platforms %q lack %s", with["platforms"], p)
			}
		}
		if with["push"] != "true" {
			t.Errorf("push is %q", with["push"])
		}
		if with["tags"] != "${{ env.IMAGE }}:${{ github.ref_name }}" {
			t.Errorf("tags %q: the image must be tagged with the release tag, and only with it (no latest)", with["tags"])
		}
		for _, arg := range []string{"VERSION=${{ github.ref_name }}", "COMMIT=${{ github.sha }}"} {
			if !strings.Contains(with["build-args"], arg) {
				t.Errorf("build-args lack %s, which `corsproc version` reports", arg)
			}
		}
	})

	t.Run("the binaries are built for linux amd64 and arm64 and stamped", func(t *testing.T) {
		t.Parallel()
		var script string
		for _, s := range wf.Jobs["binaries"].Steps {
			script += s.Run + "\n"
		}
		for _, want := range []string{"linux/amd64", "linux/arm64", "CGO_ENABLED=0", "-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "./cmd/corsproc", "SHA256SUMS", "gh release create"} {
			if !strings.Contains(script, want) {
				t.Errorf("the binaries job lacks %q", want)
			}
		}
	})
}

// manifestImage returns the image name and tag the base kustomization
// sets for corsproc.
func manifestImage(t *testing.T) (name, tag string) {
	t.Helper()
	var k struct {
		Images []struct {
			Name    string `json:"name"`
			NewName string `json:"newName"`
			NewTag  string `json:"newTag"`
			Digest  string `json:"digest"`
		} `json:"images"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "k8s/base/kustomization.yaml"), &k); err != nil {
		t.Fatal(err)
	}
	for _, im := range k.Images {
		if im.Name == "corsproc" {
			return im.NewName, im.NewTag
		}
	}
	t.Fatal("k8s/base/kustomization.yaml sets no image for corsproc")
	return "", ""
}

var releaseTag = regexp.MustCompile(`^v\d+\.\d+\.\d+$`)

// imageProblem says what is wrong with an image reference a manifest
// deploys, or "": it must name a version (a tag other than latest) or a
// digest, and corsproc's must be the release the manifests are cut for.
func imageProblem(ref, corsprocName, corsprocTag string) string {
	if _, digest, ok := strings.Cut(ref, "@sha256:"); ok && len(digest) == 64 {
		return ""
	}
	name, tag := ref, ""
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		name, tag = ref[:i], ref[i+1:]
	}
	switch {
	case tag == "":
		return "has no tag, so it pulls latest: name a version"
	case tag == "latest":
		return "is :latest, which changes under a running Deployment and that nothing publishes: name a version"
	case name == corsprocName && tag != corsprocTag:
		return "is not the release the manifests are cut for (" + corsprocTag + ")"
	case name == corsprocName && !releaseTag.MatchString(tag):
		return "is not a release tag vX.Y.Z, which the release workflow publishes"
	}
	return ""
}

func TestManifestsNameAReleasedImage(t *testing.T) {
	t.Parallel()
	name, tag := manifestImage(t)
	if !releaseTag.MatchString(tag) {
		t.Errorf("k8s/base/kustomization.yaml: corsproc newTag %q is not a release tag vX.Y.Z", tag)
	}
	for _, dir := range kustomizations {
		t.Run(dir+" deploys only versioned images", func(t *testing.T) {
			r := render(t, dir)
			var specs []corev1.PodSpec
			for _, d := range all[*appsv1.Deployment](r) {
				specs = append(specs, d.Spec.Template.Spec)
			}
			for _, d := range all[*appsv1.DaemonSet](r) {
				specs = append(specs, d.Spec.Template.Spec)
			}
			for _, s := range all[*appsv1.StatefulSet](r) {
				specs = append(specs, s.Spec.Template.Spec)
			}
			for _, spec := range specs {
				for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
					if p := imageProblem(c.Image, name, tag); p != "" {
						t.Errorf("container %s: image %q %s", c.Name, c.Image, p)
					}
				}
			}
		})
	}
	t.Run("the README names the same release", func(t *testing.T) {
		if ref := name + ":" + tag; !strings.Contains(string(readRepoFile(t, "README.md")), ref) {
			t.Errorf("README.md does not mention %s", ref)
		}
	})
}

func TestImageProblem(t *testing.T) {
	t.Parallel()
	const name, tag = "ghcr.io/corsproc/corsproc", "v0.1.0"
	tests := []struct {
		name, ref string
		bad       bool
	}{
		{"the release tag passes", "ghcr.io/corsproc/corsproc:v0.1.0", false},
		{"latest is refused", "ghcr.io/corsproc/corsproc:latest", true},
		{"latest of another image is refused", "docker.io/envoyproxy/envoy:latest", true},
		{"no tag is refused", "ghcr.io/corsproc/corsproc", true},
		{"a registry port is not a tag", "registry.example.com:5000/corsproc", true},
		{"another corsproc release is refused", "ghcr.io/corsproc/corsproc:v0.0.9", true},
		{"a digest passes", "docker.io/envoyproxy/envoy:distroless-v1.39.1@sha256:" + strings.Repeat("ab", 32), false},
		{"another image's version tag passes", "docker.io/envoyproxy/envoy:distroless-v1.39.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := imageProblem(tt.ref, name, tag); (got != "") != tt.bad {
				t.Errorf("imageProblem(%q) = %q, want a problem: %v", tt.ref, got, tt.bad)
			}
		})
	}
}
