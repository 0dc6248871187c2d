package handshake

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
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

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The values below were measured independently (DTLS-FINGERPRINT.md);
// the captures are Chromium 156.0.8078.114's, taken by
// snowfall-fingerprints -raw on 2026-12-03.
func TestChromiumDTLS(t *testing.T) {
	h, err := ParseDTLSHandshake(loadFlow(t, "chromium-dtls-1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ch := h.ClientHello
	if got, want := ch.JA4(OverDTLS), "dd3i140900_fa23b50283d1_01b4b87481e4"; got != want {
		t.Errorf("JA4 %s, want %s", got, want)
	}
	if got, want := h.ServerHello.JA4S(OverDTLS, ""), "dd30200_1301_234ea6891581"; got != want {
		t.Errorf("JA4S %s, want %s", got, want)
	}
	if h.HelloSize != 1413 || !slices.Equal(h.HelloDatagrams, []int{1200, 263}) || h.HelloFragments != 2 {
		t.Errorf("hello %d bytes in %d fragments, datagrams %v; want 1413, 2, [1200 263]", h.HelloSize, h.HelloFragments, h.HelloDatagrams)
	}
	if h.FirstRecordVersion != 0xfeff || ch.LegacyVersion != 0xfefd {
		t.Errorf("record version %#04x, legacy_version %#04x", h.FirstRecordVersion, ch.LegacyVersion)
	}
	if h.HelloVerifyRequest != nil || h.HelloRetryRequest != nil || len(h.ClientHellos) != 1 {
		t.Errorf("HelloVerifyRequest %v, HelloRetryRequest %v, %d ClientHellos", h.HelloVerifyRequest != nil, h.HelloRetryRequest != nil, len(h.ClientHellos))
	}
	if !slices.Equal(ch.SupportedVersions, []uint16{0xfefc, 0xfefd}) || !slices.Equal(ch.SRTPProfiles, []uint16{1, 8, 7}) ||
		!slices.Equal(ch.SupportedGroups, []uint16{0x11ec, 0x1d, 0x17, 0x18}) {
		t.Errorf("versions %04x, SRTP %04x, groups %04x", ch.SupportedVersions, ch.SRTPProfiles, ch.SupportedGroups)
	}
	if len(ch.KeyShares) != 2 || ch.KeyShares[0].Group != GroupX25519MLKEM768 || ch.KeyShares[1].Group != GroupX25519 {
		t.Fatalf("key shares %v", ch.KeyShares)
	}
	for _, ks := range ch.KeyShares {
		if err := ValidateClientShare(ks); err != nil {
			t.Errorf("group %#04x: %v", ks.Group, err)
		}
	}
	sh := h.ServerHello
	if sh.Version() != 0xfefc || sh.CipherSuite != 0x1301 || sh.KeyShare == nil || ValidateServerShare(*sh.KeyShare) != nil {
		t.Errorf("ServerHello version %#04x suite %#04x share %v", sh.Version(), sh.CipherSuite, sh.KeyShare)
	}
	// The server's first flight: the ServerHello datagram, then all the
	// encrypted messages in one record.
	if fl := h.Flights[1]; fl.FromClient || len(fl.HandshakeRecords) != 2 {
		t.Errorf("server flight %+v", fl)
	}
	// The client's flight: its encrypted handshake in one record, then
	// application data (epoch 3).
	if fl := h.Flights[2]; !fl.FromClient || len(fl.HandshakeRecords) != 1 || len(fl.Records) != 2 {
		t.Errorf("client flight %+v", fl)
	}
	if len(h.ServerCertificates)+len(h.ClientCertificates) != 0 {
		t.Error("DTLS 1.3 certificates seen in the clear")
	}

	// BoringSSL permutes the extensions per connection.
	h2, err := ParseDTLSHandshake(loadFlow(t, "chromium-dtls-2.txt"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := ch.ExtensionTypes(), h2.ClientHello.ExtensionTypes()
	if slices.Equal(a, b) {
		t.Errorf("same extension order twice: %04x", a)
	}
	if ch.JA3().Sorted().String() != h2.ClientHello.JA3().Sorted().String() || ch.JA4(OverDTLS) != h2.ClientHello.JA4(OverDTLS) {
		t.Error("two Chromium hellos differ beyond extension order")
	}
}

func TestPionDTLS12(t *testing.T) {
	// pion/dtls v3.1.15 client and server, as pion/webrtc v4 configures
	// them (SRTP, extended master secret).
	h, err := ParseDTLSHandshake(loadFlow(t, "pion-dtls12.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ch := h.ClientHello
	if got, want := ch.JA4(OverDTLS), "dd2i080600_df5057009e57_817bfcfa1160"; got != want {
		t.Errorf("JA4 %s, want %s", got, want)
	}
	if got, want := ch.JA3().String(), "65277,49195-49199-52393-52392-49162-49172-49196-49200,13-65281-10-11-14-23,29-23-24,0"; got != want {
		t.Errorf("JA3 %s, want %s", got, want)
	}
	if got, want := h.ServerHello.JA4S(OverDTLS, ""), "dd20400_c02b_98be8e0ea808"; got != want {
		t.Errorf("JA4S %s, want %s", got, want)
	}
	if h.HelloVerifyRequest == nil || len(h.HelloVerifyRequest.Cookie) != 20 || len(h.ClientHellos) != 2 {
		t.Errorf("want a HelloVerifyRequest with a 20-byte cookie and two ClientHellos, got %v, %d", h.HelloVerifyRequest, len(h.ClientHellos))
	}
	if h.FirstRecordVersion != 0xfefd {
		t.Errorf("record version %#04x", h.FirstRecordVersion)
	}
	if len(h.ServerCertificates) != 1 {
		t.Fatalf("%d server certificates in the clear", len(h.ServerCertificates))
	}
	s, err := ParseCertShape(h.ServerCertificates[0])
	if err != nil {
		t.Fatal(err)
	}
	if s.CNType != "PrintableString" || s.SerialBytes < 16 {
		t.Errorf("pion certificate %+v", s)
	}
}

func TestChromiumTLS(t *testing.T) {
	ch, err := ParseTLSClientHello(readFile(t, "chromium-tls.wire"))
	if err != nil {
		t.Fatal(err)
	}
	// Fetching https://IP/: no SNI, so "i"; GREASE not counted.
	if got, want := ch.JA4(OverTCP), "t13i1516h2_8daaf6152771_cb7bf5808d99"; got != want {
		t.Errorf("JA4 %s, want %s", got, want)
	}
	if !slices.Equal(ch.ALPN, []string{"h2", "http/1.1"}) || ch.RecordVersion != 0x0301 {
		t.Errorf("ALPN %q, record version %#04x", ch.ALPN, ch.RecordVersion)
	}
	var groups []uint16
	for _, ks := range ch.KeyShares {
		groups = append(groups, ks.Group)
		if IsGREASE(ks.Group) {
			continue
		}
		if err := ValidateClientShare(ks); err != nil {
			t.Errorf("group %#04x: %v", ks.Group, err)
		}
	}
	if len(groups) != 3 || !IsGREASE(groups[0]) || groups[1] != GroupX25519MLKEM768 || groups[2] != GroupX25519 {
		t.Errorf("key share groups %04x", groups)
	}
}

func TestChromiumH2Preface(t *testing.T) {
	p, err := ParseH2Preface(readFile(t, "chromium-h2.plain"))
	if err != nil {
		t.Fatal(err)
	}
	want := []H2Setting{{1, 65536}, {2, 0}, {4, 6291456}, {6, 262144}}
	if !slices.Equal(p.Settings, want) || p.WindowUpdate != 15663105 {
		t.Errorf("settings %v window %d", p.Settings, p.WindowUpdate)
	}
	if !slices.Equal(p.PseudoHeaders, []string{":method", ":authority", ":scheme", ":path"}) {
		t.Errorf("pseudo-headers %q", p.PseudoHeaders)
	}
	if p.Priority == nil || !p.Priority.Exclusive || p.Priority.Weight != 255 || p.Priority.StreamDep != 0 {
		t.Errorf("priority %+v", p.Priority)
	}
	if !slices.Equal(p.Frames, []string{"SETTINGS", "WINDOW_UPDATE"}) {
		t.Errorf("frames %q", p.Frames)
	}
}

func TestChromiumCertificate(t *testing.T) {
	s, err := ParseCertShape(readFile(t, "chromium-cert.der"))
	if err != nil {
		t.Fatal(err)
	}
	if s.CN != "WebRTC" || s.CNType != "UTF8String" || s.SerialBytes != 8 || s.Validity != 31*24*time.Hour ||
		s.KeyType != "ECDSA P-256" || s.DERSize < 270 || s.DERSize > 290 {
		t.Errorf("shape %+v", s)
	}
}

func TestFakeMLKEMShareRejected(t *testing.T) {
	h, err := ParseDTLSHandshake(loadFlow(t, "chromium-dtls-1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ks := h.ClientHello.KeyShares[0]
	fake := KeyShare{Group: ks.Group, Key: make([]byte, len(ks.Key))}
	// Random 12-bit coefficients exceed q = 3329 with high probability
	// somewhere in 768 of them; an all-0xff key certainly does.
	rand.Read(fake.Key)
	for i := 0; i < 1184; i++ {
		fake.Key[i] = 0xff
	}
	if ValidateClientShare(fake) == nil {
		t.Error("an invalid ML-KEM-768 key was accepted")
	}
	if ValidateClientShare(KeyShare{Group: ks.Group, Key: ks.Key[:100]}) == nil {
		t.Error("a short share was accepted")
	}
}

// Fragments arriving out of order, duplicated, and a retransmission, all
// give the message once.
func TestReassemblyOutOfOrder(t *testing.T) {
	flow := loadFlow(t, "chromium-dtls-1.txt")
	first, second := flow[0], flow[1]
	h, err := ParseDTLSHandshake([]Datagram{second, second, first, first})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.ClientHellos) != 1 || h.HelloSize != 1413 {
		t.Errorf("%d hellos of %d bytes", len(h.ClientHellos), h.HelloSize)
	}
}

func TestTruncatedInputs(t *testing.T) {
	d := loadFlow(t, "chromium-dtls-1.txt")[0].Data
	for _, n := range []int{1, 5, 12, 13, 20, 100, len(d) - 1} {
		if _, err := ParseDTLSHandshake([]Datagram{{FromClient: true, Data: d[:n]}}); err == nil {
			t.Errorf("%d bytes: no error", n)
		}
	}
	w := readFile(t, "chromium-tls.wire")
	for _, n := range []int{0, 4, 5, 100, 1000} {
		if _, err := ParseTLSClientHello(w[:n]); err == nil {
			t.Errorf("TLS %d bytes: no error", n)
		}
	}
	p := readFile(t, "chromium-h2.plain")
	for _, n := range []int{0, 10, 30, 60} {
		if _, err := ParseH2Preface(p[:n]); err == nil {
			t.Errorf("HTTP/2 %d bytes: no error", n)
		}
	}
}

func TestGREASE(t *testing.T) {
	for _, v := range []uint16{0x0a0a, 0x1a1a, 0xfafa} {
		if !IsGREASE(v) {
			t.Errorf("%#04x", v)
		}
	}
	for _, v := range []uint16{0x0a1a, 0x1301, 0x001d} {
		if IsGREASE(v) {
			t.Errorf("%#04x", v)
		}
	}
}
