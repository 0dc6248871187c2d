package main

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/snowfall-pt/snowfall/proxy"
)

// Store keys of the browser proxy, next to the core's (proxy.StoreKey*).
const (
	storeKeyHelped      = "helped-hours"
	storeKeyHelpedTotal = "helped-total"
	storeKeyBytesTotal  = "bytes-total"
)

// historyHours is the window of "people helped in the last 24 hours".
const historyHours = 24

// hourCount is the number of clients helped in one hour, the hour counted
// from the Unix epoch. Hours, not timestamps, are kept: the page needs no
// more, and a shared computer's storage then says little about when the
// proxy was used.
type hourCount struct {
	Hour  int64 `json:"h"`
	Count int   `json:"n"`
}

// history counts people helped and bytes relayed across visits, in a Store.
// It is not safe for concurrent use; the controller locks around it.
type history struct {
	store       proxy.Store
	hours       []hourCount // oldest first, at most historyHours
	helpedTotal int64
	bytesTotal  int64
}

func loadHistory(s proxy.Store) *history {
	h := &history{store: s}
	if v, ok := s.Get(storeKeyHelped); ok {
		var hc []hourCount
		if json.Unmarshal([]byte(v), &hc) == nil {
			// Keep only well-formed, ordered entries; storage is
			// editable by anyone at the keyboard.
			for _, e := range hc {
				if e.Count > 0 && (len(h.hours) == 0 || e.Hour > h.hours[len(h.hours)-1].Hour) {
					h.hours = append(h.hours, e)
				}
			}
			if len(h.hours) > historyHours {
				h.hours = h.hours[len(h.hours)-historyHours:]
			}
		}
	}
	h.helpedTotal = loadInt(s, storeKeyHelpedTotal)
	h.bytesTotal = loadInt(s, storeKeyBytesTotal)
	return h
}

func loadInt(s proxy.Store, key string) int64 {
	v, ok := s.Get(key)
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func hourOf(t time.Time) int64 { return t.Unix() / 3600 }

// prune drops hours outside the window ending at now.
func (h *history) prune(now time.Time) {
	cut := hourOf(now) - historyHours
	i := 0
	for i < len(h.hours) && h.hours[i].Hour <= cut {
		i++
	}
	h.hours = append(h.hours[:0], h.hours[i:]...)
}

// helped records one client served at now.
func (h *history) helped(now time.Time) {
	h.prune(now)
	hr := hourOf(now)
	if n := len(h.hours); n > 0 && h.hours[n-1].Hour == hr {
		h.hours[n-1].Count++
	} else if n == 0 || h.hours[n-1].Hour < hr {
		h.hours = append(h.hours, hourCount{Hour: hr, Count: 1})
	} else {
		// The clock went back: count it in the latest hour.
		h.hours[n-1].Count++
	}
	h.helpedTotal++
	if b, err := json.Marshal(h.hours); err == nil {
		h.store.Set(storeKeyHelped, string(b))
	}
	h.store.Set(storeKeyHelpedTotal, strconv.FormatInt(h.helpedTotal, 10))
}

// last24h is the number of clients helped in the 24 hours up to now.
func (h *history) last24h(now time.Time) int {
	h.prune(now)
	n := 0
	for _, e := range h.hours {
		n += e.Count
	}
	return n
}

// addBytes adds relayed bytes to the all-time total.
func (h *history) addBytes(n int64) {
	if n <= 0 {
		return
	}
	h.bytesTotal += n
	h.store.Set(storeKeyBytesTotal, strconv.FormatInt(h.bytesTotal, 10))
}
