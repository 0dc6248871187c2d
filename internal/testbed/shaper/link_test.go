package shaper

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

func mustLink(t testing.TB, cfg Config) *Link {
	t.Helper()
	l, err := NewLink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{Delay: -1}, {Jitter: -1}, {Loss: -0.1}, {Loss: 1.1}, {Loss: math.NaN()},
		{Rate: -1}, {Rate: 1e6, QueueBytes: -1}, {QueueBytes: 1000},
	} {
		if _, err := NewLink(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if _, err := NewLink(Config{Delay: time.Millisecond, Loss: 1, Rate: 1, QueueBytes: 1}); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestDelayOnly(t *testing.T) {
	l := mustLink(t, Config{Delay: 40 * time.Millisecond})
	for i := 0; i < 1000; i++ {
		now := t0.Add(time.Duration(i) * time.Microsecond)
		at, fate := l.Admit(now, 1200)
		if fate != Deliver || at.Sub(now) != 40*time.Millisecond {
			t.Fatalf("packet %d: %v at +%v, want deliver at +40ms", i, fate, at.Sub(now))
		}
	}
	if s := l.Stats(); s.Delivered != 1000 || s.Lost != 0 || s.Overflow != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestJitterKeepsOrderAndBounds(t *testing.T) {
	const delay, jitter = 40 * time.Millisecond, 10 * time.Millisecond
	l := mustLink(t, Config{Delay: delay, Jitter: jitter, Seed: 7})
	var last time.Time
	var sum time.Duration
	var spread bool
	const n = 20000
	for i := 0; i < n; i++ {
		// Packets 25 ms apart, more than the jitter's range, so that no
		// release is clamped to its predecessor's and the spread shows.
		now := t0.Add(time.Duration(i) * 25 * time.Millisecond)
		at, fate := l.Admit(now, 100)
		if fate != Deliver {
			t.Fatalf("packet %d %v", i, fate)
		}
		d := at.Sub(now)
		if at.Before(last) {
			t.Fatalf("packet %d released before its predecessor", i)
		}
		if d < delay-jitter || d > delay+jitter {
			t.Fatalf("packet %d delayed %v, outside %v ± %v", i, d, delay, jitter)
		}
		spread = spread || d < delay-jitter/2 || d > delay+jitter/2
		last = at
		sum += d
	}
	if !spread {
		t.Error("jitter never moved a delay by more than half its range")
	}
	if mean := sum / n; mean < delay-time.Millisecond || mean > delay+time.Millisecond {
		t.Errorf("mean delay %v, want %v ± 1ms", mean, delay)
	}
}

// TestJitterBackToBack: packets closer together than the jitter are
// clamped to their predecessor's release, never reordered.
func TestJitterBackToBack(t *testing.T) {
	l := mustLink(t, Config{Delay: 5 * time.Millisecond, Jitter: 5 * time.Millisecond, Seed: 1})
	var last time.Time
	for i := 0; i < 5000; i++ {
		at, _ := l.Admit(t0.Add(time.Duration(i)*time.Microsecond), 100)
		if at.Before(last) {
			t.Fatalf("packet %d reordered", i)
		}
		last = at
	}
}

func TestLossRateAndSeed(t *testing.T) {
	const n = 200000
	pattern := func(seed uint64, loss float64) []bool {
		l := mustLink(t, Config{Loss: loss, Seed: seed})
		out := make([]bool, n)
		for i := range out {
			_, fate := l.Admit(t0, 1200)
			out[i] = fate == Lost
		}
		return out
	}
	for _, loss := range []float64{0.01, 0.02, 0.05, 0.2} {
		a := pattern(42, loss)
		lost := 0
		for _, x := range a {
			if x {
				lost++
			}
		}
		// Binomial: 5 standard deviations is a bound a correct link
		// misses once in millions of seeds; the seed is fixed anyway.
		sd := math.Sqrt(n * loss * (1 - loss))
		if d := math.Abs(float64(lost) - n*loss); d > 5*sd {
			t.Errorf("loss %.2f: %d of %d lost, want %.0f ± %.0f", loss, lost, n, n*loss, 5*sd)
		}
		b := pattern(42, loss)
		for i := range a {
			if a[i] != b[i] {
				t.Fatalf("loss %.2f: same seed, different fate for packet %d", loss, i)
			}
		}
		c := pattern(43, loss)
		same := true
		for i := range a {
			same = same && a[i] == c[i]
		}
		if same {
			t.Errorf("loss %.2f: seeds 42 and 43 drop the same packets", loss)
		}
	}
	for _, loss := range []float64{0, 1} {
		for i, x := range pattern(1, loss) {
			if x != (loss == 1) {
				t.Fatalf("loss %v: packet %d lost=%v", loss, i, x)
			}
		}
	}
}

// TestLossPatternIndependentOfRate: the seed fixes which packets random
// loss takes, whatever the rate limiter does with the others.
func TestLossPatternIndependentOfRate(t *testing.T) {
	a := mustLink(t, Config{Loss: 0.1, Seed: 9})
	b := mustLink(t, Config{Loss: 0.1, Seed: 9, Rate: 1e6, QueueBytes: 3000, Delay: time.Millisecond})
	for i := 0; i < 10000; i++ {
		now := t0.Add(time.Duration(i) * 100 * time.Microsecond)
		_, fa := a.Admit(now, 1200)
		_, fb := b.Admit(now, 1200)
		if (fa == Lost) != (fb == Lost) {
			t.Fatalf("packet %d: %v without a rate limit, %v with one", i, fa, fb)
		}
	}
}

func TestRateLimit(t *testing.T) {
	const rate = 20_000_000 // bit/s
	const size = 1200
	cfg := Config{Rate: rate, QueueBytes: 50_000}
	for _, offered := range []float64{0.5, 2, 10} { // times the rate
		l := mustLink(t, cfg)
		gap := time.Duration(float64(size*8) / (offered * rate) * float64(time.Second))
		const dur = 10 * time.Second
		var lastRelease time.Time
		var delivered, overflow int
		for now := t0; now.Before(t0.Add(dur)); now = now.Add(gap) {
			at, fate := l.Admit(now, size)
			switch fate {
			case Deliver:
				delivered++
				// The queue never holds more than QueueBytes: no packet
				// waits longer than it takes to send them.
				if wait := at.Sub(now); wait > time.Duration(float64(cfg.QueueBytes*8)/rate*float64(time.Second)) {
					t.Fatalf("offered %v×: packet waits %v", offered, wait)
				}
				if at.Before(lastRelease) {
					t.Fatalf("offered %v×: out of order", offered)
				}
				lastRelease = at
			case Overflow:
				overflow++
			default:
				t.Fatalf("fate %v without loss", fate)
			}
		}
		got := float64(delivered*size*8) / lastRelease.Sub(t0).Seconds()
		want := min(offered, 1) * rate
		if math.Abs(got-want)/want > 0.01 {
			t.Errorf("offered %v×: %.3g bit/s through, want %.3g ± 1 %%", offered, got, want)
		}
		if offered < 1 && overflow > 0 {
			t.Errorf("offered %v×: %d drops below the rate", offered, overflow)
		}
		if offered > 1 && overflow == 0 {
			t.Errorf("offered %v×: no drops above the rate", offered)
		}
		if s := l.Stats(); s.MaxBacklog > cfg.QueueBytes || int(s.Overflow) != overflow {
			t.Errorf("offered %v×: stats %+v", offered, s)
		}
	}
}

// TestRateAndDelay: serialisation and propagation add up.
func TestRateAndDelay(t *testing.T) {
	l := mustLink(t, Config{Rate: 8_000_000, Delay: 10 * time.Millisecond}) // 1 byte per µs
	at, fate := l.Admit(t0, 1000)
	if fate != Deliver || at.Sub(t0) != 11*time.Millisecond {
		t.Fatalf("first packet %v at +%v, want +11ms", fate, at.Sub(t0))
	}
	at, _ = l.Admit(t0, 1000)
	if at.Sub(t0) != 12*time.Millisecond {
		t.Fatalf("second packet at +%v, want +12ms (queued behind the first)", at.Sub(t0))
	}
	// After the link has drained, a packet goes straight through.
	at, _ = l.Admit(t0.Add(time.Second), 1000)
	if at.Sub(t0.Add(time.Second)) != 11*time.Millisecond {
		t.Fatalf("packet on an idle link at +%v", at.Sub(t0.Add(time.Second)))
	}
}

func TestDefaultQueue(t *testing.T) {
	if q := (Config{Rate: 20_000_000}).queueBytes(); q != 250_000 {
		t.Errorf("queue at 20 Mbit/s = %d, want 100 ms = 250000", q)
	}
	if q := (Config{Rate: 1000}).queueBytes(); q != 3000 {
		t.Errorf("queue at 1 kbit/s = %d, want two packets", q)
	}
}

func TestPacketSize(t *testing.T) {
	v4 := []byte{0x45, 0, 0x04, 0xd0, 0, 0, 0, 0}
	if n := PacketSize(v4, 0); n != 1232 {
		t.Errorf("IPv4 size %d, want 1232", n)
	}
	v6 := []byte{0x60, 0, 0, 0, 0x04, 0xb0}
	if n := PacketSize(v6, 0); n != 1240 {
		t.Errorf("IPv6 size %d, want 1240", n)
	}
	if n := PacketSize([]byte{0x45, 0, 0, 3}, 1500); n != 1500 {
		t.Errorf("bad IPv4 length: %d, want the captured length", n)
	}
	if n := PacketSize(nil, 0); n != 0 {
		t.Errorf("empty: %d", n)
	}
}

func FuzzPacketSize(f *testing.F) {
	f.Add([]byte{0x45, 0, 0x04, 0xd0}, uint32(0))
	f.Add([]byte{0x60, 0, 0, 0, 0xff, 0xff}, uint32(9000))
	f.Add([]byte{}, uint32(1<<31))
	f.Fuzz(func(t *testing.T, b []byte, capLen uint32) {
		n := PacketSize(b, capLen)
		if n < 0 || n > 1<<16+40 && n > len(b) {
			t.Fatalf("size %d for %d bytes, caplen %d", n, len(b), capLen)
		}
	})
}

func BenchmarkAdmit(b *testing.B) {
	l := mustLink(b, Config{Delay: 40 * time.Millisecond, Jitter: time.Millisecond, Loss: 0.02, Rate: 20e6, Seed: 1})
	now := t0
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(500 * time.Microsecond)
		l.Admit(now, 1200)
	}
}
