//go:build integration

package interop

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// extORInstance stands in for one tor instance's Extended ORPort: its own
// cookie, SAFE_COOKIE authentication, then an echo. It counts the streams
// it served.
type extORInstance struct {
	ln         net.Listener
	cookiePath string
	cookie     [32]byte
	served     atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func startExtORInstance(t *testing.T, dir, name string) *extORInstance {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &extORInstance{ln: ln, cookiePath: filepath.Join(dir, name+"_extended_orport_auth_cookie"), conns: map[net.Conn]struct{}{}}
	rand.Read(e.cookie[:])
	if err := os.WriteFile(e.cookiePath, append([]byte("! Extended ORPort Auth Cookie !\x0a"), e.cookie[:]...), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.kill)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.mu.Lock()
			e.conns[c] = struct{}{}
			e.mu.Unlock()
			go e.serve(c)
		}
	}()
	return e
}

func (e *extORInstance) hash(label string, cn, sn []byte) []byte {
	h := hmac.New(sha256.New, e.cookie[:])
	io.WriteString(h, label)
	h.Write(cn)
	h.Write(sn)
	return h.Sum(nil)
}

// serve runs the ExtORPort handshake (ext-orport-spec) and echoes. Health
// checks, which connect and close, end in the first read.
func (e *extORInstance) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	c.Write([]byte{1, 0})
	var in [33]byte
	if _, err := io.ReadFull(c, in[:]); err != nil || in[0] != 1 {
		return
	}
	sn := make([]byte, 32)
	rand.Read(sn)
	c.Write(append(e.hash("ExtORPort authentication server-to-client hash", in[1:], sn), sn...))
	ch := make([]byte, 32)
	if _, err := io.ReadFull(c, ch); err != nil {
		return
	}
	if !hmac.Equal(ch, e.hash("ExtORPort authentication client-to-server hash", in[1:], sn)) {
		c.Write([]byte{0})
		return
	}
	c.Write([]byte{1})
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint16(hdr[2:]))); err != nil {
			return
		}
		if binary.BigEndian.Uint16(hdr[:2]) == 0 { // DONE
			break
		}
	}
	c.Write([]byte{0x10, 0x00, 0, 0}) // OKAY
	c.SetDeadline(time.Time{})
	e.served.Add(1)
	io.Copy(c, c)
}

// kill stops the instance as a crash would: listener and connections gone.
func (e *extORInstance) kill() {
	e.ln.Close()
	e.mu.Lock()
	defer e.mu.Unlock()
	for c := range e.conns {
		c.Close()
	}
}

// haproxyConfig balances TCP over the instances, with health checks so a
// dead one is taken out, and redispatch so a connection to it is retried
// on another.
func haproxyConfig(listen string, backends ...string) string {
	cfg := fmt.Sprintf(`global
    maxconn 4096
defaults
    mode tcp
    timeout connect 2s
    timeout client 10m
    timeout server 10m
    retries 3
    option redispatch
frontend extorport
    bind %s
    default_backend tors
backend tors
    balance roundrobin
`, listen)
	for i, b := range backends {
		cfg += fmt.Sprintf("    server tor%d %s check inter 300ms fall 1 rise 2\n", i+1, b)
	}
	return cfg
}

// startHAProxy runs haproxy in ns (nil: here) and waits until it listens.
func startHAProxy(ctx context.Context, t *testing.T, ns *testbed.Namespace, dir, listen string, backends ...string) *testbed.Process {
	t.Helper()
	path, err := testbed.SystemBinary("haproxy")
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(cfgPath, []byte(haproxyConfig(listen, backends...)), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := testbed.StartProcess(testbed.ProcessConfig{Name: "haproxy", NS: ns, Path: path, Args: []string{"-db", "-f", cfgPath}, LogDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) })
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := ns.Dial(ctx, "tcp", listen)
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy not listening: %v\n%s", err, testbed.Tail(p.StderrPath, 10))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestScaleOutHAProxyExtORPort: snowfall-server -> HAProxy -> two
// Extended ORPorts with different cookies (two tor instances). Streams
// spread over both; after one dies, new streams still succeed.
func TestScaleOutHAProxyExtORPort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := artifacts(t)
	tor1 := startExtORInstance(t, dir, "tor1")
	tor2 := startExtORInstance(t, dir, "tor2")
	lb := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	startHAProxy(ctx, t, nil, dir, lb, tor1.ln.Addr().String(), tor2.ln.Addr().String())

	path, err := bins.Path(ctx, "snowfall-server")
	if err != nil {
		t.Fatal(err)
	}
	bind := fmt.Sprintf("127.0.0.1:%d", freeLoopbackPort(t))
	srv, err := testbed.StartPTServer(ctx, testbed.PTServerConfig{
		Name: "snowfall-server", Path: path, Transport: "snowflake",
		Args:     []string{"--disable-tls", "--auth-cookie-file", tor2.cookiePath},
		LogDir:   dir,
		BindAddr: bind,
		// tor would set TOR_PT_ORPORT too; unused with an ExtORPort.
		ORPort:         "127.0.0.1:1",
		ExtORPort:      lb,
		AuthCookieFile: tor1.cookiePath,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop(5 * time.Second) })

	client := newTunnelClient(t, "ws://"+bind+"/", "127.0.0.2")
	const streams = 20
	for i := range streams {
		if err := client.echo(1000); err != nil {
			t.Fatalf("stream %d: %v\nbridge log:\n%s", i, err, testbed.Tail(srv.StderrPath, 10))
		}
	}
	n1, n2 := tor1.served.Load(), tor2.served.Load()
	t.Logf("streams: %d on tor1, %d on tor2", n1, n2)
	if n1 == 0 || n2 == 0 || n1+n2 != streams {
		t.Fatalf("streams not spread over both instances: %d and %d of %d", n1, n2, streams)
	}

	tor1.kill()
	for i := range streams {
		if err := client.echo(1000); err != nil {
			t.Fatalf("stream %d after tor1 died: %v", i, err)
		}
	}
	if got := tor2.served.Load() - n2; got != streams {
		t.Fatalf("%d of %d streams after tor1 died reached tor2", got, streams)
	}
}
