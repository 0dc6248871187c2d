package testbed

// An HTTPS server that keeps, for each connection, the bytes the client sent
// before and after TLS decryption: the ClientHello as it crossed the wire and
// the HTTP/2 preface frames, so a test can compare a browser's with ours.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// recordLimit bounds what is kept per connection and direction.
const recordLimit = 64 << 10

// RecordedConn is what one client sent on one connection.
type RecordedConn struct {
	// Wire is the first bytes from the client as sent (TLS records).
	Wire []byte
	// Plain is the first decrypted bytes (the HTTP/2 preface and frames,
	// or an HTTP/1.1 request).
	Plain []byte
	// ALPN is the negotiated protocol.
	ALPN string
}

// TLSRecorder is the server.
type TLSRecorder struct {
	ln      net.Listener
	handler http.Handler
	cfg     *tls.Config
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns []*recordingPair
}

type recordingPair struct {
	wire, plain *recordingConn
	alpn        string
}

// StartTLSRecorder serves handler over HTTPS (h2 and http/1.1) on addr
// inside ns with cert.
func StartTLSRecorder(ns *Namespace, addr string, cert tls.Certificate, handler http.Handler) (*TLSRecorder, error) {
	ln, err := ns.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &TLSRecorder{
		ln:      ln,
		handler: handler,
		cfg:     &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}},
	}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

// Addr is the listening address.
func (r *TLSRecorder) Addr() string { return r.ln.Addr().String() }

// Conns returns what was recorded, one entry per accepted connection.
func (r *TLSRecorder) Conns() []RecordedConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]RecordedConn, 0, len(r.conns))
	for _, p := range r.conns {
		rc := RecordedConn{Wire: p.wire.bytes(), ALPN: p.alpn}
		if p.plain != nil {
			rc.Plain = p.plain.bytes()
		}
		out = append(out, rc)
	}
	return out
}

// WaitConns polls until at least n connections have sent some plaintext.
func (r *TLSRecorder) WaitConns(ctx context.Context, n int) error {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		got := 0
		for _, c := range r.Conns() {
			if len(c.Plain) > 0 {
				got++
			}
		}
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testbed: %d of %d TLS connections recorded: %w", got, n, ctx.Err())
		case <-t.C:
		}
	}
}

// Close stops the server and waits for its connections to end.
func (r *TLSRecorder) Close() error {
	err := r.ln.Close()
	r.mu.Lock()
	for _, p := range r.conns {
		p.wire.Conn.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
	return err
}

func (r *TLSRecorder) accept() {
	defer r.wg.Done()
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		p := &recordingPair{wire: &recordingConn{Conn: c}}
		r.mu.Lock()
		r.conns = append(r.conns, p)
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer c.Close()
			r.serve(p)
		}()
	}
}

func (r *TLSRecorder) serve(p *recordingPair) {
	tc := tls.Server(p.wire, r.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return
	}
	plain := &recordingConn{Conn: tc}
	r.mu.Lock()
	p.alpn = tc.ConnectionState().NegotiatedProtocol
	p.plain = plain
	r.mu.Unlock()
	if p.alpn == "h2" {
		// Browsers open speculative connections and drop them: keep
		// the server's complaints out of the output.
		quiet := &http.Server{ErrorLog: log.New(io.Discard, "", 0)}
		(&http2.Server{IdleTimeout: 30 * time.Second}).ServeConn(plain, &http2.ServeConnOpts{Handler: r.handler, BaseConfig: quiet})
		return
	}
	br := bufio.NewReader(plain)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		w := &h1Writer{header: http.Header{}, conn: plain}
		r.handler.ServeHTTP(w, req)
		if err := w.finish(); err != nil || req.Close {
			return
		}
		io.Copy(io.Discard, req.Body)
	}
}

// recordingConn keeps the first recordLimit bytes read from it.
type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	buf []byte
}

func (c *recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		if room := recordLimit - len(c.buf); room > 0 {
			c.buf = append(c.buf, b[:min(n, room)]...)
		}
		c.mu.Unlock()
	}
	return n, err
}

func (c *recordingConn) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte(nil), c.buf...)
}

// h1Writer is the smallest HTTP/1.1 response writer: the body is buffered
// and sent with a Content-Length.
type h1Writer struct {
	header http.Header
	status int
	body   []byte
	conn   net.Conn
}

func (w *h1Writer) Header() http.Header { return w.header }

func (w *h1Writer) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *h1Writer) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if len(w.body)+len(b) > recordLimit {
		return 0, errors.New("testbed: response too large")
	}
	w.body = append(w.body, b...)
	return len(b), nil
}

func (w *h1Writer) finish() error {
	w.WriteHeader(http.StatusOK)
	resp := &http.Response{
		StatusCode:    w.status,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        w.header,
		ContentLength: int64(len(w.body)),
		Body:          io.NopCloser(bytes.NewReader(w.body)),
	}
	return resp.Write(w.conn)
}
