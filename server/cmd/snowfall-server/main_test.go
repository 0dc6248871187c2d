package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/turbotunnel"
	"github.com/snowfall-pt/snowfall/common/websocketconn"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "snowfall-server-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "snowfall-server")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building snowfall-server: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// echoORPort is a plain ORPort stand-in that echoes and then half-closes.
func echoORPort(t *testing.T) string {
	t.Helper()
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
			go func() {
				defer c.Close()
				io.Copy(c, c)
				c.(*net.TCPConn).CloseWrite()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return ln.Addr().String()
}

type ptProcess struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	exited chan error
	stderr *syncBuffer
}

// startPT runs the binary as tor would run a managed server transport.
func startPT(t *testing.T, env []string, args ...string) *ptProcess {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_SERVER_TRANSPORTS=snowflake",
		"TOR_PT_STATE_LOCATION=" + filepath.Join(t.TempDir(), "state"),
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
	}, env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &ptProcess{cmd: cmd, stdin: stdin, lines: make(chan string, 100), exited: make(chan error, 1), stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
		}
	})
	return p
}

// syncBuffer is a strings.Builder safe for a writer and readers at once.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// readUntil collects stdout lines up to and including one starting with
// last, or until stdout closes.
func (p *ptProcess) readUntil(t *testing.T, last string) []string {
	t.Helper()
	var got []string
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return got
			}
			got = append(got, l)
			if strings.HasPrefix(l, last) {
				return got
			}
		case <-timeout:
			t.Fatalf("no %q line; got %q", last, got)
		}
	}
}

// waitExit waits for the process to end and returns its exit code.
func (p *ptProcess) waitExit(t *testing.T) int {
	t.Helper()
	go func() {
		for range p.lines {
		}
	}()
	select {
	case err := <-p.exited:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatalf("process did not exit; stderr:\n%s", p.stderr)
		return -1
	}
}

func find(lines []string, re string) []string {
	r := regexp.MustCompile(re)
	for _, l := range lines {
		if m := r.FindStringSubmatch(l); m != nil {
			return m
		}
	}
	return nil
}

func TestPTHandshakeAndStdinClose(t *testing.T) {
	port := freePort(t)
	p := startPT(t, []string{
		fmt.Sprintf("TOR_PT_SERVER_BINDADDR=snowflake-127.0.0.1:%d", port),
		"TOR_PT_ORPORT=" + echoORPort(t),
	}, "--disable-tls")
	lines := p.readUntil(t, "SMETHODS DONE")
	if len(lines) == 0 || lines[0] != "VERSION 1" {
		t.Errorf("first line %q, want VERSION 1", lines)
	}
	if find(lines, `^STATUS TYPE=version IMPLEMENTATION="snowfall-server" VERSION="[^"]+"$`) == nil {
		t.Errorf("no STATUS TYPE=version line in %q", lines)
	}
	want := fmt.Sprintf("SMETHOD snowflake 127.0.0.1:%d ARGS:tls=no", port)
	if find(lines, "^"+regexp.QuoteMeta(want)+"$") == nil {
		t.Errorf("no %q line in %q", want, lines)
	}
	// It serves: a full client session through it reaches the ORPort.
	if err := echoThrough(fmt.Sprintf("ws://127.0.0.1:%d/", port), 1<<20); err != nil {
		t.Fatalf("session through the binary: %v\nstderr:\n%s", err, p.stderr)
	}
	p.stdin.Close()
	if code := p.waitExit(t); code != 0 {
		t.Fatalf("exit code %d after stdin closed; stderr:\n%s", code, p.stderr)
	}
}

func TestPTSIGTERM(t *testing.T) {
	port := freePort(t)
	p := startPT(t, []string{
		fmt.Sprintf("TOR_PT_SERVER_BINDADDR=snowflake-127.0.0.1:%d", port),
		"TOR_PT_ORPORT=" + echoORPort(t),
		"TOR_PT_EXIT_ON_STDIN_CLOSE=0",
	}, "--disable-tls", "--log", filepath.Join(t.TempDir(), "log"))
	p.readUntil(t, "SMETHODS DONE")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.waitExit(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM", code)
	}
	// The listener is gone.
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		t.Error("still listening after exit")
	}
}

func TestPTSmethodErrors(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		wantErr string
	}{
		{"port 0", []string{"TOR_PT_SERVER_BINDADDR=snowflake-127.0.0.1:0"}, "SMETHOD-ERROR snowflake cannot listen on port 0"},
		{"bad num-turbotunnel", []string{
			"TOR_PT_SERVER_BINDADDR=snowflake-127.0.0.1:" + fmt.Sprint(freePort(t)),
			"TOR_PT_SERVER_TRANSPORT_OPTIONS=snowflake:num-turbotunnel=zero",
		}, "SMETHOD-ERROR snowflake num-turbotunnel"},
		{"bad orport-srcaddr", []string{
			"TOR_PT_SERVER_BINDADDR=snowflake-127.0.0.1:" + fmt.Sprint(freePort(t)),
			"TOR_PT_SERVER_TRANSPORT_OPTIONS=snowflake:orport-srcaddr=nowhere",
		}, "SMETHOD-ERROR snowflake orport-srcaddr"},
		{"srcaddr family", []string{
			"TOR_PT_SERVER_BINDADDR=snowflake-127.0.0.1:" + fmt.Sprint(freePort(t)),
			"TOR_PT_SERVER_TRANSPORT_OPTIONS=snowflake:orport-srcaddr=::1",
		}, "SMETHOD-ERROR snowflake orport-srcaddr ::1/128 and the ORPort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"TOR_PT_ORPORT=127.0.0.1:9"}, tt.env...)
			p := startPT(t, env, "--disable-tls")
			lines := p.readUntil(t, "SMETHODS DONE")
			if find(lines, "^"+regexp.QuoteMeta(tt.wantErr)) == nil {
				t.Errorf("no line starting %q in %q", tt.wantErr, lines)
			}
			if find(lines, "^SMETHOD snowflake") != nil {
				t.Errorf("SMETHOD despite the error: %q", lines)
			}
			if code := p.waitExit(t); code == 0 {
				t.Error("exit code 0 with no listener")
			}
		})
	}
}

