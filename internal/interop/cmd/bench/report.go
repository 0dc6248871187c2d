package main

import (
	"bytes"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/snowfall-pt/snowfall/internal/interop"
)

// Report is everything one run measured; -json writes it as is.
type Report struct {
	Date       time.Time     `json:"date"`
	Machine    Machine       `json:"machine"`
	Params     Params        `json:"params"`
	Chains     []ChainReport `json:"chains"`
	Comparison *Comparison   `json:"comparison,omitempty"`
	Goals      []Goal        `json:"goals,omitempty"`
	// Plot is the throughput-against-loss SVG written, if any.
	Plot string `json:"plot,omitempty"`
	// Phases are the raw results, one per chain, round and phase.
	Phases []PhaseResult `json:"phases"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpu_model"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go_version"`
	// LoadAvg is /proc/loadavg when the run started.
	LoadAvg string `json:"loadavg"`
}

// Params are the run's settings.
type Params struct {
	SizeBytes int64 `json:"size_bytes"`
	Echoes    int   `json:"echoes"`
	EchoSize  int   `json:"echo_size"`
	Rounds    int   `json:"rounds"`
	Profiled  bool  `json:"profiled"`
	Quick     bool  `json:"quick"`
	// Links are the link profiles measured, with their transfer sizes.
	Links []LinkInfo `json:"links"`
}

// LinkInfo describes one link profile of the grid.
type LinkInfo struct {
	Name      string `json:"name"`
	Label     string `json:"label"`
	Shaping   string `json:"shaping"`
	SizeBytes int64  `json:"size_bytes"`
}

// ComponentInfo describes one process of a chain.
type ComponentInfo struct {
	Role      string `json:"role"`
	Program   string `json:"program"`
	Version   string `json:"version"`
	GoVersion string `json:"go_version,omitempty"`
	// Deps lists the versions of the modules on the data path, when the
	// binary records them.
	Deps      []string `json:"deps,omitempty"`
	PID       int      `json:"pid"`
	PeakRSSMB float64  `json:"peak_rss_mb"`
}

// PhaseResult is one phase on one stream. CPU maps hold seconds by role,
// with "chain" (the sum of the roles) and "harness".
type PhaseResult struct {
	Chain        string             `json:"chain"`
	Client       string             `json:"client"`
	Proxy        string             `json:"proxy"`
	Link         string             `json:"link"`
	Round        int                `json:"round"`
	Phase        string             `json:"phase"`
	Bytes        int64              `json:"bytes"`
	SetupSeconds float64            `json:"setup_s"`
	DataSeconds  float64            `json:"data_s"`
	MBps         float64            `json:"mb_per_s,omitempty"`
	SHA256       string             `json:"sha256,omitempty"`
	SetupCPU     map[string]float64 `json:"setup_cpu_s"`
	DataCPU      map[string]float64 `json:"data_cpu_s"`
	// OtherLoadCores is the rest of the machine's CPU use during the data
	// phase, in cores.
	OtherLoadCores float64    `json:"other_load_cores"`
	Net            NetTraffic `json:"net"`
	RTTsMs         []float64  `json:"rtts_ms,omitempty"`
	// Failed says why the phase did not complete (impaired links only:
	// anywhere else, and for wrong bytes anywhere, the run stops).
	Failed string `json:"failed,omitempty"`
	// LoadedRTTsMs are the round trips of the echo stream beside a
	// transfer.
	LoadedRTTsMs []float64 `json:"loaded_rtts_ms,omitempty"`
	// Shaped* count what the link shapers saw and dropped during the
	// phase, both directions together.
	ShapedPackets  int64 `json:"shaped_packets,omitempty"`
	ShapedLost     int64 `json:"shaped_lost,omitempty"`
	ShapedOverflow int64 `json:"shaped_overflow,omitempty"`
}

// NetTraffic counts packets during a data phase: UDP datagrams of the
// client's namespace (the WebRTC path to the proxy), TCP segments of the
// proxy's (its WebSocket to the bridge), and datagrams dropped by full UDP
// receive buffers on either WebRTC end.
type NetTraffic struct {
	ClientUDPOut    int64 `json:"client_udp_out"`
	ClientUDPIn     int64 `json:"client_udp_in"`
	UDPRcvbufDrops  int64 `json:"udp_rcvbuf_drops"`
	ProxyTCPOut     int64 `json:"proxy_tcp_out"`
	ProxyTCPIn      int64 `json:"proxy_tcp_in"`
	ProxyTCPRetrans int64 `json:"proxy_tcp_retrans"`
}

