package utlsrt

import (
	"context"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/fingerprint"
	"github.com/snowfall-pt/snowfall/internal/handshake"
	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// normalized writes GREASE values as 0a0a, as the profile does.
func normalized(vs []uint16) []uint16 {
	out := make([]uint16, len(vs))
	for i, v := range vs {
		if handshake.IsGREASE(v) {
			v = 0x0a0a
		}
		out[i] = v
	}
	return out
}

// chromiumHellos makes n requests to a recording HTTPS server named host
// (dialled at 127.0.0.1) and returns the ClientHellos it received.
func chromiumHellos(t *testing.T, host string, n int) ([]*handshake.TLSClientHello, []*handshake.H2Preface) {
	t.Helper()
	ca, err := testbed.NewTestCA(host)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := testbed.StartTLSRecorder(nil, "127.0.0.1:0", ca.Server, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	_, port, _ := net.SplitHostPort(rec.Addr())
	for i := 0; i < n; i++ {
		// A fresh RoundTripper per request: a new connection each time.
		rt := mustNew(t, Options{ID: HelloChromium, RootCAs: pool, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, rec.Addr())
		}})
		req, _ := http.NewRequest(http.MethodGet, "https://"+net.JoinHostPort(host, port)+"/", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" || resp.ProtoMajor != 2 {
			t.Fatalf("request %d: %s %q", i+1, resp.Proto, b)
		}
		rt.CloseIdleConnections()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rec.WaitConns(ctx, n); err != nil {
		t.Fatal(err)
	}
	var out []*handshake.TLSClientHello
	var prefaces []*handshake.H2Preface
	for _, c := range rec.Conns() {
		ch, err := handshake.ParseTLSClientHello(c.Wire)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ch)
		pr, err := handshake.ParseH2Preface(c.Plain)
		if err != nil {
			t.Fatal(err)
		}
		prefaces = append(prefaces, pr)
	}
	return out, prefaces
}

func TestChromiumHelloMatchesProfile(t *testing.T) {
	p, err := fingerprint.Chromium()
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"127.0.0.1", "broker.example"} {
		hellos, prefaces := chromiumHellos(t, host, 3)
		checkPreface(t, p, prefaces[0])
		wantJA4 := p.TLS.JA4
		wantExts := fingerprint.Uint16s(p.TLS.Extensions)
		if host != "127.0.0.1" {
			// Chromium adds server_name for a host name: "d" and one
			// more extension; the hashes leave SNI out.
			a, rest, _ := strings.Cut(wantJA4, "_")
			n := int(a[6]-'0')*10 + int(a[7]-'0') + 1
			wantJA4 = a[:3] + "d" + a[4:6] + string(rune('0'+n/10)) + string(rune('0'+n%10)) + a[8:] + "_" + rest
			wantExts = append(wantExts, handshake.ExtServerName)
			slices.Sort(wantExts)
		}
		raw, err := p.TLSClientHello()
		if err != nil {
			t.Fatal(err)
		}
		chromium, err := handshake.ParseTLSClientHello(raw)
		if err != nil {
			t.Fatal(err)
		}
		var orders [][]uint16
		for i, ch := range hellos {
			t.Logf("%s #%d: %s, %d bytes", host, i+1, ch.JA4(handshake.OverTCP), ch.Size)
			if got := ch.JA4(handshake.OverTCP); got != wantJA4 {
				t.Errorf("%s #%d: JA4 %s, want %s (%s)", host, i+1, got, wantJA4, p.Browser)
			}
			// Equal sizes but for the GREASE ECH payload, drawn per
			// connection from the profile's set.
			n, ext, ok := ch.ECHPayloadLen()
			_, cext, cok := chromium.ECHPayloadLen()
			if !ok || !cok || !slices.Contains(p.TLS.ECHGreasePayloads, n-16) {
				t.Errorf("%s #%d: GREASE ECH payload %d (%v), want one of %v+16", host, i+1, n, ok, p.TLS.ECHGreasePayloads)
			}
			if host == "127.0.0.1" && ch.Size-ext != chromium.Size-cext {
				t.Errorf("%s #%d: hello of %d bytes without ECH, Chromium's %d", host, i+1, ch.Size-ext, chromium.Size-cext)
			}
			exts := normalized(ch.ExtensionTypes())
			orders = append(orders, exts)
			set := slices.Clone(exts)
			slices.Sort(set)
			if !slices.Equal(set, wantExts) {
				t.Errorf("%s #%d: extensions %04x, want %04x", host, i+1, set, wantExts)
			}
			if !slices.Equal(normalized(ch.CipherSuites), fingerprint.Uint16s(p.TLS.CipherSuites)) ||
				!slices.Equal(normalized(ch.SupportedGroups), fingerprint.Uint16s(p.TLS.SupportedGroups)) ||
				!slices.Equal(normalized(ch.SignatureAlgorithms), fingerprint.Uint16s(p.TLS.SignatureAlgorithms)) ||
				!slices.Equal(ch.ALPN, p.TLS.ALPN) || uint16(p.TLS.RecordVersion) != ch.RecordVersion {
				t.Errorf("%s #%d: suites %04x groups %04x sigalgs %04x ALPN %q record %04x", host, i+1,
					ch.CipherSuites, ch.SupportedGroups, ch.SignatureAlgorithms, ch.ALPN, ch.RecordVersion)
			}
			var groups []uint16
			for _, ks := range ch.KeyShares {
				groups = append(groups, ks.Group)
				if !handshake.IsGREASE(ks.Group) {
					if err := handshake.ValidateClientShare(ks); err != nil {
						t.Errorf("%s #%d: %v", host, i+1, err)
					}
				}
			}
			if !slices.Equal(normalized(groups), fingerprint.Uint16s(p.TLS.KeyShareGroups)) {
				t.Errorf("%s #%d: key shares %04x, want %04x", host, i+1, groups, p.TLS.KeyShareGroups)
			}
		}
		if p.TLS.PermutesExtensions && slices.Equal(orders[0], orders[1]) && slices.Equal(orders[1], orders[2]) {
			t.Errorf("%s: three connections with one extension order %04x", host, orders[0])
		}
	}
}

