package main

import (
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

func testReport() *Report {
	rep := &Report{
		Date:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		Machine: Machine{CPUs: 2, CPUModel: "Test CPU", Kernel: "6.1", GoVersion: "go1.26"},
		Params:  Params{SizeBytes: 10_000_000, Echoes: 3, EchoSize: 64, Rounds: 1},
	}
	for _, spec := range []chainSpec{{"snowfall", "snowfall", ""}, {"debian", "debian", ""}} {
		speed := 10.0
		if spec.Client == "debian" {
			speed = 4
		}
		for _, ph := range phases {
			r := PhaseResult{Chain: spec.label(), Client: spec.Client, Proxy: spec.Proxy, Round: 1, Phase: ph,
				Bytes: 10_000_000, MBps: speed, SetupSeconds: 1,
				SetupCPU: map[string]float64{"chain": 0.1},
				DataCPU:  map[string]float64{"client": 0.5, "proxy": 0.3, "bridge": 0.2, "broker": 0, "chain": 1, "harness": 0.1}}
			if ph == phaseEcho {
				r.Bytes, r.MBps, r.RTTsMs = 192, 0, []float64{2, 1, 3}
			}
			rep.Phases = append(rep.Phases, r)
		}
		rep.Chains = append(rep.Chains, summarise(&chainRun{spec: spec}, rep.Phases))
	}
	rep.Comparison = compare(rep.Chains)
	return rep
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
	if !strings.Contains(string(b), beginMarker) || !strings.Contains(string(b), "| Snowfall | 10.00 | 10.00 |") {
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