// TransferSummary sums up one direction of one chain over the rounds.
type TransferSummary struct {
	// MBps is the median over rounds; Rounds has each.
	MBps float64 `json:"mb_per_s"`
	// Failures counts rounds that did not complete; their figures are left
	// out of the rest.
	Failures int       `json:"failures,omitempty"`
	Rounds   []float64 `json:"mb_per_s_rounds"`
	// CPUmsPerMB is CPU milliseconds per megabyte during the data phase,
	// total CPU over total bytes of all rounds, by role.
	CPUmsPerMB map[string]float64 `json:"cpu_ms_per_mb"`
	// SetupSeconds is the median time from the SOCKS request to the first
	// byte; SetupCPUms the mean CPU the chain spent on it.
	SetupSeconds   float64 `json:"setup_s"`
	SetupCPUms     float64 `json:"setup_chain_cpu_ms"`
	OtherLoadCores float64 `json:"other_load_cores"`
	// UDPPerMB is the WebRTC path's datagrams (both ways) per MB carried,
	// TCPPerMB the proxy's WebSocket segments (both ways) per MB, and
	// UDPDropsPerMB the receive-buffer drops per MB.
	UDPPerMB      float64 `json:"udp_datagrams_per_mb"`
	TCPPerMB      float64 `json:"proxy_tcp_segments_per_mb"`
	UDPDropsPerMB float64 `json:"udp_rcvbuf_drops_per_mb"`
	// Loaded are the round trips of the echo stream beside the transfer.
	Loaded RTTStats `json:"loaded_echo"`
	// ShapedLossPct is the share of packets the shapers dropped (random
	// loss and queue overflow) during the transfer.
	ShapedLossPct float64 `json:"shaped_loss_pct"`
}

// EchoSummary sums up the round trips of one chain over the rounds.
type EchoSummary struct {
	RTTStats
	// ChainCPUmsPerRT is the chain's CPU per round trip.
	ChainCPUmsPerRT float64 `json:"chain_cpu_ms_per_rt"`
}

// RTTStats describes a set of round-trip times.
type RTTStats struct {
	Count    int     `json:"count"`
	MinMs    float64 `json:"min_ms"`
	MedianMs float64 `json:"median_ms"`
	P95Ms    float64 `json:"p95_ms"`
	MaxMs    float64 `json:"max_ms"`
}

// ChainReport sums up one chain on one link.
type ChainReport struct {
	Label      string          `json:"label"`
	Link       string          `json:"link"`
	LinkLabel  string          `json:"link_label"`
	Client     string          `json:"client"`
	Proxy      string          `json:"proxy"`
	BinDir     string          `json:"bin_dir,omitempty"`
	Components []ComponentInfo `json:"components"`
	Download   TransferSummary `json:"download"`
	Upload     TransferSummary `json:"upload"`
	Echo       EchoSummary     `json:"echo"`
}

// Comparison puts Snowfall next to Tor's 2.5.1 measured in the same run.
// Throughput ratios above 1 and CPU ratios below 1 favour Snowfall.
type Comparison struct {
	DownMBps       float64 `json:"down_mbps_ratio"`
	UpMBps         float64 `json:"up_mbps_ratio"`
	DownCPU        float64 `json:"down_chain_cpu_ratio"`
	UpCPU          float64 `json:"up_chain_cpu_ratio"`
	EchoMedian     float64 `json:"echo_median_ratio"`
	MeetsUpstream  bool    `json:"meets_newest_upstream"`
	UpstreamReason string  `json:"newest_upstream_note"`
}

// Reference figures from the issue, measured on this kind of machine with
// a veth pair: Tor's 2.5.1 and a 2026 upstream build. Only their ratio is
// comparable across runs, since load changes.
const (
	ref251MBps      = 3.3
	ref251CPU       = 380.0
	refUpstreamMBps = 10.0
	refUpstreamCPU  = 130.0
)

