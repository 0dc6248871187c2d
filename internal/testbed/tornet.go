package testbed

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// TorNetwork is a private Tor network in the way chutney builds one:
// directory authorities that are also exits, plus middle relays, all with
// TestingTorNetwork set so that they vote every 20 seconds, accept private
// addresses and trust each other at once. Bridges and clients join it by
// taking its Configure options.
type TorNetwork struct {
	Authorities []*TorNode
	Relays      []*TorNode
	// DirAuthorities are the "DirAuthority" option values every node shares.
	DirAuthorities []string
}

// NewTorNetwork prepares (does not start) authorities and relays in dir:
// their keys, fingerprints and configurations. All listen on addr, with
// ports counting up from basePort.
func NewTorNetwork(ctx context.Context, dir string, addr netip.Addr, basePort, authorities, relays int) (*TorNetwork, error) {
	gencert, err := SystemBinary("tor-gencert")
	if err != nil {
		return nil, err
	}
	tn := &TorNetwork{}
	port := basePort
	for i := 0; i < authorities; i++ {
		n, err := NewTorNode(dir, fmt.Sprintf("auth%d", i), nil, "notice")
		if err != nil {
			return nil, err
		}
		orport, dirport := port, port+1
		port += 2
		keys := filepath.Join(n.DataDir, "keys")
		if err := os.MkdirAll(keys, 0o700); err != nil {
			return nil, err
		}
		// An empty passphrase on stdin keeps tor-gencert from prompting.
		cmd := exec.CommandContext(ctx, gencert, "--create-identity-key", "-m", "12",
			"-a", fmt.Sprintf("%s:%d", addr, dirport),
			"-i", filepath.Join(keys, "authority_identity_key"),
			"-s", filepath.Join(keys, "authority_signing_key"),
			"-c", filepath.Join(keys, "authority_certificate"),
			"--passphrase-fd", "0")
		cmd.Stdin = strings.NewReader("\n")
		cmd.Dir = n.Dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("testbed: tor-gencert: %w: %s", err, out)
		}
		v3ident, err := certFingerprint(filepath.Join(keys, "authority_certificate"))
		if err != nil {
			return nil, err
		}
		n.Torrc.Set("Nickname", n.Name)
		n.Torrc.Set("Address", addr.String())
		n.Torrc.Set("ORPort", fmt.Sprintf("%s:%d", addr, orport))
		n.Torrc.Set("DirPort", fmt.Sprintf("%s:%d", addr, dirport))
		n.Torrc.Set("SocksPort", "0")
		n.Torrc.Set("AuthoritativeDirectory", "1")
		n.Torrc.Set("V3AuthoritativeDirectory", "1")
		n.Torrc.Set("ContactInfo", "testbed@example.invalid")
		n.Torrc.Set("ExitPolicy", "accept *:*")
		n.Torrc.Set("ExitPolicyRejectPrivate", "0")
		fp, err := n.Fingerprint(ctx)
		if err != nil {
			return nil, err
		}
		tn.DirAuthorities = append(tn.DirAuthorities, fmt.Sprintf("%s orport=%d no-v2 v3ident=%s %s:%d %s",
			n.Name, orport, v3ident, addr, dirport, fp))
		tn.Authorities = append(tn.Authorities, n)
	}
	for i := 0; i < relays; i++ {
		n, err := NewTorNode(dir, fmt.Sprintf("relay%d", i), nil, "notice")
		if err != nil {
			return nil, err
		}
		n.Torrc.Set("Nickname", n.Name)
		n.Torrc.Set("Address", addr.String())
		n.Torrc.Set("ORPort", fmt.Sprintf("%s:%d", addr, port))
		n.Torrc.Set("DirPort", fmt.Sprintf("%s:%d", addr, port+1))
		port += 2
		n.Torrc.Set("SocksPort", "0")
		n.Torrc.Set("ExitRelay", "0")
		n.Torrc.Set("ExitPolicy", "reject *:*")
		tn.Relays = append(tn.Relays, n)
	}
	for _, n := range tn.Nodes() {
		tn.Configure(&n.Torrc)
	}
	return tn, nil
}

// Nodes lists authorities then relays.
func (tn *TorNetwork) Nodes() []*TorNode {
	return append(append([]*TorNode(nil), tn.Authorities...), tn.Relays...)
}

// Configure adds the options every member of the network shares (bridges
// and clients too).
func (tn *TorNetwork) Configure(t *Torrc) {
	t.Set("TestingTorNetwork", "1")
	for _, d := range tn.DirAuthorities {
		t.Set("DirAuthority", d)
	}
	for _, kv := range [][2]string{
		{"TestingDirAuthVoteExit", "*"},
		{"TestingDirAuthVoteGuard", "*"},
		{"TestingDirAuthVoteHSDir", "*"},
		{"TestingMinExitFlagThreshold", "0"},
		{"PathsNeededToBuildCircuits", "0.67"},
		{"V3AuthNIntervalsValid", "2"},
		{"V3AuthVotingInterval", "20"},
		{"TestingV3AuthInitialVotingInterval", "20"},
		{"V3AuthVoteDelay", "4"},
		{"V3AuthDistDelay", "4"},
		{"TestingV3AuthInitialVoteDelay", "4"},
		{"TestingV3AuthInitialDistDelay", "4"},
	} {
		t.Set(kv[0], kv[1])
	}
}

// Start runs every node in ns.
func (tn *TorNetwork) Start(ctx context.Context, ns *Namespace) error {
	for _, n := range tn.Nodes() {
		n.NS = ns
		if err := n.Start(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Stop stops every node.
func (tn *TorNetwork) Stop() {
	for _, n := range tn.Nodes() {
		n.Stop()
	}
}

// consensusRE matches an authority's notice that it published a consensus.
var consensusRE = regexp.MustCompile(`Published (ns|microdesc) consensus`)

// WaitConsensus waits until the first authority has published a consensus.
func (tn *TorNetwork) WaitConsensus(ctx context.Context) error {
	if len(tn.Authorities) == 0 {
		return errors.New("testbed: no authorities")
	}
	return tn.Authorities[0].WaitLog(ctx, consensusRE)
}

// certFingerprint reads the "fingerprint" line of an authority certificate.
func certFingerprint(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if fp, ok := strings.CutPrefix(line, "fingerprint "); ok && hexFP.MatchString(strings.TrimSpace(fp)) {
			return strings.TrimSpace(fp), nil
		}
	}
	return "", fmt.Errorf("testbed: no fingerprint in %s", path)
}

// PortAfter is the first port NewTorNetwork leaves free.
func PortAfter(basePort, authorities, relays int) int { return basePort + 2*(authorities+relays) }
