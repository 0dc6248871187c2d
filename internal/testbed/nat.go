package testbed

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// NATKind chooses how a NAT router built by AddNATHost behaves, in RFC 4787
// terms (mapping / filtering).
type NATKind int

const (
	// NATForwarded masquerades (Linux keeps source ports: endpoint-
	// independent mapping) and forwards a UDP port range from the WAN to
	// the host, so any peer can reach the host on those ports: endpoint-
	// independent filtering, a "full cone" for programs pinned to the range.
	NATForwarded NATKind = iota
	// NATMasquerade is plain masquerading: endpoint-independent mapping but
	// address-and-port-dependent filtering (a port-restricted cone), what
	// most Linux home routers do.
	NATMasquerade
	// NATSymmetric masquerades with fully random source ports: a new
	// mapping for every destination (address-dependent mapping).
	NATSymmetric
)

func (k NATKind) String() string {
	switch k {
	case NATForwarded:
		return "forwarded"
	case NATMasquerade:
		return "masquerade"
	case NATSymmetric:
		return "symmetric"
	}
	return fmt.Sprintf("NATKind(%d)", int(k))
}

// NATHostConfig describes a host behind its own NAT router.
type NATHostConfig struct {
	// Role names the host's namespace; the router's is Role + "-r". Keep it
	// short (at most 10 characters).
	Role string
	// WAN is the router's address on the testbed network.
	WAN netip.Addr
	// LAN is the private /24 behind the router: the router takes .1 and the
	// host .2.
	LAN  netip.Prefix
	Kind NATKind
	// UDPForward is the port range forwarded to the host (NATForwarded).
	UDPForward [2]uint16
	// TCPForward lists TCP ports forwarded to the host (to run a service
	// such as the NAT probe behind the NAT).
	TCPForward []uint16
}

// NATHost is a host namespace behind a router namespace.
type NATHost struct {
	Host, Router *Namespace
	// WAN is the router's public address; Host.Addr is the private one.
	WAN netip.Addr
}

// AddNATHost creates a router namespace on the testbed network and a host
// namespace behind it, with nftables rules for cfg.Kind. The router drops
// unsolicited packets to itself from the WAN: otherwise the first incoming
// connectivity check would create a conntrack entry that moves the
// mapping to another port than the one STUN reported.
func (n *Network) AddNATHost(ctx context.Context, cfg NATHostConfig) (*NATHost, error) {
	if len(cfg.Role) > 10 {
		return nil, fmt.Errorf("testbed: NAT host role %q too long", cfg.Role)
	}
	lan := cfg.LAN.Masked()
	if !lan.Addr().Is4() || lan.Bits() != 24 {
		return nil, fmt.Errorf("testbed: LAN %s: want an IPv4 /24", cfg.LAN)
	}
	routerLAN := lan.Addr().Next()
	hostLAN := routerLAN.Next()

	router, err := n.AddHost(ctx, cfg.Role+"-r", cfg.WAN)
	if err != nil {
		return nil, err
	}
	host, err := n.addNamespace(ctx, cfg.Role)
	if err != nil {
		return nil, err
	}
	host.Addr = hostLAN
	for _, c := range []struct {
		ns   string
		args []string
	}{
		{"", []string{"link", "add", "lan0", "netns", router.Name, "type", "veth", "peer", "name", "eth0", "netns", host.Name}},
		{router.Name, []string{"addr", "add", netip.PrefixFrom(routerLAN, 24).String(), "dev", "lan0"}},
		{router.Name, []string{"link", "set", "lan0", "up"}},
		{host.Name, []string{"addr", "add", netip.PrefixFrom(hostLAN, 24).String(), "dev", "eth0"}},
		{host.Name, []string{"link", "set", "eth0", "up"}},
		{host.Name, []string{"route", "add", "default", "via", routerLAN.String()}},
	} {
		if err := ipCmd(ctx, c.ns, c.args...); err != nil {
			return nil, err
		}
	}
	err = router.Do(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644)
	})
	if err != nil {
		return nil, fmt.Errorf("testbed: enable forwarding in %s: %w", router.Name, err)
	}
	if err := nft(ctx, router.Name, natRules(cfg, lan, hostLAN)); err != nil {
		return nil, err
	}
	return &NATHost{Host: host, Router: router, WAN: cfg.WAN}, nil
}

// natRules returns the router's nftables ruleset.
func natRules(cfg NATHostConfig, lan netip.Prefix, host netip.Addr) string {
	var pre []string
	if cfg.Kind == NATForwarded && cfg.UDPForward[0] != 0 {
		pre = append(pre, fmt.Sprintf(`iifname "eth0" udp dport %d-%d dnat to %s`, cfg.UDPForward[0], cfg.UDPForward[1], host))
	}
	for _, p := range cfg.TCPForward {
		pre = append(pre, fmt.Sprintf(`iifname "eth0" tcp dport %d dnat to %s`, p, host))
	}
	masq := "masquerade"
	if cfg.Kind == NATSymmetric {
		masq = "masquerade fully-random"
	}
	return fmt.Sprintf(`table ip testbed_nat {
	chain pre {
		type nat hook prerouting priority dstnat; policy accept;
		%s
	}
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth0" ip saddr %s %s
	}
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "eth0" ct state new drop
	}
}
`, strings.Join(pre, "\n\t\t"), lan, masq)
}

// nft loads a ruleset inside a namespace.
func nft(ctx context.Context, ns, rules string) error {
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("testbed: nft in %s: %w: %s\nruleset:\n%s", ns, err, strings.TrimSpace(string(out)), rules)
	}
	return nil
}