func summarise(cr *chainRun, link linkProfile, all []PhaseResult) ChainReport {
	cs := ChainReport{Label: cr.spec.label(), Link: link.Name, LinkLabel: link.Label,
		Client: cr.spec.Client, Proxy: cr.spec.Proxy, BinDir: cr.spec.BinDir, Components: cr.info}
	var echoRTTs []float64
	var echoCPU float64
	failures := map[string]int{}
	for _, phase := range phases {
		var rs []PhaseResult
		for _, r := range all {
			if r.Chain == cs.Label && r.Link == cs.Link && r.Phase == phase {
				if r.Failed != "" {
					failures[phase]++
					continue
				}
				rs = append(rs, r)
			}
		}
		if len(rs) == 0 {
			ts := TransferSummary{MBps: math.NaN(), Failures: failures[phase], Loaded: RTTStats{}}
			switch phase {
			case phaseDown:
				cs.Download = ts
			case phaseUp:
				cs.Upload = ts
			}
			continue
		}
		if phase == phaseEcho {
			for _, r := range rs {
				echoRTTs = append(echoRTTs, r.RTTsMs...)
				echoCPU += r.DataCPU[chainRole]
			}
			continue
		}
		ts := TransferSummary{CPUmsPerMB: make(map[string]float64)}
		var mb, setupCPU, other float64
		var setups, loaded []float64
		var shaped, shapedDrops int64
		for _, r := range rs {
			loaded = append(loaded, r.LoadedRTTsMs...)
			shaped += r.ShapedPackets
			shapedDrops += r.ShapedLost + r.ShapedOverflow
			ts.Rounds = append(ts.Rounds, r.MBps)
			setups = append(setups, r.SetupSeconds)
			mb += float64(r.Bytes) / 1e6
			setupCPU += r.SetupCPU[chainRole]
			other += r.OtherLoadCores
			ts.UDPPerMB += float64(r.Net.ClientUDPIn + r.Net.ClientUDPOut)
			ts.TCPPerMB += float64(r.Net.ProxyTCPIn + r.Net.ProxyTCPOut)
			ts.UDPDropsPerMB += float64(r.Net.UDPRcvbufDrops)
			for k, v := range r.DataCPU {
				ts.CPUmsPerMB[k] += v
			}
		}
		for k := range ts.CPUmsPerMB {
			ts.CPUmsPerMB[k] *= 1000 / mb
		}
		ts.UDPPerMB /= mb
		ts.TCPPerMB /= mb
		ts.UDPDropsPerMB /= mb
		ts.MBps = median(ts.Rounds)
		ts.SetupSeconds = median(setups)
		ts.SetupCPUms = 1000 * setupCPU / float64(len(rs))
		ts.OtherLoadCores = other / float64(len(rs))
		ts.Loaded = rttStats(loaded)
		ts.Failures = failures[phase]
		if shaped > 0 {
			ts.ShapedLossPct = 100 * float64(shapedDrops) / float64(shaped)
		}
		if phase == phaseDown {
			cs.Download = ts
		} else {
			cs.Upload = ts
		}
	}
	cs.Echo.RTTStats = rttStats(echoRTTs)
	if len(echoRTTs) > 0 {
		cs.Echo.ChainCPUmsPerRT = 1000 * echoCPU / float64(len(echoRTTs))
	}
	return cs
}

func compare(chains []ChainReport) *Comparison {
	var ours, theirs *ChainReport
	for i := range chains {
		c := &chains[i]
		if c.BinDir != "" || c.Link != "clean" {
			continue // another build, for the reader to compare
		}
		switch {
		case c.Client == interop.Snowfall && c.Proxy == interop.Snowfall:
			ours = c
		case c.Client == interop.Debian && c.Proxy == interop.Debian:
			theirs = c
		}
	}
	if ours == nil || theirs == nil {
		return nil
	}
	cmp := &Comparison{
		DownMBps:   ratio(ours.Download.MBps, theirs.Download.MBps),
		UpMBps:     ratio(ours.Upload.MBps, theirs.Upload.MBps),
		DownCPU:    ratio(ours.Download.CPUmsPerMB[chainRole], theirs.Download.CPUmsPerMB[chainRole]),
		UpCPU:      ratio(ours.Upload.CPUmsPerMB[chainRole], theirs.Upload.CPUmsPerMB[chainRole]),
		EchoMedian: ratio(ours.Echo.MedianMs, theirs.Echo.MedianMs),
	}
	// The newest upstream did refUpstreamMBps/ref251MBps times 2.5.1's
	// throughput for refUpstreamCPU/ref251CPU of its CPU: hold our ratios,
	// measured under the same load as 2.5.1, to the same bar.
	needMBps, needCPU := refUpstreamMBps/ref251MBps, refUpstreamCPU/ref251CPU
	cmp.MeetsUpstream = cmp.DownMBps >= needMBps && cmp.DownCPU <= needCPU
	cmp.UpstreamReason = fmt.Sprintf("newest upstream ≈ %.1f× 2.5.1's download throughput at %.2f× its CPU per MB; Snowfall here: %.2f× at %.2f×",
		needMBps, needCPU, cmp.DownMBps, cmp.DownCPU)
	return cmp
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func median(xs []float64) float64 { return percentile(xs, 50) }

// percentile is the nearest-rank percentile.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if p == 50 && len(s)%2 == 0 {
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(k, 0), len(s)-1)]
}

