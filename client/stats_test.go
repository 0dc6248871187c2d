package client

import (
	"context"
	"log/slog"
	"regexp"
	"strconv"
	"testing"
)

var (
	trafficLine = regexp.MustCompile(`(?m)msg=traffic client_id=(\S+) bytes_in=(\d+) bytes_out=(\d+) reads=\d+ writes=\d+$`)
	endedLine   = regexp.MustCompile(`(?m)msg="session ended" client_id=(\S+) bytes_in=(\d+) bytes_out=(\d+) duration=\S+$`)
)

// TestTrafficLoggedAtSessionEnd: the last interval's counts used to be
// lost, and a session shorter than TrafficLogInterval logged no traffic at
// all. Now closing the session logs them, and the traffic lines add up to
// the totals of the "session ended" line, whatever the timing.
func TestTrafficLoggedAtSessionEnd(t *testing.T) {
	var logs syncBuffer
	tr, err := NewTransport(Config{Peers: &fakePeers{bridge: echoBridge(t)}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	conn, err := tr.Dial(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const size = 200000
	transfer(t, conn, size, nil)
	conn.Close()

	out := logs.String()
	ended := endedLine.FindAllStringSubmatch(out, -1)
	if len(ended) != 1 {
		t.Fatalf("%d \"session ended\" lines, want 1:\n%s", len(ended), out)
	}
	id := ended[0][1]
	totalIn, _ := strconv.ParseInt(ended[0][2], 10, 64)
	totalOut, _ := strconv.ParseInt(ended[0][3], 10, 64)
	if totalIn < size || totalOut < size {
		t.Errorf("totals in=%d out=%d, want at least the %d bytes echoed each way", totalIn, totalOut, size)
	}
	var sumIn, sumOut int64
	for _, m := range trafficLine.FindAllStringSubmatch(out, -1) {
		if m[1] != id {
			t.Errorf("traffic line for client %s, want %s", m[1], id)
		}
		in, _ := strconv.ParseInt(m[2], 10, 64)
		o, _ := strconv.ParseInt(m[3], 10, 64)
		sumIn, sumOut = sumIn+in, sumOut+o
	}
	if sumIn != totalIn || sumOut != totalOut {
		t.Errorf("traffic lines sum to in=%d out=%d, session totals in=%d out=%d:\n%s", sumIn, sumOut, totalIn, totalOut, out)
	}
}
