package server

import (
	"io"
	"net"
	"testing"
	"time"
)

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := newLimitListener(inner, 2)
	defer ln.Close()

	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c1, c2 := dial(), dial()
	s1, s2 := <-accepted, <-accepted
	// The third is over the limit: closed by the listener, never returned.
	c3 := dial()
	c3.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c3.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on a connection over the limit: %v, want EOF", err)
	}
	select {
	case c := <-accepted:
		t.Fatalf("connection over the limit was accepted: %v", c.RemoteAddr())
	default:
	}
	// Closing one (twice: the count must drop once) makes room for one.
	s1.Close()
	s1.Close()
	c4 := dial()
	s4 := <-accepted
	if s4.RemoteAddr().String() != c4.LocalAddr().String() {
		t.Fatalf("accepted %v, want %v", s4.RemoteAddr(), c4.LocalAddr())
	}
	if got := ln.open.Load(); got != 2 {
		t.Fatalf("open = %d, want 2", got)
	}
	_, _, _ = c1, c2, s2
}
