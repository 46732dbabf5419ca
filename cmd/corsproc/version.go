package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time: -ldflags "-X main.version=v1.2.3 -X main.commit=abc123".
var (
	version = ""
	commit  = ""
)

// buildVersion returns the stamped version and commit, falling back to what
// the Go toolchain recorded (module version, VCS revision).
func buildVersion() (v, c string) {
	v, c = version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && c == "" {
				c = s.Value
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}

func runVersion(args []string, stdout, stderr io.Writer) int {
	fs := newCommandFlags("version", "version", "Print corsproc's version, the commit it was built from, and the Go version and\nplatform. Release builds are stamped with the release tag (see Dockerfile and\n.github/workflows/release.yml); a local build says what the Go toolchain\nrecorded, or \"dev\".\n", stdout, stderr)
	rest, code, ok := fs.parse(args)
	if !ok {
		return code
	}
	if len(rest) > 0 {
		return fs.usageError("takes no arguments")
	}
	v, c := buildVersion()
	fmt.Fprintf(stdout, "corsproc %s\ncommit: %s\ngo: %s %s/%s\n", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return 0
}
