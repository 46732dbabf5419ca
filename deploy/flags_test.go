package deploy

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"

	"github.com/corsproc/corsproc/internal/runner"
)

// cliFlags are the flag names of `corsproc serve`, from the runner's
// Config: the one place they are declared.
func cliFlags(t *testing.T) map[string]bool {
	t.Helper()
	cfg := runner.Defaults()
	flags := map[string]bool{}
	for _, f := range cfg.Flags() {
		flags[f.Name] = true
	}
	if !flags["config"] || !flags["grpc-addr"] {
		t.Fatalf("found flags %v, not even --config and --grpc-addr: has the CLI moved?", flags)
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
	for where, d := range kubernetesDeployments(t) {
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "corsproc" {
				commands[where] = c.Args
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
