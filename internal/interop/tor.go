package interop

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// Ports of the tor bridge in the server namespace.
const (
	BridgeORPort = 9001
	// ExtORPort is tor's Extended ORPort; the server PT is pointed at the
	// tap on ExtORTapPort, which relays to it.
	ExtORPort    = 9002
	ExtORTapPort = 9003
)

// TorBridge is a tor relay acting as a Snowflake bridge, with a server PT
// (snowfall-server, or Tor's own server: both take the same flags) as its
// managed transport, talking to the Extended ORPort through a tap that
// records each handshake.
type TorBridge struct {
	*testbed.TorNode
	Fingerprint string
	Tap         *testbed.ExtORTap
	// ServerLog is the server PT's log file.
	ServerLog string
}

// NewTorBridge prepares the bridge's configuration and identity in dir
// (before any namespace exists: the fingerprint goes into the broker's
// bridge list). More options, such as a private network's, can be added to
// Torrc before Start.
func NewTorBridge(ctx context.Context, dir string, serverPath string) (*TorBridge, error) {
	n, err := testbed.NewTorNode(dir, "bridge", nil, "info")
	if err != nil {
		return nil, err
	}
	b := &TorBridge{TorNode: n, ServerLog: filepath.Join(n.Dir, "server-pt.log")}
	ip := testbed.ServerIP.String()
	tap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ExtORTapPort)
	n.Torrc.Set("Nickname", "snowfallbridge")
	n.Torrc.Set("Address", ip)
	n.Torrc.Set("BridgeRelay", "1")
	n.Torrc.Set("BridgeDistribution", "none")
	n.Torrc.Set("ORPort", fmt.Sprintf("%s:%d", ip, BridgeORPort))
	n.Torrc.Set("ExtORPort", fmt.Sprintf("127.0.0.1:%d", ExtORPort))
	n.Torrc.Set("PublishServerDescriptor", "0")
	n.Torrc.Set("AssumeReachable", "1")
	n.Torrc.Set("ExitRelay", "0")
	n.Torrc.Set("ExitPolicy", "reject *:*")
	n.Torrc.Set("SocksPort", "0")
	// env overrides the ExtORPort address tor hands the transport, so that
	// the PT's connections pass through the tap.
	n.Torrc.Set("ServerTransportPlugin", "snowflake", "exec", "/usr/bin/env",
		"TOR_PT_EXTENDED_SERVER_PORT="+tap.String(),
		serverPath, "--disable-tls", "--log", b.ServerLog, "--unsafe-logging")
	n.Torrc.Set("ServerTransportListenAddr", "snowflake", fmt.Sprintf("%s:%d", ip, BridgePort))
	if b.Fingerprint, err = n.Fingerprint(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

// registeredRE matches tor's notice that a server transport is up.
var registeredRE = regexp.MustCompile(`Registered server transport 'snowflake' at '[^']*`)

// Start runs the tap and tor in ns (the server namespace), and waits until
// tor has registered the transport (so the server PT answered SMETHODS
// DONE).
func (b *TorBridge) Start(ctx context.Context, ns *testbed.Namespace) error {
	b.NS = ns
	var err error
	b.Tap, err = testbed.StartExtORTap(b.NS, fmt.Sprintf("127.0.0.1:%d", ExtORTapPort), fmt.Sprintf("127.0.0.1:%d", ExtORPort))
	if err != nil {
		return err
	}
	if err := b.TorNode.Start(ctx); err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := b.WaitLog(wctx, registeredRE); err != nil {
		return fmt.Errorf("tor bridge: transport never registered: %w\nrelay log tail:\n%s\nserver log tail:\n%s",
			err, testbed.Tail(b.LogPath, 10), testbed.Tail(b.ServerLog, 10))
	}
	return nil
}

// Stop stops tor (which stops the server PT) and the tap.
func (b *TorBridge) Stop() {
	b.TorNode.Stop()
	if b.Tap != nil {
		b.Tap.Close()
	}
}

// NewTorClient prepares a tor client in ns that reaches the bridge only
// through a Snowflake client PT at ptPath (run with ptArgs) and the chain's
// broker and STUN server.
func NewTorClient(dir string, ns *testbed.Namespace, c *Chain, ptPath string, ptArgs ...string) (*testbed.TorNode, error) {
	n, err := testbed.NewTorNode(dir, "torclient", ns, "notice")
	if err != nil {
		return nil, err
	}
	n.Torrc.Set("UseBridges", "1")
	n.Torrc.Set("Bridge", testbed.BridgeLine("snowflake", PlaceholderBridge.String(), c.Fingerprint, c.BridgeArgs()))
	n.Torrc.Set("ClientTransportPlugin", "snowflake", "exec", ptPath, strings.Join(ptArgs, " "))
	return n, nil
}
