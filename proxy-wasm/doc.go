// Command proxy-wasm is the Snowfall browser proxy: the shared proxy core
// (package proxy) compiled with GOOS=js GOARCH=wasm and driven by a web page.
// A volunteer who opens the page (or a site that embeds the badge) and
// switches it on lends the browser's WebRTC and WebSocket to Tor users, like
// Tor's Snowflake browser extension and badge.
//
// The Go side publishes a small API on globalThis.snowfall (see api_js.go);
// the page's JavaScript (web/snowfall.js) renders its state. What is
// browser-specific lives here, behind the core's platform edges:
//
//   - a PeerFactory on the browser's RTCPeerConnection (webrtc_js.go),
//   - a RelayDialer on the browser's WebSocket (websocket_js.go),
//   - a Poster on the browser's fetch (fetch_js.go), so that no net/http
//     is linked,
//   - a Store in localStorage (store_js.go),
//   - a PollPolicy that polls the way Tor's browser proxy does: adaptive
//     interval, capacity, learned NAT type (pollpolicy.go, schedule.go),
//   - an Observer that counts for the page (counting.go).
//
// The page's state is in state.go, switching on and off and the bridge
// check in lifecycle.go. The core runs unmodified: no pion, no net/http,
// nothing of it wrapped or intercepted.
//
// The files without a js build tag hold that logic in plain Go, so its unit
// tests run natively; built natively the command only explains how to build
// it for the browser.
//
// Build with "make wasm"; the result in proxy-wasm/dist/ is ready to serve
// statically. "go run ./proxy-wasm/serve" serves it locally. See
// doc/browser-proxy.md.
package main
