package buildinfo

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestRead(t *testing.T) {
	t.Parallel()
	built := func(version, revision string) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			bi := &debug.BuildInfo{Main: debug.Module{Version: version}}
			if revision != "" {
				bi.Settings = []debug.BuildSetting{{Key: "vcs.revision", Value: revision}}
			}
			return bi, true
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	cases := []struct {
		name           string
		stampV, stampC string
		readBuild      func() (*debug.BuildInfo, bool)
		wantV, wantC   string
	}{
		{"stamped values win over the toolchain's", "v1.2.3", "abc", built("v9.9.9", "def"), "v1.2.3", "abc"},
		{"the module version and VCS revision fill what is not stamped", "", "", built("v0.4.0", "def"), "v0.4.0", "def"},
		{"a devel build is dev", "", "", built("(devel)", ""), "dev", "unknown"},
		{"without build information it is dev and unknown", "", "", none, "dev", "unknown"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := read(c.stampV, c.stampC, c.readBuild)
			want := Info{Version: c.wantV, Commit: c.wantC, GoVersion: runtime.Version()}
			if got != want {
				t.Errorf("read = %+v, want %+v", got, want)
			}
		})
	}
}
