package testbed

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Torrc is a tor configuration, one option per line.
type Torrc []string

// Set appends an option line: Set("SocksPort", "auto").
func (t *Torrc) Set(option string, values ...string) {
	*t = append(*t, strings.TrimSpace(option+" "+strings.Join(values, " ")))
}

// String is the file content.
func (t Torrc) String() string { return strings.Join(t, "\n") + "\n" }

// Write stores the configuration at path.
func (t Torrc) Write(path string) error {
	return os.WriteFile(path, []byte(t.String()), 0o644)
}

// TorNode is one tor process of the testbed: a client, a relay, a bridge or
// a directory authority.
type TorNode struct {
	Name string
	// Dir holds torrc, the data directory and the logs.
	Dir     string
	DataDir string
	Torrc   Torrc
	NS      *Namespace
	// LogPath is the "Log ... file" destination set by NewTorNode.
	LogPath string
	Proc    *Process
}

// NewTorNode prepares a node's directories and the options every node of
// the testbed shares: data directory, a log file at level logLevel, no
// daemonizing, and no address scrubbing in logs.
func NewTorNode(dir, name string, ns *Namespace, logLevel string) (*TorNode, error) {
	n := &TorNode{Name: name, Dir: filepath.Join(dir, name), NS: ns}
	n.DataDir = filepath.Join(n.Dir, "data")
	n.LogPath = filepath.Join(n.Dir, "tor.log")
	if err := os.MkdirAll(n.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	n.Torrc.Set("DataDirectory", n.DataDir)
	n.Torrc.Set("Log", logLevel, "file", n.LogPath)
	n.Torrc.Set("RunAsDaemon", "0")
	n.Torrc.Set("SafeLogging", "0")
	n.Torrc.Set("AvoidDiskWrites", "1")
	return n, nil
}

// TorrcPath is where Start writes the configuration.
func (n *TorNode) TorrcPath() string { return filepath.Join(n.Dir, "torrc") }

// Fingerprint writes the configuration and asks tor for the node's RSA
// identity fingerprint (40 hex digits), creating its keys if needed.
func (n *TorNode) Fingerprint(ctx context.Context) (string, error) {
	tor, err := SystemBinary("tor")
	if err != nil {
		return "", err
	}
	if err := n.Torrc.Write(n.TorrcPath()); err != nil {
		return "", err
	}
	// --list-fingerprint prints "<nickname> <fingerprint in groups of 4>".
	cmd := exec.CommandContext(ctx, tor, "--list-fingerprint", "--quiet", "-f", n.TorrcPath())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("testbed: tor --list-fingerprint for %s: %w: %s", n.Name, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 11 {
			fp := strings.Join(f[1:], "")
			if hexFP.MatchString(fp) {
				return fp, nil
			}
		}
	}
	return "", fmt.Errorf("testbed: no fingerprint in tor output %q", out)
}

var hexFP = regexp.MustCompile(`^[0-9A-F]{40}$`)

// Start writes the configuration and runs tor in the node's namespace.
func (n *TorNode) Start(ctx context.Context) error {
	tor, err := SystemBinary("tor")
	if err != nil {
		return err
	}
	if err := n.Torrc.Write(n.TorrcPath()); err != nil {
		return err
	}
	n.Proc, err = StartProcess(ProcessConfig{
		Name: "tor", NS: n.NS, Path: tor,
		Args:   []string{"-f", n.TorrcPath(), "--defaults-torrc", os.DevNull},
		LogDir: n.Dir,
		Stdin:  true,
	})
	return err
}

// Stop stops the node's tor (and with it its PT children, whose stdin
// closes).
func (n *TorNode) Stop() {
	if n.Proc != nil {
		n.Proc.Stop(5 * time.Second)
	}
}

// WaitLog waits until the node's log contains a line matching re.
func (n *TorNode) WaitLog(ctx context.Context, re *regexp.Regexp) error {
	err := WaitFile(ctx, n.LogPath, func(s string) bool { return re.MatchString(s) })
	if err != nil && n.Proc != nil && !n.Proc.Running() {
		return fmt.Errorf("testbed: tor %s exited (%s); log tail:\n%s", n.Name, n.Proc.ExitStatus(), Tail(n.LogPath, 15))
	}
	return err
}

var bootstrapRE = regexp.MustCompile(`Bootstrapped (\d+)% \(([a-z_]+)\)`)

// Bootstrap returns the highest bootstrap percentage in the node's log and
// its tag ("handshake_done", "loading_status", "done"…).
func (n *TorNode) Bootstrap() (int, string) {
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		return 0, ""
	}
	best, tag := 0, ""
	for _, m := range bootstrapRE.FindAllStringSubmatch(string(b), -1) {
		if p, err := strconv.Atoi(m[1]); err == nil && p >= best {
			best, tag = p, m[2]
		}
	}
	return best, tag
}

// WaitBootstrap waits until the node has bootstrapped to at least pct.
func (n *TorNode) WaitBootstrap(ctx context.Context, pct int) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		if p, _ := n.Bootstrap(); p >= pct {
			return nil
		}
		if n.Proc != nil && !n.Proc.Running() {
			return fmt.Errorf("testbed: tor %s exited (%s); log tail:\n%s", n.Name, n.Proc.ExitStatus(), Tail(n.LogPath, 15))
		}
		select {
		case <-ctx.Done():
			p, tag := n.Bootstrap()
			return fmt.Errorf("testbed: tor %s bootstrapped only to %d%% (%s): %w", n.Name, p, tag, ctx.Err())
		case <-tick.C:
		}
	}
}

// BridgeLine is a "Bridge" option value for a Snowflake bridge: the address
// is a placeholder (the PT never dials it), the fingerprint is repeated as
// an argument because the client sends it to the broker.
func BridgeLine(transport, placeholder, fingerprint string, args []Arg) string {
	parts := []string{transport, placeholder, fingerprint}
	for _, a := range args {
		parts = append(parts, a.Key+"="+a.Value)
	}
	return strings.Join(parts, " ")
}
