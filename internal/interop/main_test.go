package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// bins finds (or builds) Snowfall's programs for every test of the package.
var bins *testbed.Binaries

func TestMain(m *testing.M) {
	var err error
	if bins, err = testbed.NewBinaries(); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	code := m.Run()
	bins.Close()
	os.Exit(code)
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
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		conn, err := c.Dial(dctx)
		cancel()
		if err == nil {
			return conn
		}
		lastErr = err
		t.Logf("dial attempt %d: %v", attempt, err)
		if err := c.CheckAlive(); err != nil {
			t.Fatal(err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	t.Fatalf("no stream through the chain: %v\nclient log tail:\n%s", lastErr, testbed.Tail(c.ClientLog, 20))
	return nil
}
