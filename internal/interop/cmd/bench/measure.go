package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/snowfall-pt/snowfall/internal/interop"
	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// Roles of the chain's processes, in data-path order. Their CPU adds up to
// the chain's. The harness (this program: the SOCKS side standing in for
// tor, the target standing in for the ORPort, the STUN server, and the
// hashing at both ends) is measured too but kept apart.
var roles = []string{"client", "proxy", "bridge", "broker"}

const (
	harness   = "harness"
	chainRole = "chain"
)

// Phases, in the order each round runs them.
const (
	phaseDown = "download"
	phaseUp   = "upload"
	phaseEcho = "echo"
)

var phases = []string{phaseDown, phaseUp, phaseEcho}

// chainRun is one started chain and the PIDs of its processes.
type chainRun struct {
	spec  chainSpec
	chain *interop.Chain
	pids  map[string]int
	info  []ComponentInfo
}

// snapshot is the CPU time of every process of a chain, and of the whole
// machine, at one moment.
type snapshot struct {
	at      time.Time
	cpu     map[string]testbed.CPUTime
	machine testbed.MachineCPU
	// cliNet and prxNet count the packets of the client's and the proxy's
	// namespaces: the WebRTC path is UDP between them, the proxy's TCP is
	// its WebSocket to the bridge (and the broker's polls).
	cliNet, prxNet testbed.NetCounters
}

func (cr *chainRun) snap() (snapshot, error) {
	s := snapshot{cpu: make(map[string]testbed.CPUTime, len(roles)+1)}
	var err error
	if s.machine, err = testbed.ReadMachineCPU(); err != nil {
		return s, err
	}
	for _, r := range roles {
		if s.cpu[r], err = testbed.ProcessCPU(cr.pids[r]); err != nil {
			return s, fmt.Errorf("%s: %w", r, err)
		}
	}
	if s.cpu[harness], err = testbed.ProcessCPU(os.Getpid()); err != nil {
		return s, err
	}
	if s.cliNet, err = testbed.ReadNetCounters(cr.pids["client"]); err != nil {
		return s, err
	}
	if s.prxNet, err = testbed.ReadNetCounters(cr.pids["proxy"]); err != nil {
		return s, err
	}
	s.at = time.Now()
	return s, nil
}

// cpuBetween is each process's CPU seconds from a to b, with the chain's
// sum.
func cpuBetween(a, b snapshot) map[string]float64 {
	out := make(map[string]float64, len(roles)+2)
	var sum time.Duration
	for _, r := range roles {
		d := b.cpu[r].Sub(a.cpu[r]).Total()
		out[r] = d.Seconds()
		sum += d
	}
	out[chainRole] = sum.Seconds()
	out[harness] = b.cpu[harness].Sub(a.cpu[harness]).Total().Seconds()
	return out
}

// otherLoad is how many cores' worth of CPU the rest of the machine used
// between a and b: everything busy minus this chain and the harness. It
// includes kernel time not charged to any process (softirq network
// processing of our own packets among it), other engineers' builds, and
// the idle chains of this run.
func otherLoad(a, b snapshot, cpu map[string]float64) float64 {
	wall := b.at.Sub(a.at).Seconds()
	if wall <= 0 {
		return 0
	}
	busy := (b.machine.Busy - a.machine.Busy).Seconds()
	return max(0, busy-cpu[chainRole]-cpu[harness]) / wall
}

// netBetween is the packet traffic of the data phase.
func netBetween(a, b snapshot) NetTraffic {
	c, p := b.cliNet.Sub(a.cliNet), b.prxNet.Sub(a.prxNet)
	return NetTraffic{
		ClientUDPOut: c.UDPOut, ClientUDPIn: c.UDPIn,
		UDPRcvbufDrops: c.UDPRcvbufErrors + p.UDPRcvbufErrors,
		ProxyTCPOut:    p.TCPOut, ProxyTCPIn: p.TCPIn, ProxyTCPRetrans: p.TCPRetrans,
	}
}

