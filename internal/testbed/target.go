package testbed

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The target protocol: the client sends one header line, then
//
//	SEND <n> <seed>   the target sends n bytes of Stream(seed) and closes;
//	RECV <n> <seed>   the target answers "READY", the client sends n bytes
//	                  of Stream(seed), and the target answers
//	                  "OK <n> <sha256>" or "BAD <offset> <sha256>";
//	ECHO              the target echoes everything back until EOF.
//
// Both ends can regenerate the stream from the seed, so every byte is
// checked in both directions without storing anything.

const (
	maxHeader   = 128
	maxTransfer = 1 << 34
	chunkSize   = 32 * 1024
)

// Stream is the deterministic pseudo-random byte stream named by seed.
type Stream struct{ c *rand.ChaCha8 }

// NewStream returns the stream for seed.
func NewStream(seed uint64) *Stream {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	copy(key[8:], "snowfall-testbed-stream!")
	return &Stream{c: rand.NewChaCha8(key)}
}

// Read fills b with the next bytes of the stream; it never fails.
func (s *Stream) Read(b []byte) (int, error) { return s.c.Read(b) }

// TargetResult is what the target saw on one connection.
type TargetResult struct {
	Command string
	Bytes   int64
	OK      bool
	Err     error
}

// Target is the service at the far end of a chain: the ORPort of a PT
// server, or an exit's destination.
type Target struct {
	Addr string

	ln net.Listener
	wg sync.WaitGroup

	mu      sync.Mutex
	results []TargetResult
	conns   map[net.Conn]struct{}
	closed  bool
}

// StartTarget listens on addr inside ns (nil: the caller's namespace).
func StartTarget(ns *Namespace, addr string) (*Target, error) {
	ln, err := ns.Listen("tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("testbed: target listen %s: %w", addr, err)
	}
	t := &Target{Addr: ln.Addr().String(), ln: ln, conns: make(map[net.Conn]struct{})}
	t.wg.Add(1)
	go t.accept()
	return t, nil
}

func (t *Target) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return
		}
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go func() {
			defer t.wg.Done()
			r := t.serve(c)
			c.Close()
			t.mu.Lock()
			delete(t.conns, c)
			t.results = append(t.results, r)
			t.mu.Unlock()
		}()
	}
}

// Results returns what the target saw on finished connections.
func (t *Target) Results() []TargetResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]TargetResult(nil), t.results...)
}

// Close stops listening, drops open connections and waits for handlers.
func (t *Target) Close() error {
	err := t.ln.Close()
	t.mu.Lock()
	t.closed = true
	for c := range t.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
	return err
}

func (t *Target) serve(c net.Conn) TargetResult {
	br := bufio.NewReaderSize(c, chunkSize)
	c.SetReadDeadline(time.Now().Add(2 * time.Minute))
	line, err := readLine(br)
	if err != nil {
		return TargetResult{Err: fmt.Errorf("header: %w", err)}
	}
	c.SetReadDeadline(time.Time{})
	cmd, n, seed, err := parseHeader(line)
	res := TargetResult{Command: cmd}
	if err != nil {
		res.Err = err
		fmt.Fprintf(c, "ERR %v\n", err)
		return res
	}
	switch cmd {
	case "SEND":
		res.Bytes, res.Err = io.CopyN(c, NewStream(seed), n)
		res.OK = res.Err == nil
	case "RECV":
		// READY lets the client time the data alone, without the setup of
		// the chain (which may include a rendezvous).
		if _, err := io.WriteString(c, "READY\n"); err != nil {
			res.Err = err
			return res
		}
		off, sum, cerr := compareStream(br, NewStream(seed), n)
		res.Bytes = off
		if cerr != nil {
			res.Err = cerr
			fmt.Fprintf(c, "BAD %d %s\n", off, sum)
			return res
		}
		res.OK = true
		_, res.Err = fmt.Fprintf(c, "OK %d %s\n", n, sum)
	case "ECHO":
		res.Bytes, res.Err = io.Copy(c, br)
		res.OK = res.Err == nil
	}
	return res
}

func readLine(br *bufio.Reader) (string, error) {
	var b []byte
	for len(b) <= maxHeader {
		c, err := br.ReadByte()
		if err != nil {
			return "", err
		}
		if c == '\n' {
			return string(b), nil
		}
		b = append(b, c)
	}
	return "", errors.New("header line too long")
}

