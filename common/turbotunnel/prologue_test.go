package turbotunnel

import (
	"bytes"
	"errors"
	"testing"
	"testing/iotest"
)

func TestPrologueRoundTrip(t *testing.T) {
	id := NewClientID()
	var buf bytes.Buffer
	if err := WritePrologue(&buf, id); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("rest")
	got, err := ReadPrologue(&buf)
	if err != nil || got != id {
		t.Fatalf("ReadPrologue = %v, %v; want %v", got, err, id)
	}
	if buf.String() != "rest" {
		t.Errorf("ReadPrologue consumed %q more than the prologue", "rest"[:4-buf.Len()])
	}
}

func TestReadPrologueErrors(t *testing.T) {
	id := NewClientID()
	good := append(Token[:], id[:]...)
	for _, tc := range []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrNoPrologue},
		{"half token", good[:4], ErrShortPrologue},
		{"bad token", append([]byte("GET / HT"), id[:]...), ErrBadToken},
		{"no ClientID", good[:8], ErrShortPrologue},
		{"half ClientID", good[:12], ErrShortPrologue},
	} {
		if _, err := ReadPrologue(bytes.NewReader(tc.in)); !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
		// One byte per read, as a WebSocket may deliver it.
		if _, err := ReadPrologue(iotest.OneByteReader(bytes.NewReader(tc.in))); !errors.Is(err, tc.want) {
			t.Errorf("%s, byte by byte: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	boom := errors.New("boom")
	if _, err := ReadPrologue(iotest.ErrReader(boom)); !errors.Is(err, boom) {
		t.Errorf("read error: err = %v, want it to wrap %v", err, boom)
	}
}

// FuzzReadPrologue: any input gives either a ClientID from a stream that
// starts with the token, or one of the prologue errors; never a panic.
func FuzzReadPrologue(f *testing.F) {
	f.Add(append(Token[:], 1, 2, 3, 4, 5, 6, 7, 8))
	f.Add([]byte{})
	f.Add(Token[:5])
	f.Fuzz(func(t *testing.T, in []byte) {
		id, err := ReadPrologue(bytes.NewReader(in))
		if err == nil {
			if len(in) < PrologueLen || !bytes.Equal(in[:8], Token[:]) || !bytes.Equal(id[:], in[8:16]) {
				t.Fatalf("accepted %x as ClientID %v", in, id)
			}
			return
		}
		if !errors.Is(err, ErrNoPrologue) && !errors.Is(err, ErrShortPrologue) && !errors.Is(err, ErrBadToken) {
			t.Fatalf("unexpected error %v", err)
		}
	})
}
