//go:build integration

package interop

// Black-box attacks on the built snowfall-server, on loopback. Each attack
// is bounded in count and time; each test asserts that the bridge's RSS,
// goroutines, sessions and ORPort connections stay within stated bounds
// (read from /proc and from the bridge's --debug-addr counters) and that a
// legitimate client, from another source address, keeps working meanwhile.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xtaci/smux"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
	"github.com/snowfall-pt/snowfall/common/turbotunnel"
	"github.com/snowfall-pt/snowfall/common/websocketconn"
	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// countingORPort is a plain ORPort stand-in that echoes and counts its
// connections, now and at most.
type countingORPort struct {
	ln        net.Listener
	open, max atomic.Int64
	total     atomic.Int64
}

func startCountingORPort(t testing.TB) *countingORPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &countingORPort{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			o.total.Add(1)
			n := o.open.Add(1)
			for m := o.max.Load(); n > m && !o.max.CompareAndSwap(m, n); m = o.max.Load() {
			}
			go func() {
				defer o.open.Add(-1)
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	return o
}

// attackBridge is a snowfall-server under test.
type attackBridge struct {
	pt     *testbed.PTServer
	url    string
	debug  string
	orport *countingORPort
	base   int64 // RSS in bytes before the attack
}

// counters mirrors torpt.Counters.
type counters struct {
	Goroutines       int    `json:"goroutines"`
	HeapInuse        uint64 `json:"heap_inuse"`
	StackInuse       uint64 `json:"stack_inuse"`
	WebSockets       int    `json:"websockets"`
	SessionsAdmitted int    `json:"sessions_admitted"`
	SessionsRunning  int    `json:"sessions_running"`
	TorConns         int    `json:"tor_conns"`
}

func freeLoopbackPort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startAttackBridge(ctx context.Context, t *testing.T, args ...string) *attackBridge {
	t.Helper()
	return startBridgeProcess(ctx, t, artifacts(t), args...)
}

// startBridgeProcess runs snowfall-server on loopback with a counting
// ORPort and the debug counters on, logging into logDir.
func startBridgeProcess(ctx context.Context, t testing.TB, logDir string, args ...string) *attackBridge {
	t.Helper()
	path, err := bins.Path(ctx, "snowfall-server")
	if err != nil {
		t.Fatal(err)
	}
	or := startCountingORPort(t)
	debug := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	bind := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	pt, err := testbed.StartPTServer(ctx, testbed.PTServerConfig{
		Name: "snowfall-server", Path: path, Transport: "snowflake",
		Args:     append([]string{"--disable-tls", "--debug-addr", debug}, args...),
		LogDir:   logDir,
		BindAddr: bind,
		ORPort:   or.ln.Addr().String(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pt.Stop(5 * time.Second) })
	b := &attackBridge{pt: pt, url: "ws://" + bind + "/", debug: debug, orport: or}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := b.counters(); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("debug counters: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.base = b.rss(t)
	return b
}

func (b *attackBridge) counters() (counters, error) { return b.get("/") }

// live returns the bridge's live heap plus goroutine stacks, after a
// garbage collection.
func (b *attackBridge) live() (int64, error) {
	c, err := b.get("/?gc=1")
	return int64(c.HeapInuse + c.StackInuse), err
}

func (b *attackBridge) get(path string) (counters, error) {
	var c counters
	resp, err := http.Get("http://" + b.debug + path)
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	return c, json.NewDecoder(resp.Body).Decode(&c)
}

// rss is the bridge's resident set now.
func (b *attackBridge) rss(t testing.TB) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", b.pt.PID()))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// bounds are the limits an attack test asserts; zero fields are not
// checked.
type bounds struct {
	rssGrowth  int64 // bytes above the RSS before the attack
	goroutines int
	websockets int
	sessions   int // running KCP sessions
	torConns   int // ORPort connections open at once
}

// watch samples the bridge every 100 ms until stop closes and checks
// every sample against bd.
type watch struct {
	mu    sync.Mutex
	peak  counters
	rss   int64
	fails []string
	done  chan struct{}
}

func (b *attackBridge) watch(t *testing.T, bd bounds, stop <-chan struct{}) *watch {
	w := &watch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			c, err := b.counters()
			rss := b.rss(t)
			w.mu.Lock()
			if err == nil {
				w.peak.Goroutines = max(w.peak.Goroutines, c.Goroutines)
				w.peak.WebSockets = max(w.peak.WebSockets, c.WebSockets)
				w.peak.SessionsRunning = max(w.peak.SessionsRunning, c.SessionsRunning)
				w.peak.TorConns = max(w.peak.TorConns, c.TorConns)
			}
			w.rss = max(w.rss, rss)
			w.mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// check waits for the sampler and reports every bound exceeded.
func (w *watch) check(t *testing.T, b *attackBridge, bd bounds) {
	t.Helper()
	<-w.done
	p := w.peak
	growth := w.rss - b.base
	t.Logf("peaks: RSS +%.1f MiB, %d goroutines, %d WebSockets, %d sessions, %d tor connections (ORPort saw at most %d, %d in all)",
		float64(growth)/(1<<20), p.Goroutines, p.WebSockets, p.SessionsRunning, p.TorConns, b.orport.max.Load(), b.orport.total.Load())
	if bd.rssGrowth > 0 && growth > bd.rssGrowth {
		t.Errorf("RSS grew by %d MiB, bound %d MiB", growth>>20, bd.rssGrowth>>20)
	}
	if bd.goroutines > 0 && p.Goroutines > bd.goroutines {
		t.Errorf("%d goroutines, bound %d", p.Goroutines, bd.goroutines)
	}
	if bd.websockets > 0 && p.WebSockets > bd.websockets {
		t.Errorf("%d WebSockets, bound %d", p.WebSockets, bd.websockets)
	}
	if bd.sessions > 0 && p.SessionsRunning > bd.sessions {
		t.Errorf("%d sessions, bound %d", p.SessionsRunning, bd.sessions)
	}
	if bd.torConns > 0 && int(b.orport.max.Load()) > bd.torConns {
		t.Errorf("%d ORPort connections at once, bound %d", b.orport.max.Load(), bd.torConns)
	}
}

// srcClient returns an HTTP client whose connections come from ip.
func srcClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
}

type tunnelAddr struct{}

func (tunnelAddr) Network() string { return "bridge" }
func (tunnelAddr) String() string  { return "bridge" }

// tunnelClient is a legitimate turbotunnel client talking to the bridge
// directly over WebSockets (no proxy), from its own source address.
type tunnelClient struct {
	sess *smux.Session
}

func newTunnelClient(t testing.TB, url, srcIP string) *tunnelClient {
	t.Helper()
	hc := srcClient(srcIP)
	pconn := turbotunnel.NewCarrierConn(turbotunnel.NewClientID(), tunnelAddr{}, turbotunnel.CarrierOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	// add dials a carrier and attaches it; when the bridge ends that
	// carrier, the client dials another, as it would take a new proxy.
	var add func() error
	add = func() error {
		dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
		defer dcancel()
		c, err := websocketconn.Dial(dctx, url, hc)
		if err != nil {
			return err
		}
		return pconn.Add(&onCloseConn{Conn: c, onClose: func() {
			if ctx.Err() == nil {
				go add()
			}
		}})
	}
	if err := add(); err != nil {
		cancel()
		pconn.Close()
		t.Fatal(err)
	}
	sess, err := turbotunnel.NewClientSession(pconn, tunnelAddr{}, turbotunnel.ClientConfig())
	if err != nil {
		cancel()
		pconn.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		sess.Close()
		pconn.Close()
	})
	return &tunnelClient{sess: sess.Mux}
}

// onCloseConn calls onClose once, when the conn is first closed.
type onCloseConn struct {
	net.Conn
	once    sync.Once
	onClose func()
}

func (c *onCloseConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.onClose)
	return err
}

// echo sends n random bytes on a new stream and checks they come back.
func (c *tunnelClient) echo(n int) error {
	s, err := c.sess.OpenStream()
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(60 * time.Second))
	data := make([]byte, n)
	rand.Read(data)
	go s.Write(data)
	got := make([]byte, n)
	if _, err := io.ReadFull(s, got); err != nil {
		return fmt.Errorf("echo of %d bytes: %w", n, err)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("echo of %d bytes differs", n)
	}
	return nil
}

// legitimate runs echo transfers from 127.0.0.2 until stop closes and
// returns the first error, or an error if not one transfer completed.
func legitimate(t *testing.T, url string, stop <-chan struct{}) <-chan error {
	c := newTunnelClient(t, url, "127.0.0.2")
	out := make(chan error, 1)
	go func() {
		ok := 0
		for {
			if err := c.echo(20000); err != nil {
				out <- fmt.Errorf("legitimate client, after %d transfers: %w", ok, err)
				return
			}
			ok++
			select {
			case <-stop:
				if ok == 0 {
					out <- fmt.Errorf("legitimate client completed no transfer")
				} else {
					out <- nil
				}
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return out
}

// rawWebSocket opens a WebSocket from 127.0.0.1 and sends the prologue of
// a fresh ClientID unless noPrologue.
func rawWebSocket(ctx context.Context, url string, noPrologue bool) (net.Conn, error) {
	c, err := websocketconn.Dial(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	if !noPrologue {
		id := turbotunnel.NewClientID()
		if _, err := c.Write(append(turbotunnel.Token[:], id[:]...)); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// kcpSegment encodes one KCP PUSH segment (PROTOCOL.md §6.3).
func kcpSegment(sn uint32, data []byte) []byte {
	b := make([]byte, 24, 24+len(data))
	b[4] = 81 // PUSH
	binary.LittleEndian.PutUint16(b[6:], 65535)
	binary.LittleEndian.PutUint32(b[12:], sn)
	binary.LittleEndian.PutUint32(b[20:], uint32(len(data)))
	return append(b, data...)
}

// The reordering attack: sessions that send 1-byte segments
// numbered 1..65534, never 0, so none can be delivered. The reference
// window held all of them (+339 MB for one session); the bridge must hold
// at most its KCP window per session.
func TestBridgeAttackKCPReordering(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b := startAttackBridge(ctx, t)
	stop := make(chan struct{})
	bd := bounds{rssGrowth: 96 << 20, goroutines: 400}
	w := b.watch(t, bd, stop)
	legit := legitimate(t, b.url, stop)

	const sessions = 8
	var wg sync.WaitGroup
	for range sessions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := rawWebSocket(ctx, b.url, false)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			go io.Copy(io.Discard, c)
			bw := bufio.NewWriterSize(c, 16<<10)
			var pkt []byte
			packets := 0
			for sn := uint32(1); sn < 65535; sn++ {
				pkt = append(pkt, kcpSegment(sn, []byte{byte(sn)})...)
				if len(pkt) <= 1350 && sn < 65534 {
					continue
				}
				encapsulation.WriteData(bw, pkt)
				pkt = pkt[:0]
				if packets++; packets%16 == 0 {
					// Let the engine keep up, so that the segments are
					// not simply dropped at the intake.
					bw.Flush()
					time.Sleep(20 * time.Millisecond)
				}
			}
			bw.Flush()
			time.Sleep(2 * time.Second) // hold the session while the watch samples
		}()
	}
	wg.Wait()
	close(stop)
	if err := <-legit; err != nil {
		t.Error(err)
	}
	w.check(t, b, bd)
}

// Session flood: many WebSockets, each a fresh ClientID with one KCP
// packet, then gone. Sessions stay within the per-source limit and are
// reaped by the first-frame timeout, not minutes later.
func TestBridgeAttackSessionFlood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const perSource = 100
	b := startAttackBridge(ctx, t, "--max-sessions-per-source", strconv.Itoa(perSource), "--first-frame-timeout", "3s")
	stop := make(chan struct{})
	bd := bounds{rssGrowth: 128 << 20, sessions: perSource + 1, goroutines: 10 * perSource}
	w := b.watch(t, bd, stop)
	legit := legitimate(t, b.url, stop)

	const flood = 1500
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	pkt, _ := encapsulation.AppendData(nil, kcpSegment(3, []byte("no smux here")))
	var refused atomic.Int64
	for range flood {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := rawWebSocket(ctx, b.url, false)
			if err != nil {
				refused.Add(1)
				return
			}
			c.Write(pkt)
			c.Close()
		}()
	}
	wg.Wait()
	t.Logf("%d of %d flood WebSockets refused at the upgrade", refused.Load(), flood)
	// The sessions are reaped within the first-frame timeout (3 s) plus
	// the admission grace (5 s).
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := b.counters()
		if err == nil && c.SessionsRunning <= 1 && c.SessionsAdmitted <= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("flood sessions not reaped: %+v", c)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	if err := <-legit; err != nil {
		t.Error(err)
	}
	w.check(t, b, bd)
}

// Stream flood: one session opens 1000 streams. At most
// --max-streams-per-session reach tor.
func TestBridgeAttackStreamFlood(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const perSession = 64
	b := startAttackBridge(ctx, t)
	stop := make(chan struct{})
	// The legitimate client holds one stream at a time.
	bd := bounds{rssGrowth: 96 << 20, torConns: perSession + 1, goroutines: 1000}
	w := b.watch(t, bd, stop)
	legit := legitimate(t, b.url, stop)

	attacker := newTunnelClient(t, b.url, "127.0.0.1")
	var streams []*smux.Stream
	for range 1000 {
		s, err := attacker.sess.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		s.Write([]byte("x"))
		streams = append(streams, s)
	}
	// Wait until the bridge has answered every stream: echoed (within
	// the limit) or closed.
	echoed := 0
	for _, s := range streams {
		s.SetReadDeadline(time.Now().Add(30 * time.Second))
		var one [1]byte
		if n, _ := s.Read(one[:]); n == 1 {
			echoed++
		}
	}
	t.Logf("%d of %d streams reached tor", echoed, len(streams))
	if echoed > perSession {
		t.Errorf("%d streams of one session reached tor, limit %d", echoed, perSession)
	}
	for _, s := range streams {
		s.Close()
	}
	close(stop)
	if err := <-legit; err != nil {
		t.Error(err)
	}
	w.check(t, b, bd)
}

// Trickling connections: the WebSocket slots filled with connections that
// send no prologue, or that trickle padding. A new client still gets a
// slot (by eviction), and the slots stay within the limit.
func TestBridgeAttackTrickle(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const slots = 60
	b := startAttackBridge(ctx, t, "--max-websockets", strconv.Itoa(slots), "--idle-timeout", "4s", "--evict-idle", "2s")
	stop := make(chan struct{})
	bd := bounds{rssGrowth: 64 << 20, websockets: slots, goroutines: 20 * slots}
	w := b.watch(t, bd, stop)

	var wg sync.WaitGroup
	trickleStop := make(chan struct{})
	var opened atomic.Int64
	for i := range 2 * slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := rawWebSocket(ctx, b.url, i%2 == 0)
			if err != nil {
				return // refused: the slots were full of live ones
			}
			opened.Add(1)
			defer c.Close()
			if i%2 == 0 {
				// Silent, before the prologue.
				go func() { io.Copy(io.Discard, c); c.Close() }()
				<-trickleStop
				return
			}
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-trickleStop:
					return
				case <-tick.C:
					if _, err := encapsulation.WritePadding(c, 1); err != nil {
						return // evicted or timed out
					}
				}
			}
		}()
	}
	time.Sleep(time.Second) // let the trickling connections take the slots
	legit := legitimate(t, b.url, stop)
	time.Sleep(6 * time.Second)
	close(stop)
	if err := <-legit; err != nil {
		t.Error(err)
	}
	close(trickleStop)
	wg.Wait()
	t.Logf("%d trickling WebSockets opened", opened.Load())
	w.check(t, b, bd)
}
