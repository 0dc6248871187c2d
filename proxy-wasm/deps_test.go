//go:build !js

package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Packages that must stay out of the browser build: they cannot work in a
// browser (processes, signals, raw sockets), serve or profile (a page
// serves nothing), belong to other components, or would only add weight
// that the browser already has: its own WebRTC (pion), HTTP (fetch, not
// net/http with crypto/tls and crypto/x509), WebSocket, IDNA and regular
// expressions. Prefixes end in "/" or name a module.
var wasmDenylist = []string{
	"github.com/pion/",
	"net/http",
	"crypto/tls",
	"crypto/x509",
	"regexp",
	"golang.org/x/net/idna", // the browser's URL parser maps names (proxy/idna_js.go)
	"vendor/golang.org/x/net/idna",
	"github.com/coder/websocket",
	"github.com/snowfall-pt/snowfall/proxy/pionpeer",
	"github.com/snowfall-pt/snowfall/common/sdpjson",
	"github.com/snowfall-pt/snowfall/common/websocketconn",
	"os/exec",
	"os/signal",
	"os/user",
	"plugin",
	"log/syslog",
	"expvar",
	"net/rpc",
	"net/http/pprof",
	"net/http/httptest",
	"net/http/cgi",
	"net/http/fcgi",
	"net/smtp",
	"runtime/pprof",
	"html/template",
	"golang.org/x/sys/unix",
	"golang.org/x/crypto/acme",
	"github.com/prometheus/",
	"github.com/xtaci/kcp-go",
	"github.com/xtaci/smux",
	"github.com/klauspost/reedsolomon",
	"github.com/refraction-networking/utls",
	"gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib",
	"github.com/chromedp/",
	"github.com/snowfall-pt/snowfall/broker",
	"github.com/snowfall-pt/snowfall/server",
	"github.com/snowfall-pt/snowfall/client",
	"github.com/snowfall-pt/snowfall/proxy/metrics",
	"github.com/snowfall-pt/snowfall/common/turbotunnel",
	"github.com/snowfall-pt/snowfall/common/encapsulation",
	"github.com/snowfall-pt/snowfall/internal/testbed",
}

// Size budget of the browser build (-s -w), raw and gzipped. A change that
// crosses it pulls in something new; look before raising it.
const (
	maxWasmBytes     = 5_000_000
	maxWasmGzipBytes = 1_400_000
)

func goCmd(t *testing.T, ctx context.Context, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	return cmd
}

func denied(pkg string) (string, bool) {
	for _, d := range wasmDenylist {
		if pkg == d || strings.HasPrefix(pkg, strings.TrimSuffix(d, "/")+"/") {
			return d, true
		}
	}
	return "", false
}

func TestDenylistMatching(t *testing.T) {
	for _, tc := range []struct {
		pkg  string
		want bool
	}{
		{"os/exec", true},
		{"os/exec/internal/fdtest", true},
		{"os", false},
		{"github.com/prometheus/client_golang/prometheus", true},
		{"github.com/xtaci/kcp-go/v5", true},
		{"github.com/snowfall-pt/snowfall/proxy", false},
		{"github.com/snowfall-pt/snowfall/proxy/metrics", true},
		{"github.com/snowfall-pt/snowfall/client/lib", true},
		{"github.com/snowfall-pt/snowfall/common/websocketconn", true},
		{"github.com/pion/webrtc/v4", true},
		{"github.com/pion/sdp/v3", true},
		{"net/http", true},
		{"net/http/httptrace", true},
		{"net/netip", false},
		{"regexp/syntax", true},
		{"github.com/snowfall-pt/snowfall/proxy/pionpeer", true},
	} {
		if _, got := denied(tc.pkg); got != tc.want {
			t.Errorf("denied(%q) = %v, want %v", tc.pkg, got, tc.want)
		}
	}
}

// TestWasmDependencies lists the js/wasm dependency graph of the browser
// proxy and fails on any package that cannot work in a browser.
func TestWasmDependencies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := goCmd(t, ctx, "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go list: %v\n%s", err, stderr)
	}
	pkgs := strings.Fields(string(out))
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p] = true
		if d, bad := denied(p); bad {
			t.Errorf("js/wasm build imports %s (denied: %s); see why with: GOOS=js GOARCH=wasm go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./proxy-wasm", p, d)
		}
	}
	// The list is the browser build's: these must be in it.
	for _, want := range []string{"syscall/js", "github.com/snowfall-pt/snowfall/proxy"} {
		if !seen[want] {
			t.Errorf("js/wasm dependency list lacks %s: not the browser build?", want)
		}
	}
	t.Logf("%d packages in the js/wasm build", len(pkgs))
}

// TestWasmSize builds the browser proxy as "make wasm" does and keeps it
// within its size budget.
func TestWasmSize(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "snowfall.wasm")
	cmd := goCmd(t, ctx, "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	w.Write(data)
	w.Close()
	t.Logf("snowfall.wasm: %d bytes, gzip -9: %d bytes", len(data), gz.Len())
	if len(data) > maxWasmBytes {
		t.Errorf("snowfall.wasm is %d bytes, over the budget of %d", len(data), maxWasmBytes)
	}
	if gz.Len() > maxWasmGzipBytes {
		t.Errorf("snowfall.wasm gzipped is %d bytes, over the budget of %d", gz.Len(), maxWasmGzipBytes)
	}
	if !bytes.HasPrefix(data, []byte("\x00asm")) {
		t.Errorf("output is not a WebAssembly module")
	}
}
