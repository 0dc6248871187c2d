package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// BinEnv names the environment variable holding the directory of prebuilt
// Snowfall programs (the Makefile's bin/).
const BinEnv = "SNOWFALL_BIN"

// Binaries finds Snowfall's programs: in $SNOWFALL_BIN when it is set,
// otherwise built on first use with "go build" into a temporary directory.
type Binaries struct {
	dir   string
	build bool

	mu    sync.Mutex
	built map[string]error
}

// NewBinaries reads $SNOWFALL_BIN; when it is empty, programs will be built
// into a fresh temporary directory that Close removes.
func NewBinaries() (*Binaries, error) {
	if d := os.Getenv(BinEnv); d != "" {
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, err
		}
		return &Binaries{dir: abs}, nil
	}
	d, err := os.MkdirTemp("", "snowfall-bin-")
	if err != nil {
		return nil, err
	}
	return &Binaries{dir: d, build: true, built: make(map[string]error)}, nil
}

// Dir is where the programs are.
func (b *Binaries) Dir() string { return b.dir }

// Path returns the path of the named program ("snowfall-broker"), building
// it first when no prebuilt directory was given.
func (b *Binaries) Path(ctx context.Context, name string) (string, error) {
	p := filepath.Join(b.dir, name)
	if !b.build {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("testbed: %s not in %s=%s (run make build): %w", name, BinEnv, b.dir, err)
		}
		return p, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err, ok := b.built[name]; ok {
		return p, err
	}
	err := goBuild(ctx, p, name)
	b.built[name] = err
	return p, err
}

// Close removes a temporary build directory.
func (b *Binaries) Close() error {
	if b.build {
		return os.RemoveAll(b.dir)
	}
	return nil
}

// goBuild builds the program called name from <component>/cmd/<name> of
// the enclosing module.
func goBuild(ctx context.Context, out, name string) error {
	if name == "" || strings.ContainsAny(name, "/.*?[") {
		return fmt.Errorf("testbed: bad program name %q", name)
	}
	root, err := ModuleRoot(ctx)
	if err != nil {
		return err
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "*", "cmd", name))
	if len(dirs) != 1 {
		return fmt.Errorf("testbed: want one */cmd/%s in %s, found %d", name, root, len(dirs))
	}
	rel, err := filepath.Rel(root, dirs[0])
	if err != nil {
		return err
	}
	pkg := "./" + filepath.ToSlash(rel)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// ModuleRoot is the directory of the Go module enclosing the working
// directory.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("testbed: go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("testbed: not inside a Go module")
	}
	return filepath.Dir(mod), nil
}

// SystemBinary finds a program installed from the distribution (tor,
// snowflake-client, snowflake-proxy), looking in the sbin directories too.
func SystemBinary(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("testbed: %s is not installed (run scripts/install-deps.sh)", name)
}
