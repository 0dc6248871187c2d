//go:build integration

package interop

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/client/rendezvous"
	"github.com/snowfall-pt/snowfall/internal/fingerprint"
	"github.com/snowfall-pt/snowfall/internal/fingerprint/capture"
	"github.com/snowfall-pt/snowfall/internal/handshake"
	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// liveChromium captures the installed Chromium's handshakes in this run and
// returns them as a profile, with the raw capture.
func liveChromium(ctx context.Context, t *testing.T) (*fingerprint.Profile, *capture.Result) {
	t.Helper()
	res, err := capture.Chromium(ctx, capture.Options{Dir: artifacts(t), Connections: 3})
	if err != nil {
		t.Fatalf("capturing Chromium: %v", err)
	}
	p, err := res.Profile(time.Now())
	if err != nil {
		t.Fatalf("Chromium's capture: %v", err)
	}
	t.Logf("live: %s; TLS JA4 %s, DTLS JA4 %s, JA4S %s", p.Browser, p.TLS.JA4, p.DTLSClient.JA4, p.DTLSServer.JA4S)
	return p, res
}

// storedChromium returns the profile in the repository, failing the test
// when the live browser no longer matches it in the fields compared (the
// capture's date, the hello's random bytes and key shares aside).
func storedChromium(t *testing.T, live *fingerprint.Profile) *fingerprint.Profile {
	t.Helper()
	stored, err := fingerprint.Chromium()
	if err != nil {
		t.Fatal(err)
	}
	if live.Browser != stored.Browser {
		t.Logf("chromium.json is from %q, the installed browser is %q", stored.Browser, live.Browser)
	}
	a, b := *live, *stored
	a.TLS.ClientHello, b.TLS.ClientHello = "", ""
	if fmt.Sprint(a.TLS, a.HTTP2) != fmt.Sprint(b.TLS, b.HTTP2) {
		t.Errorf("the installed Chromium's TLS or HTTP/2 fingerprint changed: run `make fingerprints` and commit internal/fingerprint/chromium.json\nlive   %+v %+v\nstored %+v %+v",
			a.TLS, a.HTTP2, b.TLS, b.HTTP2)
	}
	return stored
}

// helloSizeSansECH is a hello's length less its ECH extension.
func helloSizeSansECH(t *testing.T, ch *handshake.ClientHello, size int) int {
	_, ext, ok := ch.ECHPayloadLen()
	if !ok {
		t.Errorf("a ClientHello without a readable ECH extension")
	}
	return size - ext
}

func normalizedGREASE(vs []uint16) []uint16 {
	out := make([]uint16, len(vs))
	for i, v := range vs {
		if handshake.IsGREASE(v) {
			v = 0x0a0a
		}
		out[i] = v
	}
	return out
}

