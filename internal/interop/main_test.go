//go:build integration

package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// bins finds (or builds) Snowfall's programs for every test of the package.
var bins *testbed.Binaries

func TestMain(m *testing.M) {
	// Every test here builds network namespaces. Without root they would
	// each fail on the first one; say why once, and fail (never skip).
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "interop: the integration tests need root (network namespaces); run make test as root, or go test -tags integration as root")
		os.Exit(1)
	}
	var err error
	if bins, err = testbed.NewBinaries(); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	code := m.Run()
	bins.Close()
	os.Exit(code)
}

// torRelease builds Tor's current Snowflake programs from the test-only
// module in upstream/ on first use (then from the cache), once per test
// binary.
var torRelease = sync.OnceValues(func() (*testbed.Upstream, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	return BuildTor(ctx)
})

// upstream returns Tor's current programs, failing the test when they
// cannot be built.
func upstream(t *testing.T) *testbed.Upstream {
	t.Helper()
	u, err := torRelease()
	if err != nil {
		t.Fatalf("Tor's current Snowflake release: %v", err)
	}
	return u
}

// artifacts returns a fresh directory for the test's logs, kept after the
// run under internal/interop/artifacts/ (git-ignored).
func artifacts(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs(filepath.Join("artifacts", t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(d); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs kept in %s", d)
		}
	})
	return d
}

// startChain starts a chain that is stopped when the test ends.
func startChain(ctx context.Context, t *testing.T, cfg Config) *Chain {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = artifacts(t)
	}
	cfg.Bins = bins
	cfg.Logf = t.Logf
	if cfg.Tor == nil && slices.Contains([]string{cfg.Client, cfg.Proxy, cfg.Broker, cfg.Bridge}, Upstream) {
		cfg.Tor = upstream(t)
	}
	c, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start chain: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// dialChain opens a stream through the chain's client, retrying while no
// proxy has been matched yet (each attempt is a full rendezvous).
func dialChain(ctx context.Context, t *testing.T, c *Chain) net.Conn {
	t.Helper()
	conn, err := dialRetry(ctx, c, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// dialRetry is dialChain for any goroutine: up to 3 rendezvous of at most
// 90 s each, stopping early when a process of the chain died.
func dialRetry(ctx context.Context, c *Chain, logf Logf) (net.Conn, error) {
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		conn, err := c.Dial(dctx)
		cancel()
		if err == nil {
			return conn, nil
		}
		lastErr = err
		logf("dial attempt %d: %v", attempt, err)
		if err := c.CheckAlive(); err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("no stream through the chain: %w\nclient log tail:\n%s", lastErr, testbed.Tail(c.ClientLog, 20))
}
