package client

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// PeerSource connects to new proxies. The default source rendezvouses
// through the broker and opens a WebRTC data channel; tests and embedders
// may supply another.
type PeerSource interface {
	// Connect returns an open connection to a new proxy, or an error.
	Connect(ctx context.Context) (net.Conn, error)
}

// doner is implemented by connections that signal their own death (such as
// webrtcpeer.Conn), so dead ones leave the pool at once.
type doner interface {
	Done() <-chan struct{}
}

// proxyAddresser is implemented by connections that know their proxy's
// address (webrtcpeer.Conn: the remote end of the selected ICE pair).
type proxyAddresser interface {
	ProxyAddr() netip.Addr
}

// proxyAddr returns conn's proxy address, or the zero Addr if unknown.
func proxyAddr(conn net.Conn) netip.Addr {
	if a, ok := conn.(proxyAddresser); ok {
		return a.ProxyAddr()
	}
	return netip.Addr{}
}

// A spare is there to survive its proxy's death, which a second channel
// through the same proxy does not: the broker may match the spare's
// rendezvous with the proxy already serving. Such a channel is closed and
// another collected, after a back-off from dupBase (other proxies poll
// meanwhile), at most dupRetries times in a row; then it is kept, since a
// second channel through one proxy still beats none.
const (
	dupRetries = 3
	dupBase    = time.Second
)

// errPoolClosed is returned by take after the pool has been closed.
var errPoolClosed = errors.New("proxy pool closed")

// Back-off of the collect loop after consecutive failures: from retryBase,
// doubling up to retryMax, jittered (see backoff).
const (
	retryBase = 2 * time.Second
	retryMax  = ReconnectTimeout
)

// pool keeps up to max proxies alive for one session. A single collector
// goroutine connects new proxies whenever fewer than max are alive and
// hands each to deliver (the session attaches it as a carrier, so spares
// are in the session from the start, not waiting idle).
type pool struct {
	src     PeerSource
	max     int
	log     *slog.Logger
	stats   *trafficStats
	deliver func(*peerConn)

	mu        sync.Mutex
	alive     int                // delivered and not yet closed
	addrs     map[netip.Addr]int // proxy addresses of the live ones, counted
	delivered int                // ever delivered
	lastErr   error
	fatal     error // a configuration error: stop collecting
	changed   chan struct{}
	wake      chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newPool(src PeerSource, max int, stats *trafficStats, log *slog.Logger, deliver func(*peerConn)) *pool {
	if max < 1 {
		max = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pool{
		src:     src,
		max:     max,
		log:     log,
		stats:   stats,
		deliver: deliver,
		addrs:   make(map[netip.Addr]int),
		changed: make(chan struct{}),
		wake:    make(chan struct{}, 1),
		ctx:     ctx,
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	go p.collect()
	return p
}

// collect connects proxies while fewer than max are alive. After a failure
// it backs off (1-2 s, 2-4 s, 4-8 s, then 5-10 s) and tries again, unless
// the error is fatal (a configuration error); when at capacity it sleeps
// until a proxy dies or ReconnectTimeout passes. A channel through the
// proxy of a live one is closed and another collected (see dupRetries).
func (p *pool) collect() {
	defer close(p.done)
	failures := 0
	dups := 0 // duplicates closed in a row
	for {
		p.mu.Lock()
		need := p.alive < p.max && p.fatal == nil
		p.mu.Unlock()
		var wait time.Duration
		if need {
			conn, err := p.src.Connect(p.ctx)
			if p.ctx.Err() != nil {
				if conn != nil {
					conn.Close()
				}
				return
			}
			if err != nil {
				p.fail(err)
				if fatal(err) {
					p.log.Error("cannot collect proxies; giving up: the configuration must change",
						"reason", failureReason(err), "err", err)
					return
				}
				wait = backoff(failures, retryBase, retryMax)
				failures++
				p.log.Warn("cannot collect a proxy; will retry", "reason", failureReason(err),
					"failures", failures, "retry_in", wait.Round(time.Millisecond), "err", err)
			} else if p.duplicate(conn) && dups < dupRetries {
				conn.Close()
				wait = backoff(dups, dupBase, retryMax)
				dups++
				p.log.Info("new proxy channel goes through a proxy already in use; collecting another",
					"attempt", dups, "retry_in", wait.Round(time.Millisecond))
			} else {
				if dups == dupRetries && p.duplicate(conn) {
					p.log.Warn("keeping a second channel through a proxy already in use: no other proxy came",
						"attempts", dups+1)
				}
				failures, dups = 0, 0
				p.add(conn)
				continue
			}
		} else {
			wait = ReconnectTimeout
		}
		// A proxy dying cuts a capacity wait short, but not a back-off.
		t := time.NewTimer(wait)
		for waiting := true; waiting; {
			select {
			case <-p.ctx.Done():
				t.Stop()
				return
			case <-p.wake:
				waiting = failures > 0
			case <-t.C:
				waiting = false
			}
		}
		t.Stop()
	}
}

// fail records a collection error.
func (p *pool) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err
	if fatal(err) {
		p.fatal = err
	}
	p.notifyLocked()
}

// duplicate reports whether conn goes through the same proxy as a live
// one of the pool.
func (p *pool) duplicate(conn net.Conn) bool {
	a := proxyAddr(conn)
	if !a.IsValid() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.addrs[a] > 0
}

// add hands a new proxy to the session.
func (p *pool) add(conn net.Conn) {
	pc := &peerConn{Conn: conn, pool: p, stats: p.stats, addr: proxyAddr(conn)}
	p.mu.Lock()
	p.alive++
	if pc.addr.IsValid() {
		p.addrs[pc.addr]++
	}
	p.delivered++
	p.notifyLocked()
	p.mu.Unlock()
	if d, ok := conn.(doner); ok {
		go func() {
			select {
			case <-d.Done():
				pc.Close()
			case <-p.ctx.Done():
			}
		}()
	}
	p.deliver(pc)
}

// notifyLocked wakes everyone waiting in take.
func (p *pool) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// waitFirst returns once a proxy has been delivered, or with the fatal
// error that stopped collection, or when ctx is done.
func (p *pool) waitFirst(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.delivered > 0 {
			p.mu.Unlock()
			return nil
		}
		if p.fatal != nil {
			err := p.fatal
			p.mu.Unlock()
			return err
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-p.ctx.Done():
			return errPoolClosed
		}
	}
}

// err returns the most recent collection error.
func (p *pool) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// gone counts a dead proxy and wakes the collector.
func (p *pool) gone(pc *peerConn) {
	p.mu.Lock()
	p.alive--
	if pc.addr.IsValid() {
		if p.addrs[pc.addr]--; p.addrs[pc.addr] <= 0 {
			delete(p.addrs, pc.addr)
		}
	}
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// close stops collecting. Delivered proxies belong to the session, which
// closes them.
func (p *pool) close() {
	p.cancel()
	<-p.done
}

// peerConn is a pooled proxy connection. Closing it, or any read or write
// error, removes it from the pool.
type peerConn struct {
	net.Conn
	pool  *pool
	stats *trafficStats
	addr  netip.Addr // the proxy's, if known
	once  sync.Once
}

func (c *peerConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.stats.in(n)
	if err != nil {
		c.Close()
	}
	return n, err
}

func (c *peerConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.stats.out(n)
	if err != nil {
		c.Close()
	}
	return n, err
}

func (c *peerConn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.Conn.Close()
		c.pool.gone(c)
	})
	return err
}
