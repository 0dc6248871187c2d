package testbed

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestTargetDetectsCorruption checks that a changed byte is caught in both
// directions.
func TestTargetDetectsCorruption(t *testing.T) {
	tgt, err := StartTarget(nil, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()

	// Download with a wrong seed: the first bytes already differ.
	c, err := net.Dial("tcp", tgt.Addr)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("SEND 1000 7\n"))
	if off, _, err := compareStream(c, NewStream(8), 1000); err == nil || off != 0 {
		t.Errorf("wrong stream accepted: off %d err %v", off, err)
	}
	c.Close()

	// Upload with one flipped byte at offset 5000.
	c, err = net.Dial("tcp", tgt.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 10000)
	NewStream(9).Read(data)
	data[5000] ^= 1
	c.Write([]byte("RECV 10000 9\n"))
	c.Write(data)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(got), "READY\nBAD 5000 ") {
		t.Errorf("target said %q, want READY then BAD 5000", got)
	}
}

func TestEncodeArgs(t *testing.T) {
	for _, tc := range []struct {
		args []Arg
		want string
	}{
		{nil, ""},
		{[]Arg{{"url", "http://198.51.100.1:8080/"}}, `url=http://198.51.100.1:8080/`},
		{[]Arg{{"a", "b;c"}, {"d=e", `f\g`}}, `a=b\;c;d\=e=f\\g`},
	} {
		if got := EncodeArgs(tc.args); got != tc.want {
			t.Errorf("EncodeArgs(%v) = %q, want %q", tc.args, got, tc.want)
		}
	}
	long := strings.Repeat("x", 300)
	u, p := socksAuth(long)
	if len(u) != 255 || u+p != long {
		t.Errorf("split %d+%d", len(u), len(p))
	}
	if u, p := socksAuth("k=v"); u != "k=v" || p != "\x00" {
		t.Errorf("short split %q %q", u, p)
	}
}

func TestParseHeader(t *testing.T) {
	for _, tc := range []struct {
		line string
		cmd  string
		n    int64
		seed uint64
		ok   bool
	}{
		{"SEND 10 3", "SEND", 10, 3, true},
		{"RECV 0 0", "RECV", 0, 0, true},
		{"ECHO", "ECHO", 0, 0, true},
		{"ECHO 1", "", 0, 0, false},
		{"SEND -1 3", "", 0, 0, false},
		{"SEND 99999999999999 3", "", 0, 0, false},
		{"SEND x 3", "", 0, 0, false},
		{"FOO", "", 0, 0, false},
		{"", "", 0, 0, false},
	} {
		cmd, n, seed, err := parseHeader(tc.line)
		if (err == nil) != tc.ok || (tc.ok && (cmd != tc.cmd || n != tc.n || seed != tc.seed)) {
			t.Errorf("parseHeader(%q) = %q %d %d %v", tc.line, cmd, n, seed, err)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	f.Add("SEND 10 3")
	f.Add("RECV 1 18446744073709551615")
	f.Add("ECHO")
	f.Fuzz(func(t *testing.T, line string) {
		cmd, n, _, err := parseHeader(line)
		if err == nil && (n < 0 || n > maxTransfer || (cmd != "SEND" && cmd != "RECV" && cmd != "ECHO")) {
			t.Errorf("accepted %q as %q %d", line, cmd, n)
		}
	})
}

func TestStreamDeterministic(t *testing.T) {
	a, b := make([]byte, 100), make([]byte, 100)
	NewStream(1).Read(a)
	NewStream(1).Read(b)
	if string(a) != string(b) {
		t.Fatal("same seed, different streams")
	}
	NewStream(2).Read(b)
	if string(a) == string(b) {
		t.Fatal("different seeds, same stream")
	}
	if StreamSHA256(100, 1) == StreamSHA256(100, 2) {
		t.Fatal("hash ignores seed")
	}
}

// fakeExtORPort plays tor's side of an Extended ORPort handshake and
// answers DONE with reply.
func fakeExtORPort(t *testing.T, ln net.Listener, reply uint16) {
	c, err := ln.Accept()
	if err != nil {
		return
	}
	defer c.Close()
	c.Write([]byte{1, 0})
	buf := make([]byte, 33)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Error(err)
		return
	}
	c.Write(make([]byte, 64))
	if _, err := io.ReadFull(c, buf[:32]); err != nil {
		t.Error(err)
		return
	}
	c.Write([]byte{1})
	for {
		h := make([]byte, 4)
		if _, err := io.ReadFull(c, h); err != nil {
			t.Error(err)
			return
		}
		io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint16(h[2:])))
		if binary.BigEndian.Uint16(h) == extORDone {
			break
		}
	}
	c.Write(binary.BigEndian.AppendUint32(nil, uint32(reply)<<16))
	io.Copy(c, c) // echo the OR stream
}

