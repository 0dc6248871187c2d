package main

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// fakeTransport records sent messages and reports a settable backlog.
type fakeTransport struct {
	mu      sync.Mutex
	sent    [][]byte
	backlog int
	closed  int
}

func (f *fakeTransport) send(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, append([]byte(nil), b...))
	return nil
}

func (f *fakeTransport) buffered() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.backlog
}

func (f *fakeTransport) close() {
	f.mu.Lock()
	f.closed++
	f.mu.Unlock()
}

func (f *fakeTransport) setBacklog(n int) {
	f.mu.Lock()
	f.backlog = n
	f.mu.Unlock()
}

func TestMsgConnOrderAndEOF(t *testing.T) {
	c := newMsgConn(&fakeTransport{}, browserAddr("test"))
	var want bytes.Buffer
	for i := range 100 {
		msg := bytes.Repeat([]byte{byte(i)}, 1+i*37%500)
		want.Write(msg)
		c.push(msg)
	}
	c.push(nil) // ignored
	c.pushEOF()
	c.push([]byte("after EOF")) // dropped
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("read %d bytes, want %d in order", len(got), want.Len())
	}
}

func TestMsgConnWriteChunks(t *testing.T) {
	ft := &fakeTransport{}
	c := newMsgConn(ft, browserAddr("test"))
	data := bytes.Repeat([]byte("x"), 3*maxMessage+5)
	n, err := c.Write(data)
	if err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if len(ft.sent) != 4 {
		t.Fatalf("%d messages, want 4", len(ft.sent))
	}
	for _, m := range ft.sent {
		if len(m) > maxMessage {
			t.Errorf("message of %d bytes, over %d", len(m), maxMessage)
		}
	}
}

func TestMsgConnWriteWaitsForBuffer(t *testing.T) {
	ft := &fakeTransport{backlog: sendHighWater + 1}
	c := newMsgConn(ft, browserAddr("test"))
	done := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte("hello"))
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("Write returned %v with a full send buffer", err)
	case <-time.After(50 * time.Millisecond):
	}
	ft.setBacklog(sendLowWater)
	c.bufferLow()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// A writer blocked on a full buffer is released by Close.
	ft.setBacklog(sendHighWater + 1)
	go func() {
		_, err := c.Write([]byte("again"))
		done <- err
	}()
	c.Close()
	if err := <-done; !errors.Is(err, errClosed) {
		t.Errorf("blocked Write after Close: %v", err)
	}
}

func TestMsgConnOverflowCloses(t *testing.T) {
	ft := &fakeTransport{}
	c := newMsgConn(ft, browserAddr("test"))
	big := make([]byte, 1<<20)
	for range maxReceiveQueue>>20 + 1 {
		c.push(big)
	}
	if _, err := c.Read(make([]byte, 10)); !errors.Is(err, errQueueOverflow) {
		t.Errorf("Read after overflow: %v", err)
	}
	if ft.closed != 1 {
		t.Errorf("transport closed %d times", ft.closed)
	}
}

func TestMsgConnDeadlineAndClose(t *testing.T) {
	c := newMsgConn(&fakeTransport{}, browserAddr("test"))
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("Read past deadline: %v", err)
	}
	c.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		done <- err
	}()
	c.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, errClosed) {
		t.Errorf("Write after Close: %v", err)
	}
}

func BenchmarkMsgConnRelay(b *testing.B) {
	c := newMsgConn(&fakeTransport{}, browserAddr("test"))
	msg := make([]byte, maxMessage)
	buf := make([]byte, maxMessage)
	b.SetBytes(maxMessage)
	b.ReportAllocs()
	for b.Loop() {
		c.push(msg)
		for n := 0; n < maxMessage; {
			k, err := c.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			n += k
		}
	}
}
