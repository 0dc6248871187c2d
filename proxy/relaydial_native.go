//go:build !js

package proxy

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// relayHTTPClient returns the client for one relay handshake. The address
// check runs in the dialer's Control hook, i.e. on the very address the
// socket connects to after name resolution, so a name that resolves to a
// public address when vetted and to a private one when dialled (DNS
// rebinding) is still refused. Proxies from the environment are not used:
// through a proxy the check would see only the proxy's address. Redirects
// are never followed: a relay's redirect would lead past the hostname
// pattern and the wss requirement, which vetted only the first URL (Tor's
// proxy does not follow them either).
func relayHTTPClient(checkAddr func(netip.Addr) error) *http.Client {
	d := &net.Dialer{Timeout: 15 * time.Second, KeepAlive: 30 * time.Second}
	if checkAddr != nil {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("relay address %q: %w", address, err)
			}
			return checkAddr(ap.Addr())
		}
	}
	return &http.Client{
		CheckRedirect: refuseRedirect,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           d.DialContext,
			TLSHandshakeTimeout:   15 * time.Second,
			ResponseHeaderTimeout: 20 * time.Second,
			DisableKeepAlives:     true,
		},
	}
}

// errRelayRedirect reports a relay that answered the WebSocket handshake
// with a redirect.
var errRelayRedirect = errors.New("relay answered with a redirect, which is not followed")

func refuseRedirect(req *http.Request, _ []*http.Request) error {
	return fmt.Errorf("%w (to %s)", errRelayRedirect, req.URL.Redacted())
}
