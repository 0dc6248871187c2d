// Package proxy is the core of a Snowfall (Snowflake-compatible) proxy: it
// long-polls a broker for client offers, answers them over WebRTC, and relays
// each client's data channel to a bridge over a WebSocket (PROTOCOL.md §3.5,
// §3.6, §5, §7, §9).
//
// The same core runs as the standalone snowfall-proxy, inside other Go
// programs (see Proxy and Config), and compiled to js/wasm in a browser. What
// differs between those platforms sits behind small interfaces: PeerFactory
// (WebRTC), RelayDialer (WebSocket dial), Store (persistent settings),
// PollPolicy (when to poll, with what capacity and NAT type) and Observer
// (connection and traffic events). The core links no WebRTC stack: the
// caller injects one, proxy/pionpeer (pion/webrtc) natively and the
// browser's RTCPeerConnection in proxy-wasm. The default RelayDialer is
// common/websocketconn, which uses the browser's WebSocket on js/wasm.
//
// Relay policy: a broker chooses the relay (bridge) address for each client.
// So that no broker can turn volunteers into an open proxy, every
// broker-supplied relay URL must pass RelayPolicy: wss only (unless allowed),
// a hostname matching the allowed pattern on a label boundary, and no
// private, loopback, link-local or otherwise non-public address, checked
// again on the address actually dialled so that DNS cannot redirect the
// connection after the check.
package proxy
