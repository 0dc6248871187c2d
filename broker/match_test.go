package broker

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func enqueueTest(t testing.TB, m *matcher, sid string, nat natClass, clients int) *waiter {
	t.Helper()
	w := &waiter{sid: sid, nat: nat, clients: clients, index: -1, res: make(chan *offer, 1)}
	if _, err := m.enqueue(w, time.Hour, func() {}); err != nil {
		t.Fatal(err)
	}
	return w
}

// TestMatchPools checks which pool serves which client NAT type.
func TestMatchPools(t *testing.T) {
	for _, tc := range []struct {
		name    string
		proxies []natClass
		client  natClass
		want    string // sid of the proxy matched, "" for none
	}{
		{"restricted client, unrestricted proxy", []natClass{natUnrestricted}, natRestricted, "0"},
		{"unknown client, unrestricted proxy", []natClass{natUnrestricted}, natUnknown, "0"},
		{"restricted client, restricted proxy only", []natClass{natRestricted}, natRestricted, ""},
		{"restricted client, unknown proxy only", []natClass{natUnknown}, natRestricted, ""},
		{"unknown client, unknown proxy only", []natClass{natUnknown}, natUnknown, ""},
		{"unrestricted client prefers restricted", []natClass{natUnrestricted, natRestricted}, natUnrestricted, "1"},
		{"unrestricted client takes unknown", []natClass{natUnrestricted, natUnknown}, natUnrestricted, "1"},
		{"unrestricted client falls back", []natClass{natUnrestricted}, natUnrestricted, "0"},
		{"restricted client skips restricted", []natClass{natRestricted, natUnrestricted}, natRestricted, "1"},
		{"nothing waiting", nil, natUnrestricted, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMatcher(0, len(proxyTypes))
			for i, nat := range tc.proxies {
				enqueueTest(t, m, fmt.Sprint(i), nat, 0)
			}
			w := m.match(tc.client)
			got := ""
			if w != nil {
				got = w.sid
				if w.state != stateMatched || w.answer == nil || w.index != -1 {
					t.Errorf("matched waiter in state %d", w.state)
				}
			}
			if got != tc.want {
				t.Fatalf("matched %q, want %q", got, tc.want)
			}
		})
	}
}

// TestMatchOrder checks fewest clients first, then first come first served.
func TestMatchOrder(t *testing.T) {
	m := newMatcher(0, len(proxyTypes))
	clients := []int{16, 0, 8, 0, 8, 24, 0}
	for i, c := range clients {
		enqueueTest(t, m, fmt.Sprint(i), natUnrestricted, c)
	}
	var order []string
	for {
		w := m.match(natRestricted)
		if w == nil {
			break
		}
		order = append(order, w.sid)
	}
	if got, want := fmt.Sprint(order), "[1 3 6 2 4 0 5]"; got != want {
		t.Fatalf("order %s, want %s", got, want)
	}
}

func TestMatcherExpireAndLimit(t *testing.T) {
	m := newMatcher(3, len(proxyTypes))
	a := enqueueTest(t, m, "a", natRestricted, 0)
	enqueueTest(t, m, "b", natUnrestricted, 0)
	enqueueTest(t, m, "c", natUnknown, 0)
	if _, err := m.enqueue(&waiter{sid: "d", index: -1}, time.Hour, func() {}); err != errPoolFull {
		t.Fatalf("over the limit: %v", err)
	}
	// Replacing a waiting Sid is allowed at the limit.
	a2 := &waiter{sid: "a", index: -1, nat: natRestricted}
	replaced, err := m.enqueue(a2, time.Hour, func() {})
	if err != nil || replaced != a || a.state != stateDone {
		t.Fatalf("replace: %v %v", replaced, err)
	}
	if m.expire(a) {
		t.Fatal("a replaced waiter expired again")
	}
	if !m.expire(a2) || m.expire(a2) {
		t.Fatal("expire must succeed exactly once")
	}
	u, r, byType := m.counts()
	if u != 1 || r != 1 || byType[0][natUnrestricted] != 1 || byType[0][natUnknown] != 1 || byType[0][natRestricted] != 0 {
		t.Fatalf("counts %d %d %v", u, r, byType)
	}
	if len(m.drain()) != 2 || len(m.sids) != 0 {
		t.Fatal("drain")
	}
}

