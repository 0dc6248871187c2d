//go:build !js

package safelog

import "regexp"

var (
	atStart = regexp.MustCompile(atStartPattern)
	later   = regexp.MustCompile(laterPattern)
)
