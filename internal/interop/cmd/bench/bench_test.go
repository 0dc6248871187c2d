package main

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseChains(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []chainSpec
		wantErr bool
	}{
		{"snowfall,debian", []chainSpec{{"snowfall", "snowfall", ""}, {"debian", "debian", ""}}, false},
		{" snowfall/debian , debian/snowfall", []chainSpec{{"snowfall", "debian", ""}, {"debian", "snowfall", ""}}, false},
		{"snowfall,snowfall@/tmp/b", []chainSpec{{"snowfall", "snowfall", ""}, {"snowfall", "snowfall", "/tmp/b"}}, false},
		{"snowfall,snowfall/snowfall", nil, true},
		{"tor", nil, true},
		{"snowfall/", nil, true},
		{",", nil, true},
	} {
		got, err := parseChains(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err = %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
			}
		}
	}
	if l := (chainSpec{"snowfall", "debian", ""}).label(); l != "Snowfall client + Snowflake 2.5.1 proxy" {
		t.Errorf("label %q", l)
	}
	if s := (chainSpec{"snowfall", "snowfall", "/tmp/exp bin"}).slug(); s != "snowfall-tmp-exp-bin" {
		t.Errorf("slug %q", s)
	}
}

func TestPercentile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3}
	for _, tc := range []struct {
		p    float64
		want float64
	}{{50, 3}, {95, 5}, {0, 1}, {100, 5}, {20, 1}, {40, 2}} {
		if got := percentile(xs, tc.p); got != tc.want {
			t.Errorf("p%v = %v, want %v", tc.p, got, tc.want)
		}
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of an even set = %v, want 2.5", got)
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	if xs[0] != 5 {
		t.Error("percentile sorted its input in place")
	}
}

// cell is one chain on one link of a made-up grid.
type cell struct {
	impl, link string
	down, up   float64 // MB/s
	cpu        float64 // chain CPU seconds per 10 MB
	loadedMs   float64 // echo beside the transfers
}

func gridReport(cells []cell) *Report {
	rep := &Report{
		Date:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Machine: Machine{CPUs: 2, CPUModel: "Test CPU", Kernel: "6.1", GoVersion: "go1.26"},
		Params:  Params{SizeBytes: 10_000_000, Echoes: 3, EchoSize: 64, Rounds: 1},
	}
	runs := map[string]*chainRun{}
	var order []string
	for _, c := range cells {
		spec := chainSpec{c.impl, c.impl, ""}
		if runs[c.impl] == nil {
			runs[c.impl] = &chainRun{spec: spec}
			order = append(order, c.impl)
		}
		for _, ph := range phases {
			r := PhaseResult{Chain: spec.label(), Client: spec.Client, Proxy: spec.Proxy, Link: c.link, Round: 1, Phase: ph,
				Bytes: 10_000_000, MBps: c.down, SetupSeconds: 1,
				SetupCPU: map[string]float64{"chain": 0.1},
				DataCPU: map[string]float64{"client": c.cpu / 2, "proxy": c.cpu * 0.3, "bridge": c.cpu * 0.2, "broker": 0,
					"chain": c.cpu, "harness": 0.1},
				LoadedRTTsMs:  []float64{c.loadedMs, c.loadedMs},
				ShapedPackets: 1000, ShapedLost: 20}
			switch ph {
			case phaseUp:
				r.MBps = c.up
			case phaseEcho:
				r.Bytes, r.MBps, r.RTTsMs, r.LoadedRTTsMs = 192, 0, []float64{2, 1, 3}, nil
				r.ShapedPackets, r.ShapedLost = 0, 0
			}
			rep.Phases = append(rep.Phases, r)
		}
	}
	for _, l := range linkProfiles {
		for _, impl := range order {
			for _, c := range cells {
				if c.impl == impl && c.link == l.Name {
					rep.Chains = append(rep.Chains, summarise(runs[impl], l, rep.Phases))
				}
			}
		}
	}
	rep.Comparison = compare(rep.Chains)
	rep.Goals = goals(rep.Chains)
	return rep
}

