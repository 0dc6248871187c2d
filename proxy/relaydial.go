package proxy

import (
	"context"
	"net"
	"net/netip"
	"net/url"

	"github.com/snowfall-pt/snowfall/common/websocketconn"
)

// wsDialer is the default RelayDialer: common/websocketconn, with an HTTP
// client (native platforms) that vets every address it connects to.
type wsDialer struct{}

// DialRelay implements RelayDialer.
func (wsDialer) DialRelay(ctx context.Context, u *url.URL, checkAddr func(netip.Addr) error) (net.Conn, error) {
	return websocketconn.Dial(ctx, u.String(), relayHTTPClient(checkAddr))
}
