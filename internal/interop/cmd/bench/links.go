package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/snowfall-pt/snowfall/internal/interop"
	"github.com/snowfall-pt/snowfall/internal/testbed/shaper"
)

// linkProfile is one column of the grid: an impairment of the client↔proxy
// UDP path, the same each way (with different seeds), made by the testbed's
// user-space shaper.
type linkProfile struct {
	Name, Label string
	Link        shaper.Config
	// Size and QuickSize are the transfer sizes (bytes) of the full and the
	// -quick grid; 0 takes -size (the clean link). Transfers are
	// fixed-size and hash-checked, so lossy links get smaller ones: sized
	// so that Tor's 2.5.1 still finishes in a minute or two, and large
	// enough that the buffers along the chain cannot hide the loss.
	Size, QuickSize int64
}

var linkProfiles = []linkProfile{
	{Name: "clean", Label: "clean"},
	{Name: "loss2", Label: "2 % loss", Link: shaper.Config{Loss: 0.02}, Size: 10_000_000, QuickSize: 4_000_000},
	{Name: "loss5", Label: "5 % loss", Link: shaper.Config{Loss: 0.05}, Size: 4_000_000, QuickSize: 2_000_000},
	{Name: "rtt80loss1", Label: "80 ms RTT + 1 % loss", Link: shaper.Config{Delay: 40 * time.Millisecond, Loss: 0.01},
		Size: 3_000_000, QuickSize: 1_500_000},
	{Name: "rate20", Label: "20 Mbit/s", Link: shaper.Config{Rate: 20_000_000}, Size: 20_000_000, QuickSize: 10_000_000},
}

func linkNames() []string {
	var n []string
	for _, l := range linkProfiles {
		n = append(n, l.Name)
	}
	return n
}

func parseLinks(s string) ([]linkProfile, error) {
	var out []linkProfile
	seen := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var found bool
		for _, l := range linkProfiles {
			if l.Name == f {
				if seen[f] {
					return nil, fmt.Errorf("-links: %s listed twice", f)
				}
				seen[f] = true
				out = append(out, l)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("-links: unknown link %q (want some of %s)", f, strings.Join(linkNames(), ", "))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("-links: no link")
	}
	return out, nil
}

// size is the transfer size on this link, given -size (clean) and -quick.
func (l linkProfile) size(clean int64, quick bool) int64 {
	switch {
	case l.Size == 0:
		return clean
	case quick:
		return l.QuickSize
	}
	return l.Size
}

// impairment is the shaping for one round, seeded by the round so that
// every chain of a round meets the same loss pattern and runs repeat.
func (l linkProfile) impairment(round int) interop.Impairment {
	cfg := l.Link
	cfg.Seed = uint64(round)*7919 + uint64(len(l.Name))
	return interop.Symmetric(cfg)
}

// clean reports whether the link is not shaped at all.
func (l linkProfile) clean() bool { return l.Link.IsZero() }

// lossOnly reports whether the link differs from a clean one by random loss
// only: those links make the throughput-against-loss plot.
func (l linkProfile) lossOnly() bool {
	c := l.Link
	c.Loss = 0
	return c.IsZero()
}
