package turbotunnel

import (
	"testing"
	"time"
)

// BenchmarkPumpDown measures the per-packet cost of the bridge's
// downstream path: dequeueing, batching, and the write with its deadline.
func BenchmarkPumpDown(b *testing.B) {
	pconn := NewQueuePacketConn(stubAddr("bridge"), time.Minute)
	defer pconn.Close()
	id := ClientID{2}
	done := make(chan struct{})
	finished := make(chan struct{})
	conn := discardCarrier(b)
	go func() {
		PumpDown(done, conn, pconn, id, time.Minute)
		close(finished)
	}()
	pkt := make([]byte, 1200)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		for {
			// WriteTo drops when the queue is full; retry until queued
			// so every iteration moves one packet.
			if len(pconn.OutgoingQueue(id)) < QueueSize-1 {
				pconn.WriteTo(pkt, id)
				break
			}
		}
	}
	close(done)
	<-finished
}