func testReport() *Report {
	return gridReport([]cell{
		{"snowfall", "clean", 10, 10, 1, 5},
		{"debian", "clean", 4, 4, 1, 5},
	})
}

func TestSummariseAndCompare(t *testing.T) {
	rep := testReport()
	c := rep.Chains[0]
	if c.Download.MBps != 10 || c.Download.CPUmsPerMB["chain"] != 100 || c.Download.CPUmsPerMB["client"] != 50 {
		t.Errorf("download summary %+v", c.Download)
	}
	if c.Echo.Count != 3 || c.Echo.MedianMs != 2 || c.Echo.P95Ms != 3 {
		t.Errorf("echo summary %+v", c.Echo)
	}
	if rep.Comparison == nil || rep.Comparison.DownMBps != 2.5 || rep.Comparison.DownCPU != 1 {
		t.Fatalf("comparison %+v", rep.Comparison)
	}
	// 2.5× the throughput at the same CPU is not the newest upstream's 3×
	// at a third of the CPU.
	if rep.Comparison.MeetsUpstream {
		t.Error("comparison claims to meet the newest upstream")
	}
}

func TestUpdateMarkdown(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "perf.md")
	rep := testReport()

	// A missing file is created with the section.
	if err := updateMarkdown(path, rep); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), beginMarker) || !strings.Contains(string(b), "| clean | Snowfall | 10.00 | 10.00 |") {
		t.Fatalf("new file:\n%s", b)
	}

	// Hand-written text around the markers survives, the old section does
	// not.
	hand := "# Perf\n\nintro\n\n" + beginMarker + "\nOLD RESULTS\n" + endMarker + "\n\n## Findings\n\nkept\n"
	os.WriteFile(path, []byte(hand), 0o644)
	if err := updateMarkdown(path, rep); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	s := string(b)
	for _, want := range []string{"# Perf\n\nintro\n\n", "## Findings\n\nkept\n", "Results of 2026-03-01", "Snowfall ÷ Snowflake 2.5.1"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q in:\n%s", want, s)
		}
	}
	if strings.Contains(s, "OLD RESULTS") || strings.Count(s, beginMarker) != 1 || strings.Count(s, endMarker) != 1 {
		t.Errorf("section not replaced exactly once:\n%s", s)
	}

	// A file without markers gets the section appended.
	os.WriteFile(path, []byte("# Perf\n\nonly prose\n"), 0o644)
	if err := updateMarkdown(path, rep); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if !strings.HasPrefix(string(b), "# Perf\n\nonly prose\n\n"+beginMarker) {
		t.Errorf("section not appended:\n%s", b)
	}
}

func TestPerfReportParsing(t *testing.T) {
	out := `# Samples: 1K of event 'cpu-clock'
#
    30.00%  [.] github.com/pion/sctp.(*Association).handleChunk
    20.00%  [k] copy_user_generic_string
    15.00%  [.] runtime.memmove
    10.00%  [.] runtime.mallocgc
     8.00%  [.] github.com/xtaci/kcp-go/v5.(*KCP).flush
     7.00%  [.] crypto/internal/fips140/aes/gcm.gcmAesEnc
     5.00%  [.] 0x0000000000451234
     5.00%  [.] github.com/snowfall-pt/snowfall/common/encapsulation.ReadData
`
	ss := parsePerfReport(out)
	if len(ss) != 8 || ss[0].pct != 30 || !ss[1].kernel {
		t.Fatalf("parsed %+v", ss)
	}
	want := map[string]string{
		"github.com/pion/sctp.(*Association).handleChunk":               "SCTP",
		"copy_user_generic_string":                                      "kernel (syscalls, network stack, scheduler)",
		"runtime.memmove":                                               "copies (memmove, bufio, bytes)",
		"runtime.mallocgc":                                              "GC and allocation",
		"github.com/xtaci/kcp-go/v5.(*KCP).flush":                       "KCP",
		"crypto/internal/fips140/aes/gcm.gcmAesEnc":                     "crypto (DTLS records, TLS)",
		"0x0000000000451234":                                            "unresolved (stripped binary)",
		"github.com/snowfall-pt/snowfall/common/encapsulation.ReadData": "Snowfall's own code",
	}
	for _, s := range ss {
		if got := category(s); got != want[s.sym] {
			t.Errorf("%s: category %q, want %q", s.sym, got, want[s.sym])
		}
	}
	if p := pkgOf(sample{sym: "github.com/xtaci/kcp-go/v5.(*KCP).flush"}); p != "github.com/xtaci/kcp-go/v5" {
		t.Errorf("pkgOf = %q", p)
	}
	cats := aggregate(ss, category)
	if cats[0].key != "SCTP" || cats[0].pct != 30 {
		t.Errorf("top category %+v", cats[0])
	}
}

