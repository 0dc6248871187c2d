package socks5

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"net/url"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/client/internal/socks5test"
)

func echoTCP(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func TestConnect(t *testing.T) {
	for _, creds := range [][2]string{{"", ""}, {"alice", "secret"}} {
		srv, err := socks5test.Start(creds[0], creds[1])
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		u := &url.URL{Scheme: "socks5", Host: srv.Addr()}
		if creds[0] != "" {
			u.User = url.UserPassword(creds[0], creds[1])
		}
		c := NewClient(u)
		conn, err := c.DialContext(context.Background(), "tcp", echoTCP(t))
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte("hello through socks")
		conn.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("echo %q, %v", got, err)
		}
		conn.Close()
		if srv.Connects.Load() != 1 {
			t.Errorf("server saw %d CONNECTs", srv.Connects.Load())
		}
	}
}

func TestBadCredentials(t *testing.T) {
	srv, err := socks5test.Start("alice", "secret")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for _, u := range []*url.URL{
		{Scheme: "socks5", Host: srv.Addr(), User: url.UserPassword("alice", "wrong")},
		{Scheme: "socks5", Host: srv.Addr()},
	} {
		_, err := NewClient(u).DialContext(context.Background(), "tcp", "127.0.0.1:9")
		if !errors.Is(err, ErrAuth) {
			t.Errorf("%v: err = %v, want ErrAuth", u.Redacted(), err)
		}
	}
}

func TestUDP(t *testing.T) {
	srv, err := socks5test.Start("", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	echo, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		buf := make([]byte, 2000)
		for {
			n, from, err := echo.ReadFrom(buf)
			if err != nil {
				return
			}
			echo.WriteTo(buf[:n], from)
		}
	}()
	pc, err := NewClient(&url.URL{Scheme: "socks5", Host: srv.Addr()}).ListenUDP(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i := 0; i < 5; i++ {
		msg := bytes.Repeat([]byte{byte(i)}, 100+i*300)
		if _, err := pc.WriteTo(msg, echo.LocalAddr()); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2000)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], msg) || from.String() != echo.LocalAddr().String() {
			t.Fatalf("got %d bytes from %v", n, from)
		}
	}
	if srv.Datagrams.Load() != 10 {
		t.Errorf("server relayed %d datagrams, want 10", srv.Datagrams.Load())
	}
}

func TestParseDatagram(t *testing.T) {
	dst := Addr{IP: netip.MustParseAddr("192.0.2.7"), Port: 3478}
	b := AppendDatagram(nil, dst, []byte("payload"))
	a, p, err := ParseDatagram(b)
	if err != nil || a != dst || string(p) != "payload" {
		t.Fatalf("%v %q %v", a, p, err)
	}
	v6 := Addr{IP: netip.MustParseAddr("2001:db8::1"), Port: 1}
	a, p, err = ParseDatagram(AppendDatagram(nil, v6, nil))
	if err != nil || a != v6 || len(p) != 0 {
		t.Fatalf("%v %q %v", a, p, err)
	}
	for _, bad := range [][]byte{nil, {0, 0, 1, 1}, {0, 0, 0, 9, 1, 2}, {0, 0, 0, 1, 1, 2, 3}, {0, 0, 0, 3, 5, 'a'}} {
		if _, _, err := ParseDatagram(bad); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
}

func TestReadReply(t *testing.T) {
	a, err := ReadReply(bytes.NewReader([]byte{5, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 80}))
	if err != nil || a.String() != "host:80" {
		t.Fatalf("%v %v", a, err)
	}
	var re *ReplyError
	if _, err := ReadReply(bytes.NewReader([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})); !errors.As(err, &re) || re.Code != 5 {
		t.Fatalf("err = %v", err)
	}
	if _, err := ReadReply(bytes.NewReader([]byte{4, 0})); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParseDatagram(f *testing.F) {
	f.Add(AppendDatagram(nil, Addr{IP: netip.MustParseAddr("192.0.2.1"), Port: 9}, []byte("x")))
	f.Add(AppendDatagram(nil, Addr{Host: "example.com", Port: 9}, []byte("x")))
	f.Add([]byte{0, 0, 0, 4})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, p, err := ParseDatagram(b)
		if err != nil {
			return
		}
		if len(p) > len(b) {
			t.Fatal("payload longer than datagram")
		}
		back := AppendDatagram(nil, a, p)
		if b[3] == atypIPv4 && !bytes.Equal(back[2:], b[2:]) {
			t.Fatalf("round trip %x != %x", back, b)
		}
	})
}

func FuzzReadReply(f *testing.F) {
	f.Add([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 0, 0, 3, 0, 0, 0})
	f.Add([]byte{5, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadReply(bytes.NewReader(b))
	})
}

// BenchmarkDatagram is the per-packet work of UDP through the proxy.
func BenchmarkDatagram(b *testing.B) {
	dst := Addr{IP: netip.MustParseAddr("192.0.2.1"), Port: 3478}
	payload := make([]byte, 1200)
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		d := AppendDatagram(buf[:0], dst, payload)
		if _, p, err := ParseDatagram(d); err != nil || len(p) != len(payload) {
			b.Fatal(err)
		}
	}
}
