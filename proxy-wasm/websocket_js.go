//go:build js

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"syscall/js"
)

// jsDialer is a proxy.RelayDialer on the browser's WebSocket. The browser
// resolves names itself, so the address check is not used; the core vets
// IP literals before dialling.
type jsDialer struct{}

// wsTransport is a msgTransport on a WebSocket.
type wsTransport struct {
	ws   js.Value
	h    *handlers
	once sync.Once
}

func (t *wsTransport) send(b []byte) error {
	if t.ws.Get("readyState").Int() != 1 { // OPEN
		return errClosed
	}
	return jsCall(func() { t.ws.Call("send", jsBytes(b)) })
}

func (t *wsTransport) buffered() int { return t.ws.Get("bufferedAmount").Int() }

func (t *wsTransport) close() {
	t.once.Do(func() {
		t.h.clear()
		jsCall(func() { t.ws.Call("close", 1000) })
	})
}

// DialRelay implements proxy.RelayDialer.
func (jsDialer) DialRelay(ctx context.Context, u *url.URL, _ func(netip.Addr) error) (net.Conn, error) {
	var ws js.Value
	if err := jsCall(func() { ws = js.Global().Get("WebSocket").New(u.String()) }); err != nil {
		return nil, fmt.Errorf("websocket: %w", err)
	}
	ws.Set("binaryType", "arraybuffer")
	h := new(handlers)
	t := &wsTransport{ws: ws, h: h}
	conn := newMsgConn(t, browserAddr("websocket"))
	opened := make(chan struct{}, 1)
	failed := make(chan error, 1)
	isOpen := false
	h.on(ws, "onopen", func(js.Value, []js.Value) {
		isOpen = true
		signal(opened)
	})
	h.on(ws, "onmessage", func(_ js.Value, args []js.Value) {
		conn.push(bytesOf(args[0].Get("data")))
	})
	h.on(ws, "onclose", func(_ js.Value, args []js.Value) {
		if isOpen {
			conn.pushEOF()
			return
		}
		// The browser does not say why a WebSocket failed to open, only
		// that it did (code 1006).
		code := args[0].Get("code").Int()
		select {
		case failed <- fmt.Errorf("websocket closed before it opened (code %d)", code):
		default:
		}
	})
	select {
	case <-opened:
		return conn, nil
	case err := <-failed:
		conn.Close()
		return nil, err
	case <-ctx.Done():
		conn.Close()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, fmt.Errorf("websocket: timed out opening: %w", ctx.Err())
		}
		return nil, ctx.Err()
	}
}
