package main

import (
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/nattype"
)

func testSchedule(t *testing.T, c PageConfig) *schedule {
	t.Helper()
	c, err := c.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	return newSchedule(c)
}

func TestScheduleTorDefaults(t *testing.T) {
	s := testSchedule(t, PageConfig{})
	now := time.Unix(1_700_000_000, 0)
	if !s.due(now) {
		t.Fatal("first poll not due at once")
	}
	s.polled(now, 0)
	if s.due(now.Add(59*time.Second)) || !s.due(now.Add(60*time.Second)) {
		t.Errorf("next poll at %v, want 60 s after the last", s.next.Sub(now))
	}
	// Each client that never connects adds 100 s, up to 6 h.
	for i := 1; i <= 3; i++ {
		s.connFailed(nattype.Unrestricted)
		if want := 60*time.Second + time.Duration(i)*100*time.Second; s.interval != want {
			t.Fatalf("after %d failures interval %v, want %v", i, s.interval, want)
		}
	}
	for range 1000 {
		s.connFailed(nattype.Unknown)
	}
	if s.interval != 6*time.Hour {
		t.Errorf("interval %v after many failures, want 6h", s.interval)
	}
	// A success takes 100 s off; for an unrestricted proxy it goes to 30 s.
	s.connOK(nattype.Restricted)
	if s.interval != 6*time.Hour-100*time.Second {
		t.Errorf("interval %v after a success, want 6h-100s", s.interval)
	}
	s.connOK(nattype.Unrestricted)
	if s.interval != 30*time.Second {
		t.Errorf("unrestricted interval %v, want 30s", s.interval)
	}
	s.connFailed(nattype.Unknown)
	s.connOK(nattype.Restricted)
	if s.interval != 60*time.Second {
		t.Errorf("interval %v, want back at the 60 s default", s.interval)
	}
}

func TestScheduleCapacity(t *testing.T) {
	for _, tc := range []struct {
		capacity int
		nat      string
		want     int
	}{
		{0, nattype.Unknown, 1},
		{0, nattype.Restricted, 1},
		{0, nattype.Unrestricted, 2},
		{3, nattype.Restricted, 3},
		{1, nattype.Unrestricted, 1},
	} {
		s := testSchedule(t, PageConfig{Capacity: tc.capacity})
		if got := s.limit(tc.nat); got != tc.want {
			t.Errorf("capacity %d, NAT %s: limit %d, want %d", tc.capacity, tc.nat, got, tc.want)
		}
	}
}

func TestScheduleLearnsRestricted(t *testing.T) {
	s := testSchedule(t, PageConfig{})
	s.connFailed(nattype.Restricted)
	s.connFailed(nattype.Restricted)
	s.connOK(nattype.Unrestricted) // resets the run
	s.connFailed(nattype.Restricted)
	s.connFailed(nattype.Restricted)
	s.connFailed(nattype.Unrestricted) // does not count
	if s.effectiveNAT(nattype.Unrestricted) != nattype.Unrestricted {
		t.Fatal("learned restricted too early")
	}
	s.connFailed(nattype.Restricted)
	if got := s.effectiveNAT(nattype.Unrestricted); got != nattype.Restricted {
		t.Fatalf("after 3 failures in a row with restricted clients: %s, want restricted", got)
	}
	if s.limit(s.effectiveNAT(nattype.Unrestricted)) != 1 {
		t.Error("a learned restricted proxy serves more than one client")
	}
	s.natMeasured()
	if got := s.effectiveNAT(nattype.Unrestricted); got != nattype.Unrestricted {
		t.Errorf("a new measurement did not replace the learned type: %s", got)
	}
}

func TestScheduleBrokerFailures(t *testing.T) {
	s := testSchedule(t, PageConfig{PollInterval: Duration(2 * time.Second)})
	now := time.Unix(1_700_000_000, 0)
	var waits []time.Duration
	for range 12 {
		waits = append(waits, s.pollFailed(now))
	}
	want := []time.Duration{2, 4, 8, 16, 32, 64, 128, 256, 512, 600, 600, 600}
	for i, w := range want {
		if waits[i] != w*time.Second {
			t.Fatalf("waits %v, want %v seconds", waits, want)
		}
	}
	if s.due(now.Add(599 * time.Second)) {
		t.Error("due before the back-off ended")
	}
	s.retry(now)
	if !s.due(now) {
		t.Error("retry did not make the poll due")
	}
	if w := s.pollFailed(now); w != 2*time.Second {
		t.Errorf("after retry the first wait is %v, want 2s", w)
	}
}

func TestScheduleBrokerHint(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		interval, hint, want time.Duration
	}{
		{60 * time.Second, 20 * time.Second, 60 * time.Second}, // cannot speed us up
		{2 * time.Second, 20 * time.Second, 2 * time.Second},   // below Tor's minute: ignored
		{60 * time.Second, 5 * time.Minute, 5 * time.Minute},   // can slow us down
		{60 * time.Second, 24 * time.Hour, 6 * time.Hour},      // but not beyond the slowest
		{60 * time.Second, 0, 60 * time.Second},                // no hint
		{10 * time.Minute, 5 * time.Minute, 10 * time.Minute},  // ours is slower
	} {
		s := testSchedule(t, PageConfig{PollInterval: Duration(tc.interval)})
		s.polled(now, tc.hint)
		if got := s.next.Sub(now); got != tc.want {
			t.Errorf("interval %v, hint %v: wait %v, want %v", tc.interval, tc.hint, got, tc.want)
		}
	}
}
