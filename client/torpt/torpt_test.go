package torpt

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"

	"github.com/snowfall-pt/snowfall/client"
	"github.com/snowfall-pt/snowfall/client/internal/fakebridge"
	"github.com/snowfall-pt/snowfall/client/internal/socks5test"
	"github.com/snowfall-pt/snowfall/common/bridgefingerprint"
	"github.com/snowfall-pt/snowfall/common/messages"
)

func TestParseFlags(t *testing.T) {
	o, err := ParseFlags([]string{
		"-url", "https://b.example/", "-front", "f1.example,f2.example", "-ampcache", "https://cdn.example/",
		"-ice", "stun:a:1, stun:b:2", "-log", "x.log", "-logToStateDir", "-keepLocalAddresses",
		"-unsafe-logging", "-max", "3",
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	b := o.Base
	if b.BrokerURL != "https://b.example/" || len(b.Fronts) != 2 || b.AMPCacheURL != "https://cdn.example/" ||
		len(b.ICEServers) != 2 || b.MaxPeers != 3 || !b.KeepLocalAddresses || !o.LogToStateDir ||
		!o.UnsafeLogging || o.LogFile != "x.log" {
		t.Fatalf("%+v", o)
	}
	o, err = ParseFlags([]string{"--fronts=g.example", "-front", "f.example", "-keep-local-addresses", "-log-to-state-dir"}, io.Discard)
	if err != nil || len(o.Base.Fronts) != 1 || o.Base.Fronts[0] != "g.example" || !o.Base.KeepLocalAddresses || !o.LogToStateDir {
		t.Fatalf("%+v %v", o, err)
	}
	if o.Base.MaxPeers != 1 {
		t.Errorf("default max %d", o.Base.MaxPeers)
	}
	if _, err := ParseFlags([]string{"-nope"}, io.Discard); err == nil {
		t.Error("unknown flag accepted")
	}
	if _, err := ParseFlags([]string{"-h"}, io.Discard); !IsHelp(err) {
		t.Errorf("-h: %v", err)
	}
	if !strings.HasPrefix(VersionText(), "snowfall-client ") || !strings.Contains(VersionText(), "hellochrome_auto") {
		t.Errorf("version text %q", VersionText())
	}
}

// ptOutput collects what Run writes for tor.
type ptOutput struct {
	mu      sync.Mutex
	partial bytes.Buffer
	lines   []string
	pos     int // waitLine's cursor
}

func (o *ptOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.partial.Write(p)
	for {
		line, err := o.partial.ReadString('\n')
		if err != nil {
			o.partial.WriteString(line)
			break
		}
		o.lines = append(o.lines, strings.TrimSuffix(line, "\n"))
	}
	return len(p), nil
}

// waitLine returns the first line after the previous match that matches re.
func (o *ptOutput) waitLine(t *testing.T, re string) []string {
	t.Helper()
	return o.wait(t, re, true)
}

// hasLine returns any line, old or new, that matches re.
func (o *ptOutput) hasLine(t *testing.T, re string) []string {
	t.Helper()
	return o.wait(t, re, false)
}

func (o *ptOutput) wait(t *testing.T, re string, advance bool) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		start := 0
		if advance {
			start = o.pos
		}
		for i := start; i < len(o.lines); i++ {
			if m := rx.FindStringSubmatch(o.lines[i]); m != nil {
				if advance {
					o.pos = i + 1
				}
				o.mu.Unlock()
				return m
			}
		}
		o.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no line matching %q", re)
	return nil
}

// startPT runs Run with a PT environment and returns the SOCKS address.
func startPT(t *testing.T, o *Options, env map[string]string) (*ptOutput, string, context.CancelFunc, chan error) {
	t.Setenv("TOR_PT_MANAGED_TRANSPORT_VER", "1")
	t.Setenv("TOR_PT_CLIENT_TRANSPORTS", "snowflake,obfs4")
	t.Setenv("TOR_PT_STATE_LOCATION", t.TempDir())
	for k, v := range env {
		t.Setenv(k, v)
	}
	out := &ptOutput{}
	old := pt.Stdout
	pt.Stdout = out
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return after cancel")
		}
		pt.Stdout = old
	})
	if _, ok := env["TOR_PT_PROXY"]; ok {
		return out, "", cancel, done
	}
	m := out.waitLine(t, `^CMETHOD snowflake socks5 (127\.0\.0\.1:\d+)$`)
	return out, m[1], cancel, done
}

