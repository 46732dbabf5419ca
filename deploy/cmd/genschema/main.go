// Command genschema writes schema/policy.schema.json from the policy Go
// types. Run it from anywhere inside the repository after changing
// policy/file.go:
//
//	go -C deploy generate ./...
//	go -C deploy run ./cmd/genschema
//
// deploy's tests fail while the committed schema differs from what this
// writes.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/corsproc/corsproc/deploy/schemagen"
)

func main() {
	root, err := repoRoot()
	if err == nil {
		err = write(root)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genschema:", err)
		os.Exit(1)
	}
}

func write(root string) error {
	data, err := schemagen.Generate(root)
	if err != nil {
		return err
	}
	out := filepath.Join(root, filepath.FromSlash(schemagen.Path))
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	fmt.Println("wrote", out)
	return nil
}

// repoRoot is the nearest directory upwards holding the product's go.mod
// and a policy/ folder.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if fileExists(filepath.Join(dir, "go.mod")) && fileExists(filepath.Join(dir, "policy", "file.go")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("not inside the corsproc repository")
		}
		dir = parent
	}
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
