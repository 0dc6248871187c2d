package main

import "github.com/snowfall-pt/snowfall/proxy"

// observer is the controller as the core's proxy.Observer: it counts
// polls, people and bytes for the page as the core reports them. Bytes
// arrive while a connection runs; the supervisor (lifecycle.go) pushes the
// changed state to the page every second.
type observer controller

var _ proxy.Observer = (*observer)(nil)

// PollSent implements proxy.Observer.
func (o *observer) PollSent() {
	(*controller)(o).polls.Add(1)
	(*controller)(o).update()
}

// ConnectionStarted implements proxy.Observer: one more person helped.
func (o *observer) ConnectionStarted(proxy.ConnInfo) {
	c := (*controller)(o)
	c.mu.Lock()
	c.active++
	c.hist.helped(c.plat.now())
	c.mu.Unlock()
	c.update()
}

// BytesRelayed implements proxy.Observer. It runs per read, so it only
// adds to atomic counters.
func (o *observer) BytesRelayed(toClient, fromClient int) {
	c := (*controller)(o)
	c.toClients.Add(int64(toClient))
	c.fromClients.Add(int64(fromClient))
	c.liveTotal.Add(int64(toClient + fromClient))
}

// ConnectionEnded implements proxy.Observer: the connection's bytes move
// from the live count to the stored history.
func (o *observer) ConnectionEnded(ci proxy.ConnInfo) {
	c := (*controller)(o)
	n := ci.ToClient + ci.FromClient
	c.mu.Lock()
	c.active--
	c.liveTotal.Add(-n)
	c.hist.addBytes(n)
	c.mu.Unlock()
	c.update()
}

// ConnectionTimedOut implements proxy.Observer; the policy counts failed
// connections (pollpolicy.go).
func (o *observer) ConnectionTimedOut() {}

// NATTypeChanged implements proxy.Observer.
func (o *observer) NATTypeChanged(t string) {
	c := (*controller)(o)
	c.mu.Lock()
	c.nat, c.natKnown = t, true
	if c.sched != nil {
		c.sched.natMeasured()
	}
	c.mu.Unlock()
	c.update()
}
