package shaper

import (
	"context"
	"sync"
	"time"
)

// VerdictFunc tells the packet source to let packet id through (accept)
// or to drop it.
type VerdictFunc func(id uint32, accept bool) error

// Pipe holds packets for the time their Link gives them and then passes
// them on. Packet is called by the packet source as packets arrive; Run
// releases them. Because a Link never moves release times backwards, the
// held packets form a FIFO and a single timer serves them all.
type Pipe struct {
	verdict VerdictFunc

	mu      sync.Mutex
	link    *Link
	q       []held
	head    int
	wake    chan struct{}
	errs    int64
	lastErr error
}

type held struct {
	id uint32
	at time.Time
}

// NewPipe returns a pipe applying link and reporting fates to verdict.
func NewPipe(link *Link, verdict VerdictFunc) *Pipe {
	return &Pipe{link: link, verdict: verdict, wake: make(chan struct{}, 1)}
}

// Packet decides the fate of packet id of size bytes: a dropped packet gets
// its verdict at once, a delivered one is held until it is due.
func (p *Pipe) Packet(id uint32, size int) {
	p.mu.Lock()
	at, fate := p.link.Admit(time.Now(), size)
	if fate != Deliver {
		p.mu.Unlock()
		p.give(id, false)
		return
	}
	wasEmpty := p.head == len(p.q)
	p.q = append(p.q, held{id, at})
	p.mu.Unlock()
	// Later packets are never due before the head, so only a new head
	// needs the releaser's attention.
	if wasEmpty {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

func (p *Pipe) give(id uint32, accept bool) {
	if err := p.verdict(id, accept); err != nil {
		p.mu.Lock()
		p.errs++
		p.lastErr = err
		p.mu.Unlock()
	}
}

// Stats returns the link's counts.
func (p *Pipe) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.link.Stats()
}

// Held is the number of packets waiting for their release.
func (p *Pipe) Held() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q) - p.head
}

// VerdictErrors counts verdicts the source refused, with the last error.
func (p *Pipe) VerdictErrors() (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errs, p.lastErr
}

// Run releases packets as they fall due until ctx ends, then releases
// every packet still held at once (stopping the shaper must not lose
// them) and returns.
func (p *Pipe) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var due []uint32
	for {
		due = due[:0]
		p.mu.Lock()
		now := time.Now()
		flush := ctx.Err() != nil
		for p.head < len(p.q) && (flush || !p.q[p.head].at.After(now)) {
			due = append(due, p.q[p.head].id)
			p.head++
		}
		wait := time.Duration(-1)
		if p.head < len(p.q) {
			wait = p.q[p.head].at.Sub(now)
		}
		p.compact()
		p.mu.Unlock()

		for _, id := range due {
			p.give(id, true)
		}
		if flush {
			return
		}
		if wait < 0 {
			select {
			case <-p.wake:
			case <-ctx.Done():
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-p.wake:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
		}
	}
}

// compact reuses the queue's storage once its front half is spent, so a
// steady flow allocates nothing. Called with mu held.
func (p *Pipe) compact() {
	switch {
	case p.head == len(p.q):
		p.q, p.head = p.q[:0], 0
	case p.head > 1024 && p.head > len(p.q)/2:
		n := copy(p.q, p.q[p.head:])
		p.q, p.head = p.q[:n], 0
	}
}
