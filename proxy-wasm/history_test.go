package main

import (
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/proxy"
)

func TestHistory(t *testing.T) {
	store := &proxy.MemStore{}
	h := loadHistory(store)
	t0 := time.Unix(1_700_000_000, 0)
	h.helped(t0)
	h.helped(t0.Add(time.Minute))
	h.helped(t0.Add(5 * time.Hour))
	h.addBytes(1000)
	h.addBytes(-5)
	if n := h.last24h(t0.Add(6 * time.Hour)); n != 3 {
		t.Errorf("last 24 h = %d, want 3", n)
	}
	// Reloaded from the store, as on the next visit.
	h = loadHistory(store)
	if h.helpedTotal != 3 || h.bytesTotal != 1000 {
		t.Errorf("reloaded totals %d people, %d bytes", h.helpedTotal, h.bytesTotal)
	}
	if n := h.last24h(t0.Add(24*time.Hour + 30*time.Minute)); n != 1 {
		t.Errorf("a day later: %d, want 1 (the first hour dropped)", n)
	}
	if n := h.last24h(t0.Add(48 * time.Hour)); n != 0 {
		t.Errorf("two days later: %d, want 0", n)
	}
	if h.helpedTotal != 3 {
		t.Errorf("total %d changed by pruning", h.helpedTotal)
	}
}

func TestHistoryBounded(t *testing.T) {
	h := loadHistory(&proxy.MemStore{})
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 1000 {
		h.helped(t0.Add(time.Duration(i) * 30 * time.Minute))
	}
	if len(h.hours) > historyHours+1 {
		t.Errorf("%d hours kept", len(h.hours))
	}
}

func TestHistoryBadStore(t *testing.T) {
	store := &proxy.MemStore{}
	for k, v := range map[string]string{
		storeKeyHelped:      `[{"h":5,"n":1},{"h":3,"n":9},{"h":7,"n":-4},"x"]`,
		storeKeyHelpedTotal: "-7",
		storeKeyBytesTotal:  "lots",
	} {
		store.Set(k, v)
	}
	h := loadHistory(store)
	if len(h.hours) != 0 || h.helpedTotal != 0 || h.bytesTotal != 0 {
		t.Errorf("corrupt storage loaded as %+v", h)
	}
	store.Set(storeKeyHelped, `[{"h":5,"n":1},{"h":3,"n":9},{"h":7,"n":2}]`)
	h = loadHistory(store)
	if len(h.hours) != 2 || h.hours[0].Hour != 5 || h.hours[1].Hour != 7 {
		t.Errorf("out-of-order entries kept: %+v", h.hours)
	}
}
