//go:build !(js && wasm)

package websocketconn

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"

	"github.com/coder/websocket"
)

func dialOptions(httpClient *http.Client) *websocket.DialOptions {
	// CompressionMode's zero value disables compression; no Subprotocols.
	return &websocket.DialOptions{HTTPClient: httpClient}
}

// Accept upgrades an HTTP request to a WebSocket (any Origin, no
// subprotocol, no compression) and returns it as a net.Conn. Not available on
// js/wasm. On failure Accept has already written an HTTP error response.
//
// RemoteAddr is the TCP peer from r.RemoteAddr (a *net.TCPAddr), LocalAddr
// the server address the request arrived on.
func Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Skips only the Origin check: browser-based proxies send their
		// page's Origin, and the reference bridge accepts any.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return nil, fmt.Errorf("websocketconn: %w", err)
	}
	var remote net.Addr = addr(r.RemoteAddr)
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		remote = net.TCPAddrFromAddrPort(ap)
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		local = addr("websocket/local")
	}
	return newConn(ws, local, remote), nil
}
