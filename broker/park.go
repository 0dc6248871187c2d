package broker

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// A held proxy poll spends nearly all its life waiting. Holding it in its
// net/http handler costs a goroutine stack, the server's background reader
// goroutine and the connection's read and write buffers: about 20 KB. When
// the broker serves its own listener, the handler instead takes the
// connection over (http.Hijacker), keeps only the net.Conn and a timer, and
// returns. When the poll ends, a short-lived goroutine writes the HTTP
// response itself and hands the still-open connection back to the
// http.Server through the listener's Accept, so the proxy's keep-alive
// connection carries on as if nothing happened.
//
// The cost is that a parked poll cannot notice its proxy hanging up before
// the poll ends (Tor's broker does not notice either). A match given to a
// vanished proxy fails when the write fails, and the client is then told at
// once.

// parkedPoll is a held proxy poll whose connection is off the HTTP server.
type parkedPoll struct {
	conn net.Conn
	ln   *parkListener
}

// parkListener wraps the broker's listener so that parked connections can
// be given back to the http.Server.
type parkListener struct {
	net.Listener
	acc  chan acceptResult
	back chan net.Conn
	done chan struct{}
	once sync.Once
}

type acceptResult struct {
	c   net.Conn
	err error
}

func newParkListener(ln net.Listener) *parkListener {
	l := &parkListener{
		Listener: ln,
		acc:      make(chan acceptResult),
		back:     make(chan net.Conn),
		done:     make(chan struct{}),
	}
	go l.pump()
	return l
}

func (l *parkListener) pump() {
	for {
		c, err := l.Listener.Accept()
		select {
		case l.acc <- acceptResult{c, err}:
		case <-l.done:
			if c != nil {
				c.Close()
			}
			return
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

// Accept returns a new connection or one that a finished parked poll gives
// back.
func (l *parkListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.back:
		return c, nil
	case r := <-l.acc:
		return r.c, r.err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *parkListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.done)
		err = l.Listener.Close()
	})
	return err
}

// giveBack returns c to the http.Server, or closes it if the listener is
// closed.
func (l *parkListener) giveBack(c net.Conn) {
	select {
	case l.back <- c:
	case <-l.done:
		c.Close()
	}
}

// bufferedConn keeps bytes that the HTTP server had already read ahead.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// park takes the connection of the request being served off the HTTP
// server. It returns nil when the ResponseWriter cannot be hijacked.
func (l *parkListener) park(w http.ResponseWriter) *parkedPoll {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil
	}
	if rw.Reader.Buffered() > 0 {
		conn = &bufferedConn{Conn: conn, r: rw.Reader}
	}
	conn.SetDeadline(time.Time{})
	return &parkedPoll{conn: conn, ln: l}
}

type parkerKey struct{}

func parkerFrom(ctx context.Context) *parkListener {
	l, _ := ctx.Value(parkerKey{}).(*parkListener)
	return l
}

// parkedWriteTimeout bounds writing a parked poll's response.
const parkedWriteTimeout = 10 * time.Second

// finishParked writes the HTTP response of a parked poll and gives the
// connection back; it reports whether the write succeeded.
func (b *Broker) finishParked(w *waiter, status int, body []byte) bool {
	p := w.parked
	// Only successful polls keep their connection; say so, or the proxy's
	// HTTP client may send its next request into a closed socket.
	keep := status == http.StatusOK && !b.closing.Load()
	msg := make([]byte, 0, 256+len(body))
	msg = append(msg, "HTTP/1.1 "...)
	msg = strconv.AppendInt(msg, int64(status), 10)
	msg = append(msg, ' ')
	msg = append(msg, http.StatusText(status)...)
	msg = append(msg, "\r\nAccess-Control-Allow-Headers: Origin, X-Session-ID\r\nAccess-Control-Allow-Origin: *\r\nContent-Length: "...)
	msg = strconv.AppendInt(msg, int64(len(body)), 10)
	if len(body) > 0 {
		msg = append(msg, "\r\nContent-Type: text/plain; charset=utf-8"...)
	}
	if !keep {
		msg = append(msg, "\r\nConnection: close"...)
	}
	msg = append(msg, "\r\nDate: "...)
	msg = time.Now().UTC().AppendFormat(msg, http.TimeFormat)
	msg = append(msg, "\r\n\r\n"...)
	msg = append(msg, body...)
	p.conn.SetWriteDeadline(time.Now().Add(parkedWriteTimeout))
	_, err := p.conn.Write(msg)
	if err != nil || !keep {
		p.conn.Close()
		return err == nil
	}
	p.conn.SetWriteDeadline(time.Time{})
	p.ln.giveBack(p.conn)
	return true
}

// Server timeouts. Header and body reads are bounded so that stalled
// clients are cut; writes get the longest hold plus margin.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 20 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// Serve serves the broker on ln until ctx is done, with TLS when tlsConfig
// is not nil. Only HTTP/1.1 is offered: its connections can be parked.
func (b *Broker) Serve(ctx context.Context, ln net.Listener, tlsConfig *tls.Config) error {
	if tlsConfig != nil {
		tlsConfig = tlsConfig.Clone()
		if len(tlsConfig.NextProtos) == 0 {
			tlsConfig.NextProtos = []string{"http/1.1"}
		}
		ln = tls.NewListener(ln, tlsConfig)
	}
	pl := newParkListener(ln)
	srv := b.HTTPServer()
	srv.BaseContext = func(net.Listener) context.Context {
		return context.WithValue(context.Background(), parkerKey{}, pl)
	}
	shutdown := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shutdown)
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		pl.Close()
	})
	err := srv.Serve(pl)
	if errors.Is(err, http.ErrServerClosed) {
		<-shutdown
		return nil
	}
	if stop() {
		pl.Close()
	} else {
		<-shutdown
	}
	return err
}

// HTTPServer returns an http.Server for the broker's Handler with timeouts
// that cut stalled clients but outlast held polls. Serve uses it; it is
// exported for embedding the broker in another server.
func (b *Broker) HTTPServer() *http.Server {
	hold := max(b.cfg.ProxyTimeout, b.cfg.ClientTimeout)
	return &http.Server{
		Handler:           b.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      readTimeout + hold + 10*time.Second,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
	}
}
