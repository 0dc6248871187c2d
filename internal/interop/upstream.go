package interop

import (
	"context"
	"path/filepath"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// UpstreamModuleDir is the test-only module pinning Tor's current
// Snowflake release, relative to the repository root.
const UpstreamModuleDir = "internal/interop/upstream"

// BuildTor builds (or finds in the cache) Tor's current programs from
// UpstreamModuleDir, for chains with Upstream roles.
func BuildTor(ctx context.Context) (*testbed.Upstream, error) {
	root, err := testbed.ModuleRoot(ctx)
	if err != nil {
		return nil, err
	}
	return testbed.BuildUpstream(ctx, filepath.Join(root, filepath.FromSlash(UpstreamModuleDir)))
}
