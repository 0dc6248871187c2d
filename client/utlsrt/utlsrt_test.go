package utlsrt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	utls "github.com/refraction-networking/utls"
)

func TestParseClientHelloID(t *testing.T) {
	tests := []struct {
		name string
		want utls.ClientHelloID
		ok   bool
	}{
		{"hellochrome_auto", utls.HelloChrome_Auto, true},
		{"HelloChrome_Auto", utls.HelloChrome_Auto, true},
		{"HELLOFIREFOX_65", utls.HelloFirefox_65, true},
		{" helloios_12_1 ", utls.HelloIOS_12_1, true},
		{"hellorandomizednoalpn", utls.HelloRandomizedNoALPN, true},
		{"Chromium", HelloChromium, true},
		{"none", HelloNone, true},
		{"hellochrome_999", utls.ClientHelloID{}, false},
		{"", utls.ClientHelloID{}, false},
		{"hellogolang", utls.ClientHelloID{}, false},
	}
	for _, tt := range tests {
		got, err := ParseClientHelloID(tt.name)
		if tt.ok != (err == nil) {
			t.Errorf("%q: err = %v, want ok=%v", tt.name, err, tt.ok)
			continue
		}
		if !tt.ok {
			if !errors.Is(err, ErrUnknownID) {
				t.Errorf("%q: err = %v, want ErrUnknownID", tt.name, err)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("%q: got %v, want %v", tt.name, got, tt.want)
		}
	}
	if n := len(Names()); n != 17 {
		t.Errorf("Names() has %d entries, want the 15 of Snowflake 2.5.1, chromium and none", n)
	}
}

// testServer is a TLS server that records the SNI and protocol of each
// request.
type testServer struct {
	*httptest.Server
	mu     sync.Mutex
	snis   []string
	protos []string
	hosts  []string
}

func newTestServer(t *testing.T, h2 bool) *testServer {
	ts := &testServer{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.mu.Lock()
		ts.protos = append(ts.protos, r.Proto)
		ts.hosts = append(ts.hosts, r.Host)
		ts.mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		w.Write(append([]byte("echo:"), body...))
	}))
	srv.EnableHTTP2 = h2
	srv.TLS = &tls.Config{
		GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			ts.mu.Lock()
			ts.snis = append(ts.snis, hello.ServerName)
			ts.mu.Unlock()
			return nil, nil
		},
	}
	srv.StartTLS()
	ts.Server = srv
	t.Cleanup(srv.Close)
	return ts
}

func (ts *testServer) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ts.Certificate())
	return p
}

// dialTo sends every connection to addr, whatever host was asked for.
func dialTo(addr string) func(ctx context.Context, network, _ string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, addr)
	}
}

func TestRoundTripALPN(t *testing.T) {
	for _, tc := range []struct {
		name  string
		id    utls.ClientHelloID
		h2    bool
		proto string
	}{
		{"chrome-h2", utls.HelloChrome_Auto, true, "HTTP/2.0"},
		{"chrome-h1-server", utls.HelloChrome_Auto, false, "HTTP/1.1"},
		{"firefox-h2", utls.HelloFirefox_Auto, true, "HTTP/2.0"},
		{"noalpn", utls.HelloRandomizedNoALPN, true, "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestServer(t, tc.h2)
			rt := mustNew(t, Options{
				ID:                    tc.id,
				RootCAs:               ts.pool(),
				DialContext:           dialTo(ts.Listener.Addr().String()),
				ResponseHeaderTimeout: 10 * time.Second,
			})
			defer rt.CloseIdleConnections()
			c := &http.Client{Transport: rt}
			for i := 0; i < 3; i++ {
				resp, err := c.Post("https://example.com/x", "", strings.NewReader("hi"))
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != "echo:hi" {
					t.Fatalf("body %q", b)
				}
			}
			ts.mu.Lock()
			defer ts.mu.Unlock()
			for _, p := range ts.protos {
				if p != tc.proto {
					t.Errorf("request used %s, want %s", p, tc.proto)
				}
			}
			for _, s := range ts.snis {
				if s != "example.com" {
					t.Errorf("SNI %q, want example.com", s)
				}
			}
			// The connection dialled to learn the protocol is reused, so
			// three requests need no more than one handshake on h2.
			if tc.proto == "HTTP/2.0" && len(ts.snis) != 1 {
				t.Errorf("%d handshakes for 3 HTTP/2 requests, want 1", len(ts.snis))
			}
		})
	}
}

func TestRemoveSNI(t *testing.T) {
	ts := newTestServer(t, true)
	rt := mustNew(t, Options{
		ID:          utls.HelloChrome_Auto,
		RemoveSNI:   true,
		RootCAs:     ts.pool(),
		DialContext: dialTo(ts.Listener.Addr().String()),
	})
	defer rt.CloseIdleConnections()
	resp, err := (&http.Client{Transport: rt}).Get("https://example.com/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.snis) == 0 || ts.snis[0] != "" {
		t.Errorf("SNI %q, want none", ts.snis)
	}
}

func TestUntrustedCertificate(t *testing.T) {
	ts := newTestServer(t, true)
	rt := mustNew(t, Options{ID: utls.HelloChrome_Auto, DialContext: dialTo(ts.Listener.Addr().String())})
	_, err := (&http.Client{Transport: rt}).Get("https://example.com/")
	if err == nil {
		t.Fatal("request to a server with an unknown CA succeeded")
	}
}

func TestPlainHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "plain")
	}))
	defer srv.Close()
	rt := mustNew(t, Options{ID: utls.HelloChrome_Auto})
	resp, err := (&http.Client{Transport: rt}).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "plain" {
		t.Fatalf("body %q", b)
	}
}

func TestHeaderTimeoutH2(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-release
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	defer close(release)
	p := x509.NewCertPool()
	p.AddCert(srv.Certificate())
	rt := mustNew(t, Options{
		ID:                    utls.HelloChrome_Auto,
		RootCAs:               p,
		DialContext:           dialTo(srv.Listener.Addr().String()),
		ResponseHeaderTimeout: 200 * time.Millisecond,
	})
	done := make(chan error, 1)
	go func() {
		_, err := (&http.Client{Transport: rt}).Get("https://example.com/")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("request without response headers succeeded")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("response-header timeout did not fire")
	}
}

func mustNew(t *testing.T, opts Options) *RoundTripper {
	t.Helper()
	rt, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}
