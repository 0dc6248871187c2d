package interop

// The package's unit tests: they need neither root nor peers, so unlike
// every other test file here this one has no build tag.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// TestIntegrationTagged keeps go test ./... runnable by an ordinary user:
// every other test file of this package needs root and real peers, so it
// must carry the integration build tag (make test sets it). A file without
// the tag would run, and fail, for everyone.
func TestIntegrationTagged(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		if f == "unit_test.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("//go:build integration\n")) && !bytes.HasPrefix(b, []byte("//go:build integration && ")) {
			t.Errorf("%s does not start with //go:build integration", f)
		}
	}
}

// TestStartRejectsBadConfig: a chain that names an implementation a role
// does not have, or Tor's current programs without building them, fails
// before anything starts (no namespace: this runs as any user).
func TestStartRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Broker: Debian}, `no broker implementation "debian"`},
		{Config{Bridge: "tor"}, `no bridge implementation "tor"`},
		{Config{Client: "chromium"}, `no client implementation "chromium"`},
		{Config{Proxy: Upstream}, "upstream proxy needs Config.Tor"},
	} {
		cfg := tc.cfg
		cfg.Dir = t.TempDir()
		c, err := Start(context.Background(), cfg)
		if err == nil {
			c.Close()
			t.Errorf("%+v: started", tc.cfg)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestProgramPaths: each implementation of each role maps to its program,
// including for chains assembled without Start (empty roles).
func TestProgramPaths(t *testing.T) {
	bin := t.TempDir()
	for _, name := range []string{"snowfall-client", "snowfall-proxy", "snowfall-broker", "snowfall-server"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(testbed.BinEnv, bin)
	b, err := testbed.NewBinaries()
	if err != nil {
		t.Fatal(err)
	}
	tor := &testbed.Upstream{Dir: "/cache/x", Version: "v2.14.1"}
	for _, tc := range []struct {
		cfg         Config
		role, want  string
		versionFlag string
	}{
		{Config{}, "broker", bin + "/snowfall-broker", "-version"},
		{Config{}, "bridge", bin + "/snowfall-server", "--version"},
		{Config{Client: Snowfall}, "client", bin + "/snowfall-client", "-version"},
		{Config{Proxy: Upstream}, "proxy", "/cache/x/proxy", "-version"},
		{Config{Bridge: Upstream}, "bridge", "/cache/x/server", "-version"},
		{Config{Broker: Upstream}, "broker", "/cache/x/broker", "-version"},
	} {
		tc.cfg.Bins, tc.cfg.Tor = b, tor
		c := &Chain{Cfg: tc.cfg}
		path, vflag, err := c.programPath(context.Background(), tc.role)
		if err != nil || path != tc.want || vflag != tc.versionFlag {
			t.Errorf("%+v %s: %q %q %v, want %q %q", tc.cfg, tc.role, path, vflag, err, tc.want, tc.versionFlag)
		}
	}
	// Empty client and proxy mean Debian's, as in Start.
	if got := (&Chain{}).impl("proxy"); got != Debian {
		t.Errorf("default proxy %q", got)
	}
	if got := (&Chain{}).impl("bridge"); got != Snowfall {
		t.Errorf("default bridge %q", got)
	}
}
