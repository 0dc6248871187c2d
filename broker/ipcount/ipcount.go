// Package ipcount keeps a journal of how many distinct proxy addresses the
// broker saw in each interval: one JSON line per interval,
// {"recordingStart":...,"recordingEnd":...,"distinctAddresses":N}.
//
// Tor's broker writes a HyperLogLog sketch of masked addresses instead, so
// that sketches can be merged later; this journal records only the exact
// count, and addresses never leave memory.
package ipcount

import (
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"sync"
	"time"
)

// maxAddrs bounds the set; counts saturate there.
const maxAddrs = 1 << 22

// Counter counts distinct addresses per interval. Add is safe for
// concurrent use.
type Counter struct {
	w        io.Writer
	interval time.Duration

	mu    sync.Mutex
	set   map[netip.Addr]struct{}
	start time.Time

	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type record struct {
	RecordingStart    time.Time `json:"recordingStart"`
	RecordingEnd      time.Time `json:"recordingEnd"`
	DistinctAddresses int       `json:"distinctAddresses"`
}

// New starts a Counter that writes a line to w every interval. A zero
// interval writes only on Flush and Close.
func New(w io.Writer, interval time.Duration) (*Counter, error) {
	if interval < 0 {
		return nil, errors.New("ipcount: negative interval")
	}
	c := &Counter{w: w, interval: interval, set: make(map[netip.Addr]struct{}), start: time.Now().UTC(), done: make(chan struct{})}
	if interval > 0 {
		c.wg.Add(1)
		go c.loop()
	}
	return c, nil
}

func (c *Counter) loop() {
	defer c.wg.Done()
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			c.Flush(now)
		}
	}
}

// Add records addr.
func (c *Counter) Add(addr netip.Addr) {
	if !addr.IsValid() {
		return
	}
	addr = addr.Unmap()
	c.mu.Lock()
	if len(c.set) < maxAddrs {
		c.set[addr] = struct{}{}
	}
	c.mu.Unlock()
}

// Flush writes the line for the interval ending at now and starts a new one.
func (c *Counter) Flush(now time.Time) error {
	c.mu.Lock()
	rec := record{RecordingStart: c.start, RecordingEnd: now.UTC(), DistinctAddresses: len(c.set)}
	c.set = make(map[netip.Addr]struct{})
	c.start = rec.RecordingEnd
	line, err := json.Marshal(rec)
	if err == nil {
		line = append(line, '\n')
		_, err = c.w.Write(line)
	}
	c.mu.Unlock()
	return err
}

// Close stops the timer and writes the last, partial interval.
func (c *Counter) Close() error {
	var err error
	c.once.Do(func() {
		close(c.done)
		c.wg.Wait()
		err = c.Flush(time.Now())
	})
	return err
}
