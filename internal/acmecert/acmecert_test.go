package acmecert

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

func TestParseHostnames(t *testing.T) {
	if got := ParseHostnames(" a.example, ,b.example,"); !slices.Equal(got, []string{"a.example", "b.example"}) {
		t.Fatalf("%q", got)
	}
	if got := ParseHostnames(""); got != nil {
		t.Fatalf("%q", got)
	}
}

func TestNew(t *testing.T) {
	if _, err := New(Config{CacheDir: t.TempDir()}); !errors.Is(err, ErrNoHostnames) {
		t.Fatalf("no hostnames: %v", err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	c, err := New(Config{Hostnames: []string{"a.example"}, Email: "op@example.org", CacheDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v %v", fi, err)
	}
	if c.Manager.Email != "op@example.org" || c.Manager.Cache != autocert.DirCache(dir) {
		t.Fatalf("manager: %+v", c.Manager)
	}
	if err := c.Manager.HostPolicy(context.Background(), "b.example"); err == nil {
		t.Fatal("host policy accepts an unlisted name")
	}
	cfg := c.TLSConfig("http/1.1")
	if cfg.MinVersion < 0x0303 || !slices.Equal(cfg.NextProtos, []string{"http/1.1", acme.ALPNProto}) || cfg.GetCertificate == nil {
		t.Fatalf("TLS config: %x %q", cfg.MinVersion, cfg.NextProtos)
	}
	srv := c.HTTPServer(":80")
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 {
		t.Fatalf("HTTP-01 server without bounds: %+v", srv)
	}
}

// TestHTTP01IdleCut checks that the responder drops a connection that sent
// nothing (issue 10: the :80 servers had no idle timeout).
func TestHTTP01IdleCut(t *testing.T) {
	c, err := New(Config{Hostnames: []string{"a.example"}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.ServeHTTP01(ctx, addr, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.ServeHTTP01(ctx, addr, nil); err == nil {
		t.Fatal("second listener on the same address")
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/.well-known/acme-challenge/x", nil)
	req.Host = "a.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown token: %s", resp.Status)
	}
	// Functional bounds: a silent connection is cut after
	// ReadHeaderTimeout, and one that made a request and then idles after
	// IdleTimeout (issue 10: the :80 servers kept idle connections open).
	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if _, err := io.WriteString(idle, "GET /.well-known/acme-challenge/y HTTP/1.1\r\nHost: a.example\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(idle)
	resp, err = http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	for _, c := range []struct {
		name string
		r    io.Reader
		conn net.Conn
		max  time.Duration
	}{
		{"silent", silent, silent, ReadHeaderTimeout + 5*time.Second},
		{"idle after a request", br, idle, IdleTimeout + 5*time.Second},
	} {
		c.conn.SetReadDeadline(time.Now().Add(c.max))
		if _, err := c.r.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
			t.Errorf("%s connection: %v, want EOF from the server within %v", c.name, err, c.max)
		}
	}
}
