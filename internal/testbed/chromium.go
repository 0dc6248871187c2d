package testbed

// A headless Chromium inside a namespace, driven over the DevTools pipe, for
// handshake captures outside of tests (the fingerprint re-capture command)
// as well as inside them.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/chromedp/chromedp"
)

// Browser is a running Chromium.
type Browser struct {
	// Ctx is a tab's context for chromedp.Run.
	Ctx    context.Context
	cancel []context.CancelFunc
	log    *os.File
}

// StartChromium runs Debian's chromium headless in ns with a fresh profile
// under dir, its output in dir/chromium.log. extraFlags are added to
// ChromiumFlags; "--disable-features=" lists are merged (Chromium honours
// only the last such switch).
func StartChromium(ctx context.Context, ns *Namespace, dir string, extraFlags ...string) (*Browser, error) {
	chromium, err := SystemBinary("chromium")
	if err != nil {
		return nil, err
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		return nil, err
	}
	profile := filepath.Join(dir, "profile")
	if err := os.MkdirAll(profile, 0o700); err != nil {
		logFile.Close()
		return nil, err
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(profile),
		chromedp.CombinedOutput(logFile),
	}
	if ns != nil {
		opts = append(opts, chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{ip, "netns", "exec", ns.Name, chromium}, cmd.Args[1:]...)
			cmd.Path = ip
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		}))
	}
	for _, f := range MergeChromiumFlags(ChromiumFlags, extraFlags...) {
		name, value, ok := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if ok {
			opts = append(opts, chromedp.Flag(name, value))
		} else {
			opts = append(opts, chromedp.Flag(name, true))
		}
	}
	b := &Browser{log: logFile}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	b.cancel = append(b.cancel, cancel)
	bctx, cancel := chromedp.NewContext(actx)
	b.cancel = append(b.cancel, cancel)
	b.Ctx = bctx
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		b.Close()
		return nil, fmt.Errorf("testbed: starting chromium: %w\n%s", err, Tail(logFile.Name(), 20))
	}
	return b, nil
}

// Close stops the browser.
func (b *Browser) Close() {
	for i := len(b.cancel) - 1; i >= 0; i-- {
		b.cancel[i]()
	}
	b.log.Close()
}

// MergeChromiumFlags appends extra to base, merging every
// --disable-features= list into one switch.
func MergeChromiumFlags(base []string, extra ...string) []string {
	const df = "--disable-features="
	var out, features []string
	for _, f := range append(append([]string(nil), base...), extra...) {
		if v, ok := strings.CutPrefix(f, df); ok {
			features = append(features, strings.Split(v, ",")...)
			continue
		}
		out = append(out, f)
	}
	if len(features) > 0 {
		out = append(out, df+strings.Join(features, ","))
	}
	return out
}

// ChromiumVersion returns what `chromium --version` prints, e.g.
// "Chromium 156.0.8078.114 built on Debian GNU/Linux 12 (bookworm)".
func ChromiumVersion(ctx context.Context) (string, error) {
	chromium, err := SystemBinary("chromium")
	if err != nil {
		return "", err
	}
	out, err := exec.CommandContext(ctx, chromium, "--version").Output()
	if err != nil {
		return "", fmt.Errorf("testbed: chromium --version: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}
