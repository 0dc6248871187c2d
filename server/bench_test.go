package server

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// discardConn is a net.Conn whose writes vanish.
type discardConn struct{ net.Conn }

func (discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
func (discardConn) Read(p []byte) (int, error)       { return 0, io.EOF }
func (discardConn) Close() error                     { return nil }

// BenchmarkPumpDown measures the per-packet cost of the downstream path:
// dequeueing, encapsulation, and the write call with its deadline.
func BenchmarkPumpDown(b *testing.B) {
	s := &Server{cfg: Config{WriteTimeout: time.Minute}}
	pconn := turbotunnel.NewQueuePacketConn(instanceAddr(0), time.Minute)
	defer pconn.Close()
	id := turbotunnel.ClientID{2}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		s.pumpDown(discardConn{}, pconn, id, done)
		close(finished)
	}()
	pkt := make([]byte, 1200)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		for {
			// WriteTo drops when the queue is full; retry until queued
			// so every iteration moves one packet.
			if len(pconn.OutgoingQueue(id)) < turbotunnel.QueueSize-1 {
				pconn.WriteTo(pkt, id)
				break
			}
		}
	}
	close(done)
	<-finished
}
