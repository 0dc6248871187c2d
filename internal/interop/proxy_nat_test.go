//go:build integration

package interop

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/websocketconn"
	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// pollRecorder is a stand-in broker that answers every proxy poll with "no
// match" and remembers the NAT type each proxy address reported. Like a real
// broker it refuses polls whose relay pattern does not cover its relay (the
// testbed's server address), as the self-test's poll does not.
type pollRecorder struct {
	mu   sync.Mutex
	nats map[netip.Addr][]string
}

func (b *pollRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/proxy":
		body, _ := io.ReadAll(io.LimitReader(r.Body, 100000))
		req, err := messages.DecodeProxyPollRequest(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if p := req.AcceptedRelayPattern; p != nil && *p != "^"+testbed.ServerIP.String()+"$" {
			io.WriteString(w, `{"Status":"incorrect relay pattern","NextPoll":3600000}`)
			return
		}
		ap, _ := netip.ParseAddrPort(r.RemoteAddr)
		b.mu.Lock()
		b.nats[ap.Addr()] = append(b.nats[ap.Addr()], req.NAT)
		b.mu.Unlock()
		io.WriteString(w, `{"Status":"no match","Offer":"","NAT":"","RelayURL":""}`)
	default:
		// Anything else is the relay: accept the WebSocket and hang up.
		if c, err := websocketconn.Accept(w, r); err == nil {
			c.Close()
		}
	}
}

func (b *pollRecorder) reported(a netip.Addr) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.nats[a]...)
}

