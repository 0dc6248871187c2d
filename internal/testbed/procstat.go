package testbed

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Helpers for benchmarks (internal/interop/cmd/bench): CPU accounting from
// /proc and sequential echo round trips.

// clockTick is USER_HZ, the unit of the times in /proc/<pid>/stat and
// /proc/stat. Linux fixes it at 100 on every architecture Go supports, and
// Go cannot ask sysconf without cgo.
const clockTick = 100

func ticks(n uint64) time.Duration { return time.Duration(n) * (time.Second / clockTick) }

// CPUTime is the processor time a process has used so far, all of its
// threads (live and exited) included.
type CPUTime struct {
	User, System time.Duration
}

// Total is user plus system time.
func (c CPUTime) Total() time.Duration { return c.User + c.System }

// Sub is the time used between two readings.
func (c CPUTime) Sub(earlier CPUTime) CPUTime {
	return CPUTime{User: c.User - earlier.User, System: c.System - earlier.System}
}

// ProcessCPU reads utime and stime of pid from /proc/<pid>/stat, with a
// resolution of 10 ms.
func ProcessCPU(pid int) (CPUTime, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return CPUTime{}, fmt.Errorf("testbed: CPU time of %d: %w", pid, err)
	}
	c, err := parseProcStat(b)
	if err != nil {
		return CPUTime{}, fmt.Errorf("testbed: /proc/%d/stat: %w", pid, err)
	}
	return c, nil
}

// parseProcStat reads utime and stime (fields 14 and 15) of a
// /proc/<pid>/stat line. The command name (field 2) is in parentheses and
// may itself contain spaces and parentheses, so fields are counted from the
// last ')'.
func parseProcStat(b []byte) (CPUTime, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return CPUTime{}, errors.New("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field k is f[k-3].
	if len(f) < 13 {
		return CPUTime{}, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	utime, err := strconv.ParseUint(f[11], 10, 63)
	if err != nil {
		return CPUTime{}, fmt.Errorf("utime: %w", err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 63)
	if err != nil {
		return CPUTime{}, fmt.Errorf("stime: %w", err)
	}
	return CPUTime{User: ticks(utime), System: ticks(stime)}, nil
}

// MachineCPU is the processor time of the whole machine, summed over its
// CPUs, from the "cpu" line of /proc/stat.
type MachineCPU struct {
	// Busy is everything but idle and iowait; Total includes them.
	Busy, Total time.Duration
}

// ReadMachineCPU reads /proc/stat. The difference of two readings tells how
// loaded the machine was in between, by everyone.
func ReadMachineCPU() (MachineCPU, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}, fmt.Errorf("testbed: %w", err)
	}
	m, err := parseMachineStat(b)
	if err != nil {
		return MachineCPU{}, fmt.Errorf("testbed: /proc/stat: %w", err)
	}
	return m, nil
}

func parseMachineStat(b []byte) (MachineCPU, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		// user nice system idle iowait irq softirq steal [guest guest_nice],
		// where guest time is already counted in user.
		if len(f) < 9 {
			return MachineCPU{}, fmt.Errorf("cpu line has %d fields", len(f))
		}
		var m MachineCPU
		for k := 1; k <= 8; k++ {
			v, err := strconv.ParseUint(f[k], 10, 63)
			if err != nil {
				return MachineCPU{}, fmt.Errorf("cpu field %d: %w", k, err)
			}
			m.Total += ticks(v)
			if k != 4 && k != 5 {
				m.Busy += ticks(v)
			}
		}
		return m, nil
	}
	return MachineCPU{}, errors.New("no cpu line")
}

// ProcessPeakRSS is the largest resident set size pid has had (VmHWM), in
// bytes.
func ProcessPeakRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("testbed: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmHWM:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			break
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("testbed: no VmHWM for %d", pid)
}

