package turbotunnel

import "sync"

// bufSize is the capacity of the large pooled packet buffers. It exceeds
// MaxPacketSize so that slightly larger packets from lenient peers (the fork
// bridge reads up to 2048 bytes) can still be received.
const bufSize = 2048

// smallBufSize is the capacity of the small pooled buffers. Queued packets
// hold a buffer sized to them, so that a queue full of acknowledgements
// (tens of bytes each), which a peer can make the bridge keep, costs a
// tenth of one full of 2 KiB buffers.
const smallBufSize = 128

// packetBuf and smallBuf are what the pools hold. A pointer to an array is
// stored in an interface without allocating, and a slice of the right
// capacity converts back to it, so buffers make the round trip through
// []byte for free.
type (
	packetBuf = [bufSize]byte
	smallBuf  = [smallBufSize]byte
)

var (
	bufPool      = sync.Pool{New: func() any { return new(packetBuf) }}
	smallBufPool = sync.Pool{New: func() any { return new(smallBuf) }}
)

// getBuf returns an exclusively owned buffer of length n ≤ bufSize, of the
// smallest pooled capacity that fits.
func getBuf(n int) []byte {
	if n <= smallBufSize {
		return smallBufPool.Get().(*smallBuf)[:n]
	}
	return bufPool.Get().(*packetBuf)[:n]
}

// putBuf returns p to the pool. The caller gives up p and every slice that
// shares its memory: nothing may read or write them afterwards, since the
// buffer will next carry some other client's packet. Slices not made by
// getBuf are ignored (recognised by their capacity).
func putBuf(p []byte) {
	switch cap(p) {
	case bufSize:
		bufPool.Put((*packetBuf)(p[:bufSize]))
	case smallBufSize:
		smallBufPool.Put((*smallBuf)(p[:smallBufSize]))
	}
}
