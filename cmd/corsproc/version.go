package main

import (
	"fmt"
	"io"
	"runtime"

	"github.com/corsproc/corsproc/internal/buildinfo"
)

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newCommandFlags("version", "version", "Print corsproc's version, the commit it was built from, and the Go version and\nplatform. Release builds are stamped with the release tag (see Dockerfile and\n.github/workflows/release.yml); a local build says what the Go toolchain\nrecorded, or \"dev\".\n", stdout, stderr)
	rest, code, ok := fs.parse(args)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		return fs.usageError("takes no arguments")
	}
	b := buildinfo.Get()
	fmt.Fprintf(stdout, "corsproc %s\ncommit: %s\ngo: %s %s/%s\n", b.Version, b.Commit, b.GoVersion, runtime.GOOS, runtime.GOARCH)
	return 0
}