// socksConnect performs a SOCKS5 handshake carrying args the way tor does
// (in the username, NUL password when they fit) and returns the reply code.
func socksConnect(t *testing.T, addr, args string) (net.Conn, byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	// Tor offers username/password only when there are arguments.
	method := byte(2)
	if args == "" {
		method = 0
	}
	c.Write([]byte{5, 1, method})
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil || sel[1] != method {
		t.Fatalf("method selection %v %v", sel, err)
	}
	if method == 2 {
		socksAuth(t, c, args)
	}
	req := []byte{5, 1, 0, 1, 192, 0, 2, 3, 0, 80}
	c.Write(req)
	var rep [10]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		t.Fatalf("reading SOCKS reply: %v", err)
	}
	c.SetDeadline(time.Time{})
	return c, rep[1]
}

func socksAuth(t *testing.T, c net.Conn, args string) {
	t.Helper()
	user, pass := args, "\x00"
	if len(user) > 255 {
		user, pass = args[:255], args[255:]
	}
	msg := append([]byte{1, byte(len(user))}, user...)
	msg = append(append(msg, byte(len(pass))), pass...)
	c.Write(msg)
	var auth [2]byte
	if _, err := io.ReadFull(c, auth[:]); err != nil || auth[1] != 0 {
		t.Fatalf("auth %v %v", auth, err)
	}
}

// pollBroker is an HTTP broker that records polls and never has proxies.
type pollBroker struct {
	*httptest.Server
	mu    sync.Mutex
	polls []*messages.ClientPollRequest
}

func newPollBroker(t *testing.T, reply string) *pollBroker {
	b := &pollBroker{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if req, err := messages.DecodeClientPollRequest(body); err == nil {
			b.mu.Lock()
			b.polls = append(b.polls, req)
			b.mu.Unlock()
		}
		io.WriteString(w, reply)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *pollBroker) fingerprints() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, p := range b.polls {
		out = append(out, p.Fingerprint)
	}
	return out
}

func TestRunSetupLines(t *testing.T) {
	o := &Options{Base: client.Config{BrokerURL: "https://b.example/"}}
	out, _, _, _ := startPT(t, o, nil)
	out.hasLine(t, `^VERSION 1$`)
	out.hasLine(t, `^CMETHOD-ERROR obfs4 no such method$`)
	out.hasLine(t, `^CMETHODS DONE$`)
	m := out.hasLine(t, `^STATUS TYPE=version IMPLEMENTATION="snowfall-client" VERSION="([^"]+)"$`)
	if m[1] == "" {
		t.Fatal("empty version")
	}
}

// TestRunBadInput: every bad input gives tor a SOCKS failure and a LOG line.
func TestRunBadInput(t *testing.T) {
	garbage := newPollBroker(t, "<html>this is not a broker</html>")
	noProxies := newPollBroker(t, `{"error":"no snowflake proxies currently available"}`)
	o := &Options{Base: client.Config{BrokerURL: noProxies.URL + "/", ConnectTimeout: 4 * time.Second, ICEServers: nil}}
	out, addr, _, _ := startPT(t, o, nil)
	tests := []struct {
		name, args, log string
	}{
		{"bad max", "max=lots", `bad bridge line arguments.*max`},
		{"bad fingerprint", "fingerprint=1234", `bad bridge line arguments.*fingerprint`},
		{"bad utls", "utls-imitate=hellonetscape", `bad bridge line arguments.*utls-imitate`},
		{"bad url", "url=gopher://x/", `bad bridge line arguments.*url`},
		{"garbage broker", "url=" + garbage.URL + "/", `connection failed.*malformed broker reply`},
		{"no proxies", "", `connection failed.*no snowflake proxies currently available`},
		{"refused", "url=http://127.0.0.1:1/", `connection failed.*connection refused`},
	}
	for _, tt := range tests {
		c, code := socksConnect(t, addr, tt.args)
		c.Close()
		if code == 0 {
			t.Errorf("%s: SOCKS request granted", tt.name)
		}
		m := out.waitLine(t, `^LOG SEVERITY=warning MESSAGE=".*`+tt.log)
		if strings.Contains(m[0], "127.0.0.1") {
			t.Errorf("%s: address not scrubbed: %s", tt.name, m[0])
		}
	}
	out.hasLine(t, `^LOG SEVERITY=notice MESSAGE="offer created"$`)
}

