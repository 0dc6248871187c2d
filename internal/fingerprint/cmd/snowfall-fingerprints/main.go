// Command snowfall-fingerprints re-captures the Chromium profile: it runs
// the chromium installed on this machine headless in a testbed network
// namespace, records its DTLS handshakes between two of its own peer
// connections and its TLS ClientHello and HTTP/2 preface to a local HTTPS
// server, and writes internal/fingerprint/chromium.json. It needs root.
// `make fingerprints` runs it.
package main

import (
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/snowfall-pt/snowfall/internal/fingerprint/capture"
	"github.com/snowfall-pt/snowfall/internal/testbed"
)

func main() {
	out := flag.String("o", "", "profile to write (default: internal/fingerprint/chromium.json in the module)")
	raw := flag.String("raw", "", "also write the captured bytes into this folder (test data for internal/handshake)")
	conns := flag.Int("connections", 3, "peer-connection pairs to open (at least 2, to see the extension order change)")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if *out == "" {
		root, err := testbed.ModuleRoot(ctx)
		if err != nil {
			fail(err)
		}
		*out = filepath.Join(root, "internal", "fingerprint", "chromium.json")
	}
	dir, err := os.MkdirTemp("", "snowfall-fingerprints-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	res, err := capture.Chromium(ctx, capture.Options{Dir: dir, Connections: max(*conns, 2)})
	if err != nil {
		fail(err)
	}
	p, err := res.Profile(time.Now())
	if err != nil {
		fail(err)
	}
	b, err := p.Marshal()
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fail(err)
	}
	if *raw != "" {
		if err := writeRaw(*raw, res); err != nil {
			fail(err)
		}
	}
	fmt.Printf("%s: %s\n  TLS JA4 %s\n  DTLS JA4 %s, JA4S %s\n", *out, p.Browser, p.TLS.JA4, p.DTLSClient.JA4, p.DTLSServer.JA4S)
}

// writeRaw writes each DTLS connection as lines of "C|S hex", and the TLS
// bytes and certificates as binary files.
func writeRaw(dir string, res *capture.Result) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	files := map[string][]byte{}
	for i, f := range res.DTLS {
		var s []byte
		for j, d := range f.Datagrams {
			side := "S "
			if f.ClientToServer[j] {
				side = "C "
			}
			s = append(append(append(s, side...), hex.EncodeToString(d)...), '\n')
		}
		files[fmt.Sprintf("chromium-dtls-%d.txt", i+1)] = s
	}
	for i, c := range res.Certificates {
		files[fmt.Sprintf("chromium-cert-%d.der", i+1)] = c
	}
	for i, c := range res.TLS {
		files[fmt.Sprintf("chromium-tls-%d.wire", i+1)] = c.Wire
		files[fmt.Sprintf("chromium-tls-%d.plain", i+1)] = c.Plain
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "snowfall-fingerprints:", err)
	os.Exit(1)
}
