package server

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
)

// DefaultMaxORDials bounds the connections to tor being set up at once:
// a burst of new streams waits its turn rather than opening hundreds of
// TCP connections and ExtORPort handshakes together.
const DefaultMaxORDials = 64

// Forwarder connects every stream a Server accepts to tor.
type Forwarder struct {
	Dialer *ORDialer
	// MaxDials bounds concurrent dials to tor; 0 means DefaultMaxORDials.
	MaxDials int
	Logger   *slog.Logger

	open atomic.Int64
}

// OpenConns returns the number of connections to tor now open or being
// dialled.
func (f *Forwarder) OpenConns() int { return int(f.open.Load()) }

// Serve accepts streams from srv until acceptCtx ends, and pipes each to a
// new connection to tor under connCtx (which may outlive acceptCtx, for a
// grace period at shutdown). It returns once every stream has ended.
func (f *Forwarder) Serve(acceptCtx, connCtx context.Context, srv *Server) {
	logger := f.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	maxDials := f.MaxDials
	if maxDials <= 0 {
		maxDials = DefaultMaxORDials
	}
	limits := newLimitLogger(logger)
	dials := make(chan struct{}, maxDials)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := srv.Accept(acceptCtx)
		if err != nil {
			return
		}
		f.open.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.open.Add(-1)
			defer c.Close()
			select {
			case dials <- struct{}{}:
			default:
				limits.reached("max-tor-dials", maxDials, "note", "streams wait for a dial slot")
				select {
				case dials <- struct{}{}:
				case <-connCtx.Done():
					return
				}
			}
			or, err := f.Dialer.Dial(connCtx, c.ClientAddr)
			<-dials
			if err != nil {
				logger.Warn("cannot connect to tor", "err", err)
				return
			}
			if err := Pipe(connCtx, c, or); err != nil {
				logger.Debug("stream ended", "clientid", c.ClientID.String(), "err", err)
			}
		}()
	}
}