// TestMatcherRandomized interleaves enqueue, expire and match at random and
// checks the heap invariants and the bookkeeping after every step.
func TestMatcherRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	m := newMatcher(0, len(proxyTypes))
	var live []*waiter
	for step := 0; step < 5000; step++ {
		switch op := rng.IntN(3); {
		case op == 0 || len(live) == 0:
			w := enqueueTest(t, m, fmt.Sprint(step), natClass(rng.IntN(3)), rng.IntN(4)*8)
			live = append(live, w)
		case op == 1:
			i := rng.IntN(len(live))
			if !m.expire(live[i]) {
				t.Fatal("expire of a live waiter failed")
			}
			live = append(live[:i], live[i+1:]...)
		default:
			client := natClass(rng.IntN(3))
			w := m.match(client)
			if w == nil {
				continue
			}
			// It must be the best candidate of the right pool.
			for _, o := range live {
				if o == w || o.pool != w.pool {
					continue
				}
				if o.clients < w.clients || (o.clients == w.clients && o.seq < w.seq) {
					t.Fatalf("matched %s (%d) before %s (%d)", w.sid, w.clients, o.sid, o.clients)
				}
			}
			if client != natUnrestricted && w.nat != natUnrestricted {
				t.Fatal("restricted client given a restricted proxy")
			}
			for i, o := range live {
				if o == w {
					live = append(live[:i], live[i+1:]...)
					break
				}
			}
			m.finishSession(w)
		}
		for _, p := range []*pool{&m.unrestricted, &m.restricted} {
			for i, w := range *p {
				if w.index != i {
					t.Fatalf("index %d at %d", w.index, i)
				}
			}
		}
		if len(m.unrestricted)+len(m.restricted) != len(live) || len(m.sids) != len(live) {
			t.Fatalf("pools %d+%d, sids %d, live %d", len(m.unrestricted), len(m.restricted), len(m.sids), len(live))
		}
	}
}

// TestMatcherConcurrent races enqueue, expiry, matching, answers and
// client give-ups; run with -race.
func TestMatcherConcurrent(t *testing.T) {
	m := newMatcher(0, len(proxyTypes))
	var wg sync.WaitGroup
	const workers, per = 8, 300
	var matched sync.Map
	for g := 0; g < workers; g++ {
		wg.Add(2)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				w := &waiter{sid: fmt.Sprintf("%d-%d", g, i), nat: natClass(i % 3), index: -1, res: make(chan *offer, 1)}
				if _, err := m.enqueue(w, time.Duration(i%5)*time.Millisecond, func() {
					if m.expire(w) {
						w.res <- nil
					}
				}); err != nil {
					t.Error(err)
					return
				}
				if o := <-w.res; o != nil {
					if !m.deliverAnswer(w.sid, "x") {
						// The client gave up first: fine.
					}
				}
			}
		}(g)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < per*2; i++ {
				w := m.match(natClass(i % 3))
				if w == nil {
					time.Sleep(100 * time.Microsecond)
					continue
				}
				if _, dup := matched.LoadOrStore(w, true); dup {
					t.Error("waiter matched twice")
				}
				w.timer.Stop()
				w.res <- &offer{}
				if i%2 == 0 {
					<-w.answer
				} else if !m.finishSession(w) {
					<-w.answer
				}
			}
		}(g)
	}
	wg.Wait()
	for _, w := range m.drain() {
		w.timer.Stop()
	}
	if len(m.sids) != 0 {
		t.Fatalf("%d sessions left", len(m.sids))
	}
}
