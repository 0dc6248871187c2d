// Package server implements the bridge side of Snowfall, wire-compatible with
// Tor's snowflake-server (PROTOCOL.md §6 and §8).
//
// A Server accepts WebSocket connections from proxies on every HTTP path.
// Each connection starts with the turbotunnel prologue (token and ClientID)
// followed by encapsulated KCP packets. Packets are sorted by ClientID into
// one of several KCP engines, whose per-client queues outlive any single
// proxy, so that a client's KCP/smux session survives a change of proxy.
// Every smux stream a client opens is handed out by Server.Accept as a Conn;
// a Forwarder (run by server/torpt) connects each to Tor with ORDialer and
// Pipe. The session layer (prologue, carrier pumps, KCP and smux
// parameters, the fair intake into the KCP engines) is common/turbotunnel
// and its carrier sub-package; this package applies its limits to it.
//
// Bad input (a wrong token, a truncated prologue, an oversized or malformed
// chunk, a peer that stops reading) closes only the connection it came on.
// Everything an unauthenticated peer can make the bridge hold is bounded by a
// Config field: WebSocket slots (with eviction of idle and pre-prologue ones),
// deadlines, the KCP window, sessions in total and per source, streams per
// session, and each WebSocket's share of its engine's intake.
package server
