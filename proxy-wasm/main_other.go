//go:build !js

package main

import (
	"fmt"
	"os"
)

// Built natively there is no browser to run in.
func main() {
	fmt.Fprintln(os.Stderr, "proxy-wasm runs in a web browser: build it with \"make wasm\" (GOOS=js GOARCH=wasm) and serve proxy-wasm/dist/, e.g. with \"go run ./proxy-wasm/serve\"")
	os.Exit(2)
}
