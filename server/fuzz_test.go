package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// smuxFrame encodes an smux v2 frame header and body (PROTOCOL.md §6.4).
func smuxFrame(cmd byte, sid uint32, body []byte) []byte {
	b := make([]byte, 8, 8+len(body))
	b[0], b[1] = 2, cmd
	binary.LittleEndian.PutUint16(b[2:], uint16(len(body)))
	binary.LittleEndian.PutUint32(b[4:], sid)
	return append(b, body...)
}

// FuzzKCPIntake feeds attacker bytes, after a valid prologue, through the
// bridge's real path: the WebSocket pump, the fair intake, a KCP engine,
// smux and the stream hand-off. Whatever the bytes, the WebSocket ends with
// a known outcome, nothing panics, and the session limit holds.
func FuzzKCPIntake(f *testing.F) {
	chunk := func(pkts ...[]byte) []byte {
		var b []byte
		for _, p := range pkts {
			b, _ = encapsulation.AppendData(b, p)
		}
		return b
	}
	syn := smuxFrame(0, 3, nil)
	psh := smuxFrame(2, 3, []byte("hello"))
	f.Add([]byte{})
	f.Add(chunk(kcpSegment(kcpPush, 0, syn)))
	f.Add(chunk(kcpSegment(kcpPush, 0, append(syn, psh...)), kcpSegment(kcpPush, 1, smuxFrame(1, 3, nil))))
	f.Add(chunk(kcpSegment(kcpPush, 5, []byte{1}), kcpSegment(kcpPush, 0, []byte{9, 9, 9, 9, 9, 9, 9, 9})))
	f.Add(chunk(kcpSegment(kcpAck, 0, nil), kcpSegment(83, 0, nil), kcpSegment(84, 0, nil)))
	f.Add(chunk(kcpSegment(kcpPush, 0, smuxFrame(3, 0, nil)), kcpSegment(kcpPush, 1, smuxFrame(4, 3, make([]byte, 8)))))
	f.Add(chunk(make([]byte, 23), make([]byte, 1400)))

	const maxSessions = 64
	s, err := NewServer(Config{
		StatsInterval:        -1,
		MaxSessions:          maxSessions,
		MaxSessionsPerSource: -1,
		FirstFrameTimeout:    time.Second,
		IdleTimeout:          5 * time.Second,
		WriteTimeout:         time.Second,
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	go func() {
		for {
			c, err := s.Accept(context.Background())
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	f.Fuzz(func(t *testing.T, b []byte) {
		client, bridge := net.Pipe()
		defer client.Close()
		go io.Copy(io.Discard, client)
		go func() {
			id := turbotunnel.NewClientID()
			client.Write(append(turbotunnel.Token[:], id[:]...))
			client.Write(b)
			client.Close()
		}()
		slot := &slot{opened: time.Now().UnixNano()}
		err := s.serveWebSocket(bridge, slot, netip.Addr{})
		bridge.Close()
		switch {
		case err == nil, errors.Is(err, turbotunnel.ErrOversizedChunk), errors.Is(err, turbotunnel.ErrMalformedChunk),
			errors.Is(err, turbotunnel.ErrTruncatedChunk), errors.Is(err, errSessionLimit),
			errors.Is(err, io.ErrClosedPipe), errors.Is(err, net.ErrClosed):
		default:
			t.Fatalf("serveWebSocket: unexpected error %v", err)
		}
		if admitted, running := s.Sessions(); admitted > maxSessions || running > maxSessions {
			t.Fatalf("%d admitted, %d running sessions; limit %d", admitted, running, maxSessions)
		}
	})
}

// FuzzExtORPortReply plays a tor whose Extended ORPort answers with
// arbitrary bytes at each step of the handshake: the offered auth types,
// the server hash and nonce (or a correct pair), the auth status and the
// replies to the commands. Dial must fail cleanly or return a connection,
// never panic or hang past its deadline.
func FuzzExtORPortReply(f *testing.F) {
	f.Add([]byte{1, 0}, false, []byte{})
	f.Add([]byte{1, 0}, true, []byte{1, 0x10, 0x00, 0, 0})
	f.Add([]byte{1, 0}, true, []byte{1, 0x10, 0x01, 0, 0})
	f.Add([]byte{1, 0}, true, []byte{0})
	f.Add([]byte{2, 3, 0}, true, []byte{1, 0x10, 0x00, 0xff, 0xff})
	f.Add([]byte{}, false, make([]byte, 64))

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	defer ln.Close()
	var cookie [32]byte
	rand.Read(cookie[:])
	cookiePath := filepath.Join(f.TempDir(), "cookie")
	if err := os.WriteFile(cookiePath, append([]byte("! Extended ORPort Auth Cookie !\x0a"), cookie[:]...), 0o600); err != nil {
		f.Fatal(err)
	}
	type script struct {
		authTypes []byte
		goodHash  bool
		rest      []byte
	}
	scripts := make(chan script)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sc := <-scripts
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				// Each step that the PT would wait on ends in a half-close,
				// so that it sees EOF at once rather than its deadline.
				defer io.Copy(io.Discard, c)
				defer c.(*net.TCPConn).CloseWrite()
				c.Write(sc.authTypes)
				if !sc.goodHash || bytes.IndexByte(sc.authTypes, 0) < 0 {
					c.Write(sc.rest)
					return
				}
				var in [33]byte
				if _, err := io.ReadFull(c, in[:]); err != nil {
					return
				}
				nonce := make([]byte, 32)
				rand.Read(nonce)
				c.Write(append(extORHash(cookie[:], "ExtORPort authentication server-to-client hash", in[1:], nonce), nonce...))
				if _, err := io.ReadFull(c, in[:32]); err != nil {
					return
				}
				c.Write(sc.rest)
			}()
		}
	}()
	d := &ORDialer{Info: &pt.ServerInfo{ExtendedOrAddr: ln.Addr().(*net.TCPAddr), AuthCookiePath: cookiePath}, Transport: "snowflake"}
	f.Fuzz(func(t *testing.T, authTypes []byte, goodHash bool, rest []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		go func() {
			select {
			case scripts <- script{authTypes, goodHash, rest}:
			case <-ctx.Done():
			}
		}()
		c, err := d.Dial(ctx, "192.0.2.1:1")
		if err == nil {
			c.Close()
		}
		if ctx.Err() != nil {
			t.Fatal("Dial hung until the test deadline")
		}
	})
}
