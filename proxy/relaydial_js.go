//go:build js

package proxy

// defaultDialer is nil in a browser: the page brings its own WebSocket
// dialer, so that the browser build links no net/http.
func defaultDialer() RelayDialer { return nil }
