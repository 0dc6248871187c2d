// Package shaper impairs one direction of a network link in user space:
// added delay, jitter, random loss and a rate limit with a bounded
// drop-tail queue, all seeded so that a run repeats.
//
// The kernels the testbed runs on have no sch_netem, so `tc netem` is not
// available. Instead, an iptables NFQUEUE rule on the receiving host's
// input hook hands each packet to this package (Queue), which decides its
// fate (Link) and gives the kernel its verdict when the packet is due
// (Pipe). Queueing on the input hook matters: a packet held on an output
// hook stays charged to the sender's socket buffer, so a delay would
// throttle the sender and a rate limit would block it instead of dropping.
//
// Link holds the decisions and nothing else, with the time passed in, so
// it is tested deterministically without root. testbed.Namespace.Shape
// wires a Queue into a namespace with its iptables rule.
package shaper

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// Config describes the impairment of one direction.
type Config struct {
	// Delay is added to every packet.
	Delay time.Duration
	// Jitter varies the delay uniformly within ±Jitter (never below zero).
	// Packets keep their order, as on a path whose jitter comes from
	// queueing: a packet is never released before the one ahead of it.
	Jitter time.Duration
	// Loss is the probability, from 0 to 1, that a packet is dropped
	// before it reaches the queue.
	Loss float64
	// Rate limits the link to this many bits per second; 0 means no limit.
	Rate int64
	// QueueBytes bounds the rate limiter's drop-tail queue; a packet that
	// would overflow it is dropped. Zero means 100 ms worth at Rate (at
	// least two full-size packets).
	QueueBytes int
	// Seed makes the random decisions (loss and jitter) repeatable: the
	// k-th packet of two runs with the same seed gets the same draws.
	Seed uint64
}

// Validate reports a configuration that cannot be applied.
func (c Config) Validate() error {
	switch {
	case c.Delay < 0 || c.Jitter < 0:
		return errors.New("shaper: negative delay or jitter")
	case c.Loss < 0 || c.Loss > 1 || c.Loss != c.Loss:
		return fmt.Errorf("shaper: loss %v is not a probability", c.Loss)
	case c.Rate < 0:
		return errors.New("shaper: negative rate")
	case c.QueueBytes < 0:
		return errors.New("shaper: negative queue size")
	case c.Rate == 0 && c.QueueBytes > 0:
		return errors.New("shaper: a queue size needs a rate")
	}
	return nil
}

// IsZero reports whether the configuration changes nothing.
func (c Config) IsZero() bool {
	return c.Delay == 0 && c.Jitter == 0 && c.Loss == 0 && c.Rate == 0
}

func (c Config) String() string {
	var parts []string
	if c.Delay > 0 || c.Jitter > 0 {
		d := "delay " + c.Delay.String()
		if c.Jitter > 0 {
			d += " ±" + c.Jitter.String()
		}
		parts = append(parts, d)
	}
	if c.Loss > 0 {
		parts = append(parts, fmt.Sprintf("loss %g %%", 100*c.Loss))
	}
	if c.Rate > 0 {
		parts = append(parts, fmt.Sprintf("rate %g Mbit/s (queue %d B)", float64(c.Rate)/1e6, c.queueBytes()))
	}
	if len(parts) == 0 {
		return "no impairment"
	}
	return strings.Join(parts, ", ")
}

// maxPacket is the largest packet the default queue must hold twice.
const maxPacket = 1500

func (c Config) queueBytes() int {
	if c.Rate == 0 {
		return 0
	}
	if c.QueueBytes > 0 {
		return c.QueueBytes
	}
	return max(int(c.Rate/8/10), 2*maxPacket)
}

// Fate is what a Link decided for one packet.
type Fate uint8

const (
	// Deliver: release the packet at the returned time.
	Deliver Fate = iota
	// Lost: dropped by random loss.
	Lost
	// Overflow: dropped because the rate limiter's queue was full.
	Overflow
)

func (f Fate) String() string {
	switch f {
	case Deliver:
		return "deliver"
	case Lost:
		return "lost"
	case Overflow:
		return "overflow"
	}
	return fmt.Sprintf("Fate(%d)", uint8(f))
}

// Stats count a link's decisions.
type Stats struct {
	Packets, Bytes int64
	// Delivered packets and bytes were (or will be) released.
	Delivered, DeliveredBytes int64
	Lost, Overflow            int64
	// MaxBacklog is the largest queue, in bytes, the rate limiter held.
	MaxBacklog int
}

// Link decides the fate of each packet of one direction. It is not safe
// for concurrent use; Pipe serialises calls.
type Link struct {
	cfg   Config
	rng   *rand.Rand
	queue int // bytes

	// busyUntil is when the rate limiter finishes sending what it holds.
	busyUntil time.Time
	// last is the release time of the previous delivered packet.
	last  time.Time
	stats Stats
}

// NewLink returns a link applying cfg.
func NewLink(cfg Config) (*Link, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Link{
		cfg:   cfg,
		rng:   rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5eed5eed5eed5eed)),
		queue: cfg.queueBytes(),
	}, nil
}

// Config returns the link's configuration.
func (l *Link) Config() Config { return l.cfg }

// Stats returns the counts so far.
func (l *Link) Stats() Stats { return l.stats }

// Admit decides the fate of a packet of size bytes arriving at now, and
// for a delivered packet the time to release it. Release times never go
// backwards.
func (l *Link) Admit(now time.Time, size int) (time.Time, Fate) {
	l.stats.Packets++
	l.stats.Bytes += int64(size)
	// Draw the same numbers for every packet, whatever happens to it, so
	// that a seed names the same loss pattern in runs that differ in
	// timing (and hence in rate-limiter drops).
	lossDraw := l.rng.Float64()
	jitterDraw := l.rng.Float64()
	if lossDraw < l.cfg.Loss {
		l.stats.Lost++
		return time.Time{}, Lost
	}

	depart := now
	if l.cfg.Rate > 0 {
		if l.busyUntil.Before(now) {
			l.busyUntil = now
		}
		backlog := int(l.busyUntil.Sub(now).Seconds() * float64(l.cfg.Rate) / 8)
		if backlog+size > l.queue {
			l.stats.Overflow++
			return time.Time{}, Overflow
		}
		l.stats.MaxBacklog = max(l.stats.MaxBacklog, backlog+size)
		l.busyUntil = l.busyUntil.Add(time.Duration(float64(size) * 8 * float64(time.Second) / float64(l.cfg.Rate)))
		depart = l.busyUntil
	}

	delay := l.cfg.Delay
	if l.cfg.Jitter > 0 {
		delay += time.Duration((2*jitterDraw - 1) * float64(l.cfg.Jitter))
		delay = max(delay, 0)
	}
	release := depart.Add(delay)
	if release.Before(l.last) {
		release = l.last
	}
	l.last = release
	l.stats.Delivered++
	l.stats.DeliveredBytes += int64(size)
	return release, Deliver
}
