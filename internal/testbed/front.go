package testbed

// Helpers for the client's integration tests: a private CA, a TLS front
// that routes by Host header, name overrides for a namespace, traffic
// counters of a process's namespace, and a conn that records progress so
// stalls can be measured.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// TestCA is a throw-away certificate authority and one server certificate
// it issued.
type TestCA struct {
	// CertPEM is the CA certificate, for SSL_CERT_FILE.
	CertPEM []byte
	// Server is a certificate for the names given to NewTestCA.
	Server tls.Certificate
}

// NewTestCA creates a CA and a server certificate for names (DNS names,
// wildcards allowed, or IP literals).
func NewTestCA(names ...string) (*TestCA, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Snowfall test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	var dnsNames []string
	var ips []net.IP
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, n)
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     dnsNames,
		IPAddresses:  ips,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	return &TestCA{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Server:  tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
	}, nil
}

// FrontRequest is what a Front saw of one request.
type FrontRequest struct {
	SNI, Host, Method, Path string
	Status                  int
}

// Front is an HTTPS server standing in for a CDN: it records the TLS SNI
// and HTTP Host of every request and hands the request to the handler its
// route function picks for the Host (nil: 421 Misdirected Request).
type Front struct {
	Addr string
	srv  *http.Server
	ln   net.Listener

	mu       sync.Mutex
	sni      map[string]string // remote addr -> SNI of its handshake
	requests []FrontRequest
}

// StartFront listens on addr inside ns.
func StartFront(ns *Namespace, addr string, cert tls.Certificate, route func(host string) http.Handler) (*Front, error) {
	ln, err := ns.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	f := &Front{Addr: ln.Addr().String(), ln: ln, sni: map[string]string{}}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			f.mu.Lock()
			f.sni[h.Conn.RemoteAddr().String()] = h.ServerName
			f.mu.Unlock()
			return nil, nil
		},
	}
	f.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			sni := f.sni[r.RemoteAddr]
			f.mu.Unlock()
			h := route(r.Host)
			rec := &statusWriter{ResponseWriter: w, status: 200}
			if h == nil {
				http.Error(rec, "misdirected", http.StatusMisdirectedRequest)
			} else {
				h.ServeHTTP(rec, r)
			}
			f.mu.Lock()
			f.requests = append(f.requests, FrontRequest{SNI: sni, Host: r.Host, Method: r.Method, Path: r.URL.Path, Status: rec.status})
			f.mu.Unlock()
		}),
		TLSConfig:         cfg,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go f.srv.ServeTLS(ln, "", "")
	return f, nil
}

// Requests returns what the front has served.
func (f *Front) Requests() []FrontRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FrontRequest(nil), f.requests...)
}

// Close stops the front.
func (f *Front) Close() error { return f.srv.Close() }

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// SetHosts gives programs started in ns (through "ip netns exec") an
// /etc/hosts with these names, so tests can use host names without DNS.
func SetHosts(ns *Namespace, names map[string]netip.Addr) error {
	var b strings.Builder
	b.WriteString("127.0.0.1 localhost\n::1 localhost\n")
	for name, addr := range names {
		fmt.Fprintf(&b, "%s %s\n", addr, name)
	}
	return os.WriteFile(filepath.Join("/etc/netns", ns.Name, "hosts"), []byte(b.String()), 0o644)
}

// NetBytes returns the bytes received and sent on all non-loopback
// interfaces of the network namespace process pid lives in.
func NetBytes(pid int) (rx, tx uint64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) < 9 {
			continue
		}
		r, err1 := strconv.ParseUint(fields[0], 10, 64)
		t, err2 := strconv.ParseUint(fields[8], 10, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, err
		}
		rx += r
		tx += t
	}
	return rx, tx, sc.Err()
}

// ProgressConn records when reads return data, to measure stalls.
type ProgressConn struct {
	net.Conn
	mu    sync.Mutex
	marks []time.Time
	total int64
}

// Read implements net.Conn.
func (c *ProgressConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.mu.Lock()
		c.marks = append(c.marks, time.Now())
		c.total += int64(n)
		c.mu.Unlock()
	}
	return n, err
}

// Total returns the bytes read so far.
func (c *ProgressConn) Total() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// LongestGap returns the longest time without data between from and to,
// counting from from to the first read after it.
func (c *ProgressConn) LongestGap(from, to time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var longest time.Duration
	prev := from
	for _, m := range c.marks {
		if m.Before(from) {
			continue
		}
		if m.After(to) {
			break
		}
		if g := m.Sub(prev); g > longest {
			longest = g
		}
		prev = m
	}
	return longest
}
