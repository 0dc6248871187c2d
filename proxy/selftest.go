//go:build !js

package proxy

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/nattype"
)

// CheckStatus grades one self-test check.
type CheckStatus int

// Check grades, from good to bad.
const (
	CheckOK CheckStatus = iota
	CheckWarn
	CheckFail
)

func (s CheckStatus) String() string {
	switch s {
	case CheckOK:
		return " OK "
	case CheckWarn:
		return "WARN"
	}
	return "FAIL"
}

// Check is one line of the self-test checklist.
type Check struct {
	Name   string
	Status CheckStatus
	Detail string // what was found
	Fix    string // what to do about it, when not OK
}

// SelfTestReport answers "is my proxy working?".
type SelfTestReport struct {
	Checks  []Check
	NATType string
}

// OK reports whether no check failed (warnings allowed).
func (r *SelfTestReport) OK() bool {
	for _, c := range r.Checks {
		if c.Status == CheckFail {
			return false
		}
	}
	return true
}

// String renders the checklist for a terminal.
func (r *SelfTestReport) String() string {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "[%s] %-7s %s\n", c.Status, c.Name, c.Detail)
		if c.Fix != "" && c.Status != CheckOK {
			fmt.Fprintf(&b, "       %-7s fix: %s\n", "", c.Fix)
		}
	}
	switch {
	case !r.OK():
		b.WriteString("Result: NOT WORKING — fix the failed checks above.\n")
	case r.NATType == nattype.Restricted:
		b.WriteString("Result: working, for clients with an unrestricted NAT only (see the NAT line).\n")
	default:
		b.WriteString("Result: working.\n")
	}
	return b.String()
}

// SelfTest checks, all at once, that the broker answers polls, that the
// default relay accepts WebSocket connections, that a STUN server gives a
// public address and what the NAT type is. It takes at most about a minute.
// Its poll cannot take a real client's match (see selfTestPattern).
// cfg.PeerFactory is required, as for New.
func SelfTest(ctx context.Context, cfg Config) (*SelfTestReport, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	poster := cfg.Poster
	if poster == nil {
		poster = defaultPoster()
	}
	pf := cfg.PeerFactory
	if pf == nil {
		return nil, ErrNoPeerFactory
	}
	dialer := cfg.RelayDialer
	if dialer == nil {
		dialer = wsDialer{}
	}
	bc, err := newBrokerClient(cfg.BrokerURL, poster, cfg.ProxyType, cfg.Policy.Pattern)
	if err != nil {
		return nil, err
	}

	rep := &SelfTestReport{NATType: nattype.Unknown}
	var broker, relayC, stun, nat Check
	var wg sync.WaitGroup
	wg.Go(func() { broker = checkBroker(ctx, bc, cfg) })
	wg.Go(func() { relayC = checkRelay(ctx, dialer, cfg) })
	wg.Go(func() {
		stun, nat = checkNAT(ctx, pf, cfg, poster)
	})
	wg.Wait()
	if nat.Status != CheckFail {
		for _, t := range []string{nattype.Restricted, nattype.Unrestricted} {
			if strings.HasPrefix(nat.Detail, t) {
				rep.NATType = t
			}
		}
	}
	rep.Checks = []Check{broker, relayC, stun, nat}
	return rep, nil
}

// selfTestPattern is the AcceptedRelayPattern of the self-test's poll. A
// broker matches a proxy only when the proxy's pattern covers every relay
// the broker may name, and refuses other polls at once with "incorrect
// relay pattern", before it holds them (Tor's broker and ours alike). No
// broker names a relay under .invalid (RFC 2606), so the self-test's poll
// proves the broker reachable and speaking the protocol, and cannot be
// given a real client's match.
const selfTestPattern = "^snowfall-self-test.invalid$"

func checkBroker(ctx context.Context, bc *brokerClient, cfg Config) Check {
	c := Check{Name: "broker"}
	pctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	resp, err := bc.pollPattern(pctx, newSid(), nattype.Unknown, 0, selfTestPattern)
	switch {
	case errors.Is(err, ErrRelayPatternRejected):
		c.Detail = fmt.Sprintf("%s answered a test poll (made so that no client can be matched to it)", cfg.BrokerURL)
	case err != nil:
		c.Status = CheckFail
		c.Detail = fmt.Sprintf("%s unreachable: %v", cfg.BrokerURL, err)
		c.Fix = fixForNetError(err, cfg.BrokerURL, "HTTPS")
	case resp.Status == messages.StatusMatch:
		c.Status = CheckWarn
		c.Detail = fmt.Sprintf("%s matched a client to a poll whose relay pattern names no relay; the client was not served", cfg.BrokerURL)
		c.Fix = "the broker does not check relay patterns; with such a broker the self-test can cost a client a try"
	default:
		c.Status = CheckWarn
		c.Detail = fmt.Sprintf("%s answered a poll (%s) but accepted a relay pattern that names no relay", cfg.BrokerURL, resp.Status)
		c.Fix = "the broker does not check relay patterns; make sure -broker is a Snowflake broker and -allowed-relay-hostname-pattern is the one its operators publish"
	}
	return c
}