// EchoRoundTrips asks the target at the far end of conn to echo, sends one
// warm-up message and then count messages of size bytes of Stream(seed),
// each only after the previous one came back, and checks every byte. It
// returns the round-trip time of each counted message. The warm-up absorbs
// whatever the chain still had to set up when the stream opened. conn is
// used up.
func EchoRoundTrips(ctx context.Context, conn net.Conn, count, size int, seed uint64) ([]time.Duration, error) {
	if count < 1 || size < 1 || size > chunkSize {
		return nil, fmt.Errorf("testbed: echo: bad count %d or size %d", count, size)
	}
	c := newIdleConn(conn)
	defer c.Close()
	defer closeOnDone(ctx, c)()
	if _, err := io.WriteString(c, "ECHO\n"); err != nil {
		return nil, fmt.Errorf("testbed: echo request: %w", ctxErr(ctx, err))
	}
	src := NewStream(seed)
	msg := make([]byte, size)
	got := make([]byte, size)
	rtts := make([]time.Duration, 0, count)
	for i := 0; i <= count; i++ {
		src.Read(msg)
		start := time.Now()
		if _, err := c.Write(msg); err != nil {
			return rtts, fmt.Errorf("testbed: echo %d: %w", i, ctxErr(ctx, err))
		}
		if _, err := io.ReadFull(c, got); err != nil {
			return rtts, fmt.Errorf("testbed: echo %d: %w", i, ctxErr(ctx, err))
		}
		rtt := time.Since(start)
		if j := firstDiff(got, msg); j >= 0 {
			return rtts, fmt.Errorf("testbed: echo %d: content differs at byte %d", i, j)
		}
		if i > 0 {
			rtts = append(rtts, rtt)
		}
	}
	return rtts, nil
}

// NetCounters are packet counters of one network namespace, from
// /proc/<pid>/net/snmp of a process inside it.
type NetCounters struct {
	UDPIn, UDPOut int64
	// UDPRcvbufErrors counts datagrams dropped for a full receive buffer.
	UDPRcvbufErrors int64
	TCPIn, TCPOut   int64
	TCPRetrans      int64
}

// Sub is the change between two readings.
func (n NetCounters) Sub(earlier NetCounters) NetCounters {
	return NetCounters{
		UDPIn: n.UDPIn - earlier.UDPIn, UDPOut: n.UDPOut - earlier.UDPOut,
		UDPRcvbufErrors: n.UDPRcvbufErrors - earlier.UDPRcvbufErrors,
		TCPIn:           n.TCPIn - earlier.TCPIn, TCPOut: n.TCPOut - earlier.TCPOut,
		TCPRetrans: n.TCPRetrans - earlier.TCPRetrans,
	}
}

// ReadNetCounters reads the counters of the namespace pid lives in.
func ReadNetCounters(pid int) (NetCounters, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/snmp")
	if err != nil {
		return NetCounters{}, fmt.Errorf("testbed: %w", err)
	}
	n, err := parseSNMP(b)
	if err != nil {
		return NetCounters{}, fmt.Errorf("testbed: /proc/%d/net/snmp: %w", pid, err)
	}
	return n, nil
}

// parseSNMP reads the Udp and Tcp tables of /proc/net/snmp: for each
// protocol a line of names followed by a line of values.
func parseSNMP(b []byte) (NetCounters, error) {
	vals := map[string]int64{}
	var names []string
	var proto string
	for _, line := range strings.Split(string(b), "\n") {
		p, rest, ok := strings.Cut(line, ":")
		if !ok || (p != "Udp" && p != "Tcp") {
			names = nil
			continue
		}
		f := strings.Fields(rest)
		if names == nil || proto != p {
			names, proto = f, p
			continue
		}
		if len(f) != len(names) {
			return NetCounters{}, fmt.Errorf("%s: %d values for %d names", p, len(f), len(names))
		}
		for i, name := range names {
			v, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				return NetCounters{}, fmt.Errorf("%s %s: %w", p, name, err)
			}
			vals[p+"."+name] = v
		}
		names = nil
	}
	want := []string{"Udp.InDatagrams", "Udp.OutDatagrams", "Udp.RcvbufErrors", "Tcp.InSegs", "Tcp.OutSegs", "Tcp.RetransSegs"}
	for _, k := range want {
		if _, ok := vals[k]; !ok {
			return NetCounters{}, fmt.Errorf("no %s", k)
		}
	}
	return NetCounters{
		UDPIn: vals["Udp.InDatagrams"], UDPOut: vals["Udp.OutDatagrams"], UDPRcvbufErrors: vals["Udp.RcvbufErrors"],
		TCPIn: vals["Tcp.InSegs"], TCPOut: vals["Tcp.OutSegs"], TCPRetrans: vals["Tcp.RetransSegs"],
	}, nil
}
