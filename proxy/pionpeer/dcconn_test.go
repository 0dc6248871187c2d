package pionpeer

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// fakeDC is a data channel whose send buffer the test drains by hand.
type fakeDC struct {
	mu        sync.Mutex
	buffered  uint64
	threshold uint64
	sent      [][]byte
	onLow     func()
	onMessage func(webrtc.DataChannelMessage)
	onClose   func()
	closed    bool
	sendCalls chan int      // len of each Send
	queried   chan struct{} // if set, told of each BufferedAmount call
}

func newFakeDC() *fakeDC { return &fakeDC{sendCalls: make(chan int, 1000)} }

func (f *fakeDC) Send(p []byte) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return errConnClosed
	}
	f.buffered += uint64(len(p))
	f.sent = append(f.sent, append([]byte(nil), p...))
	f.mu.Unlock()
	f.sendCalls <- len(p)
	return nil
}
func (f *fakeDC) BufferedAmount() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.queried != nil {
		select {
		case f.queried <- struct{}{}:
		default:
		}
	}
	return f.buffered
}
func (f *fakeDC) SetBufferedAmountLowThreshold(t uint64) { f.threshold = t }
func (f *fakeDC) OnBufferedAmountLow(fn func())          { f.onLow = fn }
func (f *fakeDC) OnMessage(fn func(webrtc.DataChannelMessage)) {
	f.onMessage = fn
}
func (f *fakeDC) OnClose(fn func()) { f.onClose = fn }
func (f *fakeDC) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

// drain empties the send buffer down to n bytes and fires the low event
// as a WebRTC stack would when crossing the threshold.
func (f *fakeDC) drain(n uint64) {
	f.mu.Lock()
	f.buffered = n
	fire := n <= f.threshold
	f.mu.Unlock()
	if fire {
		f.onLow()
	}
}

func TestDCConnFlowControl(t *testing.T) {
	dc := newFakeDC()
	c := newDCConn(dc, nil)
	defer c.Close()
	if dc.threshold != lowWater {
		t.Fatalf("low threshold %d, want %d", dc.threshold, lowWater)
	}
	// Fill the buffer beyond the high-water mark in one Write: it returns
	// because the check happens before each message.
	big := bytes.Repeat([]byte{1}, highWater+maxMessage)
	if n, err := c.Write(big); err != nil || n != len(big) {
		t.Fatalf("first write: %d, %v", n, err)
	}
	for range (len(big) + maxMessage - 1) / maxMessage {
		if k := <-dc.sendCalls; k > maxMessage {
			t.Fatalf("message of %d bytes, max %d", k, maxMessage)
		}
	}
	// Now the next write must block until the buffer drains.
	done := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("after"))
		done <- err
	}()
	select {
	case <-dc.sendCalls:
		t.Fatal("write sent while the buffer was above the high-water mark")
	case <-time.After(100 * time.Millisecond):
	}
	// Draining to just above the low mark does not fire the event.
	dc.drain(lowWater + 1)
	select {
	case <-dc.sendCalls:
		t.Fatal("write sent before the low event")
	case <-time.After(50 * time.Millisecond):
	}
	dc.drain(lowWater / 2)
	select {
	case n := <-dc.sendCalls:
		if n != len("after") {
			t.Fatalf("sent %d bytes", n)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("write still blocked after the buffer drained")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDCConnCloseUnblocksWriter(t *testing.T) {
	dc := newFakeDC()
	c := newDCConn(dc, nil)
	dc.buffered = highWater + 1
	done := make(chan error, 1)
	dc.queried = make(chan struct{}, 1)
	go func() {
		_, err := c.Write([]byte("x"))
		done <- err
	}()
	// The writer has seen the full buffer: it must now be waiting, not
	// sending or returning.
	select {
	case <-dc.queried:
	case <-time.After(5 * time.Second):
		t.Fatal("the writer never looked at the send buffer")
	}
	select {
	case err := <-done:
		t.Fatalf("write over a full buffer returned before Close: %v", err)
	case n := <-dc.sendCalls:
		t.Fatalf("write over a full buffer sent %d bytes", n)
	default:
	}
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, errConnClosed) {
			t.Fatalf("blocked write ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock the writer")
	}
}

func TestDCConnReadStream(t *testing.T) {
	dc := newFakeDC()
	closedPeer := make(chan struct{})
	c := newDCConn(dc, func() { close(closedPeer) })
	msgs := []string{"hello ", "", "wor", "ld"}
	go func() {
		for _, m := range msgs {
			dc.onMessage(webrtc.DataChannelMessage{Data: []byte(m)})
		}
		dc.onClose()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "hello world" {
		t.Fatalf("read %q", got)
	}
	select {
	case <-closedPeer:
	case <-time.After(5 * time.Second):
		t.Fatal("peer not closed after the channel closed")
	}
}

func TestDCConnReadBackpressure(t *testing.T) {
	dc := newFakeDC()
	c := newDCConn(dc, nil)
	defer c.Close()
	msg := make([]byte, maxQueued/4)
	pushed := make(chan int, 10)
	go func() {
		for i := range 8 {
			dc.onMessage(webrtc.DataChannelMessage{Data: msg})
			pushed <- i
		}
	}()
	// Four messages fill the queue; the fifth push must wait for a read.
	for range 4 {
		<-pushed
	}
	select {
	case <-pushed:
		t.Fatal("queue grew beyond its bound")
	case <-time.After(100 * time.Millisecond):
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pushed:
	case <-time.After(5 * time.Second):
		t.Fatal("push still blocked after a read")
	}
}

func TestDCConnReadDeadline(t *testing.T) {
	dc := newFakeDC()
	c := newDCConn(dc, nil)
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, err := c.Read(make([]byte, 10))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	dc.onMessage(webrtc.DataChannelMessage{Data: []byte("ok")})
	b := make([]byte, 10)
	n, err := c.Read(b)
	if err != nil || string(b[:n]) != "ok" {
		t.Fatalf("read after clearing deadline: %q %v", b[:n], err)
	}
}
