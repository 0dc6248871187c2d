package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// profiler samples the client, proxy and bridge of a chain with perf(1)
// for the length of one phase. The programs need no profiling flag: Go
// keeps frame pointers and symbols (Debian's 2.5.1 binaries are stripped,
// so their samples stay unnamed). perf's own overhead lands on the sampled
// processes, which is why profiled runs do not update the report.
type profiler struct {
	dir, name string
	cmds      map[string]*exec.Cmd
	files     map[string]string
	done      map[string]chan struct{}
	stopped   bool
}

var profiledRoles = []string{"client", "proxy", "bridge"}

func startProfiler(dir, name string, pids map[string]int) *profiler {
	p := &profiler{dir: dir, name: name, cmds: map[string]*exec.Cmd{}, files: map[string]string{}, done: map[string]chan struct{}{}}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench: profile:", err)
		return p
	}
	for _, role := range profiledRoles {
		file := filepath.Join(dir, name+"-"+role+".perf.data")
		log, err := os.Create(filepath.Join(dir, name+"-"+role+".perf.log"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: profile:", err)
			continue
		}
		cmd := exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pids[role]), "-o", file)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			log.Close()
			fmt.Fprintln(os.Stderr, "bench: perf record (apt-get install linux-perf):", err)
			continue
		}
		done := make(chan struct{})
		go func() {
			cmd.Wait()
			log.Close()
			close(done)
		}()
		p.cmds[role], p.files[role], p.done[role] = cmd, file, done
	}
	// perf needs a moment to attach to every thread.
	time.Sleep(300 * time.Millisecond)
	return p
}

// stop ends every perf it started (by PID, SIGINT so it writes its file)
// and waits for them. It is safe to call more than once.
func (p *profiler) stop() {
	if p.stopped {
		return
	}
	p.stopped = true
	for _, cmd := range p.cmds {
		cmd.Process.Signal(syscall.SIGINT)
	}
	for role, cmd := range p.cmds {
		select {
		case <-p.done[role]:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-p.done[role]
		}
	}
}

// sample is one symbol's share of a profile.
type sample struct {
	pct    float64
	kernel bool
	sym    string
}

// report summarises each profile by category and by symbol, into a text
// file beside it and, briefly, through say.
func (p *profiler) report(say func(string, ...any)) {
	for _, role := range profiledRoles {
		file, ok := p.files[role]
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out, err := exec.CommandContext(ctx, "perf", "report", "-i", file, "--stdio", "--no-children",
			"--sort", "sym", "-g", "none", "--percent-limit", "0.05").Output()
		cancel()
		if err != nil {
			say("  profile of %s: perf report: %v", role, err)
			continue
		}
		samples := parsePerfReport(string(out))
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s: self time by category\n", p.name, role)
		cats := aggregate(samples, category)
		for _, kv := range cats {
			fmt.Fprintf(&b, "  %6.2f%%  %s\n", kv.pct, kv.key)
		}
		fmt.Fprintf(&b, "\nby package\n")
		for _, kv := range aggregate(samples, pkgOf) {
			fmt.Fprintf(&b, "  %6.2f%%  %s\n", kv.pct, kv.key)
		}
		fmt.Fprintf(&b, "\ntop symbols\n")
		for i, s := range samples {
			if i == 40 {
				break
			}
			fmt.Fprintf(&b, "  %6.2f%%  %s\n", s.pct, s.sym)
		}
		txt := strings.TrimSuffix(file, ".perf.data") + ".txt"
		if err := os.WriteFile(txt, []byte(b.String()), 0o644); err != nil {
			say("  profile of %s: %v", role, err)
			continue
		}
		var top []string
		for i, kv := range cats {
			if i == 6 {
				break
			}
			top = append(top, fmt.Sprintf("%s %.0f%%", kv.key, kv.pct))
		}
		say("  profile of %s: %s (%s)", role, strings.Join(top, ", "), txt)
	}
}

// parsePerfReport reads the lines "  12.34%  [.] symbol" of a flat
// perf report.
func parsePerfReport(out string) []sample {
	var ss []sample
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 3 || !strings.HasSuffix(f[0], "%") || (f[1] != "[.]" && f[1] != "[k]") {
			continue
		}
		pct, err := strconv.ParseFloat(strings.TrimSuffix(f[0], "%"), 64)
		if err != nil {
			continue
		}
		ss = append(ss, sample{pct: pct, kernel: f[1] == "[k]", sym: strings.Join(f[2:], " ")})
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].pct > ss[j].pct })
	return ss
}

type keyPct struct {
	key string
	pct float64
}