// TestProxyNATClassification puts our NAT probe service behind a symmetric
// NAT, as in production, and our proxy behind NAT routers of three kinds.
// Only a proxy that any peer can reach (a forwarded port range, i.e.
// endpoint-independent mapping and filtering) connects to the probe: it
// must call itself unrestricted; behind a symmetric NAT, and behind plain
// Linux masquerading (port-restricted filtering), restricted. The proxy
// reports the verdict in its broker polls, and -self-test prints it.
func TestProxyNATClassification(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := artifacts(t)
	network, err := testbed.NewNetwork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { network.Close() })
	srv := network.Server
	stun, err := testbed.StartSTUNServer(srv,
		netip.AddrPortFrom(testbed.ServerIP, STUNPort), netip.AddrPortFrom(testbed.ServerIP2, STUNPort2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stun.Close() })

	// Broker and relay stand-ins on the public segment.
	rec := &pollRecorder{nats: make(map[netip.Addr][]string)}
	for _, port := range []int{BrokerPort, BridgePort} {
		ln, err := srv.Listen("tcp", fmt.Sprintf("%s:%d", testbed.ServerIP, port))
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: rec, ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(ln)
		t.Cleanup(func() { hs.Close() })
	}

	// The probe service behind a symmetric NAT, its TCP port forwarded.
	const probePort = 8443
	probe, err := network.AddNATHost(ctx, testbed.NATHostConfig{
		Role: "probe", WAN: netip.MustParseAddr("198.51.100.40"), LAN: netip.MustParsePrefix("10.40.0.0/24"),
		Kind: testbed.NATSymmetric, TCPForward: []uint16{probePort},
	})
	if err != nil {
		t.Fatal(err)
	}
	probePath, err := bins.Path(ctx, "snowfall-probetest")
	if err != nil {
		t.Fatal(err)
	}
	probeProc, err := testbed.StartProcess(testbed.ProcessConfig{
		Name: "probetest", NS: probe.Host, Path: probePath, LogDir: dir,
		Args: []string{"-addr", fmt.Sprintf("%s:%d", probe.Host.Addr, probePort), "-disable-tls",
			"-stun", stun.URL(), "-unsafe-logging", "-verbose"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { probeProc.Stop(5 * time.Second) })
	probeAddr := fmt.Sprintf("%s:%d", probe.WAN, probePort)
	if err := waitListening(ctx, srv, probeAddr, probeProc); err != nil {
		t.Fatalf("probe service: %v\n%s", err, testbed.Tail(probeProc.StderrPath, 10))
	}
	proxyPath, err := bins.Path(ctx, "snowfall-proxy")
	if err != nil {
		t.Fatal(err)
	}
	const portLo, portHi = 40000, 40063
	proxyArgs := []string{
		"-broker", fmt.Sprintf("http://%s:%d/", testbed.ServerIP, BrokerPort),
		"-relay", fmt.Sprintf("ws://%s:%d/", testbed.ServerIP, BridgePort),
		"-allow-non-tls-relay", "-allowed-relay-hostname-pattern", "^" + testbed.ServerIP.String() + "$",
		"-stun", stun.URL(), "-nat-probe-server", "http://" + probeAddr + "/probe",
		"-ephemeral-ports-range", fmt.Sprintf("%d:%d", portLo, portHi),
		"-nat-retest-interval", "0", "-unsafe-logging", "-verbose",
	}

	cases := []struct {
		role string
		kind testbed.NATKind
		want string
	}{
		{"pxfwd", testbed.NATForwarded, "unrestricted"},
		{"pxsym", testbed.NATSymmetric, "restricted"},
		{"pxmasq", testbed.NATMasquerade, "restricted"},
	}
	t.Run("group", func(t *testing.T) {
		for i, tc := range cases {
			t.Run(tc.kind.String(), func(t *testing.T) {
				t.Parallel()
				nh, err := network.AddNATHost(ctx, testbed.NATHostConfig{
					Role: tc.role, WAN: netip.AddrFrom4([4]byte{198, 51, 100, byte(50 + i)}),
					LAN:  netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(50 + i), 0, 0}), 24),
					Kind: tc.kind, UDPForward: [2]uint16{portLo, portHi},
				})
				if err != nil {
					t.Fatal(err)
				}
				logPath := dir + "/" + tc.role + ".log"
				p, err := testbed.StartProcess(testbed.ProcessConfig{
					Name: tc.role, NS: nh.Host, Path: proxyPath, LogDir: dir,
					Args: append([]string{"-log", logPath}, proxyArgs...),
				})
				if err != nil {
					t.Fatal(err)
				}
				defer p.Stop(5 * time.Second)
				// The first poll follows the measurement (20 s at most for
				// the data channel, plus gathering).
				wctx, wcancel := context.WithTimeout(ctx, 90*time.Second)
				defer wcancel()
				var got []string
				err = testbed.WaitUntil(wctx, "the proxy's first poll", func() (bool, error) {
					if got = rec.reported(nh.WAN); len(got) > 0 {
						return true, nil
					}
					if !p.Running() {
						return false, fmt.Errorf("proxy exited: %s", p.ExitStatus())
					}
					return false, nil
				})
				if err != nil {
					t.Fatalf("%v\n%s", err, testbed.Tail(logPath, 20))
				}
				if got[0] != tc.want {
					t.Fatalf("proxy behind a %s NAT reported %q, want %q\n%s", tc.kind, got[0], tc.want, testbed.Tail(logPath, 30))
				}
				log, _ := os.ReadFile(logPath)
				if !strings.Contains(string(log), "NAT type: "+tc.want) {
					t.Errorf("log lacks %q", "NAT type: "+tc.want)
				}
				t.Logf("behind a %s NAT: %s (polls: %v)", tc.kind, got[0], got)
				if tc.kind != testbed.NATForwarded {
					return
				}
				// The volunteer's question: is my proxy working?
				p.Stop(5 * time.Second)
				st, err := testbed.StartProcess(testbed.ProcessConfig{
					Name: tc.role + "-selftest", NS: nh.Host, Path: proxyPath, LogDir: dir,
					Args: append([]string{"-self-test"}, proxyArgs...),
				})
				if err != nil {
					t.Fatal(err)
				}
				select {
				case <-st.Done():
				case <-time.After(90 * time.Second):
					st.Stop(time.Second)
					t.Fatal("self-test did not finish")
				}
				out, _ := os.ReadFile(st.StdoutPath)
				t.Logf("self-test output:\n%s", out)
				for _, want := range []string{"[ OK ] broker", "[ OK ] relay", "[ OK ] STUN", "[ OK ] NAT     unrestricted", "Result: working."} {
					if !strings.Contains(string(out), want) {
						t.Errorf("self-test output lacks %q", want)
					}
				}
				if st.ExitStatus() != "exit status 0" {
					t.Errorf("self-test of a working proxy: %s, want exit status 0", st.ExitStatus())
				}
			})
		}
	})
	if t.Failed() {
		t.Logf("probe service log:\n%s", testbed.Tail(probeProc.StderrPath, 30))
	}
}
