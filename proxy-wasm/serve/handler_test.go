//go:build !js

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testDir(t *testing.T) string {
	t.Helper()
	d := t.TempDir()
	for name, body := range map[string]string{
		"index.html":       "<!doctype html>page",
		"badge.html":       "<!doctype html>badge",
		"snowfall.wasm":    "\x00asm raw",
		"snowfall.wasm.gz": "gzipped",
		"snowfall.js":      "js",
		"config.json":      `{"broker":"https://b/","proxyType":"badge"}`,
	} {
		if err := os.WriteFile(filepath.Join(d, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func get(t *testing.T, h http.Handler, path string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Result()
}

func TestHandler(t *testing.T) {
	h := newHandler(testDir(t), nil, false)
	for _, tc := range []struct {
		path, accept             string
		wantType, wantEnc, wantB string
		wantFrame                string
	}{
		{"/", "", "text/html; charset=utf-8", "", "<!doctype html>page", "frame-ancestors 'none'"},
		{"/badge.html", "", "text/html; charset=utf-8", "", "<!doctype html>badge", "frame-ancestors *"},
		{"/snowfall.wasm", "", "application/wasm", "", "\x00asm raw", ""},
		{"/snowfall.wasm", "gzip, br", "application/wasm", "gzip", "gzipped", ""},
		{"/snowfall.wasm", "gzip;q=0", "application/wasm", "", "\x00asm raw", ""},
		{"/snowfall.js", "", "text/javascript; charset=utf-8", "", "js", ""},
	} {
		resp := get(t, h, tc.path, map[string]string{"Accept-Encoding": tc.accept})
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != tc.wantB {
			t.Errorf("%s: %d %q", tc.path, resp.StatusCode, body)
		}
		if got := resp.Header.Get("Content-Type"); got != tc.wantType {
			t.Errorf("%s: Content-Type %q, want %q", tc.path, got, tc.wantType)
		}
		if got := resp.Header.Get("Content-Encoding"); got != tc.wantEnc {
			t.Errorf("%s (Accept-Encoding %q): Content-Encoding %q, want %q", tc.path, tc.accept, got, tc.wantEnc)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if tc.wantFrame != "" && (!strings.Contains(csp, tc.wantFrame) || !strings.Contains(csp, "'wasm-unsafe-eval'") ||
			strings.Contains(csp, "http:")) {
			t.Errorf("%s: CSP %q", tc.path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", tc.path)
		}
	}
	if resp := get(t, h, "/missing.js", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("missing file: %d", resp.StatusCode)
	}
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", w.Code)
	}
}

func TestHandlerGeneratedConfig(t *testing.T) {
	d := testDir(t)
	base, _ := os.ReadFile(filepath.Join(d, "config.json"))
	cfg, err := mergeConfig(base, map[string]any{"broker": "http://198.51.100.1:8080/", "pollInterval": "2s"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHandler(d, cfg, true)
	resp := get(t, h, "/config.json", nil)
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m["broker"] != "http://198.51.100.1:8080/" || m["pollInterval"] != "2s" || m["proxyType"] != "badge" {
		t.Errorf("config.json = %v", m)
	}
	if csp := get(t, h, "/", nil).Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' https: wss: http: ws:") {
		t.Errorf("CSP with plain endpoints: %q", csp)
	}
	if _, err := mergeConfig([]byte("{bad"), nil); err == nil {
		t.Error("a broken config.json merged")
	}
}
