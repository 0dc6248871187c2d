package testbed

import (
	"context"
	"crypto/sha256"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// Fields 3..17 after the name; utime=1234 (field 14), stime=56 (15).
	tail := " S 1 2 3 4 5 6 7 8 9 10 1234 56 0 0 20 0 12 0 100 200 300"
	for _, tc := range []struct {
		name, line string
		want       CPUTime
		wantErr    bool
	}{
		{"plain", "42 (snowfall-proxy)" + tail, CPUTime{12340 * time.Millisecond, 560 * time.Millisecond}, false},
		{"name with spaces and parens", "42 (a) b (c))" + tail, CPUTime{12340 * time.Millisecond, 560 * time.Millisecond}, false},
		{"no name", "42 snowfall S 1 2", CPUTime{}, true},
		{"short", "42 (x) S 1 2 3", CPUTime{}, true},
		{"not a number", "42 (x) S 1 2 3 4 5 6 7 8 9 10 abc 56 0", CPUTime{}, true},
		{"negative", "42 (x) S 1 2 3 4 5 6 7 8 9 10 -1 56 0", CPUTime{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.line))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("1 (init) S 0 1 1 0 -1 4194560 1 2 3 4 500 600 0 0 20 0 1 0 5 6 7"))
	f.Add([]byte("1 ()) S"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseProcStat(b)
		if err == nil && (c.User < 0 || c.System < 0) {
			t.Errorf("negative time %+v from %q", c, b)
		}
	})
}

func TestParseMachineStat(t *testing.T) {
	in := "cpu  100 0 50 800 10 0 40 0 0 0\ncpu0 50 0 25 400 5 0 20 0 0 0\nintr 1\n"
	m, err := parseMachineStat([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if m.Busy != 1900*time.Millisecond || m.Total != 10*time.Second {
		t.Errorf("got %+v, want busy 1.9s of 10s", m)
	}
	for _, bad := range []string{"", "intr 1\n", "cpu 1 2 3\n", "cpu 1 2 3 x 5 6 7 8\n"} {
		if _, err := parseMachineStat([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestProcessCPUOfSelf(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn at least 50 ms of CPU. The wall-time bound only catches a stuck
	// counter: on a loaded machine 50 ms of CPU can take seconds.
	deadline := time.Now().Add(time.Minute)
	buf := make([]byte, 1<<16)
	for time.Now().Before(deadline) {
		for i := 0; i < 200; i++ {
			sum := sha256.Sum256(buf)
			buf[0] = sum[0]
		}
		now, err := ProcessCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now.Sub(before).Total() >= 50*time.Millisecond {
			return
		}
	}
	t.Fatal("CPU time of this process did not grow by 50 ms in a minute of hashing")
}

func TestReadMachineCPUAndPeakRSS(t *testing.T) {
	m, err := ReadMachineCPU()
	if err != nil {
		t.Fatal(err)
	}
	if m.Total <= 0 || m.Busy > m.Total {
		t.Errorf("implausible machine CPU %+v", m)
	}
	rss, err := ProcessPeakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 {
		t.Errorf("peak RSS %d bytes, want at least 1 MiB for a Go test binary", rss)
	}
	if _, err := ProcessCPU(-1); err == nil {
		t.Error("ProcessCPU(-1): no error")
	}
}

func TestEchoRoundTrips(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tg, err := StartTarget(nil, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tg.Close()
	conn, err := net.Dial("tcp", tg.Addr)
	if err != nil {
		t.Fatal(err)
	}
	rtts, err := EchoRoundTrips(ctx, conn, 20, 64, 7)
	if err != nil {
		t.Fatal(err)
	}
	if len(rtts) != 20 {
		t.Fatalf("%d round trips, want 20", len(rtts))
	}
	for i, d := range rtts {
		if d <= 0 {
			t.Errorf("round trip %d took %v", i, d)
		}
	}
	if _, err := EchoRoundTrips(ctx, nil, 0, 64, 1); err == nil {
		t.Error("count 0 accepted")
	}
}

// TestEchoRoundTripsDetectsCorruption echoes with one byte changed: the
// check must catch it.
func TestEchoRoundTripsDetectsCorruption(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 64)
		// Skip "ECHO\n", echo the warm-up intact, corrupt the next one.
		if _, err := readFull(c, buf[:5]); err != nil {
			return
		}
		for i := 0; i < 2; i++ {
			if _, err := readFull(c, buf); err != nil {
				return
			}
			if i == 1 {
				buf[10] ^= 1
			}
			c.Write(buf)
		}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, err = EchoRoundTrips(ctx, conn, 3, 64, 9)
	if err == nil || !strings.Contains(err.Error(), "differs at byte 10") {
		t.Fatalf("err = %v, want a content difference at byte 10", err)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestParseSNMP(t *testing.T) {
	in := `Ip: Forwarding DefaultTTL
Ip: 1 64
Tcp: RtoAlgorithm InSegs OutSegs RetransSegs
Tcp: 1 544026 539639 1447
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors
Udp: 67548 749 367 68885 12
UdpLite: InDatagrams
UdpLite: 0
`
	got, err := parseSNMP([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := NetCounters{UDPIn: 67548, UDPOut: 68885, UDPRcvbufErrors: 12, TCPIn: 544026, TCPOut: 539639, TCPRetrans: 1447}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if d := got.Sub(NetCounters{UDPIn: 48, TCPOut: 39639}); d.UDPIn != 67500 || d.TCPOut != 500000 {
		t.Errorf("Sub: %+v", d)
	}
	for _, bad := range []string{"", "Udp: InDatagrams\nUdp: x\n", "Tcp: InSegs\nTcp: 1 2\n", in[:strings.Index(in, "Udp:")]} {
		if _, err := parseSNMP([]byte(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := ReadNetCounters(os.Getpid()); err != nil {
		t.Errorf("own namespace: %v", err)
	}
}

func FuzzParseSNMP(f *testing.F) {
	f.Add([]byte("Tcp: InSegs OutSegs RetransSegs\nTcp: 1 2 3\nUdp: InDatagrams OutDatagrams RcvbufErrors\nUdp: 4 5 6\n"))
	f.Add([]byte("Udp: a\nUdp:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseSNMP(b) // must not panic
	})
}
