package carrier

import (
	"bufio"
	"bytes"
	"errors"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// testInletSize is the inlet capacity the tests use.
const testInletSize = 64

func TestReadPrologue(t *testing.T) {
	tok := turbotunnel.Token[:]
	cid := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	badTok := append([]byte{}, tok...)
	badTok[7] ^= 1
	tests := []struct {
		name    string
		in      []byte
		wantErr error // nil for success
	}{
		{"good", cat(tok, cid), nil},
		{"good with data after", cat(tok, cid, []byte{0x81, 0xaa}), nil},
		{"empty", nil, ErrNoPrologue},
		{"short token", tok[:5], ErrShortPrologue},
		{"wrong token", cat(badTok, cid), ErrBadToken},
		{"wrong short token", []byte("GET / HTTP/1.1\r\n"), ErrBadToken},
		{"token only", tok, ErrShortPrologue},
		{"short id", cat(tok, cid[:3]), ErrShortPrologue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte per read, as a WebSocket may deliver it.
			for _, r := range []*bytes.Reader{bytes.NewReader(tt.in), nil} {
				var got turbotunnel.ClientID
				var err error
				if r != nil {
					got, err = ReadPrologue(r)
				} else {
					got, err = ReadPrologue(iotest.OneByteReader(bytes.NewReader(tt.in)))
				}
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) {
						t.Fatalf("err = %v, want %v", err, tt.wantErr)
					}
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got[:], cid) {
					t.Fatalf("ClientID = %x, want %x", got, cid)
				}
			}
		})
	}
}

func TestReadPrologueReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := ReadPrologue(iotest.ErrReader(boom))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want it to wrap %v", err, boom)
	}
}

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
	// One intake and one stub Server for the whole run: setting up a KCP
	// engine per input is what made this target slow.
	in := NewIntake(testInletSize, 0)
	defer in.Close()
	r := bufio.NewReader(nil)
	br := bytes.NewReader(nil)
	f.Fuzz(func(t *testing.T, b []byte) {
		br.Reset(b)
		r.Reset(br)
		cid, err := ReadPrologue(r)
		if err != nil {
			if !errors.Is(err, ErrNoPrologue) && !errors.Is(err, ErrShortPrologue) && !errors.Is(err, ErrBadToken) {
				t.Fatalf("ReadPrologue: unexpected error %v", err)
			}
			return
		}
		l := in.NewInlet(cid)
		var last atomic.Int64
		err = Pump(r, l, &last, func() {})
		if err != nil && !errors.Is(err, ErrOversizedChunk) && !errors.Is(err, ErrMalformedChunk) && !errors.Is(err, ErrTruncatedChunk) {
			t.Fatalf("pumpUp: unexpected error %v", err)
		}
		// What was queued is bounded by the inlet, and every packet came
		// from this inlet's ClientID and fits a chunk.
		buf := make([]byte, MaxChunkLen+1)
		for got := 0; ; got++ {
			p, addr, ok := in.Next()
			if !ok {
				break
			}
			if got >= testInletSize {
				t.Fatalf("more than %d packets queued by one inlet", testInletSize)
			}
			if addr != cid || len(p) > MaxChunkLen {
				t.Fatalf("packet of %d bytes from %v, want at most %d from %v", len(p), addr, MaxChunkLen, cid)
			}
			copy(buf, p)
			PutPacketBuf(p)
		}
		l.Close()
	})
}
