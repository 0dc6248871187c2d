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
)

func main() {
	raw := flag.String("raw", "", "write the raw captured bytes (hex) into this folder")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "snowfall-fingerprints-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(dir)
	res, err := capture.Chromium(ctx, capture.Options{Dir: dir})
	if err != nil {
		fail(err)
	}
	if *raw != "" {
		os.MkdirAll(*raw, 0o755)
		for i, f := range res.DTLS {
			var s string
			for j, d := range f.Datagrams {
				dir := "S"
				if f.ClientToServer[j] {
					dir = "C"
				}
				s += dir + " " + hex.EncodeToString(d) + "\n"
			}
			os.WriteFile(filepath.Join(*raw, fmt.Sprintf("chromium-dtls-%d.txt", i+1)), []byte(s), 0o644)
		}
		for i, c := range res.Certificates {
			os.WriteFile(filepath.Join(*raw, fmt.Sprintf("chromium-cert-%d.der", i+1)), c, 0o644)
		}
		for i, c := range res.TLS {
			os.WriteFile(filepath.Join(*raw, fmt.Sprintf("chromium-tls-%d.wire", i+1)), c.Wire, 0o644)
			os.WriteFile(filepath.Join(*raw, fmt.Sprintf("chromium-tls-%d.plain", i+1)), c.Plain, 0o644)
		}
	}
	fmt.Println(res.Version, len(res.DTLS), len(res.TLS))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "snowfall-fingerprints:", err)
	os.Exit(1)
}
