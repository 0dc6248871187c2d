package handshake

import (
	"testing"
)

func FuzzDTLSHandshake(f *testing.F) {
	for _, name := range []string{"chromium-dtls-1.txt", "pion-dtls12.txt"} {
		for _, d := range loadFlow(f, name) {
			f.Add(d.Data, d.FromClient)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, fromClient bool) {
		// Split the input in two datagrams so reassembly is exercised.
		half := len(b) / 2
		h, _ := ParseDTLSHandshake([]Datagram{{fromClient, b[:half]}, {fromClient, b[half:]}})
		if h != nil && h.ClientHello != nil {
			h.ClientHello.JA4(OverDTLS)
			h.ClientHello.JA3().Hash()
			for _, ks := range h.ClientHello.KeyShares {
				ValidateClientShare(ks)
			}
		}
		if h != nil && h.ServerHello != nil {
			h.ServerHello.JA4S(OverDTLS, "h2")
			h.ServerHello.JA3S()
			h.ServerHello.DowngradeMarker()
		}
	})
}

func FuzzTLSClientHello(f *testing.F) {
	f.Add(readFile(f, "chromium-tls.wire"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ch, err := ParseTLSClientHello(b); err == nil {
			ch.JA4(OverTCP)
			ch.JA3()
		}
	})
}

func FuzzServerHello(f *testing.F) {
	// Message bodies: the hellos of both captures.
	for _, name := range []string{"chromium-dtls-1.txt", "pion-dtls12.txt"} {
		var a Reassembler
		for _, d := range loadFlow(f, name) {
			recs, _ := ParseDTLSRecords(d.Data)
			for _, r := range recs {
				a.Add(r)
			}
		}
		for _, m := range a.Messages() {
			f.Add(m.Body)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if sh, err := ParseServerHello(b); err == nil {
			sh.JA4S(OverTCP, "")
			if sh.KeyShare != nil {
				ValidateServerShare(*sh.KeyShare)
			}
			sh.DowngradeMarker()
		}
		ParseHelloVerifyRequest(b)
		Certificates(b)
		ParseClientHello(b, true)
		ParseClientHello(b, false)
	})
}

func FuzzH2Preface(f *testing.F) {
	f.Add(readFile(f, "chromium-h2.plain"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseH2Preface(b)
	})
}

func FuzzCertShape(f *testing.F) {
	f.Add(readFile(f, "chromium-cert.der"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseCertShape(b)
	})
}
