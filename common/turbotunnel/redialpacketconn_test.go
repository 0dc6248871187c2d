package turbotunnel

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
)

// stubAddr is a fixed net.Addr for tests.
type stubAddr string

func (a stubAddr) Network() string { return "stub" }
func (a stubAddr) String() string  { return string(a) }

// testDialer lets a test decide what each dial returns and see when one
// starts.
type testDialer struct {
	calls chan struct{}
	conns chan net.Conn
	errs  chan error
}

func newTestDialer() *testDialer {
	return &testDialer{
		calls: make(chan struct{}, 16),
		conns: make(chan net.Conn),
		errs:  make(chan error),
	}
}

func (d *testDialer) dial(ctx context.Context) (net.Conn, error) {
	d.calls <- struct{}{}
	select {
	case c := <-d.conns:
		return c, nil
	case err := <-d.errs:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// waitCall waits for the conn to start dialing.
func (d *testDialer) waitCall(t *testing.T) {
	t.Helper()
	select {
	case <-d.calls:
	case <-time.After(10 * time.Second):
		t.Fatal("no dial")
	}
}

// carrier gives the conn a new net.Pipe carrier and returns the far end,
// whose packets the returned channel delivers.
func (d *testDialer) carrier(t *testing.T) (far net.Conn, packets <-chan []byte) {
	t.Helper()
	d.waitCall(t)
	near, far := net.Pipe()
	d.conns <- near
	ch := make(chan []byte, 2*QueueSize)
	go func() {
		defer close(ch)
		br := bufio.NewReader(far)
		for {
			buf := make([]byte, 4096)
			n, err := encapsulation.ReadData(br, buf)
			if err != nil {
				return
			}
			ch <- buf[:n]
		}
	}()
	return far, ch
}

func recvPacket(t *testing.T, ch <-chan []byte) []byte {
	t.Helper()
	select {
	case p, ok := <-ch:
		if !ok {
			t.Fatal("carrier closed")
		}
		return p
	case <-time.After(10 * time.Second):
		t.Fatal("no packet on the carrier")
	}
	return nil
}

func readPacket(t *testing.T, c net.PacketConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer c.SetReadDeadline(time.Time{})
	buf := make([]byte, MaxPacketSize)
	n, addr, err := c.ReadFrom(buf)
	if err != nil {
		t.Fatalf("ReadFrom: %v", err)
	}
	if addr != stubAddr("remote") {
		t.Fatalf("ReadFrom address %v", addr)
	}
	return string(buf[:n])
}

func waitDone(t *testing.T, c *RedialPacketConn) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("dial loop still running")
	}
}

