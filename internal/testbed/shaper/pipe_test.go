package shaper

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// recorder stands in for the kernel: it notes each verdict and when it came.
type recorder struct {
	mu       sync.Mutex
	accepted map[uint32]time.Time
	dropped  map[uint32]bool
	order    []uint32
	fail     bool
}

func newRecorder() *recorder {
	return &recorder{accepted: map[uint32]time.Time{}, dropped: map[uint32]bool{}}
}

func (r *recorder) verdict(id uint32, accept bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("refused")
	}
	if _, dup := r.accepted[id]; dup || r.dropped[id] {
		panic("second verdict")
	}
	if accept {
		r.accepted[id] = time.Now()
		r.order = append(r.order, id)
	} else {
		r.dropped[id] = true
	}
	return nil
}

// TestPipeReleasesOnTime runs the pipe on synctest's fake clock: every
// packet is released exactly when its link says, in order.
func TestPipeReleasesOnTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		link := mustLink(t, Config{Delay: 40 * time.Millisecond, Jitter: 5 * time.Millisecond, Loss: 0.1, Seed: 3})
		ref := mustLink(t, link.Config()) // the same decisions, computed apart
		rec := newRecorder()
		p := NewPipe(link, rec.verdict)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()

		want := map[uint32]time.Time{}
		var lost int
		for i := uint32(0); i < 2000; i++ {
			at, fate := ref.Admit(time.Now(), 1000)
			if fate == Deliver {
				want[i] = at
			} else {
				lost++
			}
			p.Packet(i, 1000)
			time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		rec.mu.Lock()
		if len(rec.accepted) != len(want) || len(rec.dropped) != lost {
			t.Fatalf("%d accepted, %d dropped; want %d and %d", len(rec.accepted), len(rec.dropped), len(want), lost)
		}
		for id, at := range want {
			if got := rec.accepted[id]; !got.Equal(at) {
				t.Fatalf("packet %d released at %v, want %v", id, got, at)
			}
		}
		for i := 1; i < len(rec.order); i++ {
			if rec.order[i] < rec.order[i-1] {
				t.Fatalf("packet %d released after %d", rec.order[i-1], rec.order[i])
			}
		}
		rec.mu.Unlock()
		if p.Held() != 0 {
			t.Errorf("%d held after all were due", p.Held())
		}
		cancel()
		<-done
	})
}

// TestPipeFlushOnStop: stopping the pipe releases what it holds at once.
func TestPipeFlushOnStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		p := NewPipe(mustLink(t, Config{Delay: time.Hour}), rec.verdict)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		for i := uint32(0); i < 100; i++ {
			p.Packet(i, 100)
		}
		synctest.Wait()
		if p.Held() != 100 || len(rec.order) != 0 {
			t.Fatalf("held %d, released %d before the hour", p.Held(), len(rec.order))
		}
		start := time.Now()
		cancel()
		<-done
		if len(rec.order) != 100 || time.Since(start) != 0 {
			t.Fatalf("released %d after %v on stop", len(rec.order), time.Since(start))
		}
	})
}

func TestPipeCountsVerdictErrors(t *testing.T) {
	rec := newRecorder()
	rec.fail = true
	p := NewPipe(mustLink(t, Config{Loss: 1}), rec.verdict)
	p.Packet(1, 100)
	p.Packet(2, 100)
	if n, err := p.VerdictErrors(); n != 2 || err == nil {
		t.Errorf("verdict errors %d, %v", n, err)
	}
}

// TestPipeSteadyStateReusesStorage: a long flow through a short delay
// does not grow the queue's storage without bound.
func TestPipeSteadyStateReusesStorage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := newRecorder()
		p := NewPipe(mustLink(t, Config{Delay: 10 * time.Millisecond}), rec.verdict)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { p.Run(ctx); close(done) }()
		for i := uint32(0); i < 50000; i++ {
			p.Packet(i, 100)
			time.Sleep(10 * time.Microsecond)
		}
		p.mu.Lock()
		c := cap(p.q)
		p.mu.Unlock()
		// 10 ms at one packet per 10 µs is 1000 packets held.
		if c > 8192 {
			t.Errorf("queue storage grew to %d entries", c)
		}
		cancel()
		<-done
		if len(rec.order) != 50000 {
			t.Errorf("released %d", len(rec.order))
		}
	})
}

func TestParseKernelStats(t *testing.T) {
	ks, n, ok := parseKernelStats("    3  12345     7 2    64     5    11 98765  1")
	if !ok || n != 3 || ks != (KernelStats{Waiting: 7, QueueDropped: 5, UserDropped: 11}) {
		t.Errorf("parsed %+v queue %d ok %v", ks, n, ok)
	}
	for _, bad := range []string{"", "1 2 3", "70000 1 2 3 4 5 6 7 1", "1 2 x 3 4 5 6 7 1", "1 2 -3 3 4 5 6 7 1"} {
		if _, _, ok := parseKernelStats(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func BenchmarkPipe(b *testing.B) {
	var n int
	p := NewPipe(mustLink(b, Config{Delay: time.Millisecond}), func(uint32, bool) error { n++; return nil })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	b.ReportAllocs()
	var id uint32
	for b.Loop() {
		p.Packet(id, 1200)
		id++
	}
	cancel()
	<-done
}
