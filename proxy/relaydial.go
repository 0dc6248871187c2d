//go:build !js

package proxy

import (
	"context"
	"net"
	"net/netip"
	"net/url"

	"github.com/snowfall-pt/snowfall/common/websocketconn"
)

// wsDialer is the native RelayDialer: common/websocketconn, with an HTTP
// client that vets every address it connects to and follows no redirect.
type wsDialer struct{}

func defaultDialer() RelayDialer { return wsDialer{} }

// DialRelay implements RelayDialer.
func (wsDialer) DialRelay(ctx context.Context, u *url.URL, checkAddr func(netip.Addr) error) (net.Conn, error) {
	return websocketconn.Dial(ctx, u.String(), relayHTTPClient(checkAddr))
}
