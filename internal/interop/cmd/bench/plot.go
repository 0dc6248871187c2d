package main

import (
	"fmt"
	"html"
	"math"
	"os"
	"slices"
	"strings"
)

// series is one line of the plot: a chain's throughput in one direction
// against the loss of the link.
type series struct {
	label  string
	dashed bool
	color  string
	pts    [][2]float64 // loss %, MB/s
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// lossSeries collects, for every chain, its throughput on each link that
// differs from the clean one by random loss only.
func lossSeries(rep *Report) []series {
	lossOf := map[string]float64{}
	for _, l := range linkProfiles {
		if l.lossOnly() {
			lossOf[l.Name] = 100 * l.Link.Loss
		}
	}
	var labels, links []string
	for _, c := range rep.Chains {
		if _, ok := lossOf[c.Link]; ok && !slices.Contains(labels, c.Label) {
			labels = append(labels, c.Label)
		}
		if _, ok := lossOf[c.Link]; ok && !slices.Contains(links, c.Link) {
			links = append(links, c.Link)
		}
	}
	if len(links) < 2 {
		return nil // one loss rate makes no curve
	}
	var out []series
	for i, label := range labels {
		down := series{label: label + " down", color: palette[i%len(palette)]}
		up := series{label: label + " up", color: palette[i%len(palette)], dashed: true}
		for _, c := range rep.Chains {
			loss, ok := lossOf[c.Link]
			if !ok || c.Label != label {
				continue
			}
			if v := c.Download.MBps; v > 0 && !math.IsNaN(v) {
				down.pts = append(down.pts, [2]float64{loss, v})
			}
			if v := c.Upload.MBps; v > 0 && !math.IsNaN(v) {
				up.pts = append(up.pts, [2]float64{loss, v})
			}
		}
		for _, s := range []series{down, up} {
			if len(s.pts) > 0 {
				slices.SortFunc(s.pts, func(a, b [2]float64) int { return int(math.Copysign(1, a[0]-b[0])) })
				out = append(out, s)
			}
		}
	}
	return out
}

// plotSVG draws throughput (log scale) against loss as a standalone SVG.
func plotSVG(rep *Report) (string, bool) {
	ss := lossSeries(rep)
	if len(ss) == 0 {
		return "", false
	}
	const (
		w, h                     = 720, 420
		left, right, top, bottom = 70, 230, 40, 60
		pw, ph                   = w - left - right, h - top - bottom
	)
	maxLoss, lo, hi := 0.0, math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, p := range s.pts {
			maxLoss = max(maxLoss, p[0])
			lo, hi = min(lo, p[1]), max(hi, p[1])
		}
	}
	maxLoss = math.Max(1, math.Ceil(maxLoss))
	dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if dhi == dlo {
		dhi++
	}
	x := func(loss float64) float64 { return left + loss/maxLoss*pw }
	y := func(v float64) float64 { return top + (dhi-math.Log10(v))/(dhi-dlo)*ph }

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="14" font-weight="bold">One stream through the chain against random loss on the WebRTC path</text>`+"\n", left)
	// Grid and axes: decades and their 2× and 5× on y, whole per cent on x.
	for d := dlo; d <= dhi; d++ {
		for _, m := range []float64{1, 2, 5} {
			v := m * math.Pow(10, d)
			if math.Log10(v) > dhi+1e-9 {
				continue
			}
			yy := y(v)
			stroke := "#eee"
			if m == 1 {
				stroke = "#ccc"
			}
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", left, yy, left+pw, yy, stroke)
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n", left-6, yy, trimFloat(v))
		}
	}
	for l := 0.0; l <= maxLoss; l++ {
		xx := x(l)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`+"\n", xx, top, xx, top+ph)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%g</text>`+"\n", xx, top+ph+18, l)
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", left, top, pw, ph)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">random loss each way on the client↔proxy UDP path (%%)</text>`+"\n", left+pw/2, h-18)
	fmt.Fprintf(&b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">MB/s (log scale)</text>`+"\n", top+ph/2)

	for i, s := range ss {
		var pts []string
		for _, p := range s.pts {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p[0]), y(p[1])))
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), s.color, dash)
		for _, p := range s.pts {
			if s.dashed {
				fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="7" height="7" fill="white" stroke="%s" stroke-width="2"><title>%s: %.3g MB/s at %g %%</title></rect>`+"\n",
					x(p[0])-3.5, y(p[1])-3.5, s.color, html.EscapeString(s.label), p[1], p[0])
			} else {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s: %.3g MB/s at %g %%</title></circle>`+"\n",
					x(p[0]), y(p[1]), s.color, html.EscapeString(s.label), p[1], p[0])
			}
		}
		ly := top + 10 + i*20
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", left+pw+14, ly, left+pw+40, ly, s.color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d" dominant-baseline="middle">%s</text>`+"\n", left+pw+46, ly, html.EscapeString(s.label))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="10" fill="#666">%s, %s; generated by internal/interop/cmd/bench</text>`+"\n",
		left, h-4, html.EscapeString(rep.Date.Format("2006-01-02 15:04 MST")), html.EscapeString(fmt.Sprintf("%d CPUs", rep.Machine.CPUs)))
	b.WriteString("</svg>\n")
	return b.String(), true
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3g", v)
	return strings.TrimSuffix(s, ".0")
}

// writePlot writes the plot to path; with no loss-only link in the run
// there is nothing to draw and nothing is written.
func writePlot(path string, rep *Report) (bool, error) {
	svg, ok := plotSVG(rep)
	if !ok {
		return false, nil
	}
	return true, os.WriteFile(path, []byte(svg), 0o644)
}