func checkRelay(ctx context.Context, d RelayDialer, cfg Config) Check {
	c := Check{Name: "relay"}
	u, err := url.Parse(cfg.RelayURL)
	if err != nil {
		c.Status = CheckFail
		c.Detail = err.Error()
		return c
	}
	dctx, cancel := context.WithTimeout(ctx, relayDialTime)
	defer cancel()
	conn, err := d.DialRelay(dctx, u, nil)
	if err != nil {
		c.Status = CheckFail
		c.Detail = fmt.Sprintf("%s unreachable: %v", u.Redacted(), err)
		c.Fix = fixForNetError(err, cfg.RelayURL, "WebSocket")
		return c
	}
	// A connection that closes before sending anything is ignored by
	// bridges.
	conn.Close()
	c.Detail = fmt.Sprintf("%s accepted a WebSocket", u.Redacted())
	return c
}

func checkNAT(ctx context.Context, pf PeerFactory, cfg Config, poster Poster) (stun, nat Check) {
	stun = Check{Name: "STUN"}
	nat = Check{Name: "NAT"}
	if cfg.ForceNATType != "" {
		stun.Status = CheckWarn
		stun.Detail = "not checked (NAT type forced)"
		nat.Detail = cfg.ForceNATType + " (forced by configuration, not measured)"
		return stun, nat
	}
	res, err := ProbeNAT(ctx, pf, poster, cfg.NATProbeURL, max(cfg.GatherTimeout, 5*time.Second), cfg.KeepLocalAddresses)
	servers := strings.Join(cfg.STUNURLs, ",")
	switch {
	case !res.Offered:
		stun.Status = CheckFail
		stun.Detail = "WebRTC could not start: " + errString(err)
		stun.Fix = "check -ephemeral-ports-range and -outbound-address"
	case res.Reflexive:
		stun.Detail = servers + " gave this host's public address"
	default:
		stun.Status = CheckFail
		stun.Detail = "no public address from " + servers
		stun.Fix = "allow outbound UDP (to the STUN server and then to clients on any port); check -stun"
	}
	switch {
	case err != nil:
		nat.Status = CheckFail
		nat.Detail = "could not measure: " + err.Error()
		nat.Fix = fixForNetError(err, cfg.NATProbeURL, "HTTPS") + " (the proxy still works, reporting NAT type unknown)"
	case res.Type == nattype.Unrestricted:
		nat.Detail = "unrestricted: any client can reach this proxy"
	default:
		nat.Status = CheckWarn
		nat.Detail = "restricted: only clients with an unrestricted NAT can reach this proxy"
		nat.Fix = "forward a UDP port range on your router to this host and pass it as -ephemeral-ports-range, or enable UPnP/NAT-PMP, or run the proxy on a host with a public address"
	}
	return stun, nat
}

// fixForNetError suggests a remedy for a failed connection to target.
func fixForNetError(err error, target, what string) string {
	host := target
	if u, perr := url.Parse(target); perr == nil && u.Host != "" {
		host = u.Host
	}
	var dnsErr *net.DNSError
	var certErr *x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var hostErr x509.HostnameError
	switch {
	case errors.As(err, &dnsErr):
		return "cannot resolve " + host + ": check this host's DNS settings"
	case errors.As(err, &certErr):
		return "TLS certificate not trusted: install CA certificates (Debian: ca-certificates), or a middlebox intercepts TLS"
	case errors.As(err, &invalid):
		return "TLS certificate invalid: check this host's clock (timedatectl), then the network path"
	case errors.As(err, &hostErr):
		return "TLS certificate for another name: something intercepts connections to " + host
	case errors.Is(err, ErrRelayAddress):
		return "the address is not public; only allowed with -allow-proxying-to-private-addresses"
	case errors.Is(err, ErrBrokerStatus):
		return "the server answered with an error; check the URL (" + target + ")"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "no answer from " + host + ": outbound " + what + " may be blocked by a firewall, or a proxy is needed (HTTPS_PROXY)"
	case errors.Is(err, syscall.ECONNREFUSED):
		return host + " refused the connection: check the URL and port"
	}
	return "check that this host can reach " + host + " (" + what + ")"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
