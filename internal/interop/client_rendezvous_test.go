//go:build integration

package interop

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/internal/testbed"
)

// Names of the rendezvous tests; they resolve only inside the client's
// namespace (through its /etc/hosts), and only the front's does at all.
const (
	frontName    = "front.snowfall.test"
	brokerName   = "broker.snowfall.test"
	ampCacheName = "amp.snowfall.test"
	// ampCacheHost is brokerName's AMP cache subdomain under ampCacheName.
	ampCacheHost = "broker-snowfall-test." + ampCacheName
)

// TestSnowfallClientDomainFronting: the client reaches the broker only
// through a TLS front (a stand-in CDN routing on the Host header, with a
// certificate from a test CA the client trusts through SSL_CERT_FILE). The
// front must see its own name in SNI and the broker's in Host. The session
// then carries 10 MB, checked.
func TestSnowfallClientDomainFronting(t *testing.T) {
	testRendezvous(t, false)
}

// TestSnowfallClientAMPCache: the same, through a local stand-in for the
// AMP cache that serves the cache's URL form
// (https://<broker-host-with-dashes>.<cache>/c/s/<broker-host>/amp/client/…),
// itself reached through the front.
func TestSnowfallClientAMPCache(t *testing.T) {
	testRendezvous(t, true)
}

func testRendezvous(t *testing.T, useAMP bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := artifacts(t)
	c := startChain(ctx, t, Config{Dir: dir, Proxy: Debian, NoClient: true})

	ca, err := testbed.NewTestCA(frontName, "*."+ampCacheName)
	if err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(dir, "test-ca.pem")
	if err := os.WriteFile(caPath, ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	// The front forwards to the broker inside the server namespace.
	brokerHTTP := &http.Client{Transport: &http.Transport{Proxy: nil, DialContext: c.Net.Server.Dial}}
	forward := func(path string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			req, err := http.NewRequestWithContext(r.Context(), r.Method, strings.TrimSuffix(c.BrokerURL, "/")+path, r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			resp, err := brokerHTTP.Do(req)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			defer resp.Body.Close()
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
		})
	}
	var mu sync.Mutex
	var ampTypes []string
	route := func(host string) http.Handler {
		switch host {
		case brokerName:
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { forward(r.URL.Path).ServeHTTP(w, r) })
		case ampCacheHost:
			// The AMP cache fetches the publisher page named in its path.
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				pub, ok := strings.CutPrefix(r.URL.Path, "/c/s/"+brokerName+"/")
				if !ok {
					http.NotFound(w, r)
					return
				}
				forward("/"+pub).ServeHTTP(w, r)
				mu.Lock()
				ampTypes = append(ampTypes, w.Header().Get("Content-Type"))
				mu.Unlock()
			})
		}
		return nil
	}
	front, err := testbed.StartFront(c.Net.Server, netip.AddrPortFrom(testbed.ServerIP, 443).String(), ca.Server, route)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { front.Close() })
	if err := testbed.SetHosts(c.Cli, map[string]netip.Addr{frontName: testbed.ServerIP}); err != nil {
		t.Fatal(err)
	}

	path, err := bins.Path(ctx, "snowfall-client")
	if err != nil {
		t.Fatal(err)
	}
	clientLog := filepath.Join(dir, "client.log")
	sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
	defer scancel()
	pt, err := testbed.StartPTClient(sctx, testbed.PTClientConfig{
		Name: "client", Path: path, NS: c.Cli, LogDir: dir, Transport: "snowflake",
		Args:     []string{"-log", clientLog, "-unsafe-logging"},
		ExtraEnv: []string{"SSL_CERT_FILE=" + caPath},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pt.Stop(5 * time.Second) })

	args := []testbed.Arg{
		{Key: "url", Value: "https://" + brokerName + "/"},
		{Key: "front", Value: frontName},
		{Key: "ice", Value: c.STUN.URL()},
		{Key: "fingerprint", Value: c.Fingerprint},
	}
	if useAMP {
		args = append(args, testbed.Arg{Key: "ampcache", Value: "https://" + ampCacheName + "/"})
	}
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		dctx, dcancel := context.WithTimeout(ctx, 90*time.Second)
		raw, err := pt.Dial(dctx, PlaceholderBridge, args)
		dcancel()
		if err != nil {
			lastErr = err
			continue
		}
		down, err := testbed.Download(ctx, raw, 10_000_000, 51)
		if err != nil {
			t.Fatalf("download: %v (%v)", err, down)
		}
		t.Logf("%v", down)
		lastErr = nil
		break
	}
	if lastErr != nil {
		t.Fatalf("dial: %v\nclient log tail:\n%s", lastErr, testbed.Tail(clientLog, 20))
	}

	reqs := front.Requests()
	if len(reqs) == 0 {
		t.Fatal("the front saw no request")
	}
	wantHost, wantMethod, wantPath := brokerName, "POST", "/client"
	if useAMP {
		wantHost, wantMethod, wantPath = ampCacheHost, "GET", "/c/s/"+brokerName+"/amp/client/0"
	}
	for i, r := range reqs {
		t.Logf("front request %d: SNI %q Host %q %s %.60s -> %d", i, r.SNI, r.Host, r.Method, r.Path, r.Status)
		if r.SNI != frontName {
			t.Errorf("request %d: SNI %q, want the front's name %q", i, r.SNI, frontName)
		}
		if r.Host != wantHost || r.Method != wantMethod || !strings.HasPrefix(r.Path, wantPath) || r.Status != 200 {
			t.Errorf("request %d: %s Host %q path %q status %d; want %s Host %q path %s…", i, r.Method, r.Host, r.Path, r.Status, wantMethod, wantHost, wantPath)
		}
	}
	if useAMP {
		mu.Lock()
		defer mu.Unlock()
		for _, ct := range ampTypes {
			if !strings.HasPrefix(ct, "text/html") {
				t.Errorf("AMP reply Content-Type %q, want the armored HTML page", ct)
			}
		}
	}

	// Without the test CA in its environment the client refuses the front:
	// the trust above came from SSL_CERT_FILE. A certificate that does not
	// verify is retried (a captive portal may intercept TLS for a while),
	// so the dial only ends with its timeout; every refused attempt is
	// reported to tor with the reason.
	sctx2, scancel2 := context.WithTimeout(ctx, 20*time.Second)
	defer scancel2()
	untrusting, err := testbed.StartPTClient(sctx2, testbed.PTClientConfig{
		Name: "client-untrusting", Path: path, NS: c.Cli, LogDir: dir, Transport: "snowflake",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { untrusting.Stop(5 * time.Second) })
	dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
	defer dcancel()
	if conn, err := untrusting.Dial(dctx, PlaceholderBridge, args); err == nil {
		conn.Close()
		t.Fatal("a client without the test CA connected through the front")
	}
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, err := untrusting.WaitStdout(wctx, func(l string) bool {
		return strings.HasPrefix(l, "LOG SEVERITY=") && strings.Contains(l, "broker rendezvous failed") &&
			strings.Contains(l, "certificate signed by unknown authority")
	}); err != nil {
		t.Errorf("no LOG line explains the failure (%v): %q", err, untrusting.StdoutLines())
	}
}
