package fingerprint

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/handshake"
)

// The embedded profile must agree with itself: its stored JA4 is the one of
// its stored hello, and it names where it came from.
func TestEmbeddedChromium(t *testing.T) {
	p, err := Chromium()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.Browser, "Chromium ") {
		t.Errorf("browser %q", p.Browser)
	}
	raw, err := p.TLSClientHello()
	if err != nil {
		t.Fatal(err)
	}
	ch, err := handshake.ParseTLSClientHello(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := ch.JA4(handshake.OverTCP); got != p.TLS.JA4 {
		t.Errorf("stored hello has JA4 %s, profile says %s", got, p.TLS.JA4)
	}
	if len(p.HTTP2.Settings) == 0 || len(p.HTTP2.PseudoHeaderOrder) != 4 || p.DTLSClient.JA4 == "" || p.DTLSServer.JA4S == "" {
		t.Errorf("incomplete profile: %+v %+v %+v", p.HTTP2, p.DTLSClient, p.DTLSServer)
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse(b)
	if err != nil || q.TLS.JA4 != p.TLS.JA4 || q.DTLSClient.Extensions[0] != p.DTLSClient.Extensions[0] {
		t.Errorf("round trip: %v", err)
	}
}

func TestHex16(t *testing.T) {
	var h Hex16
	if err := json.Unmarshal([]byte(`"11ec"`), &h); err != nil || h != 0x11ec || h.String() != "11ec" {
		t.Errorf("%v %v", h, err)
	}
	for _, bad := range []string{`"11e"`, `"zzzz"`, `4588`, `"011ec"`} {
		if err := json.Unmarshal([]byte(bad), &h); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if _, err := Parse([]byte(`{"browser":"x","tls":{"client_hello":"zz"}}`)); err == nil {
		t.Error("a profile with a bad hello was accepted")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(chromiumJSON)
	f.Fuzz(func(t *testing.T, b []byte) {
		Parse(b)
	})
}

// A certificate from CertificateTemplate has the shape of Chromium's.
func TestCertificateTemplate(t *testing.T) {
	p, err := Chromium()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		key, tpl, err := p.CertificateTemplate(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
		if err != nil {
			t.Fatal(err)
		}
		s, err := handshake.ParseCertShape(der)
		if err != nil {
			t.Fatal(err)
		}
		c := p.Certificate
		if s.CN != c.CN || s.CNType != c.CNType || int(s.Validity.Hours()) != c.ValidityHours || s.KeyType != c.KeyType ||
			s.SerialBytes > c.SerialBytes || s.SerialBytes < c.SerialBytes-2 || s.DERSize < c.DERSizeMin-4 || s.DERSize > c.DERSizeMax+4 {
			t.Fatalf("shape %+v, Chromium's %+v", s, c)
		}
	}
}
