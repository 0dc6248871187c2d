package turbotunnel

import "sync"

// bufSize is the capacity of every pooled packet buffer. It exceeds
// MaxPacketSize so that slightly larger packets from lenient peers (the fork
// bridge reads up to 2048 bytes) can still be received.
const bufSize = 2048

// packetBuf is what the pool holds. A pointer to an array is stored in an
// interface without allocating, and a slice of the right capacity converts
// back to it, so buffers make the round trip through []byte for free.
type packetBuf = [bufSize]byte

var bufPool = sync.Pool{New: func() any { return new(packetBuf) }}

// getBuf returns an exclusively owned buffer of length n ≤ bufSize.
func getBuf(n int) []byte { return bufPool.Get().(*packetBuf)[:n] }

// putBuf returns p to the pool. The caller gives up p and every slice that
// shares its memory: nothing may read or write them afterwards, since the
// buffer will next carry some other client's packet. Slices not made by
// getBuf are ignored (recognised by their capacity).
func putBuf(p []byte) {
	if cap(p) != bufSize {
		return
	}
	bufPool.Put((*packetBuf)(p[:bufSize]))
}
