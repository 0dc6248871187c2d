//go:build integration

package testbed

import (
	"bufio"
	"context"
	"encoding/hex"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// firstHello returns the first datagram of a capture in internal/handshake.
func firstHello(t *testing.T, name string) []byte {
	t.Helper()
	f, err := os.Open("../handshake/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	if !sc.Scan() {
		t.Fatalf("%s is empty", name)
	}
	_, h, _ := strings.Cut(sc.Text(), " ")
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPionDTLSCensor sends pion's and Chromium's captured first
// ClientHello datagrams at a censored host: pion's must be dropped and
// counted, Chromium's delivered, and both delivered once the rule is gone.
// The capture and the censor are checked against each other as well.
func TestPionDTLSCensor(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := newTestNetwork(t)
	cli, err := n.AddHost(ctx, "cli", ClientIP)
	if err != nil {
		t.Fatal(err)
	}
	capt, err := StartCapture(cli, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer capt.Stop()
	censor, err := InstallPionDTLSCensor(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	rx, err := cli.ListenPacket("udp4", ClientIP.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	tx, err := n.Server.ListenPacket("udp4", ServerIP.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	pion, chromium := firstHello(t, "pion-dtls12.txt"), firstHello(t, "chromium-dtls-1.txt")

	// arrives reports whether d reaches rx.
	arrives := func(d []byte) bool {
		t.Helper()
		if _, err := tx.WriteTo(d, rx.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		rx.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		buf := make([]byte, 2048)
		for {
			k, _, err := rx.ReadFrom(buf)
			if err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					return false
				}
				t.Fatal(err)
			}
			if string(buf[:k]) == string(d) {
				return true
			}
		}
	}
	if arrives(pion) {
		t.Error("pion's ClientHello passed the censor")
	}
	if !arrives(chromium) {
		t.Error("Chromium's ClientHello was dropped")
	}
	if got, err := censor.Dropped(ctx); err != nil || got != 1 {
		t.Errorf("censor dropped %d packets (%v), want 1", got, err)
	}
	if err := censor.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if !arrives(pion) {
		t.Error("pion's ClientHello dropped without the censor")
	}
	// The capture sees what reached the host: the dropped datagram too
	// (AF_PACKET taps before nftables' input hook).
	err = capt.WaitFor(ctx, func(ps []Packet) bool {
		k := 0
		for _, p := range ps {
			if p.Proto == ProtoUDP && string(p.Payload) == string(pion) {
				k++
			}
		}
		return k == 2
	})
	if err != nil {
		t.Errorf("capture: %v", err)
	}
}
