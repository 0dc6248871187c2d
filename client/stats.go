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
// proxies. The hot path only adds to the counters of the current interval;
// the logging goroutine sums the intervals into the session's totals.
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

// start logs the counters of session id every TrafficLogInterval while
// traffic flows, like the reference's "Traffic Bytes (in|out)" line. The
// returned stop ends the session's logging: it logs what the last interval
// counted and a "session ended" line with the totals, and returns once
// both are written, so the traffic lines always add up to the totals.
func (s *trafficStats) start(log *slog.Logger, id string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.logLoop(ctx, log, id)
	}()
	return func() {
		cancel()
		<-done
	}
}

func (s *trafficStats) logLoop(ctx context.Context, log *slog.Logger, id string) {
	began := time.Now()
	var totalIn, totalOut int64
	flush := func() {
		in, out := s.bytesIn.Swap(0), s.bytesOut.Swap(0)
		reads, writes := s.reads.Swap(0), s.writes.Swap(0)
		if in > 0 || out > 0 {
			totalIn += in
			totalOut += out
			log.Info("traffic", "client_id", id, "bytes_in", in, "bytes_out", out, "reads", reads, "writes", writes)
		}
	}
	t := time.NewTicker(TrafficLogInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			flush()
			log.Info("session ended", "client_id", id, "bytes_in", totalIn, "bytes_out", totalOut,
				"duration", time.Since(began).Round(time.Millisecond))
			return
		case <-t.C:
			flush()
		}
	}
}
