//go:build integration

package testbed

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// TestCaptureTCP sends a known byte stream across the testbed and checks
// that the capture reassembles both directions exactly.
func TestCaptureTCP(t *testing.T) {
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
	ln, err := n.Server.Listen("tcp", ServerIP.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	up := bytes.Repeat([]byte("0123456789abcdef"), 20000) // several segments
	down := []byte("thanks")
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		got, err := io.ReadAll(io.LimitReader(c, int64(len(up))))
		if err == nil && !bytes.Equal(got, up) {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			_, err = c.Write(down)
		}
		done <- err
	}()
	c, err := cli.Dial(ctx, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(up); err != nil {
		t.Fatal(err)
	}
	reply, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(reply, down) || <-done != nil {
		t.Fatalf("transfer: %q, %v", reply, err)
	}
	// Both FINs seen means every data segment before them was captured.
	err = capt.WaitFor(ctx, func(ps []Packet) bool {
		fins := 0
		for _, p := range ps {
			if p.Proto == ProtoTCP && p.Flags&TCPFin != 0 {
				fins++
			}
		}
		return fins >= 2
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}
	streams := TCPStreams(capt.Packets())
	if len(streams) != 2 {
		t.Fatalf("%d streams, want 2", len(streams))
	}
	if s := streams[0]; s.Src.Addr() != ClientIP || !bytes.Equal(s.Data, up) {
		t.Errorf("client stream from %v: %d bytes, want %d", s.Src, len(s.Data), len(up))
	}
	if s := streams[1]; !bytes.Equal(s.Data, down) {
		t.Errorf("server stream: %q", s.Data)
	}
}
