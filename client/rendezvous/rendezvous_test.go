package rendezvous

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/common/amp"
)

func TestClientURL(t *testing.T) {
	// PROTOCOL.md §4.1: RFC 3986 resolution of the relative path "client".
	tests := []struct{ in, want string }{
		{"https://host/", "https://host/client"},
		{"https://host", "https://host/client"},
		{"https://host/a/b", "https://host/a/client"},
		{"https://host/a", "https://host/client"},
		{"https://host/a/", "https://host/a/client"},
		{"http://127.0.0.1:8080/", "http://127.0.0.1:8080/client"},
		{"https://host/?q=1", "https://host/client"},
	}
	for _, tt := range tests {
		u, err := ClientURL(tt.in)
		if err != nil {
			t.Errorf("%q: %v", tt.in, err)
			continue
		}
		if u.String() != tt.want {
			t.Errorf("%q: got %q, want %q", tt.in, u, tt.want)
		}
	}
	for _, bad := range []string{"", "host/", "ftp://host/", "https://", "https://u:p@host/", "://x", "%zz"} {
		if _, err := ClientURL(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

// broker is a TLS test server recording what reached it.
type broker struct {
	*httptest.Server
	mu      sync.Mutex
	sni     []string
	hosts   []string
	paths   []string
	methods []string
	ctypes  []string
	bodies  [][]byte
	handler http.HandlerFunc
}

func newBroker(t *testing.T, h http.HandlerFunc) *broker {
	b := &broker{handler: h}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.hosts = append(b.hosts, r.Host)
		b.paths = append(b.paths, r.URL.Path)
		b.methods = append(b.methods, r.Method)
		b.ctypes = append(b.ctypes, r.Header.Get("Content-Type"))
		b.bodies = append(b.bodies, body)
		b.mu.Unlock()
		b.handler(w, r)
	}))
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		b.mu.Lock()
		b.sni = append(b.sni, h.ServerName)
		b.mu.Unlock()
		return nil, nil
	}}
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	b.Server = srv
	return b
}

