package interop

import (
	"context"
	"errors"
	"net/netip"

	"github.com/snowfall-pt/snowfall/internal/testbed"
	"github.com/snowfall-pt/snowfall/internal/testbed/shaper"
)

// Impairment describes the WebRTC path between the client and its proxies,
// one shaper.Config per direction. Down shapes what the client receives
// from the proxies, Up what each proxy receives from the client; the
// rendezvous (HTTP to the broker), STUN and the proxies' WebSockets to the
// bridge are left alone.
type Impairment struct {
	Down, Up shaper.Config
}

// Symmetric is the same impairment both ways, with different seeds so the
// two directions lose different packets.
func Symmetric(cfg shaper.Config) Impairment {
	up := cfg
	up.Seed = cfg.Seed ^ 0x9e3779b97f4a7c15
	return Impairment{Down: cfg, Up: up}
}

// Shaped is an impairment in force on a chain.
type Shaped struct {
	// Down is the client's shaper; Up has one shaper per proxy.
	Down *testbed.Shaper
	Up   []*testbed.Shaper
}

// Close removes every shaper, releasing what they hold.
func (s *Shaped) Close() error {
	var errs []error
	if s.Down != nil {
		errs = append(errs, s.Down.Close())
	}
	for _, u := range s.Up {
		errs = append(errs, u.Close())
	}
	return errors.Join(errs...)
}

// Shape puts imp on the chain's client↔proxy UDP path until the returned
// Shaped is closed (Close of the chain closes it too). A zero direction is
// left unshaped. All proxies share the client's shaper, as they would
// share its access link.
func (c *Chain) Shape(ctx context.Context, imp Impairment) (_ *Shaped, err error) {
	s := &Shaped{}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if c.Cli == nil || len(c.Prx) == 0 {
		return nil, errors.New("interop: shape: the chain has no client host or no proxy")
	}
	if !imp.Down.IsZero() {
		var from []netip.Prefix
		for _, p := range c.Prx {
			from = append(from, netip.PrefixFrom(p.Addr, 32))
		}
		if s.Down, err = c.Cli.Shape(ctx, "eth0", testbed.ShapeConfig{Link: imp.Down, From: from}); err != nil {
			return nil, err
		}
	}
	if !imp.Up.IsZero() {
		for i, p := range c.Prx {
			cfg := imp.Up
			cfg.Seed += uint64(i)
			u, err := p.Shape(ctx, "eth0", testbed.ShapeConfig{Link: cfg, From: []netip.Prefix{netip.PrefixFrom(c.Cli.Addr, 32)}})
			if err != nil {
				return nil, err
			}
			s.Up = append(s.Up, u)
		}
	}
	c.onClose(func() { s.Close() })
	return s, nil
}
