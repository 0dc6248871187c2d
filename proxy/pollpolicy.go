package proxy

import (
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// standalonePolicy is Tor's standalone proxy's polling: a fixed capacity,
// the measured NAT type, the broker's NextPoll hint within bounds, and
// exponential back-off while the broker or the relay fails.
type standalonePolicy struct {
	capacity int
	interval time.Duration

	mu            sync.Mutex
	next          time.Time
	failures      int // consecutive failed polls
	relayFailures int // consecutive failed relay dials
}

// NewStandalonePolicy returns the policy of the standalone proxy: serve up
// to capacity clients (0 is unlimited) and poll every interval unless the
// broker hints otherwise. New uses it when Config.PollPolicy is nil.
func NewStandalonePolicy(capacity int, interval time.Duration) PollPolicy {
	return &standalonePolicy{capacity: capacity, interval: clampDuration(interval, MinPollInterval, MaxPollInterval)}
}

func (s *standalonePolicy) Delay(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next.Sub(now)
}

func (s *standalonePolicy) Capacity(string) int { return s.capacity }

func (s *standalonePolicy) NAT(measured string) string { return measured }

func (s *standalonePolicy) Polled(now time.Time, r PollResult) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var delay time.Duration
	switch {
	case r.Err == nil:
		s.failures = 0
		delay = nextPollDelay(r.Reply.NextPoll, s.interval)
		if s.relayFailures > 0 {
			// A dead bridge must not burn clients.
			delay = max(delay, backoffDelay(s.relayFailures, s.interval, rand.Float64()))
		}
	case errors.Is(r.Err, ErrRelayPatternRejected):
		s.failures++
		delay = backoffDelay(s.failures, s.interval, rand.Float64())
		if r.Reply != nil {
			delay = max(delay, nextPollDelay(r.Reply.NextPoll, 0))
		}
	default:
		s.failures++
		delay = backoffDelay(s.failures, s.interval, rand.Float64())
	}
	s.next = now.Add(delay)
}

func (s *standalonePolicy) ClientConnected(string, bool) {}

func (s *standalonePolicy) RelayDialed(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.relayFailures++
	} else {
		s.relayFailures = 0
	}
}

// nextPollDelay is the wait before the next poll: the broker's NextPoll
// hint (milliseconds) kept within bounds, or the configured interval.
func nextPollDelay(nextPollMS int, fallback time.Duration) time.Duration {
	if nextPollMS <= 0 {
		return fallback
	}
	d := time.Duration(min(int64(nextPollMS), int64(MaxPollInterval/time.Millisecond))) * time.Millisecond
	return clampDuration(d, MinPollInterval, MaxPollInterval)
}

// backoffDelay is the wait after the n-th consecutive failed poll (n >= 1):
// base doubled per failure up to MaxPollInterval, then jittered down by up
// to half (r in [0,1)) so that proxies that lost the same broker do not
// return in step. It is never below MinPollInterval.
func backoffDelay(n int, base time.Duration, r float64) time.Duration {
	base = max(base, MinPollInterval)
	d := MaxPollInterval
	if n < 1 {
		n = 1
	}
	if n <= 16 {
		d = min(base<<(n-1), MaxPollInterval)
	}
	j := d/2 + time.Duration(r*float64(d/2))
	return max(j, MinPollInterval)
}