// checkPreface compares an HTTP/2 preface with the profile's.
func checkPreface(t *testing.T, p *fingerprint.Profile, pr *handshake.H2Preface) {
	t.Helper()
	var want []handshake.H2Setting
	for _, s := range p.HTTP2.Settings {
		want = append(want, handshake.H2Setting{ID: s.ID, Val: s.Val})
	}
	if !slices.Equal(pr.Settings, want) {
		t.Errorf("HTTP/2 SETTINGS %v, want %v", pr.Settings, want)
	}
	if pr.WindowUpdate != p.HTTP2.WindowUpdate || !slices.Equal(pr.Frames, []string{"SETTINGS", "WINDOW_UPDATE"}) {
		t.Errorf("HTTP/2 frames %q, window update %d; want SETTINGS, WINDOW_UPDATE %d", pr.Frames, pr.WindowUpdate, p.HTTP2.WindowUpdate)
	}
	if !slices.Equal(pr.PseudoHeaders, p.HTTP2.PseudoHeaderOrder) {
		t.Errorf("pseudo-headers %q, want %q", pr.PseudoHeaders, p.HTTP2.PseudoHeaderOrder)
	}
	if ua := pr.HeaderValues["user-agent"]; ua != p.HTTP2.UserAgent {
		t.Errorf("User-Agent %q, want %q", ua, p.HTTP2.UserAgent)
	}
	if !inOrder(pr.Headers, p.HTTP2.POSTHeaderOrder) {
		t.Errorf("headers %q, not in Chromium's order %q", pr.Headers, p.HTTP2.POSTHeaderOrder)
	}
	if pr.Priority == nil || pr.Priority.Exclusive != p.HTTP2.PriorityExclusive || pr.Priority.StreamDep != p.HTTP2.PriorityStreamDep ||
		pr.Priority.Weight != p.HTTP2.PriorityWeight {
		t.Errorf("HEADERS priority %+v, want exclusive=%v dep=%d weight=%d", pr.Priority, p.HTTP2.PriorityExclusive,
			p.HTTP2.PriorityStreamDep, p.HTTP2.PriorityWeight)
	}
}

// inOrder reports whether the names in got that order lists appear in
// order's order, and got names nothing outside it.
func inOrder(got, order []string) bool {
	last := -1
	for _, n := range got {
		i := slices.Index(order, n)
		if i < last || i < 0 {
			return false
		}
		last = i
	}
	return true
}
