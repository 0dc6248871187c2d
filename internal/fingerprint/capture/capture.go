// Package capture records a browser's handshakes on the testbed: Chromium's
// DTLS between two of its own RTCPeerConnections, captured off the wire in
// its namespace, and its TLS ClientHello and HTTP/2 preface as a local HTTPS
// server received them. It needs root (network namespaces, AF_PACKET).
package capture

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"

	"github.com/chromedp/chromedp"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// DTLSFlow is the datagrams of one Chromium data channel's DTLS handshake.
type DTLSFlow struct {
	// ClientToServer tells each datagram's direction: true for the DTLS
	// client (the answerer).
	ClientToServer []bool
	Datagrams      [][]byte
}

// Result is one capture run.
type Result struct {
	// Version is `chromium --version`.
	Version string
	// DTLS holds one flow per connection, in order.
	DTLS []DTLSFlow
	// Certificates are the DER certificates the peers reported (getStats).
	Certificates [][]byte
	// TLS holds the connections Chromium opened to the HTTPS server.
	TLS []testbed.RecordedConn
}

// Options configures Chromium.
type Options struct {
	// Connections is how many peer-connection pairs to open (default 3).
	Connections int
	// Dir holds the browser's profile and log; it must exist.
	Dir string
}

// pairScript opens one offerer/answerer pair with a data channel, waits for
// it to open, and returns both peers' certificates. The offerer is the DTLS
// server (a=setup:actpass; the answerer takes active).
const pairScript = `(async () => {
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  const cands = [];
  a.onicecandidate = e => { if (e.candidate) { cands.push(e.candidate.candidate); b.addIceCandidate(e.candidate); } };
  b.onicecandidate = e => { if (e.candidate) a.addIceCandidate(e.candidate); };
  const dc = a.createDataChannel("x");
  const opened = new Promise((ok, fail) => { dc.onopen = ok; setTimeout(() => fail(new Error("data channel did not open: " + JSON.stringify(cands) + " " + a.iceConnectionState + " " + b.iceConnectionState)), 15000); });
  await a.setLocalDescription();
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription();
  await a.setRemoteDescription(b.localDescription);
  await opened;
  const certs = [];
  for (const pc of [a, b]) {
    (await pc.getStats()).forEach(r => { if (r.type === "certificate") certs.push(r.base64Certificate); });
  }
  a.close(); b.close();
  return certs;
})()`

// Chromium runs Debian's chromium in a fresh testbed network and records its
// handshakes: three pairs of peer connections, a page load from one HTTPS
// server and a fetch POST from that page to another.
func Chromium(ctx context.Context, opts Options) (*Result, error) {
	if opts.Connections <= 0 {
		opts.Connections = 3
	}
	version, err := testbed.ChromiumVersion(ctx)
	if err != nil {
		return nil, err
	}
	res := &Result{Version: version}
	nw, err := testbed.NewNetwork(ctx)
	if err != nil {
		return nil, err
	}
	defer nw.Close()
	ns, err := nw.AddHost(ctx, "chrome", testbed.ClientIP)
	if err != nil {
		return nil, err
	}
	// Chromium gathers no host candidate on a host without a default
	// route. The route ends at the server namespace, which has none.
	if out, err := exec.CommandContext(ctx, "ip", "-n", ns.Name, "route", "add", "default", "via", testbed.ServerIP.String()).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("capture: default route: %w: %s", err, out)
	}
	ca, err := testbed.NewTestCA(testbed.ServerIP.String())
	if err != nil {
		return nil, err
	}
	// Two servers: Chromium pools connections per origin, and two
	// connections show whether it permutes its TLS extensions.
	var recs []*testbed.TLSRecorder
	for _, port := range []string{"8443", "8444"} {
		rec, err := testbed.StartTLSRecorder(nw.Server, net.JoinHostPort(testbed.ServerIP.String(), port), ca.Server,
			http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }))
		if err != nil {
			return nil, err
		}
		defer rec.Close()
		recs = append(recs, rec)
	}

	// WebRTC traffic between two peers of one host crosses lo.
	capt, err := testbed.StartCapture(ns, 0)
	if err != nil {
		return nil, err
	}
	defer capt.Stop()
	br, err := testbed.StartChromium(ctx, ns, opts.Dir,
		"--ignore-certificate-errors", "--disable-features=WebRtcHideLocalIpsWithMdns")
	if err != nil {
		return nil, err
	}
	defer br.Close()
	for i := 0; i < opts.Connections; i++ {
		certs, err := chromedp.Run(br.Ctx, chromedp.Evaluate[[]string](pairScript, chromedp.EvalAwaitPromise))
		if err != nil {
			return nil, fmt.Errorf("capture: peer connection %d: %w", i+1, err)
		}
		for _, c := range certs {
			der, err := base64.StdEncoding.DecodeString(c)
			if err != nil {
				return nil, fmt.Errorf("capture: certificate: %w", err)
			}
			res.Certificates = append(res.Certificates, der)
		}
	}
	// A page load from the first server, then a POST from that page to
	// the second, as a script's fetch would send a rendezvous poll.
	url := "https://" + recs[0].Addr() + "/"
	if err := chromedp.Do(br.Ctx, chromedp.Navigate(url)); err != nil {
		return nil, fmt.Errorf("capture: fetching %s: %w", url, err)
	}
	if err := recs[0].WaitConns(ctx, 1); err != nil {
		return nil, err
	}
	post := fmt.Sprintf(`fetch("https://%s/client", {method: "POST", body: "poll", mode: "no-cors"}).then(() => "ok", e => String(e))`, recs[1].Addr())
	if _, err := chromedp.Run(br.Ctx, chromedp.Evaluate[string](post, chromedp.EvalAwaitPromise)); err != nil {
		return nil, fmt.Errorf("capture: POST from the page: %w", err)
	}
	if err := recs[1].WaitConns(ctx, 1); err != nil {
		return nil, err
	}
	if err := capt.Stop(); err != nil {
		return nil, err
	}
	for _, rec := range recs {
		res.TLS = append(res.TLS, rec.Conns()...)
	}
	res.DTLS = DTLSFlows(capt.Packets())
	if len(res.DTLS) < opts.Connections {
		return nil, fmt.Errorf("capture: %d DTLS handshakes seen for %d connections", len(res.DTLS), opts.Connections)
	}
	return res, nil
}

// DTLSFlows keeps the UDP flows of a capture whose first DTLS handshake
// record (content type 22) is a ClientHello, oriented from the DTLS client,
// with only their DTLS datagrams (RFC 7983's first-byte range 20-63).
func DTLSFlows(packets []testbed.Packet) []DTLSFlow {
	var out []DTLSFlow
	for _, f := range testbed.UDPFlows(packets) {
		var client netip.AddrPort
		var flow DTLSFlow
		for i, d := range f.Datagrams {
			from := f.B
			if f.FromA[i] {
				from = f.A
			}
			if !client.IsValid() {
				// DTLS record: type 22, handshake type 1 at offset 13.
				if len(d) < 14 || d[0] != 22 || d[13] != 1 {
					continue
				}
				client = from
			}
			if len(d) == 0 || d[0] < 20 || d[0] > 63 { // RFC 7983: DTLS range
				continue
			}
			flow.Datagrams = append(flow.Datagrams, d)
			flow.ClientToServer = append(flow.ClientToServer, from == client)
		}
		if client.IsValid() {
			out = append(out, flow)
		}
	}
	return out
}
