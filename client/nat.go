package client

import (
	"context"
	"log/slog"
	"sync/atomic"

	"github.com/snowfall-pt/snowfall/client/natbehavior"
	"github.com/snowfall-pt/snowfall/common/nattype"
)

// NATSource says what NAT type to report to the broker.
type NATSource interface {
	NATType() string
}

// StaticNAT is a NATSource that always reports the same type.
type StaticNAT string

// NATType implements NATSource.
func (s StaticNAT) NATType() string { return string(s) }

// discoveredNAT is learned in the background; it reports unknown until the
// first test finishes.
type discoveredNAT struct {
	v atomic.Value // string
}

func (d *discoveredNAT) NATType() string {
	if s, ok := d.v.Load().(string); ok {
		return s
	}
	return nattype.Unknown
}

// discover runs the RFC 5780 test against servers and stores the result.
func (d *discoveredNAT) discover(ctx context.Context, p *natbehavior.Prober, servers []string, log *slog.Logger) {
	nat, err := p.Discover(ctx, servers)
	if err != nil {
		log.Warn("NAT type discovery failed", "err", err)
	}
	if ctx.Err() != nil {
		return
	}
	d.v.Store(nat)
	log.Info("NAT type", "nat", nat)
}
