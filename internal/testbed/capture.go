package testbed

// A packet capture for handshake tests: an AF_PACKET socket opened inside a
// namespace records the IPv4 UDP and TCP packets of every interface there,
// so that a test can read what an observer on the path would see without
// tcpdump.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Captured IP protocols.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// DefaultCaptureLimit bounds the packets one Capture keeps.
const DefaultCaptureLimit = 20000

// Packet is one captured IPv4 UDP datagram or TCP segment.
type Packet struct {
	Time     time.Time
	Proto    uint8 // ProtoUDP or ProtoTCP
	Src, Dst netip.AddrPort
	// Seq and Flags are the TCP sequence number and flags (zero for UDP).
	Seq   uint32
	Flags uint8
	// Payload is the transport payload.
	Payload []byte
}

// TCP flags.
const (
	TCPFin = 0x01
	TCPSyn = 0x02
)

// Capture records packets in one namespace until Stop.
type Capture struct {
	fd    int
	limit int
	done  chan struct{}
	lo    int // loopback's ifindex: its packets show twice, keep one copy
	stop  atomic.Bool

	mu      sync.Mutex
	packets []Packet
	dropped int
	err     error
}

// StartCapture opens an AF_PACKET socket in ns (nil: the caller's
// namespace) and records up to limit packets (<= 0: DefaultCaptureLimit).
// It needs CAP_NET_RAW.
func StartCapture(ns *Namespace, limit int) (*Capture, error) {
	if limit <= 0 {
		limit = DefaultCaptureLimit
	}
	c := &Capture{fd: -1, limit: limit, done: make(chan struct{})}
	err := ns.Do(func() error {
		// SOCK_DGRAM strips the link header: every packet starts at
		// IP. Only ETH_P_ALL sockets see outgoing packets too.
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
		if err != nil {
			return fmt.Errorf("testbed: packet socket: %w", err)
		}
		c.fd = fd
		c.lo = loopbackIndex()
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A receive timeout lets the reader notice Stop.
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(c.fd)
		return nil, fmt.Errorf("testbed: packet socket timeout: %w", err)
	}
	// Large enough for a burst of full-size handshakes while the reader
	// is descheduled on a loaded machine.
	_ = unix.SetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	go c.read()
	return c, nil
}

func loopbackIndex() int {
	ifs, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	defer unix.Close(ifs)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return -1
	}
	if err := unix.IoctlIfreq(ifs, unix.SIOCGIFINDEX, ifr); err != nil {
		return -1
	}
	return int(ifr.Uint32())
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func (c *Capture) read() {
	defer close(c.done)
	buf := make([]byte, 1<<16)
	for {
		n, from, err := unix.Recvfrom(c.fd, buf, 0)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				if c.stop.Load() {
					return
				}
				continue
			}
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		ll, ok := from.(*unix.SockaddrLinklayer)
		if !ok || ll.Protocol != htons(unix.ETH_P_IP) || (ll.Ifindex == c.lo && ll.Pkttype == unix.PACKET_OUTGOING) {
			continue
		}
		p, ok := decodeIPv4(buf[:n])
		if !ok {
			continue
		}
		p.Time = time.Now()
		c.mu.Lock()
		if len(c.packets) < c.limit {
			c.packets = append(c.packets, p)
		} else {
			c.dropped++
		}
		c.mu.Unlock()
	}
}

// Stop ends the capture and returns an error if reading failed or packets
// beyond the limit were dropped. Packets stays readable.
func (c *Capture) Stop() error {
	if c.stop.Swap(true) {
		return nil
	}
	<-c.done
	unix.Close(c.fd)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return fmt.Errorf("testbed: capture: %w", c.err)
	}
	if c.dropped > 0 {
		return fmt.Errorf("testbed: capture: %d packets beyond the limit of %d dropped", c.dropped, c.limit)
	}
	return nil
}

// Packets returns a copy of the packets seen so far, in arrival order.
func (c *Capture) Packets() []Packet {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Packet(nil), c.packets...)
}