func TestExtORTap(t *testing.T) {
	for _, tc := range []struct {
		reply uint16
		want  string
	}{{extOROkay, "OKAY"}, {extORDeny, "DENY"}} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go fakeExtORPort(t, ln, tc.reply)
		tap, err := StartExtORTap(nil, "127.0.0.1:0", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", tap.Addr)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		b := make([]byte, 64)
		io.ReadFull(c, b[:2]) // auth types
		c.Write(make([]byte, 33))
		io.ReadFull(c, b[:64])
		c.Write(make([]byte, 32))
		io.ReadFull(c, b[:1])
		cmd := func(typ uint16, body string) []byte {
			m := binary.BigEndian.AppendUint16(nil, typ)
			m = binary.BigEndian.AppendUint16(m, uint16(len(body)))
			return append(m, body...)
		}
		c.Write(append(append(cmd(extORUserAddr, "198.51.100.10:1"), cmd(extORTransport, "snowflake")...), cmd(extORDone, "")...))
		io.ReadFull(c, b[:4])
		if tc.want == "OKAY" {
			c.Write([]byte("ping"))
			if _, err := io.ReadFull(c, b[:4]); err != nil || string(b[:4]) != "ping" {
				t.Errorf("OR stream not relayed: %q %v", b[:4], err)
			}
		}
		c.Close()
		wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := WaitUntil(wctx, "the tap's session", func() (bool, error) { return len(tap.Sessions()) > 0, nil }); err != nil {
			t.Error(err)
		}
		cancel()
		tap.Close()
		ln.Close()
		s := tap.Sessions()
		if len(s) != 1 || !s[0].AuthOK || s[0].Transport != "snowflake" || s[0].UserAddr != "198.51.100.10:1" || s[0].Reply != tc.want {
			t.Errorf("sessions %+v, want one with reply %s", s, tc.want)
		}
	}
}

func TestBinaries(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/snowfall-x", []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv(BinEnv, dir)
	b, err := NewBinaries()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if p, err := b.Path(ctx, "snowfall-x"); err != nil || p != dir+"/snowfall-x" {
		t.Errorf("Path = %q, %v", p, err)
	}
	if _, err := b.Path(ctx, "snowfall-missing"); err == nil {
		t.Error("missing program found")
	}
	if err := goBuild(ctx, dir+"/out", "../evil"); err == nil {
		t.Error("bad name accepted")
	}
}

// TestUpstreamCache checks that a build is found by the hash of go.mod and
// go.sum, and that changing either misses the cache.
func TestUpstreamCache(t *testing.T) {
	mod := t.TempDir()
	if err := os.WriteFile(mod+"/go.mod", []byte("module x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(mod+"/go.sum", []byte("a v1 h1:x=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	t.Setenv(UpstreamCacheEnv, cache)
	key, err := upstreamKey(mod)
	if err != nil {
		t.Fatal(err)
	}
	// A complete earlier build: BuildUpstream must use it without running go
	// (this module could not build anything).
	dir := cache + "/" + key
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, p := range upstreamPrograms {
		if err := os.WriteFile(dir+"/"+p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(dir+"/VERSION", []byte("v9.9.9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u, err := BuildUpstream(ctx, mod)
	if err != nil {
		t.Fatal(err)
	}
	if u.Dir != dir || u.Version != "v9.9.9" {
		t.Errorf("got %+v, want the cached build in %s", u, dir)
	}
	if p, err := u.Path("proxy"); err != nil || p != dir+"/proxy" {
		t.Errorf("Path(proxy) = %q, %v", p, err)
	}
	if _, err := u.Path("../proxy"); err == nil {
		t.Error("Path accepted a name that is not a program")
	}

	// Another go.sum is another key, and the build of this empty module
	// fails with go's own message rather than returning the old programs.
	if err := os.WriteFile(mod+"/go.sum", []byte("a v2 h1:y=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if k, _ := upstreamKey(mod); k == key {
		t.Fatal("key ignores go.sum")
	}
	if _, err := BuildUpstream(ctx, mod); err == nil || !strings.Contains(err.Error(), "go list") {
		t.Errorf("build of a module without the upstream requirement: %v", err)
	}
	// A half-finished build (a program missing) is not a cache hit either.
	if err := os.WriteFile(mod+"/go.sum", []byte("a v1 h1:x=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(dir + "/server"); err != nil {
		t.Fatal(err)
	}
	if _, err := BuildUpstream(ctx, mod); err == nil {
		t.Error("incomplete cached build accepted")
	}
}
