package carrier

import (
	"bufio"
	"bytes"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// testInletSize is the inlet capacity the tests use.
const testInletSize = 64

// FuzzCarrierStream feeds arbitrary bytes through the path a WebSocket's
// data takes: prologue, then chunks into a KCP engine's queue. Whatever the
// input, the result is one of the known outcomes and nothing panics.
func FuzzCarrierStream(f *testing.F) {
	p := append(turbotunnel.Token[:], 1, 2, 3, 4, 5, 6, 7, 8)
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	f.Add([]byte{})
	f.Add(p)
	f.Add(cat(p, []byte{0x83, 1, 2, 3}))
	f.Add(cat(p, []byte{0x03, 0, 0, 0, 0x81, 9}))         // padding, then data
	f.Add(cat(p, []byte{0xca, 0x79}, make([]byte, 1401))) // oversized
	f.Add(cat(p, []byte{0xc0, 0x80, 0x80, 0x00}))         // prefix too long
	f.Add(cat(p, []byte{0x85, 1}))                        // truncated chunk
	f.Add(cat(p, []byte{0xca, 0x78}, make([]byte, 1400))) // exactly the limit
	f.Add(cat(p, []byte{0x40, 0x04, 0, 0, 0, 0, 0x80}))   // non-minimal padding, empty data
	f.Add(turbotunnel.Token[:3])
	// One intake for the whole run: setting up a KCP
	// engine per input is what made this target slow.
	in := NewIntake(testInletSize, 0)
	defer in.Close()
	r := bufio.NewReader(nil)
	br := bytes.NewReader(nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		br.Reset(b)
		r.Reset(br)
		cid, err := turbotunnel.ReadPrologue(r)
		if err != nil {
			if !errors.Is(err, turbotunnel.ErrNoPrologue) && !errors.Is(err, turbotunnel.ErrShortPrologue) && !errors.Is(err, turbotunnel.ErrBadToken) {
				t.Fatalf("ReadPrologue: unexpected error %v", err)
			}
			return
		}
		l := in.NewInlet(cid)
		var last atomic.Int64
		err = turbotunnel.PumpUp(r, Queue(l, &last, func() {}))
		if err != nil && !errors.Is(err, turbotunnel.ErrOversizedChunk) && !errors.Is(err, turbotunnel.ErrMalformedChunk) && !errors.Is(err, turbotunnel.ErrTruncatedChunk) {
			t.Fatalf("pumpUp: unexpected error %v", err)
		}
		// What was queued is bounded by the inlet, and every packet came
		// from this inlet's ClientID and fits a chunk.
		buf := make([]byte, turbotunnel.MaxPacketSize+1)
		for got := 0; ; got++ {
			p, addr, ok := in.Next()
			if !ok {
				break
			}
			if got >= testInletSize {
				t.Fatalf("more than %d packets queued by one inlet", testInletSize)
			}
			if addr != cid || len(p) > turbotunnel.MaxPacketSize {
				t.Fatalf("packet of %d bytes from %v, want at most %d from %v", len(p), addr, turbotunnel.MaxPacketSize, cid)
			}
			copy(buf, p)
			PutPacketBuf(p)
		}
		l.Close()
	})
}
