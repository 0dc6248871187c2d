package shaper

import (
	"encoding/binary"
	"strconv"
	"strings"
)

// PacketSize is the length on the wire of the IP packet whose first bytes
// are head, with capLen the length the kernel reports for a truncated copy
// (0 if none). A rate limit charges this many bytes. The header comes from
// whoever sent the packet, so nothing in it is trusted beyond its own
// bounds: a header that does not parse falls back to what was captured.
func PacketSize(head []byte, capLen uint32) int {
	fallback := len(head)
	if capLen > uint32(fallback) {
		fallback = int(min(capLen, 1<<16+40))
	}
	if len(head) < 1 {
		return fallback
	}
	switch head[0] >> 4 {
	case 4:
		if len(head) >= 4 {
			if n := int(binary.BigEndian.Uint16(head[2:4])); n >= 20 {
				return n
			}
		}
	case 6:
		if len(head) >= 6 {
			return 40 + int(binary.BigEndian.Uint16(head[4:6]))
		}
	}
	return fallback
}

// KernelStats are the kernel's counters of one queue, from
// /proc/net/netfilter/nfnetlink_queue.
type KernelStats struct {
	// Waiting is how many packets the kernel holds for a verdict.
	Waiting int64
	// QueueDropped counts packets dropped because the queue was full,
	// UserDropped those the kernel could not pass to the socket.
	QueueDropped, UserDropped int64
}

// parseKernelStats reads one line: queue number, peer port id, packets
// waiting, copy mode, copy range, queue drops, user drops, last id, 1.
func parseKernelStats(line string) (KernelStats, uint16, bool) {
	f := strings.Fields(line)
	if len(f) < 7 {
		return KernelStats{}, 0, false
	}
	var v [7]int64
	for i := range v {
		n, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil || n < 0 {
			return KernelStats{}, 0, false
		}
		v[i] = n
	}
	if v[0] > 65535 {
		return KernelStats{}, 0, false
	}
	return KernelStats{Waiting: v[2], QueueDropped: v[5], UserDropped: v[6]}, uint16(v[0]), true
}