func TestParseLinks(t *testing.T) {
	ls, err := parseLinks(" clean, loss2,rate20 ")
	if err != nil || len(ls) != 3 || ls[0].Name != "clean" || ls[2].Link.Rate != 20_000_000 {
		t.Fatalf("parsed %+v, %v", ls, err)
	}
	for _, bad := range []string{"", ",", "loss3", "clean,clean"} {
		if _, err := parseLinks(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	all, err := parseLinks(strings.Join(linkNames(), ","))
	if err != nil || len(all) != 5 {
		t.Fatalf("default links: %v, %v", all, err)
	}
	for _, l := range all {
		if err := l.Link.Validate(); err != nil {
			t.Errorf("%s: %v", l.Name, err)
		}
		if l.clean() != (l.Name == "clean") {
			t.Errorf("%s: clean() = %v", l.Name, l.clean())
		}
		full, quick := l.size(100_000_000, false), l.size(20_000_000, true)
		if full < 1_000_000 || full > 100_000_000 || quick < 1_000_000 || quick > full {
			t.Errorf("%s: sizes %d (full), %d (quick)", l.Name, full, quick)
		}
		a, b := l.impairment(1), l.impairment(2)
		if !l.clean() && (a.Down.Seed == b.Down.Seed || a.Down.Seed == a.Up.Seed) {
			t.Errorf("%s: seeds repeat across rounds or directions: %+v %+v", l.Name, a, b)
		}
	}
	if s := linkProfiles[0].size(7_000_000, true); s != 7_000_000 {
		t.Errorf("clean link size %d, want -size", s)
	}
}

func TestGoals(t *testing.T) {
	rep := gridReport([]cell{
		{"snowfall", "clean", 10, 10, 1, 5},
		{"upstream", "clean", 8, 12, 2.5, 5},
		{"snowfall", "loss2", 6, 4, 1, 5},
		{"upstream", "loss2", 0.5, 0.5, 1, 5},
		{"snowfall", "rtt80loss1", 1, 1, 1, 100},
		{"upstream", "rtt80loss1", 0.3, 0.1, 1, 100},
		{"snowfall", "rate20", 2, 2, 1, 40},
	})
	want := map[string]bool{
		"at 2 % loss, at least 50 % of our own clean-link throughput":      false, // up is 40 %
		"at 2 % loss, at least 10× Tor's 2.14.1":                           false, // up is 8×
		"at 80 ms RTT + 1 % loss, at least 5× Tor's 2.14.1":                false, // down is 3.3×
		"clean link: no regression against Tor's 2.14.1":                   false, // up is below
		"clean link: chain CPU per MB at most 0.5× Tor's 2.14.1":           true,  // 0.4×
		"20 Mbit/s: echo under load within 2× the idle round trip + 50 ms": true,  // 40 ≤ 2×2+50
	}
	if len(rep.Goals) != len(want) {
		t.Fatalf("goals %+v", rep.Goals)
	}
	for _, g := range rep.Goals {
		w, ok := want[g.Goal]
		if !ok || g.Met == nil || *g.Met != w {
			t.Errorf("goal %q: met %v (%s), want %v", g.Goal, g.Met, g.Measured, w)
		}
	}

	// Without the reference implementation those goals are not judged.
	rep = testReport()
	var unjudged int
	for _, g := range rep.Goals {
		if g.Met == nil {
			unjudged++
			if !strings.Contains(g.Measured, "not measured") {
				t.Errorf("goal %q: %q", g.Goal, g.Measured)
			}
		}
	}
	if unjudged != len(rep.Goals) {
		t.Errorf("%d of %d goals unjudged on a clean-only run without 2.14.1", unjudged, len(rep.Goals))
	}
}

func TestPlot(t *testing.T) {
	rep := gridReport([]cell{
		{"snowfall", "clean", 30, 40, 1, 5},
		{"debian", "clean", 5, 10, 1, 5},
		{"snowfall", "loss2", 1.6, 1.4, 1, 5},
		{"debian", "loss2", 0.24, 0.46, 1, 5},
		{"snowfall", "loss5", 0.2, 0.2, 1, 5},
		{"debian", "loss5", 0.05, 0.1, 1, 5},
		{"snowfall", "rate20", 2, 2, 1, 5}, // not a loss-only link: not plotted
	})
	ss := lossSeries(rep)
	if len(ss) != 4 {
		t.Fatalf("%d series, want down and up of two chains", len(ss))
	}
	for _, s := range ss {
		if len(s.pts) != 3 || s.pts[0][0] != 0 || s.pts[1][0] != 2 || s.pts[2][0] != 5 {
			t.Errorf("%s: points %v", s.label, s.pts)
		}
	}
	svg, ok := plotSVG(rep)
	if !ok || !strings.HasPrefix(svg, "<svg ") || !strings.HasSuffix(svg, "</svg>\n") {
		t.Fatalf("svg:\n%s", svg)
	}
	if n := strings.Count(svg, "<polyline"); n != 4 {
		t.Errorf("%d lines drawn", n)
	}
	for _, want := range []string{"Snowfall down", "Snowflake 2.5.1 up", ">0.01<", ">100<", ">5<"} {
		if !strings.Contains(svg, want) {
			t.Errorf("svg lacks %q", want)
		}
	}
	if _, ok := plotSVG(testReport()); ok {
		t.Error("a plot from the clean link alone")
	}
	path := filepath.Join(t.TempDir(), "p.svg")
	rep.Plot = "p.svg"
	if written, err := writePlot(path, rep); !written || err != nil {
		t.Fatalf("writePlot: %v %v", written, err)
	}
	dir := filepath.Dir(path)
	if err := updateMarkdown(filepath.Join(dir, "perf.md"), rep); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "perf.md"))
	for _, want := range []string{"](p.svg)", "| 2 % loss | Snowfall | 1.60 | 1.40 |", "Goals of issue 9"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("markdown lacks %q:\n%s", want, b)
		}
	}
}