func parseHeader(line string) (cmd string, n int64, seed uint64, err error) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return "", 0, 0, errors.New("empty header")
	}
	cmd = f[0]
	switch cmd {
	case "ECHO":
		if len(f) != 1 {
			return cmd, 0, 0, errors.New("ECHO takes no arguments")
		}
		return cmd, 0, 0, nil
	case "SEND", "RECV":
		if len(f) != 3 {
			return cmd, 0, 0, fmt.Errorf("%s needs <n> <seed>", cmd)
		}
		n, err = strconv.ParseInt(f[1], 10, 64)
		if err != nil || n < 0 || n > maxTransfer {
			return cmd, 0, 0, fmt.Errorf("bad length %q", f[1])
		}
		seed, err = strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			return cmd, 0, 0, fmt.Errorf("bad seed %q", f[2])
		}
		return cmd, n, seed, nil
	}
	return cmd, 0, 0, fmt.Errorf("unknown command %q", cmd)
}

// compareStream reads n bytes from r and checks them against want. It
// returns how many bytes matched before the first difference (n when all
// did) and the SHA-256 of what it read.
func compareStream(r io.Reader, want io.Reader, n int64) (int64, string, error) {
	h := sha256.New()
	got := make([]byte, chunkSize)
	exp := make([]byte, chunkSize)
	var off int64
	for off < n {
		k := int64(len(got))
		if n-off < k {
			k = n - off
		}
		m, err := io.ReadFull(r, got[:k])
		h.Write(got[:m])
		want.Read(exp[:m])
		if i := firstDiff(got[:m], exp[:m]); i >= 0 {
			return off + int64(i), sumHex(h), fmt.Errorf("content differs at byte %d", off+int64(i))
		}
		off += int64(m)
		if err != nil {
			return off, sumHex(h), fmt.Errorf("after %d of %d bytes: %w", off, n, err)
		}
	}
	return off, sumHex(h), nil
}

func firstDiff(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

func sumHex(h hash.Hash) string { return hex.EncodeToString(h.Sum(nil)) }

// StreamSHA256 is the SHA-256 of the first n bytes of Stream(seed).
func StreamSHA256(n int64, seed uint64) string {
	h := sha256.New()
	io.CopyN(h, NewStream(seed), n)
	return sumHex(h)
}

// Transfer reports one checked transfer through a chain.
type Transfer struct {
	// Direction is "download" (target to client) or "upload".
	Direction string
	Bytes     int64
	// Setup is the time from the request to the first byte of data (for a
	// download) or to the target's READY (for an upload): it includes
	// whatever the chain had to do before carrying data, such as a
	// rendezvous. Duration is the time the data itself took.
	Setup, Duration time.Duration
	// SHA256 is the hash of the bytes received (by the client for a
	// download, by the target for an upload); Want is the hash of the stream.
	SHA256, Want string
}

// OK reports whether the received bytes hash as expected.
func (t Transfer) OK() bool { return t.SHA256 != "" && t.SHA256 == t.Want }

// MBps is the throughput in megabytes (10^6 bytes) per second.
func (t Transfer) MBps() float64 {
	if t.Duration <= 0 {
		return 0
	}
	return float64(t.Bytes) / 1e6 / t.Duration.Seconds()
}

func (t Transfer) String() string {
	status := "hash OK"
	if !t.OK() {
		status = "HASH MISMATCH"
	}
	return fmt.Sprintf("%s %d bytes in %v (%.2f MB/s) after %v of setup, sha256 %.16s… %s",
		t.Direction, t.Bytes, t.Duration.Round(time.Millisecond), t.MBps(), t.Setup.Round(time.Millisecond), t.SHA256, status)
}

// IdleTimeout is how long Download, Upload and Echo wait for any progress
// once data flows, and SetupTimeout how long they wait for the first byte
// or READY; so a dead chain fails in minutes rather than at the test's
// deadline.
var (
	IdleTimeout  = 60 * time.Second
	SetupTimeout = 2 * time.Minute
)

// idleConn renews a read or write deadline before every call, and notes
// when the first byte arrived.
type idleConn struct {
	net.Conn
	first time.Time
}

func newIdleConn(c net.Conn) *idleConn { return &idleConn{Conn: c} }

func (c *idleConn) Read(b []byte) (int, error) {
	d := IdleTimeout
	if c.first.IsZero() {
		d = SetupTimeout
	}
	c.Conn.SetReadDeadline(time.Now().Add(d))
	n, err := c.Conn.Read(b)
	if n > 0 && c.first.IsZero() {
		c.first = time.Now()
	}
	return n, err
}

func (c *idleConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(IdleTimeout))
	return c.Conn.Write(b)
}

// closeOnDone closes c when ctx ends; the returned stop undoes that.
func closeOnDone(ctx context.Context, c net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { c.Close() })
}