// transport trusts the test server and sends every connection to it.
func (b *broker) transport(t *testing.T, utlsName string, headerTimeout time.Duration) http.RoundTripper {
	pool := x509.NewCertPool()
	pool.AddCert(b.Certificate())
	addr := b.Listener.Addr().String()
	var d net.Dialer
	rt, err := NewTransport(TransportOptions{
		UTLSImitate: utlsName,
		RootCAs:     pool,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		ResponseHeaderTimeout: headerTimeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestHTTPExchange(t *testing.T) {
	for _, name := range []string{"", "hellochrome_auto", "hellofirefox_auto"} {
		t.Run("utls="+name, func(t *testing.T) {
			b := newBroker(t, func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"answer":"x"}`)
			})
			h, err := NewHTTP("https://example.com/sub/", nil, b.transport(t, name, 0))
			if err != nil {
				t.Fatal(err)
			}
			poll := []byte("1.0\n{\"offer\":\"o\"}")
			got, err := h.Exchange(context.Background(), poll)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != `{"answer":"x"}` {
				t.Fatalf("reply %q", got)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.methods[0] != "POST" || b.paths[0] != "/sub/client" || b.ctypes[0] != "" ||
				!bytes.Equal(b.bodies[0], poll) || b.hosts[0] != "example.com" {
				t.Errorf("request: %s %s ctype=%q host=%q body=%q", b.methods[0], b.paths[0], b.ctypes[0], b.hosts[0], b.bodies[0])
			}
		})
	}
}

// recordingRT answers every request itself, recording where it was sent.
type recordingRT struct {
	mu    sync.Mutex
	urls  []string // URL host: the front
	hosts []string // Host header: the broker
}

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.urls = append(r.urls, req.URL.Host)
	r.hosts = append(r.hosts, req.Host)
	r.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("ok")), Request: req}, nil
}

// TestHTTPFrontingChoice: each request picks its front uniformly at
// random. A choice made once, a fixed index or a biased draw all fail.
func TestHTTPFrontingChoice(t *testing.T) {
	fronts := []string{"a.example.com", " b.example.com:443 ", "", "c.example.com"}
	want := []string{"a.example.com", "b.example.com:443", "c.example.com"}
	for _, method := range []string{"http", "amp"} {
		rt := &recordingRT{}
		var m Method
		var err error
		if method == "http" {
			m, err = NewHTTP("https://broker.invalid/", fronts, rt)
		} else {
			m, err = NewAMP("https://broker.invalid/", "", fronts, rt)
		}
		if err != nil {
			t.Fatal(err)
		}
		const n = 300
		for range n {
			if _, err := m.Exchange(context.Background(), []byte("p")); err != nil && method == "http" {
				t.Fatal(err)
			}
		}
		counts := map[string]int{}
		for i, u := range rt.urls {
			counts[u]++
			if rt.hosts[i] != "broker.invalid" {
				t.Errorf("%s: Host %q, want the broker's host", method, rt.hosts[i])
			}
		}
		if len(rt.urls) != n || len(counts) != len(want) {
			t.Fatalf("%s: %d requests went to %v, want %d spread over %v", method, len(rt.urls), counts, n, want)
		}
		// Binomial(300, 1/3): mean 100, sd 8.2; outside [50, 150] is six
		// deviations away.
		for _, f := range want {
			if c := counts[f]; c < 50 || c > 150 {
				t.Errorf("%s: front %s chosen %d times of %d: %v", method, f, c, n, counts)
			}
		}
	}
}

// TestHTTPFronting: through real TLS, the connection and SNI go to the
// chosen front and the Host header names the broker.
func TestHTTPFronting(t *testing.T) {
	b := newBroker(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	// The test certificate is valid for *.example.com.
	fronts := []string{"a.example.com", "b.example.com:443", "c.example.com"}
	for _, utlsName := range []string{"", "hellochrome_auto"} {
		pool := x509.NewCertPool()
		pool.AddCert(b.Certificate())
		var mu sync.Mutex
		dialled := map[string]bool{}
		var d net.Dialer
		rt, err := NewTransport(TransportOptions{UTLSImitate: utlsName, RootCAs: pool,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				mu.Lock()
				dialled[addr] = true
				mu.Unlock()
				return d.DialContext(ctx, network, b.Listener.Addr().String())
			}})
		if err != nil {
			t.Fatal(err)
		}
		h, err := NewHTTP("https://broker.invalid/", fronts, rt)
		if err != nil {
			t.Fatal(err)
		}
		// 60 requests miss one of 3 fronts with probability 3*(2/3)^60.
		for range 60 {
			if _, err := h.Exchange(context.Background(), []byte("p")); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		for _, f := range []string{"a.example.com:443", "b.example.com:443", "c.example.com:443"} {
			if !dialled[f] {
				t.Errorf("utls=%q: never connected to front %s (connected to %v)", utlsName, f, dialled)
			}
		}
		mu.Unlock()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, s := range b.sni {
		if s != "a.example.com" && s != "b.example.com" && s != "c.example.com" {
			t.Errorf("SNI %q, want one of the fronts", s)
		}
	}
	for _, h := range b.hosts {
		if h != "broker.invalid" {
			t.Errorf("Host %q, want the broker's host", h)
		}
	}
	if len(b.hosts) != 120 {
		t.Errorf("%d requests, want 120", len(b.hosts))
	}
}

func TestHTTPBadReplies(t *testing.T) {
	big := strings.Repeat("x", MaxResponseSize+1)
	exact := strings.Repeat("y", MaxResponseSize)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
		body    string
	}{
		{"ok-at-limit", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, exact) }, nil, exact},
		{"too-large", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, big) }, ErrTooLarge, ""},
		{"status-500", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, ErrStatus, ""},
		{"status-404", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, ErrStatus, ""},
		{"redirect-307", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://elsewhere.invalid/client", http.StatusTemporaryRedirect)
		}, ErrRedirect, ""},
		{"redirect-301", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/other", http.StatusMovedPermanently)
		}, ErrRedirect, ""},
		{"location-200", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "https://elsewhere.invalid/")
			io.WriteString(w, "x")
		}, ErrRedirect, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBroker(t, tt.handler)
			h, err := NewHTTP("https://example.com/", nil, b.transport(t, "", 0))
			if err != nil {
				t.Fatal(err)
			}
			got, err := h.Exchange(context.Background(), []byte("p"))
			if tt.want == nil {
				if err != nil || string(got) != tt.body {
					t.Fatalf("got %d bytes, %v", len(got), err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			b.mu.Lock()
			n := len(b.paths)
			b.mu.Unlock()
			if n != 1 {
				t.Errorf("broker saw %d requests, want 1 (redirects must not be followed)", n)
			}
		})
	}
}

func TestHTTPSlowBroker(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
	}{
		{"no-headers", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}},
		{"trickling-body", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			for {
				io.WriteString(w, "x")
				w.(http.Flusher).Flush()
				select {
				case <-release:
					return
				case <-r.Context().Done():
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
		}},
	} {
		for _, utlsName := range []string{"", "hellochrome_auto"} {
			t.Run(tc.name+"/"+utlsName, func(t *testing.T) {
				b := newBroker(t, tc.handler)
				h, err := NewHTTP("https://example.com/", nil, b.transport(t, utlsName, 300*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				done := make(chan error, 1)
				go func() {
					_, err := h.Exchange(ctx, []byte("p"))
					done <- err
				}()
				select {
				case err := <-done:
					if err == nil {
						t.Fatal("slow broker gave no error")
					}
				case <-time.After(30 * time.Second):
					t.Fatal("exchange with a slow broker hung")
				}
			})
		}
	}
}

func TestNoEnvironmentProxy(t *testing.T) {
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "direct")
	}))
	defer srv.Close()
	h, err := NewHTTP(srv.URL+"/", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := h.Exchange(context.Background(), []byte("p"))
	if err != nil || string(got) != "direct" {
		t.Fatalf("got %q, %v (environment proxy used?)", got, err)
	}
}

// ampBroker serves /amp/client/ like the broker: it decodes the poll from
// the path and armors a reply that echoes it.
func ampHandler(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		const prefix = "/amp/client/"
		i := strings.Index(r.URL.Path, prefix)
		if i < 0 {
			http.NotFound(w, r)
			return
		}
		poll, err := amp.DecodePath(r.URL.Path[i+len(prefix):])
		if err != nil {
			poll = []byte("bad path")
		}
		w.Header().Set("Content-Type", "text/html")
		enc, err := amp.NewArmorEncoder(w)
		if err != nil {
			t.Error(err)
			return
		}
		enc.Write(append([]byte("reply to "), poll...))
		enc.Close()
	}
}

func TestAMPExchange(t *testing.T) {
	b := newBroker(t, ampHandler(t))
	for _, tc := range []struct {
		name, broker, cache string
		fronts              []string
		wantHost, wantPath  string
	}{
		{"no-cache", "https://example.com/", "", nil, "example.com", "/amp/client/0"},
		{"cache", "https://snowflake-broker.example.net/", "https://example.com/", nil,
			"snowflake--broker-example-net.example.com", "/c/s/snowflake-broker.example.net/amp/client/0"},
		{"cache-fronted", "https://snowflake-broker.example.net/", "https://cdn.invalid/", []string{"example.com"},
			"snowflake--broker-example-net.cdn.invalid", "/c/s/snowflake-broker.example.net/amp/client/0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.mu.Lock()
			b.hosts, b.paths, b.sni, b.methods = nil, nil, nil, nil
			b.mu.Unlock()
			a, err := NewAMP(tc.broker, tc.cache, tc.fronts, b.transport(t, "", 0))
			if err != nil {
				t.Fatal(err)
			}
			poll := []byte("1.0\n{\"offer\":\"" + strings.Repeat("o", 3000) + "\"}")
			got, err := a.Exchange(context.Background(), poll)
			if err != nil {
				t.Fatal(err)
			}
			if want := append([]byte("reply to "), poll...); !bytes.Equal(got, want) {
				t.Fatalf("reply %q", got)
			}
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.methods[0] != "GET" || b.hosts[0] != tc.wantHost || !strings.HasPrefix(b.paths[0], tc.wantPath) {
				t.Errorf("request %s host=%q path=%q", b.methods[0], b.hosts[0], b.paths[0])
			}
			if tc.fronts != nil && b.sni[0] != "example.com" {
				t.Errorf("SNI %q, want front", b.sni[0])
			}
		})
	}
}

func TestAMPBadReplies(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"silent-redirect", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "https://example.com/elsewhere")
			io.WriteString(w, "<html></html>")
		}, ErrRedirect},
		{"redirect", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "https://example.com/x", http.StatusFound)
		}, ErrRedirect},
		{"404", http.NotFound, ErrStatus},
		{"too-large", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "<html><body><pre>\n0"+strings.Repeat("A", MaxResponseSize)+"\n</pre></body></html>")
		}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBroker(t, tt.handler)
			a, err := NewAMP("https://example.com/", "", nil, b.transport(t, "", 0))
			if err != nil {
				t.Fatal(err)
			}
			_, err = a.Exchange(context.Background(), []byte("p"))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	for _, garbage := range []string{
		"not html at all",
		"<html><body><pre>\n1AAAA\n</pre></body></html>",
		"<html><body><pre>\n0!!!not base64\n</pre></body></html>",
		"<html><body><pre>\n0AAAA",
	} {
		b := newBroker(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, garbage) })
		a, _ := NewAMP("https://example.com/", "", nil, b.transport(t, "", 0))
		if got, err := a.Exchange(context.Background(), []byte("p")); err == nil && len(got) > 0 {
			t.Errorf("garbage %q decoded to %q", garbage, got)
		}
	}
}

func TestAMPRequestURL(t *testing.T) {
	a, err := NewAMP("https://snowflake-broker.torproject.net/", "https://cdn.ampproject.org/", nil, http.DefaultTransport)
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.RequestURL([]byte("poll"))
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "snowflake--broker-torproject-net.cdn.ampproject.org" ||
		!strings.HasPrefix(u.Path, "/c/s/snowflake-broker.torproject.net/amp/client/0") {
		t.Errorf("URL %s", u)
	}
	enc := u.Path[strings.LastIndex(u.Path, "/")+1:]
	if enc != "cG9sbA" { // base64url("poll"), unpadded
		t.Errorf("encoded poll %q", enc)
	}
	if _, err := url.Parse(u.String()); err != nil {
		t.Error(err)
	}
}

func FuzzDecodeArmor(f *testing.F) {
	f.Add([]byte("<html><body><pre>\n0eyJhbnN3ZXIiOiJ4In0=\n</pre></body></html>"))
	f.Add([]byte("<pre>0</pre>"))
	f.Add([]byte("<pre><pre>"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, html []byte) {
		out, err := DecodeArmor(html)
		if err == nil && len(out) > MaxResponseSize {
			t.Fatalf("decoded %d bytes", len(out))
		}
	})
}

func TestUntrustedBroker(t *testing.T) {
	b := newBroker(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "x") })
	addr := b.Listener.Addr().String()
	var d net.Dialer
	for _, name := range []string{"", "hellochrome_auto"} {
		rt, err := NewTransport(TransportOptions{UTLSImitate: name, DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		}})
		if err != nil {
			t.Fatal(err)
		}
		h, _ := NewHTTP("https://example.com/", nil, rt)
		_, err = h.Exchange(context.Background(), []byte("p"))
		var ua x509.UnknownAuthorityError
		if !errors.As(err, &ua) {
			t.Errorf("utls=%q: err = %v (%T), want x509.UnknownAuthorityError in the chain", name, err, err)
		}
	}
}
