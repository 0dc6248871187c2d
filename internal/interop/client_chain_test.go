//go:build integration

package interop

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// TestSnowfallClientThroughOurChain runs snowfall-client, driven the way
// tor drives it (PT environment, SOCKS5 with bridge-line arguments),
// through Debian's snowflake-proxy (Tor's 2.5.1) and Snowfall's broker and
// bridge, and moves 50 MB each way, checking every byte.
func TestSnowfallClientThroughOurChain(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	c := startChain(ctx, t, Config{Client: Snowfall, Proxy: Debian})

	down, err := testbed.Download(ctx, dialChain(ctx, t, c), transferSize, 21)
	if err != nil {
		t.Fatalf("download: %v (%v)\n%v\nclient log tail:\n%s", err, down, c.CheckAlive(), testbed.Tail(c.ClientLog, 20))
	}
	t.Logf("%v", down)
	up, err := testbed.Upload(ctx, dialChain(ctx, t, c), transferSize, 22)
	if err != nil {
		t.Fatalf("upload: %v (%v)\n%v\nclient log tail:\n%s", err, up, c.CheckAlive(), testbed.Tail(c.ClientLog, 20))
	}
	t.Logf("%v", up)
	t.Logf("throughput: down %.2f MB/s, up %.2f MB/s", down.MBps(), up.MBps())

	var sent, received bool
	for _, r := range c.Target.Results() {
		sent = sent || (r.Command == "SEND" && r.OK && r.Bytes == transferSize)
		received = received || (r.Command == "RECV" && r.OK && r.Bytes == transferSize)
	}
	if !sent || !received {
		t.Errorf("target results %+v", c.Target.Results())
	}

	// What the client told tor, and what it logged.
	stdout := strings.Join(c.Client.StdoutLines(), "\n")
	for _, re := range []string{
		`(?m)^VERSION 1$`,
		`(?m)^STATUS TYPE=version IMPLEMENTATION="snowfall-client" VERSION="[^"]+"$`,
		`(?m)^CMETHOD snowflake socks5 127\.0\.0\.1:\d+$`,
		`(?m)^CMETHODS DONE$`,
		`(?m)^LOG SEVERITY=notice MESSAGE="offer created"$`,
		`(?m)^LOG SEVERITY=notice MESSAGE="broker rendezvous peer received"$`,
		`(?m)^LOG SEVERITY=notice MESSAGE="connected"$`,
	} {
		if !regexp.MustCompile(re).MatchString(stdout) {
			t.Errorf("client stdout lacks %s", re)
		}
	}
	if c.STUN.Requests() < 2 {
		t.Errorf("STUN server answered %d requests; no RFC 5780 test?", c.STUN.Requests())
	}
	if err := c.CheckAlive(); err != nil {
		t.Error(err)
	}

	// Stopping the client ends every session it holds, and a session
	// logs its last counters as it ends: once the process has exited its
	// log is complete, however fast the transfers were.
	c.Client.Stop(30 * time.Second)
	log, err := os.ReadFile(c.ClientLog)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`msg="NAT type" nat=unrestricted`, `msg="SOCKS connection granted"`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("client log lacks %q", want)
		}
	}
	if strings.Contains(string(log), "panic") {
		t.Errorf("client log mentions a panic")
	}
	checkTrafficLog(t, string(log), transferSize)
}

var (
	trafficLine = regexp.MustCompile(`(?m)msg=traffic client_id=(\S+) bytes_in=(\d+) bytes_out=(\d+) `)
	endedLine   = regexp.MustCompile(`(?m)msg="session ended" client_id=(\S+) bytes_in=(\d+) bytes_out=(\d+) `)
)

// checkTrafficLog asserts that every session's traffic lines add up to
// the totals of its "session ended" line, and that some session received
// and some session sent at least size bytes (carried bytes include
// framing, so they exceed the payload).
func checkTrafficLog(t *testing.T, log string, size int64) {
	t.Helper()
	type counts struct{ in, out int64 }
	atoi := func(s string) int64 { n, _ := strconv.ParseInt(s, 10, 64); return n }
	sums := map[string]counts{}
	for _, m := range trafficLine.FindAllStringSubmatch(log, -1) {
		c := sums[m[1]]
		sums[m[1]] = counts{c.in + atoi(m[2]), c.out + atoi(m[3])}
	}
	ended := endedLine.FindAllStringSubmatch(log, -1)
	if len(ended) == 0 {
		t.Fatalf("client log has no \"session ended\" line")
	}
	var maxIn, maxOut int64
	for _, m := range ended {
		total := counts{atoi(m[2]), atoi(m[3])}
		if got := sums[m[1]]; got != total {
			t.Errorf("session %s: traffic lines sum to %+v, session totals %+v", m[1], got, total)
		}
		maxIn, maxOut = max(maxIn, total.in), max(maxOut, total.out)
	}
	if maxIn < size || maxOut < size {
		t.Errorf("largest session totals in=%d out=%d, want at least %d each way", maxIn, maxOut, size)
	}
}
