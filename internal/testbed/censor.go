package testbed

// A DPI censor of the kind that blocked Snowflake in 2021-2024: one nftables
// rule that matches the stock pion DTLS ClientHello by bytes at fixed
// offsets and drops it, installed on the client's input path (the client is
// the DTLS server, so the proxy's hello is what arrives there).

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
)

// censorTable is the nftables table the censor owns in a namespace.
const censorTable = "snowfall_censor"

// PionHelloMatch is the match part of the rule. Offsets are in bits from the
// start of the UDP header (@th), so the payload begins at 64:
//   - byte 0 = 22 (handshake record) and bytes 1-2 = fefd: DTLS 1.2 as the
//     record version, where Chromium's first hello says feff;
//   - byte 13 = 1: a ClientHello;
//   - bytes 59-60 = 0000: empty session ID and cookie (a first hello);
//   - bytes 63-66 = c02b c02f: pion's cipher-suite list starts with the two
//     ECDHE-GCM suites, where Chromium's starts with TLS 1.3's 1301 1302.
//
// It matches pion/dtls v2 and v3 clients in their default configuration,
// which is what Tor's Snowflake 2.5.1 proxy and today's snowfall-proxy send.
const PionHelloMatch = "udp length > 100 @th,64,8 0x16 @th,72,16 0xfefd @th,168,8 0x01 @th,536,16 0x0000 @th,568,32 0xc02bc02f"

// Censor is an installed rule.
type Censor struct {
	ns *Namespace
}

// InstallPionDTLSCensor adds the rule to ns's input hook.
func InstallPionDTLSCensor(ctx context.Context, ns *Namespace) (*Censor, error) {
	for _, args := range [][]string{
		{"add", "table", "inet", censorTable},
		{"add", "chain", "inet", censorTable, "input", "{ type filter hook input priority 0 ; }"},
		{"add", "rule", "inet", censorTable, "input", PionHelloMatch, "counter", "drop"},
	} {
		if _, err := nftCmd(ctx, ns, args...); err != nil {
			return nil, err
		}
	}
	return &Censor{ns: ns}, nil
}

var counterRE = regexp.MustCompile(`counter packets (\d+) bytes`)

// Dropped returns how many packets the rule has dropped.
func (c *Censor) Dropped(ctx context.Context) (int, error) {
	out, err := nftCmd(ctx, c.ns, "list", "chain", "inet", censorTable, "input")
	if err != nil {
		return 0, err
	}
	m := counterRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("testbed: no counter in the censor's chain:\n%s", out)
	}
	return strconv.Atoi(m[1])
}

// Remove deletes the censor's table.
func (c *Censor) Remove(ctx context.Context) error {
	_, err := nftCmd(ctx, c.ns, "delete", "table", "inet", censorTable)
	return err
}

func nftCmd(ctx context.Context, ns *Namespace, args ...string) (string, error) {
	path, err := SystemBinary("nft")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, path}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("testbed: nft %v in %s: %w: %s", args, ns.Name, err, out)
	}
	return string(out), nil
}
