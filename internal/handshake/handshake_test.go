package handshake

import (
	"bufio"
	"encoding/hex"
	"os"
	"strings"
	"testing"
)

// loadFlow reads a capture written by snowfall-fingerprints -raw: one
// datagram a line, "C" (from the DTLS client) or "S" and the hex bytes.
func loadFlow(t testing.TB, name string) []Datagram {
	t.Helper()
	f, err := os.Open("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Datagram
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dir, h, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			t.Fatalf("%s: bad line", name)
		}
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, Datagram{FromClient: dir == "C", Data: b})
	}
	return out
}

func TestChromiumDTLS(t *testing.T) {
	h, err := ParseDTLSHandshake(loadFlow(t, "chromium-dtls-1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ch := h.ClientHello
	t.Logf("JA4 %s JA3 %s hello %d in %v ext %04x", ch.JA4(OverDTLS), ch.JA3(), h.HelloSize, h.HelloDatagrams, ch.ExtensionTypes())
	t.Logf("JA4S %s records %v", h.ServerHello.JA4S(OverDTLS, ""), h.Flights)
}

func TestPionDTLS12(t *testing.T) {
	h, err := ParseDTLSHandshake(loadFlow(t, "pion-dtls12.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ch := h.ClientHello
	t.Logf("JA4 %s JA3 %s hello %d in %v ext %04x hellos %d hvr %v", ch.JA4(OverDTLS), ch.JA3(), h.HelloSize, h.HelloDatagrams, ch.ExtensionTypes(), len(h.ClientHellos), h.HelloVerifyRequest != nil)
	t.Logf("JA4S %s records %v certs %d %d", h.ServerHello.JA4S(OverDTLS, ""), h.Flights, len(h.ClientCertificates), len(h.ServerCertificates))
	s, err := ParseCertShape(h.ServerCertificates[0])
	t.Logf("%+v %v", s, err)
}

func TestChromiumTLS(t *testing.T) {
	b, _ := os.ReadFile("testdata/chromium-tls.wire")
	ch, err := ParseTLSClientHello(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("JA4 %s rec %04x n %d size %d alpn %q groups %04x ks %d ext %04x", ch.JA4(OverTCP), ch.RecordVersion, ch.Records, ch.Size, ch.ALPN, ch.SupportedGroups, len(ch.KeyShares), ch.ExtensionTypes())
	p, _ := os.ReadFile("testdata/chromium-h2.plain")
	pr, err := ParseH2Preface(p)
	t.Logf("%+v %+v %v", pr, pr.Priority, err)
	c, _ := os.ReadFile("testdata/chromium-cert.der")
	s, err := ParseCertShape(c)
	t.Logf("%+v %v", s, err)
}