// TestRunArgsNoLeak: the second SOCKS connection must not inherit the first
// one's bridge-line arguments.
func TestRunArgsNoLeak(t *testing.T) {
	b1 := newPollBroker(t, `{"error":"no snowflake proxies currently available"}`)
	b2 := newPollBroker(t, `{"error":"no snowflake proxies currently available"}`)
	o := &Options{Base: client.Config{BrokerURL: b2.URL + "/", ConnectTimeout: 2 * time.Second}}
	out, addr, _, _ := startPT(t, o, nil)
	const fp = "8838024498816A039FCBBAB14E6F40A0843051FA"
	c, _ := socksConnect(t, addr, "url="+b1.URL+"/;fingerprint="+fp)
	c.Close()
	out.waitLine(t, `connection failed`)
	c, _ = socksConnect(t, addr, "")
	c.Close()
	out.waitLine(t, `connection failed`)
	f1, f2 := b1.fingerprints(), b2.fingerprints()
	if len(f1) == 0 || len(f2) == 0 {
		t.Fatalf("polls: %d to broker 1, %d to broker 2", len(f1), len(f2))
	}
	for _, f := range f1 {
		if f != fp {
			t.Errorf("first connection sent fingerprint %s", f)
		}
	}
	for _, f := range f2 {
		if f != bridgefingerprint.Default {
			t.Errorf("second connection sent fingerprint %s: leaked from the first", f)
		}
	}
}

type pipePeers struct{ bridge *fakebridge.Bridge }

func (p pipePeers) Connect(ctx context.Context) (net.Conn, error) {
	a, b := net.Pipe()
	go p.bridge.ServeCarrier(b)
	return a, nil
}

func TestRunRelays(t *testing.T) {
	bridge, err := fakebridge.Start(func(c net.Conn) { io.Copy(c, c); c.Close() })
	if err != nil {
		t.Fatal(err)
	}
	defer bridge.Close()
	logDir := t.TempDir()
	o := &Options{Base: client.Config{Peers: pipePeers{bridge}}, LogFile: filepath.Join(logDir, "client.log")}
	_, addr, cancel, done := startPT(t, o, nil)
	c, code := socksConnect(t, addr, "max=2")
	if code != 0 {
		t.Fatalf("SOCKS reply %d", code)
	}
	msg := bytes.Repeat([]byte("0123456789"), 100000)
	go c.Write(msg)
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(time.Minute))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %v", err)
	}
	c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the cleanup
	logText, err := os.ReadFile(o.LogFile)
	if err != nil || !strings.Contains(string(logText), "SOCKS connection granted") {
		t.Errorf("log file: %v %q", err, logText)
	}
}

func TestRunProxy(t *testing.T) {
	srv, err := socks5test.Start("", "")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	o := &Options{Base: client.Config{BrokerURL: "https://b.example/"}}
	out, _, _, _ := startPT(t, o, map[string]string{"TOR_PT_PROXY": "socks5://" + srv.Addr()})
	out.waitLine(t, `^PROXY DONE$`)
	out.waitLine(t, `^CMETHOD snowflake socks5 `)
}

func TestRunProxyUnsupported(t *testing.T) {
	o := &Options{Base: client.Config{BrokerURL: "https://b.example/"}}
	for _, p := range []string{"http://127.0.0.1:3128", "socks4a://127.0.0.1:1080"} {
		t.Run(p, func(t *testing.T) {
			out, _, _, done := startPT(t, o, map[string]string{"TOR_PT_PROXY": p})
			out.waitLine(t, `^PROXY-ERROR .*not supported`)
			select {
			case err := <-done:
				if err == nil {
					t.Error("Run succeeded with an unsupported proxy")
				}
				done <- err
			case <-time.After(30 * time.Second):
				t.Fatal("Run kept going")
			}
		})
	}
}

func TestCheckProxy(t *testing.T) {
	if err := checkProxy(context.Background(), "socks5", func(context.Context) error { return errors.New("no UDP from 192.0.2.1") }); err == nil ||
		strings.Contains(err.Error(), "192.0.2.1") {
		t.Errorf("err = %v (want an error with the address scrubbed)", err)
	}
	if err := checkProxy(context.Background(), "socks5", func(context.Context) error { return nil }); err != nil {
		t.Error(err)
	}
}

func TestRunLogToStateDir(t *testing.T) {
	state := t.TempDir()
	o := &Options{Base: client.Config{BrokerURL: "https://b.example/"}, LogFile: "snowflake.log", LogToStateDir: true}
	_, _, cancel, done := startPT(t, o, map[string]string{"TOR_PT_STATE_LOCATION": state + "/pt"})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil
	b, err := os.ReadFile(filepath.Join(state, "pt", "snowflake.log"))
	if err != nil || !strings.Contains(string(b), "snowfall-client starting") {
		t.Fatalf("log in state dir: %v %q", err, b)
	}
}
