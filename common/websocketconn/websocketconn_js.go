//go:build js && wasm

package websocketconn

import (
	"errors"
	"net"
	"net/http"

	"github.com/coder/websocket"
)

// ErrNoAccept is returned by Accept on js/wasm, where there is no server.
var ErrNoAccept = errors.New("websocketconn: Accept is not available on js/wasm")

func dialOptions(*http.Client) *websocket.DialOptions {
	// The browser handles HTTP, proxies and compression itself.
	return &websocket.DialOptions{}
}

// Accept is not available on js/wasm; it returns ErrNoAccept.
func Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	return nil, ErrNoAccept
}
