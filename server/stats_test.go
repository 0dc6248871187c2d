package server

import (
	"testing"
	"time"

	"github.com/xtaci/smux"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

func TestStatsLine(t *testing.T) {
	var st stats
	st.count(true)
	st.count(false)
	st.count(true)
	if got, want := st.line(86400*time.Second), "in the past 86400 s, 2/3 connections had client_ip"; got != want {
		t.Errorf("line = %q, want %q", got, want)
	}
	if got, want := st.line(10*time.Second), "in the past 10 s, 0/0 connections had client_ip"; got != want {
		t.Errorf("after reset, line = %q, want %q", got, want)
	}
}

func TestInstanceIndex(t *testing.T) {
	tests := []struct {
		id   turbotunnel.ClientID
		n    int
		want int
	}{
		{turbotunnel.ClientID{}, 1, 0},
		{turbotunnel.ClientID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 1, 0},
		{turbotunnel.ClientID{5}, 4, 1},
		{turbotunnel.ClientID{3}, 4, 3},
		// Little-endian: the last byte is the most significant.
		{turbotunnel.ClientID{0, 0, 0, 0, 0, 0, 0, 1}, 3, int((uint64(1) << 56) % 3)},
		{turbotunnel.ClientID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 10, int(^uint64(0) % 10)},
		{turbotunnel.ClientID{7, 1}, 1024, 263 % 1024},
	}
	for _, tt := range tests {
		if got := instanceIndex(tt.id, tt.n); got != tt.want {
			t.Errorf("instanceIndex(%x, %d) = %d, want %d", tt.id, tt.n, got, tt.want)
		}
	}
}

// The bridge's session layer is turbotunnel's bridge configuration with
// the bridge's bounds applied, and the reference's smux parameters.
func TestSessionConfig(t *testing.T) {
	cfg := Config{KCPWindow: 300, MaxStreamsPerSession: 7}
	sc := cfg.sessionConfig()
	if sc.SendWindow != 300 || sc.RecvWindow != 300 || sc.MaxStreams != 7 {
		t.Errorf("session config = %+v, want windows 300/300 and 7 streams", sc)
	}
	c, err := sc.SmuxConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != 2 || c.KeepAliveTimeout != 4*time.Minute || c.MaxStreamBuffer != 1048576 {
		t.Errorf("smux config = %+v, want version 2, 4 min keep-alive timeout, 1 MiB stream buffer", c)
	}
	d := smux.DefaultConfig()
	if c.KeepAliveInterval != d.KeepAliveInterval || c.MaxFrameSize != d.MaxFrameSize || c.MaxReceiveBuffer != d.MaxReceiveBuffer {
		t.Errorf("smux config = %+v; keep-alive interval, frame size and receive buffer should stay at defaults", c)
	}
	if c.AcceptBacklog != 32 || c.ShaperQueueSize != 128 {
		t.Errorf("smux config = %+v; want an accept backlog of 32 and a shaper queue of 128", c)
	}
	if err := (&Config{KCPWindow: 70000}).setDefaults(); err == nil {
		t.Error("a KCP window above 65535 was accepted")
	}
}
