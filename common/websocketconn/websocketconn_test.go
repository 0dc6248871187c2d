//go:build !(js && wasm)

package websocketconn

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// server accepts WebSockets on 127.0.0.1 and hands each to the test.
type server struct {
	*httptest.Server
	conns chan net.Conn

	mu   sync.Mutex
	open []net.Conn // closed together at the end of the test
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{conns: make(chan net.Conn, 4)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r)
		if err != nil {
			return
		}
		s.conns <- c
	}))
	t.Cleanup(s.Close)
	t.Cleanup(s.closeAll)
	return s
}

// track registers c to be closed at the end of the test.
func (s *server) track(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.open = append(s.open, c)
}

// closeAll closes both ends of every conn at once: a WebSocket close waits
// for the peer's close frame, which only comes while the peer is reading or
// closing too.
func (s *server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range s.open {
		wg.Go(func() { c.Close() })
	}
	wg.Wait()
}

func (s *server) wsURL() string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/any/path" }

func (s *server) accepted(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-s.conns:
		s.track(c)
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("nothing accepted")
	}
	return nil
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func dial(t *testing.T, s *server) net.Conn {
	t.Helper()
	c, err := Dial(ctx(t), s.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s.track(c)
	return c
}

// rawDial connects with the library directly, to send and inspect
// individual messages.
func rawDial(t *testing.T, s *server, opts *websocket.DialOptions) (*websocket.Conn, *http.Response) {
	t.Helper()
	ws, resp, err := websocket.Dial(ctx(t), s.wsURL(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return ws, resp
}

func TestEcho(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	sc := s.accepted(t)
	go io.Copy(sc, sc)

	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
	if tcp, ok := sc.RemoteAddr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		t.Fatalf("server RemoteAddr = %#v, want the loopback TCP peer", sc.RemoteAddr())
	}
	if sc.LocalAddr() == nil || c.LocalAddr() == nil || c.RemoteAddr().String() != strings.TrimPrefix(s.URL, "http://") {
		t.Fatalf("addresses: server local %v, client %v -> %v", sc.LocalAddr(), c.LocalAddr(), c.RemoteAddr())
	}
}

func TestLargeTransfer(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	sc := s.accepted(t)
	go io.Copy(sc, sc)

	data := make([]byte, 8<<20)
	rand.Read(data)
	go func() {
		// Writes of assorted sizes, up to 70 kB each.
		for rest := data; len(rest) > 0; {
			n := min(len(rest), 1+len(rest)%70000)
			if _, err := c.Write(rest[:n]); err != nil {
				return
			}
			rest = rest[n:]
		}
	}()
	h := sha256.New()
	if _, err := io.CopyN(h, c, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if [32]byte(h.Sum(nil)) != sha256.Sum256(data) {
		t.Fatal("echoed data differs")
	}
}

func TestTextAndBinaryMessagesReadAsBytes(t *testing.T) {
	s := newServer(t)
	ws, _ := rawDial(t, s, nil)
	sc := s.accepted(t)
	for _, m := range []struct {
		typ websocket.MessageType
		p   string
	}{
		{websocket.MessageText, "text,"},
		{websocket.MessageBinary, ""},
		{websocket.MessageBinary, "binary,"},
		{websocket.MessageText, ""},
		{websocket.MessageText, "end"},
	} {
		if err := ws.Write(ctx(t), m.typ, []byte(m.p)); err != nil {
			t.Fatal(err)
		}
	}
	want := "text,binary,end"
	got := make([]byte, len(want))
	// Small reads straddle message boundaries.
	for i := 0; i < len(got); {
		n, err := sc.Read(got[i:min(i+4, len(got))])
		if err != nil {
			t.Fatal(err)
		}
		i += n
	}
	if string(got) != want {
		t.Fatalf("read %q, want %q", got, want)
	}

	// Writes arrive as binary messages, one per Write.
	sc.Write([]byte("one"))
	sc.Write([]byte("two"))
	for _, want := range []string{"one", "two"} {
		typ, p, err := ws.Read(ctx(t))
		if err != nil || typ != websocket.MessageBinary || string(p) != want {
			t.Fatalf("message = %v %q, %v; want binary %q", typ, p, err, want)
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	s := newServer(t)
	ws, _ := rawDial(t, s, nil)
	ws.SetReadLimit(-1)
	sc := s.accepted(t)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				msg := bytes.Repeat(fmt.Appendf(nil, "[w%d m%d]", w, i), 1+i%50)
				if _, err := sc.Write(msg); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	next := make([]int, writers)
	for range writers * each {
		_, p, err := ws.Read(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		var w, i int
		if _, err := fmt.Sscanf(string(p), "[w%d m%d]", &w, &i); err != nil || w >= writers {
			t.Fatalf("bad message %q", p[:min(len(p), 40)])
		}
		if i != next[w] || !bytes.Equal(p, bytes.Repeat(fmt.Appendf(nil, "[w%d m%d]", w, i), 1+i%50)) {
			t.Fatalf("message %q out of order or mixed with another", p[:min(len(p), 40)])
		}
		next[w]++
	}
	wg.Wait()
}

func TestClosePropagation(t *testing.T) {
	s := newServer(t)
	for _, closer := range []string{"client", "server"} {
		t.Run(closer+" closes", func(t *testing.T) {
			c := dial(t, s)
			sc := s.accepted(t)
			a, b := c, sc
			if closer == "server" {
				a, b = sc, c
			}
			readErr := make(chan error, 1)
			go func() {
				_, err := b.Read(make([]byte, 10))
				readErr <- err
			}()
			if err := a.Close(); err != nil {
				t.Fatalf("Close = %v", err)
			}
			select {
			case err := <-readErr:
				if err != io.EOF {
					t.Fatalf("peer Read = %v, want io.EOF", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("peer never saw the close")
			}
			if _, err := b.Read(make([]byte, 10)); err != io.EOF {
				t.Fatalf("second Read = %v, want io.EOF again", err)
			}
			if _, err := a.Write([]byte("x")); err == nil {
				t.Fatal("Write after Close succeeded")
			}
			if err := a.Close(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("second Close = %v, want net.ErrClosed", err)
			}
			// Closing the side that saw the close still works.
			b.Close()
		})
	}
}

func TestCloseUnblocksRead(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	sc := s.accepted(t)
	go io.Copy(io.Discard, sc) // the peer answers the close frame
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 10))
		readErr <- err
	}()
	time.Sleep(10 * time.Millisecond) // let Read block (not required for correctness)
	c.Close()
	select {
	case err := <-readErr:
		if err == nil {
			t.Fatal("Read returned no error after Close")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Read still blocked after Close")
	}
}

func TestDeadlines(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	sc := s.accepted(t)
	isTimeout := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
	}

	// A deadline in the past fails the next Read without harming the conn.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(make([]byte, 1)); !isTimeout(err) {
		t.Fatalf("Read = %v, want a timeout", err)
	}
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	if _, err := c.Write([]byte("x")); !isTimeout(err) {
		t.Fatalf("Write = %v, want a timeout", err)
	}
	c.SetDeadline(time.Time{})
	sc.Write([]byte("ok"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ok" {
		t.Fatalf("Read after clearing the deadline = %q, %v", buf, err)
	}

	// One that passes during a Read ends it (and the conn).
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(buf); !isTimeout(err) {
		t.Fatalf("blocked Read = %v, want a timeout", err)
	}
}

func TestReadLimit(t *testing.T) {
	s := newServer(t)
	ws, _ := rawDial(t, s, nil)
	sc := s.accepted(t)
	go ws.Write(ctx(t), websocket.MessageBinary, make([]byte, ReadLimit+1))
	_, err := io.Copy(io.Discard, sc)
	if err == nil {
		t.Fatal("an over-long message was accepted")
	}
}

func TestAcceptAnyOriginNoExtensions(t *testing.T) {
	s := newServer(t)
	hdr := http.Header{"Origin": {"https://proxy.example"}}
	_, resp := rawDial(t, s, &websocket.DialOptions{
		HTTPHeader:      hdr,
		Subprotocols:    []string{"snowflake"},
		CompressionMode: websocket.CompressionContextTakeover,
	})
	s.accepted(t)
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" {
		t.Fatalf("subprotocol %q negotiated", p)
	}
	if e := resp.Header.Get("Sec-WebSocket-Extensions"); e != "" {
		t.Fatalf("extension %q negotiated", e)
	}
}

func TestAcceptRejectsPlainHTTP(t *testing.T) {
	s := newServer(t)
	resp, err := http.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Fatalf("plain GET got %d", resp.StatusCode)
	}
}

func TestDialErrors(t *testing.T) {
	s := newServer(t)
	if _, err := Dial(ctx(t), "ws://127.0.0.1:1/", nil); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
	// A server that is not a WebSocket endpoint.
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	if _, err := Dial(ctx(t), "ws"+strings.TrimPrefix(plain.URL, "http"), nil); err == nil {
		t.Fatal("Dial to a non-WebSocket server succeeded")
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Dial(c, s.wsURL(), nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial with a cancelled context = %v", err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	conn, err := Dial(ctx(t), s.wsURL(), client)
	if err != nil {
		t.Fatalf("Dial with a custom client: %v", err)
	}
	s.track(conn)
	s.accepted(t)
}
