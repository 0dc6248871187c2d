package turbotunnel

import (
	"sync"
	"time"
)

// deadline is a resettable timer exposed as a channel that is closed while
// the deadline has passed.
type deadline struct {
	mu      sync.Mutex
	timer   *time.Timer
	gen     uint64 // counts sets, so a stale timer can tell it is stale
	expired chan struct{}
}

func makeDeadline() deadline { return deadline{expired: make(chan struct{})} }

// set arms the deadline for t; a zero t disarms it.
func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	// A passed deadline leaves a closed channel; replace it so that
	// waiters from now on block again.
	select {
	case <-d.expired:
		d.expired = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	dur := time.Until(t)
	if dur <= 0 {
		close(d.expired)
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(dur, func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		// A timer that fired while a later set was waiting for the lock
		// must not expire the newer deadline.
		if d.gen == gen {
			close(d.expired)
		}
	})
}

// wait returns a channel closed once the deadline passes.
func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}

// stop releases the timer.
func (d *deadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
}
