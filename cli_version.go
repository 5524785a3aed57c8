package main

import (
	"runtime/debug"

	"github.com/alecthomas/kong"
)

// netuse's version: the one -ldflags set, else the one the build info
// records, as -V, netuse version and netuse_build_info say it.

// versionOK is kong's version flag; the name keeps it apart from the
// version variable.
type versionOK = kong.VersionFlag

// versionLine is "netuse VERSION", VERSION one word (netuse_build_info's
// label); -V and netuse version print versionText.
func versionLine() string {
	info, _ := debug.ReadBuildInfo()
	return "netuse " + versionOf(version, info)
}

// versionText is what -V and netuse version print: versionLine, and
// where to read how to stamp a version when the build stamped none. The
// metrics' version label keeps versionLine's short "dev".
func versionText() string {
	info, _ := debug.ReadBuildInfo()
	return versionSaid(versionOf(version, info))
}

// versionSaid is -V's line for the version v, as versionOf picked it.
func versionSaid(v string) string {
	if v == "dev" {
		return "netuse dev (no version stamped: see the README's Install)"
	}
	return "netuse " + v
}

// versionOf picks netuse's version: the one -ldflags set; else the
// module's, which go install module@version records and go build (1.24
// and later) stamps from git as a pseudo-version; else the commit, short,
// "+dirty" if the tree had changes (go build -buildvcs in a checkout
// without a module version); else "dev". info may be nil.
func versionOf(ldflags string, info *debug.BuildInfo) string {
	if ldflags != "" {
		return ldflags
	}
	if info == nil {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))] // as git log --abbrev=12 would
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return "dev"
	}
	return rev + dirty
}
