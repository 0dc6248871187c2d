// Package version reports the Snowfall version for -version flags and the
// PT "STATUS TYPE=version" line.
package version

import "runtime/debug"

// Version is the release version; overridden at link time with
// -ldflags "-X github.com/snowfall-pt/snowfall/internal/version.Version=...".
var Version = "0.1.0-dev"

// String returns Version, plus the VCS revision when the build recorded one.
func String() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return Version
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "*"
			}
		}
	}
	if len(rev) > 8 {
		rev = rev[:8]
	}
	if rev == "" {
		return Version
	}
	return Version + " (" + rev + dirty + ")"
}