func rttStats(ms []float64) RTTStats {
	if len(ms) == 0 {
		return RTTStats{}
	}
	return RTTStats{
		Count: len(ms), MinMs: slices.Min(ms), MaxMs: slices.Max(ms),
		MedianMs: median(ms), P95Ms: percentile(ms, 95),
	}
}

// machineInfo describes this machine.
func machineInfo() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), CPUModel: "?", Kernel: "?"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		// The 1, 5 and 15 minute averages; the rest counts processes.
		if f := strings.Fields(string(b)); len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// dataPathModules are the modules whose versions matter for throughput.
var dataPathModules = []string{
	"github.com/pion/webrtc/v4", "github.com/pion/sctp", "github.com/pion/dtls/v3",
	"github.com/pion/ice/v4", "github.com/xtaci/kcp-go/v5", "github.com/xtaci/smux",
	"github.com/coder/websocket",
}

func componentInfo(role string, comp interop.Component) ComponentInfo {
	ci := ComponentInfo{Role: role, Program: comp.Program, Version: comp.Version, PID: comp.PID}
	if bi, err := buildinfo.ReadFile(comp.Program); err == nil {
		ci.GoVersion = bi.GoVersion
		for _, d := range bi.Deps {
			if slices.Contains(dataPathModules, d.Path) {
				ci.Deps = append(ci.Deps, d.Path+" "+d.Version)
			}
		}
	}
	return ci
}

