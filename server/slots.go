package server

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// carrierSlots hands out the WebSocket slots, in total and per source.
// When a limit is reached it makes room by evicting a connection that is
// no use to anybody: the oldest one still without a prologue, or else the
// one that has carried no packet for longest, if that is at least minIdle.
// A slot is held from the upgrade request to the end of the WebSocket.
type carrierSlots struct {
	max, perSource int // perSource < 0: unlimited
	minIdle        time.Duration

	mu    sync.Mutex
	all   map[*slot]struct{}
	bySrc map[netip.Prefix]int
}

// slot is one WebSocket's slot and what eviction needs to know of it.
type slot struct {
	src    netip.Prefix
	opened int64        // UnixNano of the request
	data   atomic.Int64 // UnixNano of the last data chunk; 0 before the prologue

	// Guarded by carrierSlots.mu.
	conn    net.Conn
	evicted bool
	gone    bool
}

func newCarrierSlots(max, perSource int, minIdle time.Duration) *carrierSlots {
	return &carrierSlots{
		max:       max,
		perSource: perSource,
		minIdle:   minIdle,
		all:       make(map[*slot]struct{}),
		bySrc:     make(map[netip.Prefix]int),
	}
}

// Results of acquire.
const (
	slotOK = iota
	slotEvicted
	slotFull
	slotSourceFull
)

// acquire takes a slot for a connection from src, evicting another if it
// must. It returns the slot (nil if refused) and what happened.
func (s *carrierSlots) acquire(src netip.Prefix, now time.Time) (*slot, int) {
	s.mu.Lock()
	result := slotOK
	var victim *slot
	switch {
	case src.IsValid() && s.perSource >= 0 && s.bySrc[src] >= s.perSource:
		victim = s.victimLocked(now, src, true)
		if victim == nil {
			s.mu.Unlock()
			return nil, slotSourceFull
		}
	case len(s.all) >= s.max:
		victim = s.victimLocked(now, src, false)
		if victim == nil {
			s.mu.Unlock()
			return nil, slotFull
		}
	}
	var closeConn net.Conn
	if victim != nil {
		result = slotEvicted
		victim.evicted = true
		closeConn = victim.conn
		s.removeLocked(victim)
	}
	c := &slot{src: src, opened: now.UnixNano()}
	s.all[c] = struct{}{}
	if src.IsValid() {
		s.bySrc[src]++
	}
	s.mu.Unlock()
	if closeConn != nil {
		closeConn.Close()
	}
	return c, result
}

// victimLocked picks the connection to evict (restricted to src if
// sameSource), or nil if every one is in use.
func (s *carrierSlots) victimLocked(now time.Time, src netip.Prefix, sameSource bool) *slot {
	var pre, idle *slot
	idleSince := now.Add(-s.minIdle).UnixNano()
	for c := range s.all {
		if sameSource && c.src != src {
			continue
		}
		switch d := c.data.Load(); {
		case d == 0:
			if pre == nil || c.opened < pre.opened {
				pre = c
			}
		case d <= idleSince:
			if idle == nil || d < idle.data.Load() {
				idle = c
			}
		}
	}
	if pre != nil {
		return pre
	}
	return idle
}

func (s *carrierSlots) removeLocked(c *slot) {
	if c.gone {
		return
	}
	c.gone = true
	delete(s.all, c)
	if c.src.IsValid() {
		if s.bySrc[c.src]--; s.bySrc[c.src] <= 0 {
			delete(s.bySrc, c.src)
		}
	}
}

// attach records the connection of slot c, so that eviction can close it.
// It reports false (and the caller should close conn) if c was evicted
// meanwhile.
func (s *carrierSlots) attach(c *slot, conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.evicted {
		return false
	}
	c.conn = conn
	return true
}

// release gives slot c back, unless eviction took it already.
func (s *carrierSlots) release(c *slot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.conn = nil
	s.removeLocked(c)
}

// len returns the number of slots taken.
func (s *carrierSlots) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all)
}

// touch records that c carried a data chunk now.
func (c *slot) touch(now time.Time) { c.data.Store(now.UnixNano()) }
