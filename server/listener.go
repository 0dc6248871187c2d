package server

import (
	"net"
	"sync"
	"sync/atomic"
)

// limitListener closes connections accepted while max are already open, so
// that a flood of connections that never get as far as a WebSocket cannot
// grow memory without bound. Unlike netutil.LimitListener it never blocks
// Accept, so connections that are refused are refused at once.
type limitListener struct {
	net.Listener
	max  int64
	open atomic.Int64
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, max: int64(max)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			c.Close()
			continue
		}
		return &limitConn{Conn: c, l: l}, nil
	}
}

type limitConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.open.Add(-1) })
	return err
}
