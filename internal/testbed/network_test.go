//go:build integration

package testbed

// Tests that build namespaces: root only, run by make test.

import (
	"context"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/pion/stun/v3"
)

func newTestNetwork(t *testing.T) *Network {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := NewNetwork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close network: %v", err)
		}
		for _, ns := range n.Namespaces() {
			if _, err := os.Stat("/run/netns/" + ns.Name); err == nil {
				t.Errorf("namespace %s left behind", ns.Name)
			}
		}
	})
	return n
}

// TestNetwork checks the topology, STUN answers and the target protocol
// between two namespaces.
func TestNetwork(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := newTestNetwork(t)
	cli, err := n.AddHost(ctx, "cli", ClientIP)
	if err != nil {
		t.Fatal(err)
	}

	primary := netip.AddrPortFrom(ServerIP, 3478)
	other := netip.AddrPortFrom(ServerIP2, 3479)
	st, err := StartSTUNServer(n.Server, primary, other)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()

	uc, err := cli.ListenPacket("udp4", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	local := netip.AddrPortFrom(ClientIP, uint16(uc.LocalAddr().(*net.UDPAddr).Port))
	for _, server := range []netip.AddrPort{primary, other} {
		m := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
		uc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := uc.WriteTo(m.Raw, net.UDPAddrFromAddrPort(server)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 1500)
		k, _, err := uc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("no STUN answer from %s: %v", server, err)
		}
		resp := &stun.Message{Raw: buf[:k]}
		if err := resp.Decode(); err != nil {
			t.Fatal(err)
		}
		var mapped stun.XORMappedAddress
		var oth stun.OtherAddress
		var origin stun.ResponseOrigin
		if err := mapped.GetFrom(resp); err != nil {
			t.Fatal(err)
		}
		if err := oth.GetFrom(resp); err != nil {
			t.Fatal(err)
		}
		if err := origin.GetFrom(resp); err != nil {
			t.Fatal(err)
		}
		if got := mapped.String(); got != local.String() {
			t.Errorf("mapped address %s, want %s", got, local)
		}
		want := other
		if server == other {
			want = primary
		}
		if oth.String() != want.String() || origin.String() != server.String() {
			t.Errorf("from %s: OTHER-ADDRESS %s RESPONSE-ORIGIN %s", server, oth.String(), origin.String())
		}
	}

	tgt, err := StartTarget(n.Server, netip.AddrPortFrom(ServerIP, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	const size = 3<<20 + 17
	for _, tc := range []struct {
		name string
		fn   func(context.Context, net.Conn, int64, uint64) (Transfer, error)
	}{
		{"download", Download}, {"upload", Upload}, {"echo", Echo},
	} {
		c, err := cli.Dial(ctx, "tcp4", tgt.Addr)
		if err != nil {
			t.Fatal(err)
		}
		if la := c.LocalAddr().(*net.TCPAddr).IP.String(); la != ClientIP.String() {
			t.Errorf("dialled from %s, want %s", la, ClientIP)
		}
		tr, err := tc.fn(ctx, c, size, 42)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !tr.OK() || tr.Bytes != size {
			t.Errorf("%s: %v", tc.name, tr)
		}
	}
}
