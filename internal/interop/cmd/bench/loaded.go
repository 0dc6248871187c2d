package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// probe measures round trips under load: sequential echoes of a few bytes
// on a stream of its own while a transfer fills the same path. On a
// rate-limited link the difference from the idle round trip is the
// queueing the transfer causes (bufferbloat).
type probe struct {
	conn     net.Conn
	src      *testbed.Stream
	msg, got []byte
}

// probeIOTimeout bounds one echo; a transfer that starves the probe for
// longer than this fails the phase.
const probeIOTimeout = time.Minute

// openProbe opens the probe's stream and completes one warm-up echo, so
// the stream is ready (Tor's client grants SOCKS before its rendezvous).
func openProbe(ctx context.Context, cr *chainRun, size int, seed uint64) (*probe, error) {
	conn, err := cr.dial(ctx)
	if err != nil {
		return nil, err
	}
	p := &probe{conn: conn, src: testbed.NewStream(seed), msg: make([]byte, size), got: make([]byte, size)}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	conn.SetWriteDeadline(time.Now().Add(probeIOTimeout))
	if _, err := io.WriteString(conn, "ECHO\n"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("probe: %w", err)
	}
	conn.SetReadDeadline(time.Now().Add(testbed.SetupTimeout))
	if _, err := p.once(); err != nil {
		conn.Close()
		return nil, fmt.Errorf("probe warm-up: %w", err)
	}
	return p, nil
}

// errProbeContent is a probe echo that came back different.
var errProbeContent = errors.New("probe: echo content differs")

func (p *probe) once() (time.Duration, error) {
	p.src.Read(p.msg)
	start := time.Now()
	if _, err := p.conn.Write(p.msg); err != nil {
		return 0, err
	}
	if _, err := io.ReadFull(p.conn, p.got); err != nil {
		return 0, err
	}
	rtt := time.Since(start)
	if !bytes.Equal(p.got, p.msg) {
		return rtt, errProbeContent
	}
	return rtt, nil
}

// probeInterval paces the probe like ping: echoes back to back would
// load the chain's CPU themselves and distort the transfer beside them.
const probeInterval = 100 * time.Millisecond

// run echoes, one at most every probeInterval, until ctx ends or max round
// trips are done, then closes the stream. An echo cut short by ctx is not
// counted; a wrong echo, or one that takes longer than probeIOTimeout, is
// an error.
func (p *probe) run(ctx context.Context, max int) ([]time.Duration, error) {
	defer p.conn.Close()
	stop := context.AfterFunc(ctx, func() { p.conn.SetDeadline(time.Now()) })
	defer stop()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	rtts := make([]time.Duration, 0, 256)
	for len(rtts) < max {
		p.conn.SetDeadline(time.Now().Add(probeIOTimeout))
		if ctx.Err() != nil {
			return rtts, nil
		}
		rtt, err := p.once()
		if errors.Is(err, errProbeContent) {
			return rtts, err
		}
		if err != nil {
			if ctx.Err() != nil {
				return rtts, nil
			}
			return rtts, fmt.Errorf("probe echo %d: %w", len(rtts), err)
		}
		rtts = append(rtts, rtt)
		select {
		case <-tick.C:
		case <-ctx.Done():
			return rtts, nil
		}
	}
	return rtts, nil
}

// close gives up a probe that never ran.
func (p *probe) close() { p.conn.Close() }