// TestFingerprintRendezvousTLS captures, in one run, Chromium fetching from
// a local HTTPS server and our client's rendezvous request to the same kind
// of server, and checks that an observer (or the CDN terminating TLS) sees
// the same ClientHello and HTTP/2 preface from both.
func TestFingerprintRendezvousTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	live, _ := liveChromium(ctx, t)
	storedChromium(t, live)

	nw, err := testbed.NewNetwork(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nw.Close() })
	cli, err := nw.AddHost(ctx, "cli", testbed.ClientIP)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := testbed.NewTestCA(testbed.ServerIP.String())
	if err != nil {
		t.Fatal(err)
	}
	rec, err := testbed.StartTLSRecorder(nw.Server, net.JoinHostPort(testbed.ServerIP.String(), "8443"), ca.Server,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			w.Write([]byte("answer"))
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)

	// The client's own code path: rendezvous.NewTransport with no
	// utls-imitate, as snowfall-client builds it, dialling from the
	// client's namespace. Three transports, three connections.
	const n = 3
	for i := 0; i < n; i++ {
		rt, err := rendezvous.NewTransport(rendezvous.TransportOptions{DialContext: cli.Dial, RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		m, err := rendezvous.NewHTTP("https://"+rec.Addr()+"/", nil, rt)
		if err != nil {
			t.Fatal(err)
		}
		got, err := m.Exchange(ctx, []byte(`{"offer":"x"}`))
		if err != nil || string(got) != "answer" {
			t.Fatalf("rendezvous %d: %q, %v", i+1, got, err)
		}
	}
	if err := rec.WaitConns(ctx, n); err != nil {
		t.Fatal(err)
	}

	want := live.TLS
	raw, err := live.TLSClientHello()
	if err != nil {
		t.Fatal(err)
	}
	chromiumHello, err := handshake.ParseTLSClientHello(raw)
	if err != nil {
		t.Fatal(err)
	}
	var orders [][]uint16
	for i, c := range rec.Conns() {
		who := fmt.Sprintf("our rendezvous #%d", i+1)
		ch, err := handshake.ParseTLSClientHello(c.Wire)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		t.Logf("%s: JA4 %s, %d bytes, ALPN %s", who, ch.JA4(handshake.OverTCP), ch.Size, c.ALPN)
		// Sizes agree but for the GREASE ECH payload, whose length both
		// draw from one set per connection.
		if got, wantSize := helloSizeSansECH(t, ch.ClientHello, ch.Size), helloSizeSansECH(t, chromiumHello.ClientHello, chromiumHello.Size); got != wantSize {
			t.Errorf("%s: hello of %d bytes without ECH, Chromium's %d", who, got, wantSize)
		}
		if n, _, ok := ch.ECHPayloadLen(); ok && !slices.Contains(want.ECHGreasePayloads, n-16) {
			t.Errorf("%s: GREASE ECH payload of %d bytes, Chromium draws from %v+16", who, n, want.ECHGreasePayloads)
		}
		if got := ch.JA4(handshake.OverTCP); got != want.JA4 {
			t.Errorf("%s: JA4 %s, Chromium %s", who, got, want.JA4)
		}
		exts := normalizedGREASE(ch.ExtensionTypes())
		orders = append(orders, exts)
		set := slices.Clone(exts)
		slices.Sort(set)
		if !slices.Equal(set, fingerprint.Uint16s(want.Extensions)) {
			t.Errorf("%s: extensions %04x, Chromium %04x", who, set, want.Extensions)
		}
		for _, l := range []struct {
			what      string
			got, want []uint16
		}{
			{"cipher suites", ch.CipherSuites, fingerprint.Uint16s(want.CipherSuites)},
			{"groups", ch.SupportedGroups, fingerprint.Uint16s(want.SupportedGroups)},
			{"signature algorithms", ch.SignatureAlgorithms, fingerprint.Uint16s(want.SignatureAlgorithms)},
			{"versions", ch.SupportedVersions, fingerprint.Uint16s(want.SupportedVersions)},
		} {
			if !slices.Equal(normalizedGREASE(l.got), l.want) {
				t.Errorf("%s: %s %04x, Chromium %04x", who, l.what, l.got, l.want)
			}
		}
		var groups []uint16
		for _, ks := range ch.KeyShares {
			groups = append(groups, ks.Group)
			if handshake.IsGREASE(ks.Group) {
				continue
			}
			if err := handshake.ValidateClientShare(ks); err != nil {
				t.Errorf("%s: key share: %v", who, err)
			}
		}
		if !slices.Equal(normalizedGREASE(groups), fingerprint.Uint16s(want.KeyShareGroups)) {
			t.Errorf("%s: key shares %04x, Chromium %04x", who, groups, want.KeyShareGroups)
		}
		if !slices.Equal(ch.ALPN, want.ALPN) || c.ALPN != "h2" {
			t.Errorf("%s: ALPN %q (negotiated %q), Chromium %q", who, ch.ALPN, c.ALPN, want.ALPN)
		}
		if ch.RecordVersion != uint16(want.RecordVersion) {
			t.Errorf("%s: record version %04x, Chromium %04x", who, ch.RecordVersion, want.RecordVersion)
		}
		pr, err := handshake.ParseH2Preface(c.Plain)
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		h := live.HTTP2
		var settings []fingerprint.HTTP2Setting
		for _, s := range pr.Settings {
			settings = append(settings, fingerprint.HTTP2Setting{ID: s.ID, Val: s.Val})
		}
		if !slices.Equal(settings, h.Settings) || pr.WindowUpdate != h.WindowUpdate ||
			!slices.Equal(pr.Frames, []string{"SETTINGS", "WINDOW_UPDATE"}) {
			t.Errorf("%s: HTTP/2 %q settings %v window %d; Chromium settings %v window %d", who, pr.Frames, settings, pr.WindowUpdate, h.Settings, h.WindowUpdate)
		}
		if !slices.Equal(pr.PseudoHeaders, h.PseudoHeaderOrder) {
			t.Errorf("%s: pseudo-headers %q, Chromium %q", who, pr.PseudoHeaders, h.PseudoHeaderOrder)
		}
		t.Logf("%s: HTTP/2 headers %q", who, pr.Headers)
		if ua := pr.HeaderValues["user-agent"]; ua != h.UserAgent {
			t.Errorf("%s: User-Agent %q, Chromium %q", who, ua, h.UserAgent)
		}
		// Our poll carries fewer headers than a page's fetch; those it has
		// come in Chromium's order.
		last := -1
		for _, name := range pr.Headers {
			i := slices.Index(h.POSTHeaderOrder, name)
			if i < 0 || i < last {
				t.Errorf("%s: headers %q, not in Chromium's POST order %q", who, pr.Headers, h.POSTHeaderOrder)
				break
			}
			last = i
		}
		if pr.Priority == nil || pr.Priority.Exclusive != h.PriorityExclusive || pr.Priority.StreamDep != h.PriorityStreamDep || pr.Priority.Weight != h.PriorityWeight {
			t.Errorf("%s: HEADERS priority %+v, Chromium exclusive=%v dep=%d weight=%d", who, pr.Priority, h.PriorityExclusive, h.PriorityStreamDep, h.PriorityWeight)
		}
	}
	if want.PermutesExtensions && slices.Equal(orders[0], orders[1]) && slices.Equal(orders[1], orders[2]) {
		t.Errorf("Chromium permutes its extensions, ours kept one order in %d connections: %04x", n, orders[0])
	}
}
