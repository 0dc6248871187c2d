package testbed

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// UpstreamModule is the import path of Tor's Snowflake module, whose
// released mains the tests run as real peers.
const UpstreamModule = "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/snowflake/v2"

// upstreamPrograms are the mains built from UpstreamModule, by the names
// "go build -o dir/" gives them.
var upstreamPrograms = []string{"broker", "client", "proxy", "server"}

// Upstream is a set of Tor's Snowflake programs built from a pinned
// test-only module (a go.mod whose go.sum pins and checksums the release).
type Upstream struct {
	// Dir holds the programs.
	Dir string
	// Version is the module version they were built from ("v2.14.1").
	Version string
}

// Path is the path of one program: "broker", "client", "proxy" or "server".
func (u *Upstream) Path(name string) (string, error) {
	if !slices.Contains(upstreamPrograms, name) {
		return "", fmt.Errorf("testbed: no upstream program %q", name)
	}
	return filepath.Join(u.Dir, name), nil
}

// UpstreamCacheEnv overrides where built upstream programs are cached
// (default: the user cache directory).
const UpstreamCacheEnv = "SNOWFALL_UPSTREAM_CACHE"

// BuildUpstream builds Tor's programs from the test-only module in modDir,
// or finds them from an earlier run. Builds are cached under the user cache
// directory, keyed by the hash of the module's go.mod and go.sum, so a
// build happens once per pinned version; go's own checksum verification
// (go.sum, and the checksum database for anything new) guards the source.
func BuildUpstream(ctx context.Context, modDir string) (*Upstream, error) {
	key, err := upstreamKey(modDir)
	if err != nil {
		return nil, err
	}
	base := os.Getenv(UpstreamCacheEnv)
	if base == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("testbed: no cache directory for upstream programs (set %s): %w", UpstreamCacheEnv, err)
		}
		base = filepath.Join(cache, "snowfall-upstream")
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	// Two test binaries may start at once: one builds, the other waits.
	unlock, err := lockFile(ctx, filepath.Join(base, "lock"))
	if err != nil {
		return nil, err
	}
	defer unlock()

	dir := filepath.Join(base, key)
	stamp := filepath.Join(dir, "VERSION")
	if v, err := os.ReadFile(stamp); err == nil && allPresent(dir) {
		return &Upstream{Dir: dir, Version: strings.TrimSpace(string(v))}, nil
	}

	// -mod=readonly on the command line beats a GOFLAGS=-mod=mod in the
	// environment: go.sum is checked, never rewritten.
	version, err := goInModule(ctx, modDir, "list", "-mod=readonly", "-m", "-f", "{{.Version}}", UpstreamModule)
	if err != nil {
		return nil, err
	}
	version = strings.TrimSpace(version)
	tmp, err := os.MkdirTemp(base, "build-")
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	defer os.RemoveAll(tmp)
	args := []string{"build", "-mod=readonly", "-trimpath", "-o", tmp + "/"}
	for _, p := range upstreamPrograms {
		args = append(args, UpstreamModule+"/"+p)
	}
	if _, err := goInModule(ctx, modDir, args...); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "VERSION"), []byte(version+"\n"), 0o644); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	return &Upstream{Dir: dir, Version: version}, nil
}

// upstreamKey hashes what decides the build: the module's go.mod and go.sum.
func upstreamKey(modDir string) (string, error) {
	h := sha256.New()
	for _, f := range []string{"go.mod", "go.sum"} {
		b, err := os.ReadFile(filepath.Join(modDir, f))
		if err != nil {
			return "", fmt.Errorf("testbed: upstream module: %w", err)
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func allPresent(dir string) bool {
	for _, p := range upstreamPrograms {
		st, err := os.Stat(filepath.Join(dir, p))
		if err != nil || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// goInModule runs the go command in modDir as a module of its own, never
// part of a workspace, and returns its standard output.
func goInModule(ctx context.Context, modDir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = modDir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("testbed: go %s in %s: %w\n%s", strings.Join(args, " "), modDir, err, stderr.Bytes())
	}
	return string(out), nil
}

// lockFile takes an exclusive lock on path, giving up when ctx ends.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	locked := make(chan error, 1)
	go func() { locked <- unix.Flock(int(f.Fd()), unix.LOCK_EX) }()
	select {
	case err := <-locked:
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("testbed: lock %s: %w", path, err)
		}
		return func() { f.Close() }, nil
	case <-ctx.Done():
		// Closing the file does not wake flock; the goroutine ends when
		// the holder lets go, and the lock it then takes dies with f.
		go func() {
			<-locked
			f.Close()
		}()
		return nil, fmt.Errorf("testbed: waiting for %s: %w", path, ctx.Err())
	}
}
