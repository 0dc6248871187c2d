package turbotunnel

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
)

// stubAddr is a fixed net.Addr for tests.
type stubAddr string

func (a stubAddr) Network() string { return "stub" }
func (a stubAddr) String() string  { return string(a) }

func TestCarrierConnReadDeadline(t *testing.T) {
	c := NewCarrierConn(NewClientID(), stubAddr("remote"), CarrierOptions{})
	defer c.Close()
	near, far := net.Pipe()
	defer far.Close()
	go io.Copy(io.Discard, far) // the prologue, and whatever KCP would send
	if err := c.Add(near); err != nil {
		t.Fatal(err)
	}
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
