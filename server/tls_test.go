package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// writeCert writes a self-signed certificate for names (and 127.0.0.1) and
// its key to dir, returning the file names and the certificate.
func writeCert(t *testing.T, dir string, names ...string) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = filepath.Join(dir, "cert.pem")
	keyFile = filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return certFile, keyFile, cert
}

func TestCertFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, cert := writeCert(t, dir, "bridge.example", "alt.example")
	cf, err := LoadCertFiles(certFile, keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cf.Hostnames(); !slices.Equal(got, []string{"bridge.example", "alt.example"}) {
		t.Errorf("Hostnames = %q", got)
	}
	cfg := cf.TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 || !slices.Equal(cfg.NextProtos, []string{"http/1.1"}) {
		t.Errorf("TLS config: min version %x, ALPN %q", cfg.MinVersion, cfg.NextProtos)
	}
	c, err := cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || !slices.Equal(c.Certificate[0], cert.Raw) {
		t.Fatalf("GetCertificate: %v", err)
	}

	// A renewal is picked up once the check interval has passed.
	_, _, cert2 := writeCert(t, dir, "renewed.example")
	later := time.Now().Add(time.Minute)
	os.Chtimes(certFile, later, later)
	os.Chtimes(keyFile, later, later)
	c, _ = cfg.GetCertificate(&tls.ClientHelloInfo{})
	if !slices.Equal(c.Certificate[0], cert.Raw) {
		t.Fatal("certificate reloaded before the check interval")
	}
	cf.mu.Lock()
	cf.lastCheck = time.Now().Add(-2 * certCheckInterval)
	cf.mu.Unlock()
	c, _ = cfg.GetCertificate(&tls.ClientHelloInfo{})
	if !slices.Equal(c.Certificate[0], cert2.Raw) {
		t.Fatal("renewed certificate not loaded")
	}

	// A broken file keeps the last good certificate.
	os.WriteFile(certFile, []byte("garbage"), 0o600)
	later = later.Add(time.Minute)
	os.Chtimes(certFile, later, later)
	cf.mu.Lock()
	cf.lastCheck = time.Now().Add(-2 * certCheckInterval)
	cf.mu.Unlock()
	c, err = cfg.GetCertificate(&tls.ClientHelloInfo{})
	if err != nil || !slices.Equal(c.Certificate[0], cert2.Raw) {
		t.Fatalf("after a bad reload: %v; want the last good certificate", err)
	}
}

func TestLoadCertFilesErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := writeCert(t, dir, "a.example")
	_, otherKey, _ := writeCert(t, t.TempDir(), "b.example")
	for _, tt := range []struct{ name, cert, key string }{
		{"missing cert", filepath.Join(dir, "none"), keyFile},
		{"missing key", certFile, filepath.Join(dir, "none")},
		{"mismatched key", certFile, otherKey},
		{"swapped", keyFile, certFile},
	} {
		if _, err := LoadCertFiles(tt.cert, tt.key, nil); err == nil {
			t.Errorf("%s: LoadCertFiles succeeded", tt.name)
		}
	}
}

func TestACMEConfig(t *testing.T) {
	if _, err := NewACME(nil, "", t.TempDir()); err == nil {
		t.Error("NewACME with no hostnames succeeded")
	}
	state := t.TempDir()
	a, err := NewACME([]string{"bridge.example"}, "op@example.org", state)
	if err != nil {
		t.Fatal(err)
	}
	cfg := a.TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 || !slices.Contains(cfg.NextProtos, acme.ALPNProto) || slices.Contains(cfg.NextProtos, "h2") {
		t.Errorf("ACME TLS config: min %x, ALPN %q", cfg.MinVersion, cfg.NextProtos)
	}
	if a.Manager.Email != "op@example.org" {
		t.Errorf("email = %q", a.Manager.Email)
	}
	// Names outside the list are refused without contacting any CA.
	if _, err := cfg.GetCertificate(&tls.ClientHelloInfo{ServerName: "other.example"}); err == nil {
		t.Error("certificate for a host not in the list")
	}
	if got, want := a.Manager.Cache, autocert.DirCache(filepath.Join(state, "snowflake-certificate-cache")); got != want {
		t.Errorf("cache = %v, want %v", got, want)
	}
}

func TestACMEChallengeAddr(t *testing.T) {
	for _, tt := range []struct {
		ip   net.IP
		want string
	}{
		{nil, ":80"},
		{net.IPv4zero, ":80"},
		{net.ParseIP("192.0.2.1"), "192.0.2.1:80"},
		{net.ParseIP("2001:db8::1"), "[2001:db8::1]:80"},
	} {
		if got := ACMEChallengeAddr(tt.ip); got != tt.want {
			t.Errorf("ACMEChallengeAddr(%v) = %q, want %q", tt.ip, got, tt.want)
		}
	}
}