// Download asks the target at the far end of c for n bytes of Stream(seed)
// and checks every byte. c is used up.
func Download(ctx context.Context, conn net.Conn, n int64, seed uint64) (Transfer, error) {
	c := newIdleConn(conn)
	defer c.Close()
	defer closeOnDone(ctx, c)()
	tr := Transfer{Direction: "download", Want: StreamSHA256(n, seed)}
	start := time.Now()
	if _, err := fmt.Fprintf(c, "SEND %d %d\n", n, seed); err != nil {
		return tr, fmt.Errorf("testbed: download request: %w", ctxErr(ctx, err))
	}
	off, sum, err := compareStream(c, NewStream(seed), n)
	if !c.first.IsZero() {
		tr.Setup, tr.Duration = c.first.Sub(start), time.Since(c.first)
	}
	tr.Bytes = off
	if err != nil {
		return tr, fmt.Errorf("testbed: download: %w", ctxErr(ctx, err))
	}
	tr.SHA256 = sum
	if !tr.OK() {
		return tr, errors.New("testbed: download: hash mismatch")
	}
	return tr, nil
}

// Upload sends n bytes of Stream(seed) to the target at the far end of c,
// which checks every byte and reports the hash of what it received. c is
// used up.
func Upload(ctx context.Context, conn net.Conn, n int64, seed uint64) (Transfer, error) {
	c := newIdleConn(conn)
	defer c.Close()
	defer closeOnDone(ctx, c)()
	tr := Transfer{Direction: "upload", Want: StreamSHA256(n, seed)}
	start := time.Now()
	if _, err := fmt.Fprintf(c, "RECV %d %d\n", n, seed); err != nil {
		return tr, fmt.Errorf("testbed: upload request: %w", ctxErr(ctx, err))
	}
	// Reads go to conn without the idle deadline, which would expire
	// during a slow upload; the setup and the verdict get their own.
	conn.SetReadDeadline(time.Now().Add(SetupTimeout))
	br := bufio.NewReader(conn)
	ready, err := readLine(br)
	if err != nil || ready != "READY" {
		return tr, fmt.Errorf("testbed: upload: no READY from the target (got %q): %w", ready, ctxErr(ctx, err))
	}
	data := time.Now()
	tr.Setup = data.Sub(start)
	// Read the verdict concurrently: if the target stops early it answers
	// BAD before the upload is finished.
	type verdict struct {
		line string
		err  error
	}
	vc := make(chan verdict, 1)
	conn.SetReadDeadline(time.Time{})
	go func() {
		line, err := readLine(br)
		vc <- verdict{line, err}
	}()
	sent, werr := io.CopyN(c, NewStream(seed), n)
	conn.SetReadDeadline(time.Now().Add(IdleTimeout))
	var v verdict
	select {
	case v = <-vc:
	case <-ctx.Done():
		c.Close()
		v = <-vc
	}
	tr.Duration = time.Since(data)
	tr.Bytes = sent
	if v.err != nil {
		return tr, fmt.Errorf("testbed: upload: no verdict after %d bytes sent (write error: %v): %w", sent, werr, ctxErr(ctx, v.err))
	}
	f := strings.Fields(v.line)
	if len(f) != 3 {
		return tr, fmt.Errorf("testbed: upload: bad verdict %q", v.line)
	}
	tr.SHA256 = f[2]
	if f[0] != "OK" {
		return tr, fmt.Errorf("testbed: upload: target says %q", v.line)
	}
	if !tr.OK() {
		return tr, errors.New("testbed: upload: hash mismatch")
	}
	return tr, nil
}

// Echo sends n bytes of Stream(seed) to an ECHO target and checks that the
// same bytes come back. c is used up.
func Echo(ctx context.Context, conn net.Conn, n int64, seed uint64) (Transfer, error) {
	c := newIdleConn(conn)
	defer c.Close()
	defer closeOnDone(ctx, c)()
	tr := Transfer{Direction: "echo", Want: StreamSHA256(n, seed)}
	start := time.Now()
	if _, err := io.WriteString(c, "ECHO\n"); err != nil {
		return tr, fmt.Errorf("testbed: echo request: %w", ctxErr(ctx, err))
	}
	werr := make(chan error, 1)
	go func() {
		_, err := io.CopyN(c, NewStream(seed), n)
		werr <- err
	}()
	off, sum, err := compareStream(c, NewStream(seed), n)
	if !c.first.IsZero() {
		tr.Setup, tr.Duration = c.first.Sub(start), time.Since(c.first)
	}
	tr.Bytes = off
	if err != nil {
		c.Close()
		<-werr
		return tr, fmt.Errorf("testbed: echo: %w", ctxErr(ctx, err))
	}
	if err := <-werr; err != nil {
		return tr, fmt.Errorf("testbed: echo: %w", err)
	}
	tr.SHA256 = sum
	return tr, nil
}

func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return err
}
