package main

// This file is the page's state: what it shows and how it is told.

// Phases shown by the page.
const (
	PhaseOff      = "off"
	PhaseStarting = "starting" // measuring the NAT type, checking the bridge
	PhaseWaiting  = "waiting"  // polling, nobody to help right now
	PhaseServing  = "serving"  // relaying for at least one person
	PhaseError    = "error"    // cannot work until the error clears
)

// Error kinds shown by the page.
const (
	ErrKindWebRTC  = "webrtc"  // the browser has no WebRTC
	ErrKindConfig  = "config"  // the configuration is unusable
	ErrKindBroker  = "broker"  // the broker cannot be reached
	ErrKindRelay   = "relay"   // the bridge cannot be reached
	ErrKindPattern = "pattern" // the broker only has bridges we refuse
)

// State is what the page shows. It is sent to the page as JSON.
type State struct {
	Running bool   `json:"running"`
	Phase   string `json:"phase"`
	// Clients is the number of people being helped now.
	Clients int `json:"clients"`
	// Helped24h, HelpedTotal: people helped in the last 24 hours and ever
	// (in this browser profile).
	Helped24h   int   `json:"helped24h"`
	HelpedTotal int64 `json:"helpedTotal"`
	// Bytes relayed since the proxy was switched on, per direction, and
	// ever.
	BytesToClients   int64 `json:"bytesToClients"`
	BytesFromClients int64 `json:"bytesFromClients"`
	BytesTotal       int64 `json:"bytesTotal"`
	// NAT is the NAT type reported to the broker; NATLearned says it was
	// learned from failed connections rather than measured.
	NAT        string `json:"nat"`
	NATLearned bool   `json:"natLearned,omitempty"`
	// PollInterval is the current interval (ms); NextPoll when the next
	// poll may go out (Unix ms, 0 when unknown).
	PollInterval int64 `json:"pollInterval"`
	NextPoll     int64 `json:"nextPoll"`
	Capacity     int   `json:"capacity"`
	// Counters since switched on.
	Polls             int64       `json:"polls"`
	Matches           int64       `json:"matches"`
	FailedConnections int64       `json:"failedConnections"`
	ProxyType         string      `json:"proxyType,omitempty"`
	Error             *StateError `json:"error,omitempty"`
}

// StateError is a problem the volunteer should see.
type StateError struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
	// RetryAt is when the proxy tries again by itself (Unix ms), 0 if not.
	RetryAt int64 `json:"retryAt,omitempty"`
}

// onUpdate sets the function told about every change of state.
func (c *controller) onUpdate(f func(State)) {
	c.notifyMu.Lock()
	c.notify = f
	c.notifyMu.Unlock()
	c.update()
}

// update tells the page the current state. It must be called without c.mu.
func (c *controller) update() {
	s := c.State()
	c.notifyMu.Lock()
	f := c.notify
	c.notifyMu.Unlock()
	if f != nil {
		f(s)
	}
}

// State returns what the page shows now.
func (c *controller) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.plat.now()
	s := State{
		Running:           c.running,
		Phase:             PhaseOff,
		Clients:           c.active,
		Helped24h:         c.hist.last24h(now),
		HelpedTotal:       c.hist.helpedTotal,
		BytesToClients:    c.toClients.Load(),
		BytesFromClients:  c.fromClients.Load(),
		NAT:               c.nat,
		Polls:             c.polls.Load(),
		Matches:           c.matches.Load(),
		FailedConnections: c.failedConns.Load(),
		Error:             c.err,
	}
	// Bytes of running connections are added to the total when they end.
	s.BytesTotal = c.hist.bytesTotal + c.liveTotal.Load()
	if c.sched != nil {
		s.NAT = c.sched.effectiveNAT(c.nat)
		s.NATLearned = c.sched.learned != ""
		s.PollInterval = c.sched.interval.Milliseconds()
		if !c.sched.next.IsZero() {
			s.NextPoll = c.sched.next.UnixMilli()
		}
		s.Capacity = c.sched.limit(s.NAT)
		s.ProxyType = c.cfg.ProxyType
	}
	if c.running {
		switch {
		case c.active > 0:
			s.Phase = PhaseServing
		case c.err != nil:
			s.Phase = PhaseError
		case !c.natKnown || !c.relayOK:
			s.Phase = PhaseStarting
		default:
			s.Phase = PhaseWaiting
		}
	} else if c.err != nil {
		s.Phase = PhaseError
	}
	return s
}
