package client

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// TrafficLogInterval is how often a session logs its traffic.
const TrafficLogInterval = 5 * time.Second

// trafficStats counts the bytes and messages a session exchanges with its
// proxies.
type trafficStats struct {
	bytesIn, bytesOut atomic.Int64
	reads, writes     atomic.Int64
}

func (s *trafficStats) in(n int) {
	if n > 0 {
		s.bytesIn.Add(int64(n))
		s.reads.Add(1)
	}
}

func (s *trafficStats) out(n int) {
	if n > 0 {
		s.bytesOut.Add(int64(n))
		s.writes.Add(1)
	}
}

// logLoop logs and resets the counters every TrafficLogInterval while
// traffic flows, like the reference's "Traffic Bytes (in|out)" line.
func (s *trafficStats) logLoop(ctx context.Context, log *slog.Logger) {
	t := time.NewTicker(TrafficLogInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			in, out := s.bytesIn.Swap(0), s.bytesOut.Swap(0)
			reads, writes := s.reads.Swap(0), s.writes.Swap(0)
			if in > 0 || out > 0 {
				log.Info("traffic", "bytes_in", in, "bytes_out", out, "reads", reads, "writes", writes)
			}
		}
	}
}
