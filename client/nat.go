package client

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/snowfall-pt/snowfall/common/nattype"
)

// NATSource says what NAT type to report to the broker.
type NATSource interface {
	NATType() string
}

// StaticNAT is a NATSource that always reports the same type.
type StaticNAT string

// NATType implements NATSource.
func (s StaticNAT) NATType() string { return string(s) }

// NAT discovery timing. One lost STUN exchange must not leave a client
// "unknown" for a whole session: the broker then matches it only with
// unrestricted proxies, which may be scarce.
const (
	// natRetryBase and natRetryMax bound the back-off between tests
	// while the type is still unknown (see backoff).
	natRetryBase = 5 * time.Second
	natRetryMax  = 5 * time.Minute
	// noProxiesRecheck consecutive "no proxies" replies make the client
	// test its NAT again before the next rendezvous: a type that is wrong
	// or stale may be why no proxy fits.
	noProxiesRecheck = 3
	// natRecheckTimeout bounds how long the next rendezvous waits for
	// that test.
	natRecheckTimeout = 30 * time.Second
)

// discoveredNAT is learned in the background by run; it reports unknown
// until a test succeeds. A failed test never replaces a known type.
type discoveredNAT struct {
	v                   atomic.Value // string
	test                func(ctx context.Context) (string, error)
	log                 *slog.Logger
	retryBase, retryMax time.Duration

	kick chan struct{} // capacity 1: asks run for a test now
	mu   sync.Mutex
	done chan struct{} // closed when the test in progress (or the next) ends
}

// newDiscoveredNAT returns a source whose tests call test, typically an
// RFC 5780 mapping test against the configured STUN servers.
func newDiscoveredNAT(test func(ctx context.Context) (string, error), log *slog.Logger) *discoveredNAT {
	return &discoveredNAT{
		test:      test,
		log:       log,
		retryBase: natRetryBase,
		retryMax:  natRetryMax,
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
}

func (d *discoveredNAT) NATType() string {
	if s, ok := d.v.Load().(string); ok {
		return s
	}
	return nattype.Unknown
}

// run tests the NAT until ctx ends: at once, then with back-off while the
// type is unknown, and whenever recheck asks.
func (d *discoveredNAT) run(ctx context.Context) {
	failures := 0
	for {
		nat, err := d.test(ctx)
		if ctx.Err() != nil {
			return
		}
		var retry *time.Timer
		switch prev := d.NATType(); {
		case err == nil && nat != nattype.Unknown:
			failures = 0
			d.v.Store(nat)
			d.log.Info("NAT type", "nat", nat)
		case prev != nattype.Unknown:
			d.log.Warn("NAT type re-check failed; keeping the previous type", "nat", prev, "err", err)
		default:
			wait := d.retryBackoff(failures)
			failures++
			d.log.Warn("NAT type discovery failed; will retry", "failures", failures,
				"retry_in", wait.Round(time.Millisecond), "err", err)
			retry = time.NewTimer(wait)
		}
		d.finished()
		if !d.wait(ctx, retry) {
			return
		}
	}
}

// wait returns when retry (which may be nil: no retry) fires or a recheck
// asks for a test, false if ctx ends first.
func (d *discoveredNAT) wait(ctx context.Context, retry *time.Timer) bool {
	var fire <-chan time.Time
	if retry != nil {
		defer retry.Stop()
		fire = retry.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-fire:
	case <-d.kick:
	}
	return true
}

func (d *discoveredNAT) retryBackoff(failures int) time.Duration {
	return backoff(failures, d.retryBase, d.retryMax)
}

// finished wakes the rechecks waiting for the test that just ended. A kick
// that arrived during that test is answered by it, so it is dropped.
func (d *discoveredNAT) finished() {
	d.mu.Lock()
	defer d.mu.Unlock()
	close(d.done)
	d.done = make(chan struct{})
	select {
	case <-d.kick:
	default:
	}
}

// recheck asks for a test now and waits until one ends or ctx is done.
func (d *discoveredNAT) recheck(ctx context.Context) {
	d.mu.Lock()
	done := d.done
	select {
	case d.kick <- struct{}{}:
	default:
	}
	d.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// recheckAfterNoProxies is recheck with a log line saying why.
func (d *discoveredNAT) recheckAfterNoProxies(ctx context.Context) {
	d.log.Info("re-checking the NAT type after repeated \"no proxies\" replies",
		"no_proxies", noProxiesRecheck, "nat", d.NATType())
	d.recheck(ctx)
}