func aggregate(ss []sample, key func(sample) string) []keyPct {
	m := map[string]float64{}
	for _, s := range ss {
		m[key(s)] += s.pct
	}
	out := make([]keyPct, 0, len(m))
	for k, v := range m {
		out = append(out, keyPct{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pct > out[j].pct })
	return out
}

// pkgOf is the Go package of a symbol ("github.com/pion/sctp" for
// "github.com/pion/sctp.(*Association).handleChunk").
func pkgOf(s sample) string {
	if s.kernel {
		return "[kernel]"
	}
	sym := s.sym
	if i := strings.IndexAny(sym, "(["); i >= 0 {
		sym = sym[:i]
	}
	slash := strings.LastIndexByte(sym, '/')
	if dot := strings.IndexByte(sym[slash+1:], '.'); dot >= 0 {
		return sym[:slash+1+dot]
	}
	if strings.HasPrefix(s.sym, "0x") {
		return "[unknown]"
	}
	return sym
}

// categories map package prefixes to the layers of the data path.
var categories = []struct{ prefix, name string }{
	{"github.com/pion/sctp", "SCTP"},
	{"github.com/pion/dtls", "DTLS"},
	{"crypto/", "crypto (DTLS records, TLS)"},
	{"golang.org/x/crypto", "crypto (DTLS records, TLS)"},
	{"vendor/golang.org/x/crypto", "crypto (DTLS records, TLS)"},
	{"github.com/xtaci/kcp-go", "KCP"},
	{"github.com/klauspost/reedsolomon", "KCP"},
	{"github.com/xtaci/smux", "smux"},
	{"github.com/pion/ice", "ICE / UDP mux"},
	{"github.com/pion/transport", "ICE / UDP mux"},
	{"github.com/pion/stun", "ICE / UDP mux"},
	{"github.com/pion/datachannel", "data channel / WebRTC"},
	{"github.com/pion/webrtc", "data channel / WebRTC"},
	{"github.com/coder/websocket", "WebSocket"},
	{"github.com/gorilla/websocket", "WebSocket"},
	{"net/http", "WebSocket"},
	{"github.com/snowfall-pt/snowfall", "Snowfall's own code"},
	{"gitlab.torproject.org", "Tor's snowflake code"},
	{"git.torproject.org", "Tor's snowflake code"},
	{"sync", "Go runtime (scheduler, timers, channels, locks)"},
	{"internal/runtime", "Go runtime (scheduler, timers, channels, locks)"},
	{"time", "Go runtime (scheduler, timers, channels, locks)"},
	{"internal/poll", "syscalls (Go side)"},
	{"syscall", "syscalls (Go side)"},
	{"net", "syscalls (Go side)"},
	{"bufio", "copies (memmove, bufio, bytes)"},
	{"bytes", "copies (memmove, bufio, bytes)"},
	{"io", "copies (memmove, bufio, bytes)"},
}

func category(s sample) string {
	if s.kernel {
		return "kernel (syscalls, network stack, scheduler)"
	}
	pkg := pkgOf(s)
	if pkg == "runtime" {
		switch {
		case strings.HasPrefix(s.sym, "runtime.memmove"), strings.HasPrefix(s.sym, "runtime.memclr"):
			return "copies (memmove, bufio, bytes)"
		case strings.Contains(s.sym, "malloc"), strings.Contains(s.sym, "gc"), strings.Contains(s.sym, "scan"),
			strings.Contains(s.sym, "mspan"), strings.Contains(s.sym, "mheap"), strings.Contains(s.sym, "mcache"),
			strings.Contains(s.sym, "greyobject"), strings.Contains(s.sym, "findObject"), strings.Contains(s.sym, "heapBits"),
			strings.Contains(s.sym, "markBits"), strings.Contains(s.sym, "sweep"), strings.Contains(s.sym, "wbBuf"),
			strings.Contains(s.sym, "bulkBarrier"), strings.Contains(s.sym, "spanOf"), strings.Contains(s.sym, "newobject"),
			strings.Contains(s.sym, "makeslice"), strings.Contains(s.sym, "growslice"):
			return "GC and allocation"
		default:
			return "Go runtime (scheduler, timers, channels, locks)"
		}
	}
	for _, c := range categories {
		if pkg == c.prefix || strings.HasPrefix(pkg, c.prefix+"/") || (strings.HasSuffix(c.prefix, "/") && strings.HasPrefix(pkg, c.prefix)) ||
			(strings.HasPrefix(c.prefix, "github.com/") && strings.HasPrefix(pkg, c.prefix)) {
			return c.name
		}
	}
	if pkg == "[unknown]" {
		return "unresolved (stripped binary)"
	}
	return "other: " + pkg
}
