package server

import (
	"fmt"
	"sync/atomic"
	"time"
)

// stats counts client streams, and how many of them came with a client
// address, for the periodic log line of PROTOCOL.md §8.4.
type stats struct {
	withAddr atomic.Uint64
	total    atomic.Uint64
}

func (st *stats) count(hasAddr bool) {
	st.total.Add(1)
	if hasAddr {
		st.withAddr.Add(1)
	}
}

// line resets the counters and formats them for a period of elapsed.
func (st *stats) line(elapsed time.Duration) string {
	total := st.total.Swap(0)
	with := st.withAddr.Swap(0)
	if with > total {
		// A count raced with the swap; keep the line self-consistent.
		with = total
	}
	return fmt.Sprintf("in the past %.f s, %d/%d connections had client_ip", elapsed.Seconds(), with, total)
}

func (s *Server) logStats(interval time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case now := <-t.C:
			s.logger.Info(s.stats.line(now.Sub(last)))
			last = now
		case <-s.ctx.Done():
			return
		}
	}
}
