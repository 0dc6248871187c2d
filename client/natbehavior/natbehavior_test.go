package natbehavior

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v3"

	"github.com/snowfall-pt/snowfall/common/nattype"
)

type mode int

const (
	modeEIM       mode = iota // endpoint-independent mapping
	modeSymmetric             // a different mapping per destination
	modeNoOther               // no OTHER-ADDRESS
	modeSilent                // never answers
	modeGarbage               // answers with junk, then correctly
)

// stunServer is an RFC 5780 test server on 127.0.0.1 and 127.0.0.2.
func stunServer(t *testing.T, m mode) string {
	t.Helper()
	primary, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	alt, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { primary.Close(); alt.Close() })
	altAddr := alt.LocalAddr().(*net.UDPAddr)
	serve := func(c net.PacketConn, isAlt bool) {
		buf := make([]byte, 1500)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if m == modeSilent {
				continue
			}
			req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
			if err := req.Decode(); err != nil {
				continue
			}
			src := from.(*net.UDPAddr)
			mapped := &stun.XORMappedAddress{IP: src.IP, Port: src.Port}
			if isAlt && m == modeSymmetric {
				mapped.Port++
			}
			setters := []stun.Setter{stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess, mapped}
			if m != modeNoOther {
				setters = append(setters, &stun.OtherAddress{IP: altAddr.IP, Port: altAddr.Port})
			}
			setters = append(setters, stun.Fingerprint)
			res, err := stun.Build(setters...)
			if err != nil {
				t.Error(err)
				return
			}
			if m == modeGarbage {
				c.WriteTo([]byte("garbage"), from)
				other, _ := stun.Build(stun.TransactionID, stun.BindingSuccess, mapped)
				c.WriteTo(other.Raw, from) // wrong transaction
			}
			c.WriteTo(res.Raw, from)
		}
	}
	go serve(primary, false)
	go serve(alt, true)
	return primary.LocalAddr().String()
}

func TestProbe(t *testing.T) {
	tests := []struct {
		mode mode
		want string
		err  error
	}{
		{modeEIM, nattype.Unrestricted, nil},
		{modeSymmetric, nattype.Restricted, nil},
		{modeGarbage, nattype.Unrestricted, nil},
		{modeNoOther, "", ErrNoRFC5780},
		{modeSilent, "", ErrTimeout},
	}
	for _, tt := range tests {
		addr := stunServer(t, tt.mode)
		p := &Prober{Timeout: 700 * time.Millisecond}
		got, err := p.Probe(context.Background(), addr)
		if tt.err != nil {
			if !errors.Is(err, tt.err) {
				t.Errorf("mode %d: err = %v, want %v", tt.mode, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("mode %d: got %q, %v; want %q", tt.mode, got, err, tt.want)
		}
	}
}

func TestDiscover(t *testing.T) {
	silent := stunServer(t, modeSilent)
	good := stunServer(t, modeSymmetric)
	p := &Prober{Timeout: 500 * time.Millisecond}
	got, err := p.Discover(context.Background(), []string{"turn:x", "stun:" + silent, "stun:" + good})
	if err != nil || got != nattype.Restricted {
		t.Fatalf("got %q, %v", got, err)
	}
	got, err = p.Discover(context.Background(), []string{"stun:" + silent})
	if err == nil || got != nattype.Unknown {
		t.Fatalf("all failing: got %q, %v", got, err)
	}
	got, err = p.Discover(context.Background(), nil)
	if !errors.Is(err, ErrNoServer) || got != nattype.Unknown {
		t.Fatalf("no servers: got %q, %v", got, err)
	}
}

func TestDiscoverCancel(t *testing.T) {
	silent := stunServer(t, modeSilent)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := (&Prober{}).Discover(ctx, []string{"stun:" + silent})
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("cancelled discovery succeeded")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("cancel did not stop discovery")
	}
}

func TestServerAddr(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"stun:stun.l.google.com:19302", "stun.l.google.com:19302", true},
		{"stun:example.net", "example.net:3478", true},
		{" stun:1.2.3.4:3479 ", "1.2.3.4:3479", true},
		{"stun:[2001:db8::1]:3478", "[2001:db8::1]:3478", true},
		{"stun:[2001:db8::1]", "[2001:db8::1]:3478", true},
		{"stuns:example.net", "", false},
		{"turn:example.net", "", false},
		{"stun:", "", false},
		{"stun:host:99999", "", false},
		{"stun:host:x", "", false},
	}
	for _, tt := range tests {
		got, ok := ServerAddr(tt.in)
		if ok != tt.ok || got != tt.want {
			t.Errorf("%q: got %q %v, want %q %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func FuzzParseResponse(f *testing.F) {
	id := [stun.TransactionIDSize]byte{1, 2, 3}
	m, _ := stun.Build(stun.NewTransactionIDSetter(id), stun.BindingSuccess,
		&stun.XORMappedAddress{IP: net.IPv4(192, 0, 2, 1), Port: 1234},
		&stun.OtherAddress{IP: net.IPv4(192, 0, 2, 2), Port: 3479})
	f.Add(m.Raw)
	f.Add([]byte{0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42})
	f.Fuzz(func(t *testing.T, b []byte) {
		res, ok := parseResponse(b, id)
		if !ok {
			return
		}
		mappedAddr(res)
		var o stun.OtherAddress
		o.GetFrom(res)
	})
}
