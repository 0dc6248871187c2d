package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// DefaultORDialTimeout bounds the TCP connection to tor; the ExtORPort
// handshake after it has its own 5 s deadline inside goptlib.
const DefaultORDialTimeout = 10 * time.Second

// ORDialer opens one connection to tor per client stream: to the Extended
// ORPort with SAFE_COOKIE authentication, USERADDR and TRANSPORT when tor
// offered one, else to the plain ORPort (PROTOCOL.md §8.2).
type ORDialer struct {
	// Info is what pt.ServerSetup returned.
	Info *pt.ServerInfo
	// Transport is the name sent in TRANSPORT, normally "snowflake".
	Transport string
	// SrcAddr, if valid, is the range each connection's source address is
	// drawn from (the orport-srcaddr option).
	SrcAddr netip.Prefix
	// Timeout bounds the TCP connect; zero means DefaultORDialTimeout.
	Timeout time.Duration
}

// Dial connects to tor on behalf of a client whose address is clientAddr
// ("IP:port", or "" if unknown, in which case no USERADDR is sent).
func (d *ORDialer) Dial(ctx context.Context, clientAddr string) (net.Conn, error) {
	if d.Info == nil || (d.Info.OrAddr == nil && d.Info.ExtendedOrAddr == nil) {
		return nil, errors.New("server: no ORPort or Extended ORPort to dial")
	}
	dialer := &net.Dialer{Timeout: d.Timeout}
	if dialer.Timeout == 0 {
		dialer.Timeout = DefaultORDialTimeout
	}
	if d.SrcAddr.IsValid() {
		dialer.LocalAddr = &net.TCPAddr{IP: RandomAddr(d.SrcAddr).AsSlice()}
		dialer.Control = bindAddressNoPort
	}
	type result struct {
		c   net.Conn
		err error
	}
	// goptlib's dialer takes no context; run it aside so ctx can abandon
	// it. It ends by itself within the dial timeout plus 5 s.
	ch := make(chan result, 1)
	go func() {
		c, err := pt.DialOrWithDialer(dialer, d.Info, clientAddr, d.Transport)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("server: connecting to tor: %w", r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// CheckSrcAddrFamily reports an error if connections from src could not
// reach tor's (Extended) ORPort because the address families differ.
func CheckSrcAddrFamily(src netip.Prefix, info *pt.ServerInfo) error {
	if !src.IsValid() || info == nil {
		return nil
	}
	dst := info.OrAddr
	if info.ExtendedOrAddr != nil && info.AuthCookiePath != "" {
		dst = info.ExtendedOrAddr
	}
	if dst == nil {
		return nil
	}
	d, ok := netip.AddrFromSlice(dst.IP)
	if !ok {
		return nil
	}
	if d.Unmap().Is4() != src.Addr().Is4() {
		return fmt.Errorf("orport-srcaddr %s and the ORPort %s are of different address families", src, dst)
	}
	return nil
}

type closeWriter interface {
	CloseWrite() error
}

// Pipe copies between a and b in both directions until both directions have
// ended, then closes both. When one side reaches EOF its peer is half-closed
// (CloseWrite) so the other direction can finish; any other error, or ctx
// ending, closes both at once. It returns the first error other than EOF.
func Pipe(ctx context.Context, a, b net.Conn) error {
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	closeBoth := func() {
		a.Close()
		b.Close()
	}
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		closeBoth()
	}
	stop := context.AfterFunc(ctx, func() { fail(ctx.Err()) })
	copyHalf := func(dst, src net.Conn) {
		defer wg.Done()
		if _, err := io.Copy(dst, src); err != nil {
			fail(err)
			return
		}
		if cw, ok := dst.(closeWriter); ok && cw.CloseWrite() == nil {
			return
		}
		// Without a half-close the EOF can only be passed on by ending
		// both directions.
		closeBoth()
	}
	wg.Add(2)
	go copyHalf(a, b)
	go copyHalf(b, a)
	wg.Wait()
	stop()
	closeBoth()
	mu.Lock()
	defer mu.Unlock()
	if firstErr == nil || errors.Is(firstErr, net.ErrClosed) || errors.Is(firstErr, io.ErrClosedPipe) {
		return nil
	}
	return firstErr
}
