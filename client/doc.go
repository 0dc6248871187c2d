// Package client is the library behind snowfall-client: it dials a reliable
// byte stream to a Snowflake bridge through a changing series of volunteer
// WebRTC proxies, and can be embedded by programs other than Tor.
//
// A Transport holds the configuration (broker, rendezvous method, ICE
// servers, bridge fingerprint) and learns the client's NAT type in the
// background. Its Dials share one session while any of its streams is open:
// one ClientID, a pool of up to Config.MaxPeers proxies collected through
// the broker, all attached to the session at once, and a KCP connection
// with one smux stream per Dial (PROTOCOL.md §6; doc/session.md). When a
// proxy fails, sending moves to another within about a second and KCP
// retransmits whatever was lost, so the streams see a pause, not a gap.
// Closing a session's last stream ends it and releases its proxies.
// TransportSet gives connections with the same settings the same
// Transport, as the PT does for tor's SOCKS connections.
//
// Rendezvous methods (package rendezvous) and proxy connections (the
// PeerSource interface, WebRTC by default via package webrtcpeer) can be
// replaced, which lets tests and embedders run without a broker or WebRTC.
package client