func TestPTOtherMethodRefused(t *testing.T) {
	port := freePort(t)
	p := startPT(t, []string{
		fmt.Sprintf("TOR_PT_SERVER_BINDADDR=obfs4-127.0.0.1:%d,snowflake-127.0.0.1:%d", freePort(t), port),
		"TOR_PT_SERVER_TRANSPORTS=obfs4,snowflake",
		"TOR_PT_ORPORT=127.0.0.1:9",
	}, "--disable-tls")
	lines := p.readUntil(t, "SMETHODS DONE")
	if find(lines, "^SMETHOD-ERROR obfs4 ") == nil || find(lines, fmt.Sprintf("^SMETHOD snowflake 127.0.0.1:%d ", port)) == nil {
		t.Errorf("want an error for obfs4 and a listener for snowflake: %q", lines)
	}
	p.stdin.Close()
	p.waitExit(t)
}

func TestPTEnvError(t *testing.T) {
	p := startPT(t, []string{"TOR_PT_ORPORT=127.0.0.1:9"}, "--disable-tls") // no BINDADDR
	lines := p.readUntil(t, "ENV-ERROR")
	if find(lines, "^ENV-ERROR .*TOR_PT_SERVER_BINDADDR") == nil {
		t.Errorf("no ENV-ERROR about TOR_PT_SERVER_BINDADDR: %q", lines)
	}
	if code := p.waitExit(t); code == 0 {
		t.Error("exit code 0")
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		{[]string{"--version"}, 0, "snowfall-server "},
		{nil, 2, "need --acme-hostnames"},
		{[]string{"--disable-tls", "--acme-hostnames", "x.example"}, 2, "excludes"},
		{[]string{"--cert", "c.pem"}, 2, "go together"},
		{[]string{"--acme-hostnames", "x.example", "--cert", "c", "--key", "k"}, 2, "not both"},
		{[]string{"--disable-tls", "--max-websockets", "0"}, 2, "max-websockets"},
		{[]string{"--disable-tls", "extra"}, 2, "unexpected arguments"},
	}
	for _, tt := range tests {
		out, err := exec.Command(binary, tt.args...).CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tt.wantCode || !strings.Contains(string(out), tt.wantOut) {
			t.Errorf("%q: exit %d, output %q; want exit %d and %q", tt.args, code, out, tt.wantCode, tt.wantOut)
		}
	}
}

func TestPTCertFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeCert(t, dir, "bridge.example", "alt.example")
	port := freePort(t)
	p := startPT(t, []string{
		fmt.Sprintf("TOR_PT_SERVER_BINDADDR=snowflake-127.0.0.1:%d", port),
		"TOR_PT_ORPORT=" + echoORPort(t),
	}, "--cert", certFile, "--key", keyFile)
	lines := p.readUntil(t, "SMETHODS DONE")
	want := fmt.Sprintf("SMETHOD snowflake 127.0.0.1:%d ARGS:hostname=bridge.example,hostname=alt.example,tls=yes", port)
	if find(lines, "^"+regexp.QuoteMeta(want)+"$") == nil {
		t.Errorf("no %q in %q", want, lines)
	}
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: pool, ServerName: "bridge.example", MaxVersion: tls.VersionTLS11})
	if err == nil {
		c.Close()
		t.Error("TLS 1.1 accepted")
	}
	c, err = tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: pool, ServerName: "bridge.example"})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	if c.ConnectionState().NegotiatedProtocol == "h2" {
		t.Error("negotiated h2; WebSockets need HTTP/1.1")
	}
	c.Close()
	p.stdin.Close()
	if code := p.waitExit(t); code != 0 {
		t.Fatalf("exit code %d", code)
	}
}

func writeCert(t *testing.T, dir string, names ...string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

type peerAddr struct{}

func (peerAddr) Network() string { return "bridge" }
func (peerAddr) String() string  { return "bridge" }

// echoThrough runs a turbotunnel client session against url, sends n bytes
// on one stream and checks that the ORPort echo returns them.
func echoThrough(url string, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ws, err := websocketconn.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	pconn := turbotunnel.NewCarrierConn(turbotunnel.NewClientID(), peerAddr{}, turbotunnel.CarrierOptions{})
	defer pconn.Close()
	if err := pconn.Add(ws); err != nil {
		return err
	}
	sess, err := turbotunnel.NewClientSession(pconn, peerAddr{}, turbotunnel.ClientConfig())
	if err != nil {
		return err
	}
	defer sess.Close()
	stream, err := sess.Mux.OpenStream()
	if err != nil {
		return err
	}
	defer stream.Close()
	stream.SetDeadline(time.Now().Add(2 * time.Minute))
	data := make([]byte, n)
	rand.Read(data)
	go func() {
		stream.Write(data)
		stream.CloseWrite()
	}()
	got, err := io.ReadAll(stream)
	if err != nil {
		return fmt.Errorf("after %d bytes: %w", len(got), err)
	}
	if sha256.Sum256(got) != sha256.Sum256(data) {
		return fmt.Errorf("echo differs: %d bytes back of %d", len(got), n)
	}
	return nil
}
