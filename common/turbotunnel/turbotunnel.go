// Package turbotunnel provides the session layer shared by client and bridge:
// the KCP and smux parameters and sessions, the stream prologue (token and
// ClientID), the bridge's carrier pumps and packet queues keyed by
// ClientID, and the client's multi-carrier packet conn. KCP runs on top of
// these net.PacketConn implementations so that one KCP/smux session can
// outlive the proxies that carry it. See PROTOCOL.md §6 and doc/session.md.
package turbotunnel

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
)

// Token is the 8-byte magic every carrier stream starts with.
var Token = [8]byte{0x12, 0x93, 0x60, 0x5d, 0x27, 0x81, 0x75, 0xf5}

// QueueSize is the capacity of each per-client packet queue; packets beyond
// it are dropped (KCP retransmits).
const QueueSize = 512

// MaxPacketSize is the largest packet queued or sent; senders keep KCP's MTU
// at or below it so every bridge version accepts it (PROTOCOL.md §6.2).
const MaxPacketSize = 1400

// MaxBatchSize bounds one carrier write. Packets that are already queued
// when one is sent go out in the same write (one data-channel or WebSocket
// message): per-message costs (SCTP chunking, syscalls, wakeups) dominate a
// Snowflake path, and message boundaries carry no meaning on the wire.
// 16 KiB keeps messages within what browsers' data channels accept.
const MaxBatchSize = 16 * 1024

// ErrClosed is returned (inside a *net.OpError) by operations on a packet
// conn closed with Close. It wraps net.ErrClosed, so errors.Is(err,
// net.ErrClosed) holds too.
var ErrClosed = fmt.Errorf("turbotunnel: use of closed packet conn: %w", net.ErrClosed)

// ClientID identifies one client session across all the proxies it uses. It
// is a net.Addr so that KCP can key sessions by it.
type ClientID [8]byte

// NewClientID returns a fresh random ClientID.
func NewClientID() ClientID {
	var id ClientID
	if _, err := rand.Read(id[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return id
}

// Network implements net.Addr.
func (id ClientID) Network() string { return "clientid" }

// String implements net.Addr: the ID in lowercase hex.
func (id ClientID) String() string { return hex.EncodeToString(id[:]) }