func writeJSON(path string, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// f formats a figure for the tables, "–" when it is missing.
func f(v float64, prec int) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// tables renders the result tables with the given cell separators, so the
// same rows serve the terminal (tabs for tabwriter) and Markdown.
type tableStyle struct {
	row    func(cells ...string) string
	header func(cells ...string) string
}

// textStyle ends every cell with a tab: tabwriter aligns only terminated
// cells.
var textStyle = tableStyle{
	row:    func(c ...string) string { return strings.Join(c, "\t") + "\t\n" },
	header: func(c ...string) string { return strings.Join(c, "\t") + "\t\n" },
}

// textColumns are the Markdown columns aligned left; the rest hold numbers.
var textColumns = map[string]bool{"link": true, "chain": true, "direction": true, "role": true, "program": true, "version": true, "Go": true,
	"shaping of the client↔proxy UDP path": true, "goal": true, "measured": true, "verdict": true}

var mdStyle = tableStyle{
	row: func(c ...string) string { return "| " + strings.Join(c, " | ") + " |\n" },
	header: func(c ...string) string {
		sep := make([]string, len(c))
		for i, name := range c {
			sep[i] = "---:"
			if textColumns[name] {
				sep[i] = "---"
			}
		}
		return "| " + strings.Join(c, " | ") + " |\n|" + strings.Join(sep, "|") + "|\n"
	},
}

func throughputTable(st tableStyle, rep *Report) string {
	var b strings.Builder
	b.WriteString(st.header("link", "chain", "down MB/s", "up MB/s", "echo idle median ms",
		"echo beside down median / p95 ms", "echo beside up median / p95 ms",
		"setup s (down/up)", "chain CPU ms/MB (down/up)"))
	for _, c := range rep.Chains {
		b.WriteString(st.row(c.LinkLabel, c.Label, mbpsCell(c.Download), mbpsCell(c.Upload),
			f(c.Echo.MedianMs, 1),
			loadedCell(c.Download.Loaded), loadedCell(c.Upload.Loaded),
			f(c.Download.SetupSeconds, 2)+" / "+f(c.Upload.SetupSeconds, 2),
			f(c.Download.CPUmsPerMB[chainRole], 0)+" / "+f(c.Upload.CPUmsPerMB[chainRole], 0)))
	}
	return b.String()
}

// mbpsCell is the throughput, with the rounds that failed.
func mbpsCell(ts TransferSummary) string {
	switch {
	case ts.Failures == 0:
		return f(ts.MBps, 2)
	case math.IsNaN(ts.MBps):
		return fmt.Sprintf("failed (%d)", ts.Failures)
	}
	return fmt.Sprintf("%s (%d failed)", f(ts.MBps, 2), ts.Failures)
}

func loadedCell(s RTTStats) string {
	if s.Count == 0 {
		return "–"
	}
	return f(s.MedianMs, 1) + " / " + f(s.P95Ms, 1)
}

func cpuTable(st tableStyle, rep *Report) string {
	var b strings.Builder
	head := append([]string{"link", "chain", "direction"}, roles...)
	head = append(head, "chain total", "harness", "rest of machine (cores)")
	b.WriteString(st.header(head...))
	for _, c := range rep.Chains {
		for _, d := range []struct {
			name string
			ts   TransferSummary
		}{{"down", c.Download}, {"up", c.Upload}} {
			cells := []string{c.LinkLabel, c.Label, d.name}
			for _, r := range roles {
				cells = append(cells, f(d.ts.CPUmsPerMB[r], 0))
			}
			cells = append(cells, f(d.ts.CPUmsPerMB[chainRole], 0), f(d.ts.CPUmsPerMB[harness], 0), f(d.ts.OtherLoadCores, 2))
			b.WriteString(st.row(cells...))
		}
	}
	return b.String()
}

func packetTable(st tableStyle, rep *Report) string {
	var b strings.Builder
	b.WriteString(st.header("link", "chain", "direction", "WebRTC UDP datagrams/MB", "UDP receive-buffer drops/MB",
		"proxy WebSocket TCP segments/MB", "shaper drops %"))
	for _, c := range rep.Chains {
		for _, d := range []struct {
			name string
			ts   TransferSummary
		}{{"down", c.Download}, {"up", c.Upload}} {
			b.WriteString(st.row(c.LinkLabel, c.Label, d.name, f(d.ts.UDPPerMB, 0), f(d.ts.UDPDropsPerMB, 1), f(d.ts.TCPPerMB, 0),
				f(d.ts.ShapedLossPct, 2)))
		}
	}
	return b.String()
}

// componentTable lists each chain's processes once, whatever the links.
func componentTable(st tableStyle, rep *Report) string {
	var b strings.Builder
	b.WriteString(st.header("chain", "role", "program", "version", "Go", "peak RSS MB"))
	seen := map[string]bool{}
	for _, c := range rep.Chains {
		if seen[c.Label] {
			continue
		}
		seen[c.Label] = true
		for _, ci := range c.Components {
			b.WriteString(st.row(c.Label, ci.Role, filepath.Base(ci.Program), strings.ReplaceAll(ci.Version, "|", "/"),
				ci.GoVersion, f(ci.PeakRSSMB, 0)))
		}
	}
	return b.String()
}

func linkTable(st tableStyle, rep *Report) string {
	var b strings.Builder
	b.WriteString(st.header("link", "shaping of the client↔proxy UDP path", "MB per transfer"))
	for _, l := range rep.Params.Links {
		b.WriteString(st.row(l.Label, l.Shaping, f(float64(l.SizeBytes)/1e6, 1)))
	}
	return b.String()
}

func comparisonLines(rep *Report) []string {
	cmp := rep.Comparison
	if cmp == nil {
		return nil
	}
	return []string{
		fmt.Sprintf("Clean link, Snowfall ÷ Snowflake 2.5.1, same run: download %s×, upload %s× the throughput; chain CPU per MB %s× (down), %s× (up); echo median %s×.",
			f(cmp.DownMBps, 2), f(cmp.UpMBps, 2), f(cmp.DownCPU, 2), f(cmp.UpCPU, 2), f(cmp.EchoMedian, 2)),
		fmt.Sprintf("Against the newest upstream (by ratio to 2.5.1): %s — %s.", verdict(cmp.MeetsUpstream), cmp.UpstreamReason),
	}
}

func verdict(ok bool) string {
	if ok {
		return "as fast and as frugal or better"
	}
	return "NOT YET as fast or as frugal"
}

func printText(w io.Writer, rep *Report) {
	p := rep.Params
	fmt.Fprintf(w, "%d MB each way per round on the clean link, %d echoes of %d bytes, %d round(s); %d CPUs (%s), kernel %s, %s\n\n",
		p.SizeBytes/1_000_000, p.Echoes, p.EchoSize, p.Rounds, rep.Machine.CPUs, rep.Machine.CPUModel, rep.Machine.Kernel,
		rep.Date.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, linkTable(textStyle, rep))
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, throughputTable(textStyle, rep))
	tw.Flush()
	fmt.Fprintln(w, "\nCPU milliseconds per MB during the data phase:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, cpuTable(textStyle, rep))
	tw.Flush()
	fmt.Fprintln(w, "\nPackets per MB during the data phase (both directions counted):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, packetTable(textStyle, rep))
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, componentTable(textStyle, rep))
	tw.Flush()
	for _, l := range comparisonLines(rep) {
		fmt.Fprintln(w, "\n"+l)
	}
	if len(rep.Goals) > 0 {
		fmt.Fprintln(w, "\nGoals of issue 9, as ratios within this run:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprint(tw, goalTable(textStyle, rep.Goals))
		tw.Flush()
	}
}

// Markers delimit the generated part of the Markdown file.
const (
	beginMarker = "<!-- BEGIN bench results: generated by `make bench`; edits here are overwritten -->"
	endMarker   = "<!-- END bench results -->"
)

func markdownSection(rep *Report) string {
	var b strings.Builder
	p, m := rep.Params, rep.Machine
	fmt.Fprintf(&b, "## Results of %s\n\n", rep.Date.Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Machine: %d CPUs (%s), Linux %s; harness built with %s; load average at start %s.  \n",
		m.CPUs, m.CPUModel, m.Kernel, m.GoVersion, m.LoadAvg)
	mode := ""
	if p.Quick {
		mode = " (`-quick`)"
	}
	fmt.Fprintf(&b, "Run%s: one stream each way per link and round, %d sequential idle echoes of %d bytes, echoes of the same size beside each transfer, %d round(s); every byte checked by SHA-256.\n\n",
		mode, p.Echoes, p.EchoSize, p.Rounds)
	b.WriteString(linkTable(mdStyle, rep))
	b.WriteString("\n")
	b.WriteString(throughputTable(mdStyle, rep))
	if rep.Plot != "" {
		fmt.Fprintf(&b, "\n![Throughput against random loss, each chain, down (solid) and up (dashed)](%s)\n", rep.Plot)
	}
	if len(rep.Goals) > 0 {
		b.WriteString("\nGoals of issue 9, as ratios within this run:\n\n")
		b.WriteString(goalTable(mdStyle, rep.Goals))
	}
	b.WriteString("\nCPU milliseconds per MB during the data phase (10 ms resolution per reading):\n\n")
	b.WriteString(cpuTable(mdStyle, rep))
	if lines := comparisonLines(rep); len(lines) > 0 {
		b.WriteString("\n")
		for _, l := range lines {
			b.WriteString(l + "\n\n")
		}
	} else {
		b.WriteString("\n")
	}
	b.WriteString("Packets per MB during the data phase, both directions counted (about 860 full-size SCTP packets carry 1 MB; acknowledgements flow the other way), and the share of the WebRTC path's packets the shapers dropped:\n\n")
	b.WriteString(packetTable(mdStyle, rep))
	b.WriteString("\nComponents (peak RSS over the whole run):\n\n")
	b.WriteString(componentTable(mdStyle, rep))
	for _, c := range rep.Chains {
		if c.Link != rep.Chains[0].Link {
			break
		}
		for _, ci := range c.Components {
			if len(ci.Deps) > 0 && c.Client == interop.Snowfall && ci.Role == "client" {
				fmt.Fprintf(&b, "\nData-path modules of Snowfall: %s.\n", strings.Join(ci.Deps, ", "))
			}
		}
	}
	return b.String()
}

// updateMarkdown replaces the generated section of path (between the
// markers), appending one if there is none; a missing file is created.
func updateMarkdown(path string, rep *Report) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	section := beginMarker + "\n\n" + markdownSection(rep) + "\n" + endMarker
	var out []byte
	i := bytes.Index(old, []byte(beginMarker))
	j := bytes.Index(old, []byte(endMarker))
	switch {
	case i >= 0 && j > i:
		out = append(append(append([]byte{}, old[:i]...), section...), old[j+len(endMarker):]...)
	case len(old) == 0:
		out = []byte("# Performance\n\n" + section + "\n")
	default:
		out = append(append(bytes.TrimRight(old, "\n"), "\n\n"...), section+"\n"...)
	}
	return os.WriteFile(path, out, 0o644)
}
