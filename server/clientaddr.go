package server

import (
	"net/netip"
	"sync"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// DefaultClientIDMapSize is how many ClientID→address records are kept, as in
// the reference bridge (PROTOCOL.md §6.6).
const DefaultClientIDMapSize = 98304

// ParseClientIP interprets the client_ip query parameter a proxy sends. It
// returns the zero Addr (not valid) for an empty, unparsable, zoned or
// unspecified address; IPv4-mapped IPv6 addresses become IPv4.
func ParseClientIP(s string) netip.Addr {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}
	}
	ip = ip.Unmap()
	if ip.IsUnspecified() {
		return netip.Addr{}
	}
	return ip
}

// userAddr formats ip the way ExtORPort USERADDR wants it: with a port,
// which is a dummy 1 because proxies do not report the client's port. It
// returns "" for the zero Addr.
func userAddr(ip netip.Addr) string {
	if !ip.IsValid() {
		return ""
	}
	return netip.AddrPortFrom(ip, 1).String()
}

// clientIDMap remembers the most recent client address reported for each
// ClientID. It holds a fixed number of records in a ring: recording evicts
// the oldest record, and a ClientID's address is the one from its newest
// record still in the ring.
type clientIDMap struct {
	mu   sync.Mutex
	ring []clientIDRecord
	next int // index of the slot to overwrite next
	full bool
	byID map[turbotunnel.ClientID]clientIDEntry
}

type clientIDRecord struct {
	id turbotunnel.ClientID
	ip netip.Addr
}

type clientIDEntry struct {
	ip   netip.Addr // from the newest record for this ID
	refs int        // records for this ID in the ring
}

func newClientIDMap(size int) *clientIDMap {
	if size <= 0 {
		size = 1
	}
	return &clientIDMap{
		ring: make([]clientIDRecord, size),
		byID: make(map[turbotunnel.ClientID]clientIDEntry),
	}
}

// Set records ip for id, evicting the oldest record if the ring is full.
func (m *clientIDMap) Set(id turbotunnel.ClientID, ip netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.full {
		old := m.ring[m.next]
		e := m.byID[old.id]
		e.refs--
		if e.refs <= 0 {
			delete(m.byID, old.id)
		} else {
			m.byID[old.id] = e
		}
	}
	m.ring[m.next] = clientIDRecord{id: id, ip: ip}
	m.next++
	if m.next == len(m.ring) {
		m.next = 0
		m.full = true
	}
	e := m.byID[id]
	e.ip = ip
	e.refs++
	m.byID[id] = e
}

// Get returns the address recorded for id, or the zero Addr.
func (m *clientIDMap) Get(id turbotunnel.ClientID) netip.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byID[id].ip
}

// Len returns the number of distinct ClientIDs with a record.
func (m *clientIDMap) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byID)
}