// TestFailedCell: a phase that failed on an impaired link is counted and
// left out of the figures, and the table says so.
func TestFailedCell(t *testing.T) {
	rep := gridReport([]cell{{"snowfall", "clean", 10, 10, 1, 5}, {"debian", "loss5", 0.1, 0.2, 1, 5}})
	for i := range rep.Phases {
		if r := &rep.Phases[i]; r.Link == "loss5" && r.Phase == phaseUp {
			r.Failed = "stalled"
		}
	}
	row := summarise(&chainRun{spec: chainSpec{"debian", "debian", ""}}, linkProfiles[2], rep.Phases)
	if row.Upload.Failures != 1 || !math.IsNaN(row.Upload.MBps) || row.Download.MBps != 0.1 || row.Download.Failures != 0 {
		t.Fatalf("summary down %+v up %+v", row.Download, row.Upload)
	}
	if c := mbpsCell(row.Upload); c != "failed (1)" {
		t.Errorf("cell %q", c)
	}
	if c := mbpsCell(TransferSummary{MBps: 1, Failures: 2}); c != "1.00 (2 failed)" {
		t.Errorf("cell %q", c)
	}
	for _, e := range []string{"testbed: download: hash mismatch", "testbed: upload: target says \"BAD 5 x\"", "content differs at byte 3"} {
		if !integrityError(errors.New(e)) {
			t.Errorf("%q not taken for an integrity error", e)
		}
	}
	if integrityError(errors.New("testbed: upload: no verdict: i/o timeout")) {
		t.Error("a timeout taken for an integrity error")
	}
}
