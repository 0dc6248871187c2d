// Package websocketconn adapts WebSocket connections to net.Conn, the form the
// proxy relay and the bridge use. It builds on github.com/coder/websocket so
// the same code compiles natively and for js/wasm (where the browser's
// WebSocket is used). Both binary and text messages are read as bytes.
package websocketconn

import (
	"context"
	"net"
	"net/http"
)

// Dial opens a WebSocket to url (ws:// or wss://) and returns it as a
// net.Conn whose writes are binary messages. httpClient may be nil; it is
// ignored on js/wasm.
func Dial(ctx context.Context, url string, httpClient *http.Client) (net.Conn, error) { panic("TODO") }

// Accept upgrades an HTTP request to a WebSocket (any Origin, no
// subprotocol, no compression) and returns it as a net.Conn. Not available on
// js/wasm.
func Accept(w http.ResponseWriter, r *http.Request) (net.Conn, error) { panic("TODO") }
