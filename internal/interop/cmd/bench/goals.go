package main

import (
	"fmt"
	"math"
	"strings"

	"github.com/snowfall-pt/snowfall/internal/interop"
)

// Goal is one target of issue 9, checked against the figures of this run
// (ratios within one run, so the machine's load cancels out).
type Goal struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	// Met is nil when the run lacks what the goal compares with.
	Met *bool `json:"met,omitempty"`
}

// goalReference is the implementation the goals compare with: Tor's
// newest release (2.14.1), which the harness names "upstream". Goals
// against it read "not measured" until a run includes its chain.
const goalReference = "upstream"

// goalReferenceLabel names it in the goal texts.
const goalReferenceLabel = "Tor's 2.14.1"

func findRow(rows []ChainReport, impl, link string) *ChainReport {
	for i := range rows {
		r := &rows[i]
		if r.BinDir == "" && r.Client == impl && r.Proxy == impl && r.Link == link {
			return r
		}
	}
	return nil
}

func met(ok bool) *bool { return &ok }

// atLeast checks got ≥ need×base in both directions.
func atLeast(text string, got, base *ChainReport, need float64, baseName string) Goal {
	g := Goal{Goal: text}
	if got == nil || base == nil {
		g.Measured = "not measured (needs " + baseName + " in the run)"
		return g
	}
	rd := ratio(got.Download.MBps, base.Download.MBps)
	ru := ratio(got.Upload.MBps, base.Upload.MBps)
	g.Measured = fmt.Sprintf("down %s×, up %s×", f(rd, 2), f(ru, 2))
	g.Met = met(rd >= need && ru >= need)
	return g
}

// goals evaluates the performance goals on the grid's rows.
func goals(rows []ChainReport) []Goal {
	ours := func(link string) *ChainReport { return findRow(rows, interop.Snowfall, link) }
	ref := func(link string) *ChainReport { return findRow(rows, goalReference, link) }
	if ours("clean") == nil && ours("loss2") == nil && ours("rtt80loss1") == nil && ours("rate20") == nil {
		return nil
	}
	var out []Goal
	out = append(out,
		atLeast("at 2 % loss, at least 50 % of our own clean-link throughput", ours("loss2"), ours("clean"), 0.5, "the clean and 2 % loss links"),
		atLeast("at 2 % loss, at least 10× "+goalReferenceLabel, ours("loss2"), ref("loss2"), 10, goalReferenceLabel),
		atLeast("at 80 ms RTT + 1 % loss, at least 5× "+goalReferenceLabel, ours("rtt80loss1"), ref("rtt80loss1"), 5, goalReferenceLabel),
		atLeast("clean link: no regression against "+goalReferenceLabel, ours("clean"), ref("clean"), 1, goalReferenceLabel),
	)
	cpu := Goal{Goal: "clean link: chain CPU per MB at most 0.5× " + goalReferenceLabel}
	if o, r := ours("clean"), ref("clean"); o != nil && r != nil {
		rd := ratio(o.Download.CPUmsPerMB[chainRole], r.Download.CPUmsPerMB[chainRole])
		ru := ratio(o.Upload.CPUmsPerMB[chainRole], r.Upload.CPUmsPerMB[chainRole])
		cpu.Measured = fmt.Sprintf("down %s×, up %s×", f(rd, 2), f(ru, 2))
		cpu.Met = met(rd <= 0.5 && ru <= 0.5)
	} else {
		cpu.Measured = "not measured (needs " + goalReferenceLabel + " in the run)"
	}
	out = append(out, cpu)

	bloat := Goal{Goal: "20 Mbit/s: echo under load within 2× the idle round trip + 50 ms"}
	if o := ours("rate20"); o != nil && o.Echo.Count > 0 && (o.Download.Loaded.Count > 0 || o.Upload.Loaded.Count > 0) {
		bound := 2*o.Echo.MedianMs + 50
		var parts []string
		ok := true
		for _, d := range []struct {
			name string
			s    RTTStats
		}{{"down", o.Download.Loaded}, {"up", o.Upload.Loaded}} {
			if d.s.Count == 0 {
				parts = append(parts, d.name+" no echoes")
				ok = false
				continue
			}
			parts = append(parts, fmt.Sprintf("beside %s median %s ms", d.name, f(d.s.MedianMs, 1)))
			ok = ok && d.s.MedianMs <= bound
		}
		bloat.Measured = fmt.Sprintf("idle %s ms, bound %s ms; %s", f(o.Echo.MedianMs, 1), f(bound, 1), strings.Join(parts, ", "))
		bloat.Met = met(ok && !math.IsNaN(bound))
	} else {
		bloat.Measured = "not measured (needs the 20 Mbit/s link)"
	}
	out = append(out, bloat)
	return out
}

func goalVerdict(g Goal) string {
	switch {
	case g.Met == nil:
		return "–"
	case *g.Met:
		return "met"
	}
	return "NOT MET"
}

func goalTable(st tableStyle, gs []Goal) string {
	var b strings.Builder
	b.WriteString(st.header("goal", "measured", "verdict"))
	for _, g := range gs {
		b.WriteString(st.row(g.Goal, g.Measured, goalVerdict(g)))
	}
	return b.String()
}
