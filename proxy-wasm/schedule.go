package main

import (
	"time"

	"github.com/snowfall-pt/snowfall/common/nattype"
)

// maxBrokerRetry bounds the wait after failed broker polls (unless the poll
// interval itself is longer).
const maxBrokerRetry = 10 * time.Minute

// natFailureThreshold is how many clients with a restricted NAT must fail to
// connect in a row before the proxy takes itself to be restricted, as Tor's
// browser proxy does.
const natFailureThreshold = 3

// schedule is the browser proxy's polling policy, after Tor's browser proxy:
//
//   - poll every interval (default 60 s);
//   - a client whose data channel never opens adds the adjustment (100 s)
//     to the interval, up to the slowest (6 h): a proxy that cannot reach
//     clients stops bothering the broker;
//   - a client that connects takes the adjustment off again, down to the
//     default, or straight to the fast interval when the NAT is
//     unrestricted;
//   - three failures in a row with restricted clients mean this proxy's NAT
//     is restricted too, whatever the probe said;
//   - capacity is one client, two when the NAT is unrestricted.
//
// Failed broker polls back off exponentially from the interval, so that a
// page left open during an outage stays quiet; Retry polls at once.
//
// A broker's NextPoll hint is honoured only when it asks for less polling
// than Tor's default minute: brokers can slow browsers down, not speed them
// up.
//
// schedule is not safe for concurrent use; the controller locks around it.
type schedule struct {
	def, fast, slowest, adjust time.Duration
	capacity                   int // configured; 0 is automatic

	interval       time.Duration
	next           time.Time // earliest next broker poll
	brokerFailures int
	natFailures    int
	learned        string // NAT type learned from failures, or ""
}

func newSchedule(c PageConfig) *schedule {
	return &schedule{
		def:      time.Duration(c.PollInterval),
		fast:     time.Duration(c.FastPollInterval),
		slowest:  time.Duration(c.SlowestPoll),
		adjust:   time.Duration(c.PollAdjustment),
		capacity: c.Capacity,
		interval: time.Duration(c.PollInterval),
	}
}

// due reports whether a broker poll may go out at now.
func (s *schedule) due(now time.Time) bool { return !now.Before(s.next) }

// limit is the number of clients served at once for a proxy whose NAT type
// is nat.
func (s *schedule) limit(nat string) int {
	if s.capacity > 0 {
		return s.capacity
	}
	if nat == nattype.Unrestricted {
		return 2
	}
	return 1
}

// polled records a poll the broker answered; hint is its NextPoll.
func (s *schedule) polled(now time.Time, hint time.Duration) {
	s.brokerFailures = 0
	wait := s.interval
	if hint > DefaultPollInterval {
		wait = max(wait, min(hint, s.slowest))
	}
	s.next = now.Add(wait)
}

// pollFailed records a poll that did not reach the broker or got no valid
// reply, and returns the wait before the next one.
func (s *schedule) pollFailed(now time.Time) time.Duration {
	s.brokerFailures++
	wait := s.interval
	for i := 1; i < s.brokerFailures && wait < maxBrokerRetry; i++ {
		wait *= 2
	}
	wait = min(wait, max(s.interval, maxBrokerRetry))
	s.next = now.Add(wait)
	return wait
}

// connFailed records a client whose data channel never opened.
func (s *schedule) connFailed(clientNAT string) {
	s.interval = min(s.interval+s.adjust, s.slowest)
	if clientNAT == nattype.Restricted {
		s.natFailures++
		if s.natFailures >= natFailureThreshold {
			s.learned = nattype.Restricted
			s.natFailures = 0
		}
	}
}

// connOK records a client that connected; nat is the proxy's NAT type.
func (s *schedule) connOK(nat string) {
	s.natFailures = 0
	s.interval = max(s.interval-s.adjust, s.def)
	if nat == nattype.Unrestricted {
		s.interval = s.fast
	}
}

// natMeasured forgets a learned NAT type when the probe measures again.
func (s *schedule) natMeasured() { s.learned = ""; s.natFailures = 0 }

// effectiveNAT is the type to report: a learned restriction overrides the
// probe.
func (s *schedule) effectiveNAT(probed string) string {
	if s.learned != "" {
		return s.learned
	}
	return probed
}

// retry makes the next poll due at once and forgets broker failures.
func (s *schedule) retry(now time.Time) {
	s.brokerFailures = 0
	s.next = now
}