// markConn calls mark once, when the first bytes arrive: the end of setup
// and the start of the data phase.
type markConn struct {
	net.Conn
	once sync.Once
	mark func()
}

func (c *markConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.once.Do(c.mark)
	}
	return n, err
}

type bench struct {
	o     options
	start time.Time
	runs  []*chainRun
	tor   *testbed.Upstream // Tor's current programs, built on first use
}

// maxLoadedEchoes bounds the probe beside one transfer.
const maxLoadedEchoes = 100_000

func msList(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

func (b *bench) say(format string, args ...any) {
	fmt.Printf("[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// measure starts every chain, runs the rounds, and summarises.
func measure(ctx context.Context, o options) (*Report, error) {
	b := &bench{o: o, start: time.Now()}
	rep := &Report{
		Date:    time.Now().UTC(),
		Machine: machineInfo(),
		Params: Params{SizeBytes: o.size, Echoes: o.echoes, EchoSize: o.echoSize, Rounds: o.rounds,
			Profiled: o.profile, Quick: o.quick},
	}
	for _, l := range o.links {
		shaping := "none"
		if !l.clean() {
			shaping = l.Link.String() + ", each way"
		}
		rep.Params.Links = append(rep.Params.Links, LinkInfo{Name: l.Name, Label: l.Label, Shaping: shaping, SizeBytes: l.size(o.size, o.quick)})
	}
	bins, err := testbed.NewBinaries()
	if err != nil {
		return nil, err
	}
	defer bins.Close()
	if os.Getenv(testbed.BinEnv) == "" {
		b.say("%s is not set: building Snowfall's programs…", testbed.BinEnv)
	}

	var runs []*chainRun
	defer func() {
		for _, cr := range runs {
			cr.chain.Close()
		}
		if len(runs) > 0 {
			b.say("stopped every chain and removed the namespaces")
		}
	}()
	for _, spec := range o.chains {
		cbins := bins
		if spec.BinDir != "" {
			if cbins, err = binariesIn(spec.BinDir); err != nil {
				return nil, err
			}
		}
		cr, err := b.startChain(ctx, cbins, spec)
		if err != nil {
			return nil, fmt.Errorf("start %s: %w", spec.label(), err)
		}
		runs = append(runs, cr)
		b.runs = runs
	}

	for round := 1; round <= o.rounds; round++ {
		for li, link := range o.links {
			order := append([]*chainRun(nil), runs...)
			if (round+li)%2 == 0 {
				// Alternate the order so that no chain always runs first.
				slices.Reverse(order)
			}
			for _, cr := range order {
				res, err := b.runLink(ctx, cr, link, round)
				if err != nil {
					return nil, fmt.Errorf("%s, %s, round %d: %w", cr.spec.label(), link.Label, round, err)
				}
				rep.Phases = append(rep.Phases, res...)
			}
		}
	}

	for _, cr := range runs {
		for i := range cr.info {
			if rss, err := testbed.ProcessPeakRSS(cr.info[i].PID); err == nil {
				cr.info[i].PeakRSSMB = float64(rss) / 1e6
			}
		}
	}
	// Link by link, so that the tables put the chains side by side.
	for _, link := range o.links {
		for _, cr := range runs {
			rep.Chains = append(rep.Chains, summarise(cr, link, rep.Phases))
		}
	}
	rep.Goals = goals(rep.Chains)
	rep.Comparison = compare(rep.Chains)
	return rep, nil
}

// binariesIn finds prebuilt programs in dir. testbed.NewBinaries takes its
// directory from the environment only, and nothing else runs yet.
func binariesIn(dir string) (*testbed.Binaries, error) {
	if _, err := os.Stat(filepath.Join(dir, "snowfall-server")); err != nil {
		return nil, fmt.Errorf("-chains @%s: %w", dir, err)
	}
	old, had := os.LookupEnv(testbed.BinEnv)
	os.Setenv(testbed.BinEnv, dir)
	defer func() {
		if had {
			os.Setenv(testbed.BinEnv, old)
		} else {
			os.Unsetenv(testbed.BinEnv)
		}
	}()
	return testbed.NewBinaries()
}

func indexOf(runs []*chainRun, cr *chainRun) int {
	for i, r := range runs {
		if r == cr {
			return i
		}
	}
	return -1
}

func (b *bench) startChain(ctx context.Context, bins *testbed.Binaries, spec chainSpec) (*chainRun, error) {
	b.say("starting %s: client %s, proxy %s, Snowfall's broker and bridge", spec.label(), spec.Client, spec.Proxy)
	if (spec.Client == interop.Upstream || spec.Proxy == interop.Upstream) && b.tor == nil {
		b.say("building Tor's current Snowflake programs (cached after the first build)")
		tor, err := interop.BuildTor(ctx)
		if err != nil {
			return nil, fmt.Errorf("building Tor's programs: %w", err)
		}
		b.tor = tor
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := interop.Start(sctx, interop.Config{
		Dir: filepath.Join(b.o.dir, spec.slug()), Bins: bins, Tor: b.tor,
		Client: spec.Client, Proxy: spec.Proxy,
		// Setup times stay measured as in the recorded results, from a
		// client started together with its proxy.
		NoProxyWait: true,
		Logf:        func(format string, args ...any) { b.say("  "+format, args...) },
	})
	if err != nil {
		return nil, err
	}
	cr := &chainRun{spec: spec, chain: c, pids: map[string]int{
		"client": c.Client.PID(),
		"proxy":  c.ProxyProcs[0].PID(),
		"bridge": c.Bridge.PID(),
		"broker": c.Broker.PID(),
	}}
	for _, comp := range c.Components {
		role := comp.Role
		if role == "proxy0" {
			role = "proxy"
		}
		if _, ok := cr.pids[role]; !ok {
			continue
		}
		cr.info = append(cr.info, componentInfo(role, comp))
	}
	sort.Slice(cr.info, func(i, j int) bool { return indexOfRole(cr.info[i].Role) < indexOfRole(cr.info[j].Role) })
	return cr, nil
}

func indexOfRole(r string) int {
	for i, x := range roles {
		if x == r {
			return i
		}
	}
	return len(roles)
}

// dial opens a stream through the chain, retrying while no proxy has been
// matched yet (each attempt is a whole rendezvous).
func (cr *chainRun) dial(ctx context.Context) (net.Conn, error) {
	var errs []error
	for attempt := 1; attempt <= 3 && ctx.Err() == nil; attempt++ {
		dctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		conn, err := cr.chain.Dial(dctx)
		cancel()
		if err == nil {
			return conn, nil
		}
		errs = append(errs, fmt.Errorf("attempt %d: %w", attempt, err))
		if aerr := cr.chain.CheckAlive(); aerr != nil {
			return nil, errors.Join(append(errs, aerr)...)
		}
	}
	return nil, errors.Join(errs...)
}

// runLink shapes the chain's WebRTC path as link says, runs every phase,
// and removes the shaping.
func (b *bench) runLink(ctx context.Context, cr *chainRun, link linkProfile, round int) ([]PhaseResult, error) {
	var sh *interop.Shaped
	if !link.clean() {
		imp := link.impairment(round)
		var err error
		if sh, err = cr.chain.Shape(ctx, imp); err != nil {
			return nil, err
		}
		defer sh.Close()
		b.say("%s: shaping the WebRTC path, down %v; up %v", cr.spec.label(), imp.Down, imp.Up)
	}
	var out []PhaseResult
	for pi, phase := range phases {
		seed := uint64(round*1000 + indexOf(b.runs, cr)*100 + indexOfLink(b.o.links, link)*10 + pi)
		before := shapedCounts(sh)
		res, err := b.runPhase(ctx, cr, link, phase, round, seed)
		if err != nil {
			// On an impaired link a chain that stalls or gives up is a
			// result, not a broken bench: note it and go on. Wrong bytes
			// are never a result, and a clean link must work.
			if link.clean() || integrityError(err) || ctx.Err() != nil {
				return nil, fmt.Errorf("%s: %w", phase, err)
			}
			b.say("  FAILED on %s: %v", link.Label, err)
			res.Failed = err.Error()
		}
		after := shapedCounts(sh)
		res.ShapedPackets, res.ShapedLost, res.ShapedOverflow = after[0]-before[0], after[1]-before[1], after[2]-before[2]
		out = append(out, res)
	}
	if sh != nil {
		for _, s := range append([]*testbed.Shaper{sh.Down}, sh.Up...) {
			if ks, err := s.KernelStats(); err == nil && ks.QueueDropped+ks.UserDropped > 0 {
				// The shaper fell behind: the kernel dropped packets beyond
				// the configured loss. Say so rather than hide it.
				b.say("  WARNING: %v: kernel dropped %d packets the shaper never saw", s, ks.QueueDropped+ks.UserDropped)
			}
		}
	}
	return out, nil
}

// shapedCounts sums packets seen, lost and dropped by the queue over both
// directions.
func shapedCounts(sh *interop.Shaped) [3]int64 {
	var c [3]int64
	if sh == nil {
		return c
	}
	for _, s := range append([]*testbed.Shaper{sh.Down}, sh.Up...) {
		if s == nil {
			continue
		}
		st := s.Stats()
		c[0] += st.Packets
		c[1] += st.Lost
		c[2] += st.Overflow
	}
	return c
}

// integrityError reports an error that says bytes arrived wrong, as
// testbed's transfers word it (they return no typed errors).
func integrityError(err error) bool {
	msg := err.Error()
	for _, w := range []string{"content differs", "hash mismatch", "target says", "integrity"} {
		if strings.Contains(msg, w) {
			return true
		}
	}
	return false
}

func indexOfLink(links []linkProfile, l linkProfile) int {
	for i, x := range links {
		if x.Name == l.Name {
			return i
		}
	}
	return -1
}

// runPhase opens a fresh stream and runs one phase on it. CPU is read
// before the stream is requested, when the first bytes arrive, and at the
// end, so that the connection's setup (rendezvous, ICE, DTLS, SCTP, KCP and
// smux) is counted apart from the data.
func (b *bench) runPhase(ctx context.Context, cr *chainRun, link linkProfile, phase string, round int, seed uint64) (PhaseResult, error) {
	res := PhaseResult{Chain: cr.spec.label(), Client: cr.spec.Client, Proxy: cr.spec.Proxy, Link: link.Name, Round: round, Phase: phase}
	size := link.size(b.o.size, b.o.quick)
	ctx, cancel := context.WithTimeout(ctx, b.o.phaseTimeout)
	defer cancel()

	var prof *profiler
	if b.o.profile && phase != phaseEcho {
		name := fmt.Sprintf("%s-%s-r%d-%s", cr.spec.slug(), link.Name, round, phase)
		prof = startProfiler(filepath.Join(b.o.dir, "profiles"), name, cr.pids)
		defer prof.stop()
	}

	switch phase {
	case phaseDown:
		b.say("%s, %s, round %d: download %d bytes with echoes beside…", cr.spec.label(), link.Label, round, size)
	case phaseUp:
		b.say("%s, %s, round %d: upload %d bytes with echoes beside…", cr.spec.label(), link.Label, round, size)
	case phaseEcho:
		b.say("%s, %s, round %d: %d echoes of %d bytes…", cr.spec.label(), link.Label, round, b.o.echoes, b.o.echoSize)
	}
	// The probe's stream is opened before the first reading, so its setup
	// is not the transfer's.
	var pr *probe
	if phase != phaseEcho {
		var err error
		if pr, err = openProbe(ctx, cr, b.o.echoSize, seed^0xec40); err != nil {
			return res, fmt.Errorf("echo stream beside the transfer: %w", err)
		}
		defer pr.close()
	}
	s0, err := cr.snap()
	if err != nil {
		return res, err
	}
	conn, err := cr.dial(ctx)
	if err != nil {
		return res, fmt.Errorf("no stream through the chain: %w\nclient log tail:\n%s", err, testbed.Tail(cr.chain.ClientLog, 15))
	}
	var (
		s1    snapshot
		s1err error
	)
	// The probe starts when the transfer's data does, and stops when it
	// ends.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	type probeResult struct {
		rtts []time.Duration
		err  error
	}
	probed := make(chan probeResult, 1)
	mc := &markConn{Conn: conn, mark: func() {
		s1, s1err = cr.snap()
		if pr != nil {
			go func() {
				rtts, err := pr.run(loadCtx, maxLoadedEchoes)
				probed <- probeResult{rtts, err}
			}()
		}
	}}

	var tr testbed.Transfer
	var rtts []time.Duration
	switch phase {
	case phaseDown:
		tr, err = testbed.Download(ctx, mc, size, seed)
	case phaseUp:
		tr, err = testbed.Upload(ctx, mc, size, seed)
	case phaseEcho:
		rtts, err = testbed.EchoRoundTrips(ctx, mc, b.o.echoes, b.o.echoSize, seed)
	}
	s2, serr := cr.snap()
	// Once.Do returns only after mark has run, if it ran: s1 is safe to read.
	marked := true
	mc.once.Do(func() { marked = false })
	stopLoad()
	var loaded probeResult
	if marked && pr != nil {
		loaded = <-probed
	}
	if err != nil {
		return res, fmt.Errorf("%w\n%v", err, cr.chain.CheckAlive())
	}
	if serr != nil {
		return res, serr
	}
	if !marked {
		return res, errors.New("no data arrived")
	}
	if s1err != nil {
		return res, s1err
	}
	if err := cr.chain.CheckAlive(); err != nil {
		return res, err
	}
	if loaded.err != nil {
		return res, fmt.Errorf("echoes beside the transfer: %w", loaded.err)
	}
	res.LoadedRTTsMs = msList(loaded.rtts)

	// Setup runs from the SOCKS request to the first byte, whether the
	// client grants SOCKS before its rendezvous (Tor's) or after (ours).
	res.SetupSeconds = s1.at.Sub(s0.at).Seconds()
	res.SetupCPU = cpuBetween(s0, s1)
	res.DataCPU = cpuBetween(s1, s2)
	res.OtherLoadCores = otherLoad(s1, s2, res.DataCPU)
	res.Net = netBetween(s1, s2)
	switch phase {
	case phaseDown, phaseUp:
		// Download and Upload fail on a hash mismatch; check once more so a
		// change there can never let one through silently.
		if !tr.OK() || tr.Bytes != size {
			return res, fmt.Errorf("integrity: %v", tr)
		}
		res.Bytes = tr.Bytes
		res.DataSeconds = tr.Duration.Seconds()
		res.MBps = tr.MBps()
		res.SHA256 = tr.SHA256
		st := rttStats(res.LoadedRTTsMs)
		b.say("  %.2f MB/s after %.2fs of setup, sha256 %.16s… OK; chain CPU %.0f ms/MB; %d echoes beside, median %.1f ms, p95 %.1f ms",
			res.MBps, res.SetupSeconds, res.SHA256, 1000*res.DataCPU[chainRole]/(float64(res.Bytes)/1e6),
			st.Count, st.MedianMs, st.P95Ms)
	case phaseEcho:
		if len(rtts) != b.o.echoes {
			return res, fmt.Errorf("%d round trips, want %d", len(rtts), b.o.echoes)
		}
		res.Bytes = int64(len(rtts) * b.o.echoSize)
		res.DataSeconds = s2.at.Sub(s1.at).Seconds()
		res.RTTsMs = msList(rtts)
		st := rttStats(res.RTTsMs)
		b.say("  round trip median %.2f ms, p95 %.2f ms, all content checked", st.MedianMs, st.P95Ms)
	}
	if prof != nil {
		prof.stop()
		prof.report(b.say)
	}
	return res, nil
}
