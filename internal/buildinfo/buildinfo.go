// Package buildinfo says which corsproc is running: the version and commit
// stamped at build time, or what the Go toolchain recorded, and the Go
// version. `corsproc version`, the corsproc_build_info metric and the admin
// /config endpoint all read it here, so they never disagree.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Set at build time:
//
//	-ldflags "-X github.com/corsproc/corsproc/internal/buildinfo.version=v1.2.3
//	          -X github.com/corsproc/corsproc/internal/buildinfo.commit=abc123"
//
// -X needs string variables that exist; deploy's Dockerfile test checks both.
var (
	version = ""
	commit  = ""
)

// Info describes the running binary.
type Info struct {
	// Version is the stamped version, else the module version the binary
	// was built at, else "dev".
	Version string `json:"version"`
	// Commit is the stamped commit, else the VCS revision Go recorded, else
	// "unknown".
	Commit string `json:"commit"`
	// GoVersion is the Go release that built the binary, e.g. "go1.26.8".
	GoVersion string `json:"goversion"`
}

// Get returns the running binary's Info; it is computed once.
var Get = sync.OnceValue(func() Info { return read(version, commit, debug.ReadBuildInfo) })

// read fills Info from the stamped values, falling back to the build
// information of the toolchain, as returned by readBuild.
func read(v, c string, readBuild func() (*debug.BuildInfo, bool)) Info {
	if info, ok := readBuild(); ok {
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
	return Info{Version: v, Commit: c, GoVersion: runtime.Version()}
}
