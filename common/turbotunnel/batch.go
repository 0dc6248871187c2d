package turbotunnel

import "github.com/snowfall-pt/snowfall/common/encapsulation"

// appendBatch appends p, encapsulated, to batch, then as many packets
// already waiting in q as fit within MaxBatchSize, handing each packet to
// done once it has been copied. Packets are at most MaxPacketSize bytes, so
// encapsulation cannot fail.
func appendBatch(batch, p []byte, q <-chan []byte, done func([]byte)) []byte {
	batch, _ = encapsulation.AppendData(batch, p)
	done(p)
	for len(batch)+encapsulation.MaxPrefixLen+MaxPacketSize <= MaxBatchSize {
		select {
		case p := <-q:
			batch, _ = encapsulation.AppendData(batch, p)
			done(p)
		default:
			return batch
		}
	}
	return batch
}

// AppendBatch is appendBatch for the bridge: it appends p and the packets
// already waiting in q (as returned by QueuePacketConn.OutgoingQueue),
// encapsulated, and restores each to c.
func (c *QueuePacketConn) AppendBatch(batch, p []byte, q <-chan []byte) []byte {
	return appendBatch(batch, p, q, c.Restore)
}
