package testbed

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
)

// BuildPackage builds the Go package pkg (relative to the module root, like
// "./broker/cmd/snowfall-probetest") into out.
func BuildPackage(ctx context.Context, pkg, out string) error {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("testbed: go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// BuildBrowserProxy builds the browser proxy's static folder into dir with
// proxy-wasm/build.sh, as "make wasm" does, and returns the script's
// summary line (the wasm's sizes).
func BuildBrowserProxy(ctx context.Context, dir string) (string, error) {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(root, "proxy-wasm", "build.sh"), dir)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("testbed: proxy-wasm/build.sh: %w\n%s", err, b)
	}
	return strings.TrimSpace(string(b)), nil
}

// ChromiumFlags are the switches for a headless Chromium on the testbed:
// no first-run work, no background traffic, no QUIC, no GPU. The caller
// adds --user-data-dir with a fresh directory.
var ChromiumFlags = []string{
	"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
	"--disable-background-networking", "--disable-component-update", "--disable-sync",
	"--disable-default-apps", "--disable-extensions", "--no-default-browser-check",
	"--metrics-recording-only", "--password-store=basic", "--use-mock-keychain",
	"--disable-features=Translate,MediaRouter,OptimizationHints",
}
