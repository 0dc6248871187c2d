//go:build !js

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// handler serves the browser proxy's folder with the headers a static host
// should send (doc/browser-proxy.md): the wasm MIME type, the precompressed
// wasm when the browser takes gzip, a content security policy, and a
// generated config.json when one was given.
type handler struct {
	dir     string
	config  []byte // served as /config.json when not nil
	nonTLS  bool   // the configuration uses http:// or ws:// endpoints
	modTime time.Time
	files   http.Handler
}

func newHandler(dir string, config []byte, nonTLS bool) *handler {
	return &handler{dir: dir, config: config, nonTLS: nonTLS, modTime: time.Now(), files: http.FileServer(http.Dir(dir))}
}

var mimeTypes = map[string]string{
	".wasm": "application/wasm",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".html": "text/html; charset=utf-8",
	".json": "application/json",
	".svg":  "image/svg+xml",
}

// csp is the content security policy of the pages: nothing from other
// sites, WebAssembly allowed, connections to the broker, probe and bridges.
func (h *handler) csp(name string) string {
	connect := "'self' https: wss:"
	if h.nonTLS {
		connect += " http: ws:"
	}
	frame := "'none'"
	if name == "badge.html" {
		// The badge exists to be embedded by other sites.
		frame = "*"
	}
	return "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self'; " +
		"connect-src " + connect + "; frame-ancestors " + frame + "; base-uri 'none'; form-action 'none'"
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := path.Base(path.Clean("/" + r.URL.Path))
	if strings.HasSuffix(r.URL.Path, "/") {
		name = "index.html"
	}
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Referrer-Policy", "no-referrer")
	hdr.Set("Cache-Control", "no-cache")
	if t, ok := mimeTypes[path.Ext(name)]; ok {
		hdr.Set("Content-Type", t)
	}
	if strings.HasSuffix(name, ".html") {
		hdr.Set("Content-Security-Policy", h.csp(name))
	}
	if r.URL.Path == "/config.json" && h.config != nil {
		http.ServeContent(w, r, "config.json", h.modTime, bytes.NewReader(h.config))
		return
	}
	if path.Ext(name) == ".wasm" && acceptsGzip(r) {
		gz := filepath.Join(h.dir, filepath.FromSlash(path.Clean("/"+r.URL.Path))) + ".gz"
		if f, err := os.Open(gz); err == nil {
			defer f.Close()
			if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
				hdr.Set("Content-Encoding", "gzip")
				hdr.Add("Vary", "Accept-Encoding")
				http.ServeContent(w, r, name, st.ModTime(), f)
				return
			}
		}
	}
	h.files.ServeHTTP(w, r)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}

// mergeConfig overlays the settings given on the command line on the
// folder's config.json.
func mergeConfig(base []byte, over map[string]any) ([]byte, error) {
	m := map[string]any{}
	if len(bytes.TrimSpace(base)) > 0 {
		if err := json.Unmarshal(base, &m); err != nil {
			return nil, fmt.Errorf("config.json: %w", err)
		}
	}
	for k, v := range over {
		m[k] = v
	}
	return json.MarshalIndent(m, "", "  ")
}
