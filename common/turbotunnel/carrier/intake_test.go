package carrier

import (
	"bytes"
	"errors"
	"net"
	"testing"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// A flooding inlet gets no more than its turn: with a flooder holding a
// full queue, a second inlet's packet is served within two reads, and the
// flooder's excess is dropped, not queued.
func TestIntakeFairness(t *testing.T) {
	in := NewIntake(8, 0)
	defer in.Close()
	flood := in.NewInlet(turbotunnel.ClientID{1})
	quiet := in.NewInlet(turbotunnel.ClientID{2})
	dropped := 0
	for range 100 {
		if !flood.Queue([]byte("flood")) {
			dropped++
		}
	}
	if dropped != 92 {
		t.Fatalf("flooder: %d of 100 packets dropped, want 92 (queue of 8)", dropped)
	}
	if !quiet.Queue([]byte("quiet")) {
		t.Fatal("quiet inlet's packet dropped")
	}
	buf := make([]byte, 100)
	var order []string
	for range 3 {
		n, addr, err := in.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		order = append(order, string(buf[:n])+"/"+addr.String()[:2])
	}
	if order[0] != "flood/01" || order[1] != "quiet/02" || order[2] != "flood/01" {
		t.Fatalf("service order %v, want flood, quiet, flood", order)
	}
}

// Buffers are sized to the packet, so queued small packets hold little.
func TestPacketBufSized(t *testing.T) {
	for _, tt := range []struct{ n, cap int }{{1, 64}, {64, 64}, {65, 256}, {300, 1024}, {1400, turbotunnel.MaxPacketSize}} {
		p := getPacketBuf(tt.n)
		if len(p) != tt.n || cap(p) != tt.cap {
			t.Errorf("getPacketBuf(%d): len %d cap %d, want cap %d", tt.n, len(p), cap(p), tt.cap)
		}
		PutPacketBuf(p)
	}
}

// A closed inlet drops what it queued and takes no more; the reader skips it.
func TestInletClose(t *testing.T) {
	in := NewIntake(4, 0)
	a := in.NewInlet(turbotunnel.ClientID{1})
	b := in.NewInlet(turbotunnel.ClientID{2})
	a.Queue([]byte("a1"))
	a.Queue([]byte("a2"))
	b.Queue([]byte("b1"))
	a.Close()
	a.Queue([]byte("a3"))
	buf := make([]byte, 10)
	n, _, err := in.Read(buf)
	if err != nil || !bytes.Equal(buf[:n], []byte("b1")) {
		t.Fatalf("read %q, %v; want b1", buf[:n], err)
	}
	if _, _, ok := in.Next(); ok {
		t.Fatal("closed inlet still delivers")
	}
	in.Close()
	if _, _, err := in.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
	}
}

// The packets of all inlets together are bounded; when the bound is
// reached, the longest inlet loses one, so a light inlet still gets in.
func TestIntakeTotalBound(t *testing.T) {
	in := NewIntake(8, 12)
	defer in.Close()
	var flooders []*Inlet
	for i := range 4 {
		l := in.NewInlet(turbotunnel.ClientID{byte(i)})
		for range 20 {
			l.Queue([]byte("flood"))
		}
		flooders = append(flooders, l)
	}
	if in.queued > 12 {
		t.Fatalf("%d packets queued, bound 12", in.queued)
	}
	light := in.NewInlet(turbotunnel.ClientID{9})
	if !light.Queue([]byte("light")) {
		t.Fatal("light inlet's packet dropped")
	}
	if in.queued > 12 {
		t.Fatalf("%d packets queued after the light one, bound 12", in.queued)
	}
	found := false
	for {
		p, addr, ok := in.Next()
		if !ok {
			break
		}
		if addr == light.addr && string(p) == "light" {
			found = true
		}
	}
	if !found {
		t.Fatal("light inlet's packet never served")
	}
	if in.queued != 0 {
		t.Fatalf("%d packets counted after draining", in.queued)
	}
}
