// Package client is the library behind snowfall-client: it dials a reliable
// byte stream to a Snowflake bridge through a changing series of volunteer
// WebRTC proxies, and can be embedded by programs other than Tor.
//
// A Transport holds the configuration (broker, rendezvous method, ICE
// servers, bridge fingerprint) and learns the client's NAT type in the
// background. Each call to Transport.Dial starts an independent session: a
// fresh ClientID, a pool of up to Config.MaxPeers proxies collected through
// the broker, and a KCP connection with an smux stream on top, carried over
// whichever proxy is current (PROTOCOL.md §6). When a proxy fails, the
// session moves to the next one and KCP retransmits whatever was lost, so
// the stream returned by Dial sees no gap. Closing that stream ends the
// session and releases its proxies.
//
// Rendezvous methods (package rendezvous) and proxy connections (the
// PeerSource interface, WebRTC by default via package webrtcpeer) can be
// replaced, which lets tests and embedders run without a broker or WebRTC.
package client
