package turbotunnel

import (
	"testing"
	"time"
)

// A queued packet holds a buffer sized to it, not 2 KiB whatever its size.
func TestQueuedBufferSizedToPacket(t *testing.T) {
	c := NewQueuePacketConn(ClientID{9}, time.Minute)
	defer c.Close()
	id := ClientID{1}
	c.WriteTo(make([]byte, 24), id)
	c.WriteTo(make([]byte, MaxPacketSize), id)
	q := c.OutgoingQueue(id)
	if p := <-q; len(p) != 24 || cap(p) != smallBufSize {
		t.Errorf("24-byte packet: len %d cap %d, want cap %d", len(p), cap(p), smallBufSize)
	}
	if p := <-q; len(p) != MaxPacketSize || cap(p) != bufSize {
		t.Errorf("full packet: len %d cap %d, want cap %d", len(p), cap(p), bufSize)
	}
}
