//go:build integration

package interop

import (
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// failoverSize is the download during which proxies are killed.
const failoverSize = 1_000_000_000

// failoverBound is the longest pause in the data allowed after a kill
// while a spare proxy is attached: 1 s to notice the silence, then the
// spare carries on.
const failoverBound = 2 * time.Second

// A kill waits up to steadyWait for the session to be steady: two proxies
// carrying traffic in steadySamples half-second samples in a row (2 s).
const (
	steadySamples = 4
	steadyWait    = 30 * time.Second
)

// minSpareKills is how many of the three kills must find the session
// steady with a spare through another proxy: the client refuses a second
// channel through the proxy in use, so only a broker with no other proxy
// to give leaves it without one.
const minSpareKills = 2

// attachedProxies counts the proxies the client has attached to its
// session so far, from its log.
func attachedProxies(t *testing.T, logPath string) int {
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Errorf("reading client log: %v", err)
		return 0
	}
	return strings.Count(string(b), `msg="proxy attached"`)
}

// TestSnowfallClientFailover downloads 1 GB through snowfall-client with
// six Debian proxies polling (so that two kills still leave the broker a
// choice of proxies besides the one carrying the session), and kills the
// proxy process carrying the session three times (SIGKILL, so it says
// goodbye to no one). Each kill waits (up to steadyWait) until the session
// is steady with a spare (max=2) through another proxy. After such a kill
// the session must move to the spare with at most failoverBound without
// data, and at least minSpareKills kills must be such; the download must
// complete with the right hash. The pause after each kill is reported.
func TestSnowfallClientFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := startChain(ctx, t, Config{Client: Snowfall, Proxy: Debian, Proxies: 6})

	// Keep a spare proxy (max=2), as a user would to shorten stalls.
	args := append(c.BridgeArgs(), testbed.Arg{Key: "max", Value: "2"})
	var conn *testbed.ProgressConn
	for attempt := 1; conn == nil; attempt++ {
		dctx, dcancel := context.WithTimeout(ctx, 90*time.Second)
		raw, err := c.Client.Dial(dctx, PlaceholderBridge, args)
		dcancel()
		if err == nil {
			conn = &testbed.ProgressConn{Conn: raw}
		} else if attempt == 3 {
			t.Fatalf("dial: %v\n%s", err, testbed.Tail(c.ClientLog, 20))
		}
	}

	type kill struct {
		at    time.Time
		pid   int
		ns    string
		spare bool // the session was steady with a spare through another proxy
	}
	var (
		mu    sync.Mutex
		kills []kill
	)
	killerDone := make(chan struct{})
	stopKiller := make(chan struct{})
	go func() {
		defer close(killerDone)
		for i := 1; i <= 3; i++ {
			// Kill at 10 %, 30 % and 50 % of the download, or later
			// if the spare is not there yet: i+1 proxies attached.
			mark := int64(failoverSize) * int64(10+20*(i-1)) / 100
			for conn.Total() < mark || attachedProxies(t, c.ClientLog) < i+1 {
				select {
				case <-stopKiller:
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
			// Kill only a steady session: two proxies (distinct
			// processes, so the spare is through another proxy)
			// carrying traffic for steadySamples half-second samples
			// in a row. A session still settling after the previous
			// kill (a fresh spare, a switch) would measure that, not
			// the failover. If it never gets steady, kill the proxy
			// carrying most anyway; that kill is reported, not bounded.
			var p *testbed.Process
			steady := 0
			for wait := time.Now().Add(steadyWait); steady < steadySamples && time.Now().Before(wait); {
				q, active := servingProxy(c)
				if q != nil {
					p = q
				}
				if q != nil && active >= 2 && attachedProxies(t, c.ClientLog) >= i+1 {
					steady++
				} else {
					steady = 0
				}
			}
			if p == nil || !p.Running() {
				t.Errorf("kill %d: no proxy is carrying traffic (%d MB of %d received)", i, conn.Total()/1_000_000, failoverSize/1_000_000)
				return
			}
			at := time.Now()
			if err := syscall.Kill(p.PID(), syscall.SIGKILL); err != nil {
				t.Errorf("kill %d: %v", i, err)
				return
			}
			mu.Lock()
			kills = append(kills, kill{at: at, pid: p.PID(), ns: p.Name, spare: steady >= steadySamples})
			mu.Unlock()
			t.Logf("kill %d at %d MB: SIGKILL to %s (pid %d)", i, conn.Total()/1_000_000, p.Name, p.PID())
		}
	}()

	down, err := testbed.Download(ctx, conn, failoverSize, 31)
	close(stopKiller)
	<-killerDone
	if err != nil {
		t.Fatalf("download: %v (%v)\nclient log tail:\n%s", err, down, testbed.Tail(c.ClientLog, 30))
	}
	t.Logf("%v", down)
	end := time.Now()

	mu.Lock()
	defer mu.Unlock()
	withSpare := 0
	for i, k := range kills {
		until := end
		if i+1 < len(kills) {
			until = kills[i+1].at
		}
		gap := conn.LongestGap(k.at, until)
		t.Logf("stall after kill %d (%s, spare through another proxy: %v): %v with no data", i+1, k.ns, k.spare, gap.Round(10*time.Millisecond))
		if k.spare {
			withSpare++
			if gap > failoverBound {
				t.Errorf("kill %d: %v without data, want at most %v with a spare attached", i+1, gap.Round(10*time.Millisecond), failoverBound)
			}
		}
	}
	if len(kills) != 3 {
		t.Errorf("%d kills, want 3", len(kills))
	}
	if withSpare < minSpareKills {
		t.Errorf("%d of %d kills found a steady session with a spare through another proxy, want at least %d", withSpare, len(kills), minSpareKills)
	}

	log, err := os.ReadFile(c.ClientLog)
	if err != nil {
		t.Fatal(err)
	}
	// A killed proxy that was only receiving (the bridge sends on every
	// carrier) needs no switch, so switches are reported, not counted;
	// each kill waited for a fresh spare.
	t.Logf("client switched sending to another proxy %d times", strings.Count(string(log), `msg="switching to another proxy"`))
	if n := strings.Count(string(log), `msg="proxy attached"`); n < 4 {
		t.Errorf("client attached %d proxies, want at least 4 (two, then one per kill)", n)
	}
	if ids := strings.Count(string(log), `msg="session started"`); ids != 1 {
		t.Errorf("%d sessions started, want 1 (the session must survive)", ids)
	}
}

// servingProxy returns the live proxy process whose namespace moves the
// most bytes over half a second, and how many live proxies carry traffic
// (the bridge sends on every carrier, so a spare moves bytes too).
func servingProxy(c *Chain) (*testbed.Process, int) {
	type sample struct {
		p      *testbed.Process
		before uint64
	}
	var live []sample
	for _, p := range c.ProxyProcs {
		if !p.Running() {
			continue
		}
		rx, tx, err := testbed.NetBytes(p.PID())
		if err != nil {
			continue
		}
		live = append(live, sample{p, rx + tx})
	}
	time.Sleep(500 * time.Millisecond)
	var best *testbed.Process
	var most uint64
	active := 0
	for _, s := range live {
		rx, tx, err := testbed.NetBytes(s.p.PID())
		if err != nil {
			continue
		}
		d := rx + tx - s.before
		if d >= 50_000 {
			active++
		}
		if d > most {
			best, most = s.p, d
		}
	}
	if most < 100_000 {
		return nil, active
	}
	return best, active
}

// idleSpell is longer than two of Tor's proxy inactivity timeouts (30 s)
// and the client's own stale timeout (20 s).
const idleSpell = 75 * time.Second

// TestSnowfallClientIdleSpares holds a session with a spare (max=2) through
// two of Tor's 2.5.1 proxies and leaves it idle for 75 s. Heartbeats must
// keep both proxies: neither closes its channel for inactivity, the client
// collects no replacement, and data flows again afterwards.
func TestSnowfallClientIdleSpares(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := startChain(ctx, t, Config{Client: Snowfall, Proxy: Debian, Proxies: 2})
	args := append(c.BridgeArgs(), testbed.Arg{Key: "max", Value: "2"})
	dial := func() net.Conn {
		for attempt := 1; ; attempt++ {
			dctx, dcancel := context.WithTimeout(ctx, 90*time.Second)
			conn, err := c.Client.Dial(dctx, PlaceholderBridge, args)
			dcancel()
			if err == nil {
				return conn
			}
			if attempt == 3 {
				t.Fatalf("dial: %v\n%s", err, testbed.Tail(c.ClientLog, 20))
			}
		}
	}
	hold := dial() // keeps the session while the others come and go
	defer hold.Close()
	if _, err := testbed.Download(ctx, dial(), 1_000_000, 41); err != nil {
		t.Fatalf("first download: %v", err)
	}
	for deadline := time.Now().Add(time.Minute); attachedProxies(t, c.ClientLog) < 2; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no spare attached within a minute\n%s", testbed.Tail(c.ClientLog, 20))
		}
	}
	t.Logf("idle for %v with 2 proxies attached", idleSpell)
	select {
	case <-time.After(idleSpell):
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	if _, err := testbed.Download(ctx, dial(), 1_000_000, 42); err != nil {
		t.Fatalf("download after the idle spell: %v\n%s", err, testbed.Tail(c.ClientLog, 20))
	}
	if n := attachedProxies(t, c.ClientLog); n != 2 {
		t.Errorf("client attached %d proxies, want 2 (a spare was lost while idle)", n)
	}
	for _, p := range c.ProxyProcs {
		for _, path := range []string{p.StderrPath, p.StdoutPath} {
			b, _ := os.ReadFile(path)
			if strings.Contains(string(b), "Closed connection due to inactivity") {
				t.Errorf("%s closed a channel for inactivity", p.Name)
			}
		}
	}
	if err := c.CheckAlive(); err != nil {
		t.Error(err)
	}
}