func TestRedialPacketConnSurvivesCarrierSwap(t *testing.T) {
	d := newTestDialer()
	c := NewRedialPacketConn(stubAddr("local"), stubAddr("remote"), d.dial)
	defer c.Close()
	if c.LocalAddr() != stubAddr("local") {
		t.Fatalf("LocalAddr = %v", c.LocalAddr())
	}

	far1, up1 := d.carrier(t)
	p := []byte("up-0")
	c.WriteTo(p, nil)
	copy(p, "XXXX") // KCP reuses its buffer
	if got := recvPacket(t, up1); string(got) != "up-0" {
		t.Fatalf("carrier 1 got %q", got)
	}
	encapsulation.WritePadding(far1, 3)
	encapsulation.WriteData(far1, []byte("down-0"))
	if got := readPacket(t, c); got != "down-0" {
		t.Fatalf("ReadFrom = %q", got)
	}

	// The carrier dies; packets written until the next one is up wait.
	far1.Close()
	d.waitCall(t)
	for i := 1; i <= 20; i++ {
		if _, err := c.WriteTo(fmt.Appendf(nil, "up-%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	near2, far2 := net.Pipe()
	d.conns <- near2
	br := bufio.NewReader(far2)
	buf := make([]byte, 100)
	for i := 1; i <= 20; i++ {
		n, err := encapsulation.ReadData(br, buf)
		if err != nil || string(buf[:n]) != fmt.Sprintf("up-%d", i) {
			t.Fatalf("carrier 2 packet %d = %q, %v", i, buf[:n], err)
		}
	}
	encapsulation.WriteData(far2, []byte("down-1"))
	if got := readPacket(t, c); got != "down-1" {
		t.Fatalf("ReadFrom = %q", got)
	}

	// Close closes the current carrier.
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := far2.Read(buf); err == nil {
		t.Fatal("carrier still open after Close")
	}
	waitDone(t, c)
}

func TestRedialPacketConnWriteFailure(t *testing.T) {
	d := newTestDialer()
	c := NewRedialPacketConn(stubAddr("local"), stubAddr("remote"), d.dial)
	defer c.Close()
	d.waitCall(t)
	// A carrier that is dead on arrival is replaced; the packet written
	// meanwhile goes out on one carrier or the other, or is lost.
	near, far := net.Pipe()
	far.Close()
	d.conns <- near
	c.WriteTo([]byte("lost"), nil)
	_, up := d.carrier(t)
	c.WriteTo([]byte("kept"), nil)
	got := recvPacket(t, up)
	if string(got) == "lost" {
		got = recvPacket(t, up)
	}
	if string(got) != "kept" {
		t.Fatalf("got %q", got)
	}
}

func TestRedialPacketConnReceive(t *testing.T) {
	d := newTestDialer()
	c := NewRedialPacketConn(stubAddr("local"), stubAddr("remote"), d.dial)
	defer c.Close()
	far, _ := d.carrier(t)
	// An over-long chunk is skipped, and the stream stays in sync; a
	// 2048-byte packet (what lenient peers may send) still arrives.
	encapsulation.WriteData(far, bytes.Repeat([]byte("L"), bufSize+1))
	encapsulation.WriteData(far, bytes.Repeat([]byte("M"), bufSize))
	encapsulation.WriteData(far, []byte("ok"))
	if got := readPacket(t, c); got != string(bytes.Repeat([]byte("M"), MaxPacketSize)) {
		t.Fatalf("ReadFrom into MaxPacketSize bytes got %d bytes, want a truncated 2048-byte packet", len(got))
	}
	if got := readPacket(t, c); got != "ok" {
		t.Fatalf("ReadFrom = %q", got)
	}
	// The receive queue drops what does not fit.
	for i := range QueueSize + 20 {
		encapsulation.WriteData(far, []byte{byte(i)})
	}
	for deadline := time.Now().Add(10 * time.Second); len(c.recvQueue) < QueueSize; {
		if time.Now().After(deadline) {
			t.Fatalf("receive queue holds %d packets", len(c.recvQueue))
		}
		time.Sleep(time.Millisecond)
	}
	if len(c.recvQueue) != QueueSize {
		t.Fatalf("receive queue holds %d packets, want %d", len(c.recvQueue), QueueSize)
	}
}

func TestRedialPacketConnSendQueueFull(t *testing.T) {
	d := newTestDialer()
	c := NewRedialPacketConn(stubAddr("local"), stubAddr("remote"), d.dial)
	defer c.Close()
	d.waitCall(t) // no carrier: everything stays queued
	for i := range QueueSize + 20 {
		if n, err := c.WriteTo([]byte{byte(i)}, nil); n != 1 || err != nil {
			t.Fatalf("WriteTo = %d, %v", n, err)
		}
	}
	if n, err := c.WriteTo(make([]byte, MaxPacketSize+1), nil); n != MaxPacketSize+1 || err != nil {
		t.Fatalf("oversized WriteTo = %d, %v", n, err)
	}
	if len(c.sendQueue) != QueueSize {
		t.Fatalf("send queue holds %d, want %d", len(c.sendQueue), QueueSize)
	}
}

func TestRedialPacketConnDialError(t *testing.T) {
	d := newTestDialer()
	c := NewRedialPacketConn(stubAddr("local"), stubAddr("remote"), d.dial)
	defer c.Close()
	_, up := d.carrier(t)
	errc := make(chan error)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		errc <- err
	}()
	c.WriteTo([]byte("x"), nil)
	recvPacket(t, up)
	boom := errors.New("no more proxies")
	c.mu.Lock()
	c.carrier.Close()
	c.mu.Unlock()
	d.waitCall(t)
	d.errs <- boom
	for _, err := range []error{<-errc, second(c.ReadFrom(nil)), second2(c.WriteTo([]byte("x"), nil))} {
		var opErr *net.OpError
		if !errors.Is(err, boom) || !errors.As(err, &opErr) {
			t.Fatalf("error = %v, want a *net.OpError wrapping the dial error", err)
		}
	}
	waitDone(t, c)
}

func TestRedialPacketConnNilCarrier(t *testing.T) {
	c := NewRedialPacketConn(stubAddr("local"), stubAddr("remote"), func(context.Context) (net.Conn, error) { return nil, nil })
	defer c.Close()
	waitDone(t, c)
	if _, _, err := c.ReadFrom(nil); !errors.Is(err, ErrNilCarrier) {
		t.Fatalf("ReadFrom = %v, want ErrNilCarrier", err)
	}
}

func TestRedialPacketConnCloseCancelsDial(t *testing.T) {
	before := runtime.NumGoroutine()
	d := newTestDialer()
	c := NewRedialPacketConn(stubAddr("local"), stubAddr("remote"), d.dial)
	d.waitCall(t)
	errc := make(chan error)
	go func() {
		_, _, err := c.ReadFrom(make([]byte, 10))
		errc <- err
	}()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	for _, err := range []error{<-errc, second(c.ReadFrom(nil)), second2(c.WriteTo(nil, nil)), c.Close()} {
		if !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
			t.Fatalf("error after Close = %v, want ErrClosed", err)
		}
	}
	if after := waitGoroutines(before); after > before {
		t.Fatalf("%d goroutines after Close, %d before", after, before)
	}
}

func TestRedialPacketConnReadDeadline(t *testing.T) {
	d := newTestDialer()
	c := NewRedialPacketConn(stubAddr("local"), stubAddr("remote"), d.dial)
	defer c.Close()
	far, _ := d.carrier(t)
	buf := make([]byte, 10)

	isTimeout := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
	}
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, _, err := c.ReadFrom(buf); !isTimeout(err) {
		t.Fatalf("ReadFrom past the deadline = %v, want a timeout", err)
	}
	// A deadline set while ReadFrom waits applies to it.
	c.SetReadDeadline(time.Time{})
	errc := make(chan error)
	go func() {
		_, _, err := c.ReadFrom(buf)
		errc <- err
	}()
	c.SetDeadline(time.Now().Add(20 * time.Millisecond))
	if err := <-errc; !isTimeout(err) {
		t.Fatalf("waiting ReadFrom = %v, want a timeout", err)
	}
	// Moving a deadline later keeps it from firing early; clearing it
	// lets reads through again.
	c.SetReadDeadline(time.Now().Add(time.Millisecond))
	c.SetReadDeadline(time.Now().Add(time.Hour))
	time.Sleep(20 * time.Millisecond)
	encapsulation.WriteData(far, []byte("late"))
	n, _, err := c.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "late" {
		t.Fatalf("ReadFrom after extending the deadline = %q, %v", buf[:n], err)
	}
	c.SetReadDeadline(time.Time{})
	if err := c.SetWriteDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestRedialPacketConnConcurrent(t *testing.T) {
	// Writers, readers, deadline changes and carrier failures at once;
	// the race detector and the absence of deadlock are the assertions,
	// plus integrity of what arrives.
	d := newTestDialer()
	c := NewRedialPacketConn(stubAddr("local"), stubAddr("remote"), d.dial)
	id := ClientID{'r'}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-d.calls:
			}
			near, far := net.Pipe()
			select {
			case d.conns <- near:
			case <-stop:
				return
			}
			go func() {
				// Echo every packet back, then die after a while.
				br := bufio.NewReader(far)
				buf := make([]byte, bufSize)
				for range 50 + i%50 {
					n, err := encapsulation.ReadData(br, buf)
					if err != nil {
						break
					}
					if _, err := encapsulation.WriteData(far, buf[:n]); err != nil {
						break
					}
				}
				far.Close()
			}()
		}
	}()
	errs := make(chan error, 4)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, bufSize)
		for {
			c.SetReadDeadline(time.Now().Add(time.Second))
			n, _, err := c.ReadFrom(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if err != nil {
				return
			}
			if _, err := checkTagged(buf[:n], id); err != nil {
				errs <- err
				return
			}
		}
	}()
	var p []byte
	for seq := range uint32(3000) {
		p = tagged(p, id, seq)
		c.WriteTo(p, nil)
		clear(p)
		if seq%100 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	close(stop)
	c.Close()
	<-readDone
	<-done
	waitDone(t, c)
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