// WaitFor polls the capture until match holds for its packets or ctx ends.
func (c *Capture) WaitFor(ctx context.Context, match func([]Packet) bool) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if match(c.Packets()) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testbed: capture: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// decodeIPv4 decodes an unfragmented IPv4 UDP or TCP packet.
func decodeIPv4(b []byte) (Packet, bool) {
	var p Packet
	if len(b) < 20 || b[0]>>4 != 4 {
		return p, false
	}
	ihl := int(b[0]&0x0f) * 4
	total := int(binary.BigEndian.Uint16(b[2:4]))
	if ihl < 20 || total < ihl || total > len(b) {
		return p, false
	}
	if binary.BigEndian.Uint16(b[6:8])&0x3fff != 0 { // MF or offset: a fragment
		return p, false
	}
	src, _ := netip.AddrFromSlice(b[12:16])
	dst, _ := netip.AddrFromSlice(b[16:20])
	l4 := b[ihl:total]
	p.Proto = b[9]
	switch p.Proto {
	case ProtoUDP:
		if len(l4) < 8 {
			return p, false
		}
		p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:2]))
		p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:4]))
		p.Payload = append([]byte(nil), l4[8:]...)
	case ProtoTCP:
		if len(l4) < 20 {
			return p, false
		}
		off := int(l4[12]>>4) * 4
		if off < 20 || off > len(l4) {
			return p, false
		}
		p.Src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(l4[0:2]))
		p.Dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:4]))
		p.Seq = binary.BigEndian.Uint32(l4[4:8])
		p.Flags = l4[13]
		p.Payload = append([]byte(nil), l4[off:]...)
	default:
		return p, false
	}
	return p, true
}

// UDPFlow is the datagrams between two endpoints, in capture order.
type UDPFlow struct {
	A, B netip.AddrPort // A sent the first datagram
	// Datagrams are the payloads; FromA tells each one's direction.
	Datagrams [][]byte
	FromA     []bool
}

// UDPFlows groups the UDP datagrams of packets by endpoint pair, in the
// order each flow was first seen.
func UDPFlows(packets []Packet) []*UDPFlow {
	type key struct{ a, b netip.AddrPort }
	var flows []*UDPFlow
	index := map[key]*UDPFlow{}
	for _, p := range packets {
		if p.Proto != ProtoUDP {
			continue
		}
		f := index[key{p.Src, p.Dst}]
		fromA := true
		if f == nil {
			if f = index[key{p.Dst, p.Src}]; f != nil {
				fromA = false
			}
		}
		if f == nil {
			f = &UDPFlow{A: p.Src, B: p.Dst}
			flows = append(flows, f)
			index[key{p.Src, p.Dst}] = f
		}
		f.Datagrams = append(f.Datagrams, p.Payload)
		f.FromA = append(f.FromA, fromA)
	}
	return flows
}

// TCPStream is one direction of a TCP connection, reassembled.
type TCPStream struct {
	Src, Dst netip.AddrPort
	// Data is the payload in sequence order, retransmissions removed, up
	// to the first gap.
	Data []byte
}

// TCPStreams reassembles each direction of each TCP connection in packets
// that starts with a SYN, in the order the SYNs were seen.
func TCPStreams(packets []Packet) []*TCPStream {
	type key struct{ s, d netip.AddrPort }
	type seg struct {
		seq  uint32
		data []byte
	}
	var order []key
	isn := map[key]uint32{}
	segs := map[key][]seg{}
	for _, p := range packets {
		if p.Proto != ProtoTCP {
			continue
		}
		k := key{p.Src, p.Dst}
		if p.Flags&TCPSyn != 0 {
			if _, ok := isn[k]; !ok {
				isn[k] = p.Seq + 1
				order = append(order, k)
			}
			continue
		}
		if _, ok := isn[k]; ok && len(p.Payload) > 0 {
			segs[k] = append(segs[k], seg{p.Seq, p.Payload})
		}
	}
	var out []*TCPStream
	for _, k := range order {
		ss := segs[k]
		start := isn[k]
		sort.SliceStable(ss, func(i, j int) bool { return ss[i].seq-start < ss[j].seq-start })
		var data []byte
		next := uint32(0)
		for _, s := range ss {
			rel := s.seq - start
			if rel > next {
				break // a gap: stop at what is known
			}
			skip := next - rel
			if int(skip) >= len(s.data) {
				continue
			}
			data = append(data, s.data[skip:]...)
			next += uint32(len(s.data)) - skip
		}
		out = append(out, &TCPStream{Src: k.s, Dst: k.d, Data: data})
	}
	return out
}
