package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// relayBufSize is the copy buffer per direction: the largest data-channel
// message that browsers handle reliably (16 KiB), so that a read from the
// WebSocket fits one message.
const relayBufSize = 16 * 1024

// withClientIP returns u with the query parameter client_ip set to addr
// (replacing any value the broker may have put there), or removed when the
// client's address is unknown. The bridge credits the connection to it.
func withClientIP(u *url.URL, addr netip.Addr, ok bool) *url.URL {
	v := *u
	q := v.Query()
	q.Del("client_ip")
	if ok {
		q.Set("client_ip", addr.Unmap().WithZone("").String())
	}
	v.RawQuery = q.Encode()
	return &v
}

// relayStats counts one connection's bytes. The counters are updated as
// bytes flow so that a summary sees long connections too.
type relayStats struct {
	fromClient atomic.Int64 // data channel → relay
	toClient   atomic.Int64 // relay → data channel
}

// errInactive reports a relay that sent nothing for the inactivity timeout.
var errInactive = errors.New("relay inactive")

// relay copies bytes between a client's data channel and its relay until
// either side ends, ctx ends, or the relay is silent for inactivity. Both
// conns are closed on return. The limiter (may be nil) is shared by all
// connections. obs (may be nil) is told of the bytes as they flow.
func relay(ctx context.Context, client, bridge net.Conn, inactivity time.Duration, lim *rate.Limiter, st *relayStats, obs Observer) error {
	var (
		once   sync.Once
		reason error
	)
	stop := func(err error) {
		once.Do(func() {
			reason = err
			client.Close()
			bridge.Close()
		})
	}
	idle := time.AfterFunc(inactivity, func() { stop(errInactive) })
	defer idle.Stop()
	ctxDone := context.AfterFunc(ctx, func() { stop(ctx.Err()) })
	defer ctxDone()

	if obs == nil {
		obs = NopObserver{}
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		err := copyLimited(ctx, bridge, client, lim, &st.fromClient, nil, func(n int) { obs.BytesRelayed(0, n) })
		stop(err)
	}()
	go func() {
		defer wg.Done()
		// Only bytes from the relay count as activity, as in Tor's proxy:
		// a client that keeps sending into a dead relay is not served.
		err := copyLimited(ctx, client, bridge, lim, &st.toClient, func() { idle.Reset(inactivity) }, func(n int) { obs.BytesRelayed(n, 0) })
		stop(err)
	}()
	wg.Wait()
	if reason == nil || errors.Is(reason, io.EOF) || errors.Is(reason, net.ErrClosed) {
		return nil
	}
	return reason
}

// copyLimited copies src to dst through lim, counting into n and calling
// onRead after every successful read and onWritten after every write. It
// returns io.EOF for a clean end.
func copyLimited(ctx context.Context, dst io.Writer, src io.Reader, lim *rate.Limiter, n *atomic.Int64, onRead func(), onWritten func(int)) error {
	buf := make([]byte, relayBufSize)
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			if onRead != nil {
				onRead()
			}
			if lim != nil {
				if err := lim.WaitN(ctx, k); err != nil {
					return err
				}
			}
			if _, err := dst.Write(buf[:k]); err != nil {
				return err
			}
			n.Add(int64(k))
			onWritten(k)
		}
		if rerr != nil {
			return rerr
		}
	}
}

// newLimiter returns a token bucket for bytesPerSecond, or nil for no limit.
// The burst allows one full read so that WaitN never fails for size.
func newLimiter(bytesPerSecond int64) *rate.Limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	burst := max(int(min(bytesPerSecond, 1<<30)), relayBufSize)
	return rate.NewLimiter(rate.Limit(bytesPerSecond), burst)
}
