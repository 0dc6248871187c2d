package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/proxy"
)

// pollPolicy is the controller as the core's proxy.PollPolicy: it answers
// from the schedule (schedule.go), Tor's browser polling, and keeps the
// page's broker and bridge errors. The core asks it before every poll and
// tells it every outcome, so nothing between the core and the broker is
// intercepted.
type pollPolicy controller

var _ proxy.PollPolicy = (*pollPolicy)(nil)

// Delay implements proxy.PollPolicy. While the bridge is unreachable no
// poll goes out: a client would only fail. The bridge check wakes the core
// when it succeeds (Proxy.PollNow).
func (p *pollPolicy) Delay(now time.Time) time.Duration {
	c := (*controller)(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sched == nil || !c.relayOK {
		return updateEvery
	}
	return c.sched.next.Sub(now)
}

// Capacity implements proxy.PollPolicy: one client, two when unrestricted,
// unless configured.
func (p *pollPolicy) Capacity(nat string) int {
	c := (*controller)(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sched == nil {
		return 1
	}
	return c.sched.limit(nat)
}

// NAT implements proxy.PollPolicy: a restriction learned from failed
// clients overrides the probe.
func (p *pollPolicy) NAT(measured string) string {
	c := (*controller)(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sched == nil {
		return measured
	}
	return c.sched.effectiveNAT(measured)
}

// Polled implements proxy.PollPolicy.
func (p *pollPolicy) Polled(now time.Time, r proxy.PollResult) {
	c := (*controller)(p)
	c.mu.Lock()
	if c.sched == nil {
		c.mu.Unlock()
		return
	}
	var hint time.Duration
	if r.Reply != nil {
		hint = time.Duration(r.Reply.NextPoll) * time.Millisecond
	}
	log := c.log
	switch {
	case r.Err == nil:
		c.sched.polled(now, hint)
		if c.err != nil && (c.err.Kind == ErrKindBroker || c.err.Kind == ErrKindPattern) {
			c.err = nil
		}
		if r.Reply.Status == messages.StatusMatch {
			c.matches.Add(1)
		}
		c.mu.Unlock()
	case errors.Is(r.Err, proxy.ErrRelayPatternRejected):
		c.sched.polled(now, hint)
		c.err = &StateError{Kind: ErrKindPattern, Message: "The broker only offers bridges outside the allowed relay pattern " +
			fmt.Sprintf("%q", c.cfg.RelayPattern), RetryAt: c.sched.next.UnixMilli()}
		c.mu.Unlock()
	default:
		wait := c.sched.pollFailed(now)
		c.err = &StateError{Kind: ErrKindBroker, Message: "The Snowflake broker cannot be reached: " + r.Err.Error(), RetryAt: now.Add(wait).UnixMilli()}
		c.mu.Unlock()
		log.Warn("broker poll failed", "err", r.Err, "retry_in", wait)
	}
	c.update()
}

// ClientConnected implements proxy.PollPolicy: clients that never connect
// slow polling down and may teach the proxy that its NAT is restricted.
func (p *pollPolicy) ClientConnected(clientNAT string, ok bool) {
	c := (*controller)(p)
	c.mu.Lock()
	if c.sched != nil {
		if ok {
			c.sched.connOK(c.sched.effectiveNAT(c.nat))
		} else {
			c.failedConns.Add(1)
			c.sched.connFailed(clientNAT)
		}
	}
	c.mu.Unlock()
	c.update()
}

// RelayDialed implements proxy.PollPolicy: a bridge that cannot be reached
// stops polling until a check succeeds.
func (p *pollPolicy) RelayDialed(err error) {
	if err != nil {
		(*controller)(p).relayUnreachable(err)
	}
}
