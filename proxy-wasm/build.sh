#!/usr/bin/env bash
# Builds the browser proxy into a folder ready to serve statically:
# snowfall.wasm (+ .gz), the wasm_exec.js of the Go toolchain that built it,
# and the page's assets. Usage: proxy-wasm/build.sh [OUTDIR]
# (default proxy-wasm/dist). GO selects the go command.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/dist}"
GO="${GO:-go}"
mkdir -p "$out"
(cd "$here/.." && GOOS=js GOARCH=wasm "$GO" build -trimpath -ldflags="-s -w" -o "$out/snowfall.wasm.tmp" ./proxy-wasm/)
mv "$out/snowfall.wasm.tmp" "$out/snowfall.wasm"
goroot="$("$GO" env GOROOT)"
exec_js="$goroot/lib/wasm/wasm_exec.js"
[ -f "$exec_js" ] || exec_js="$goroot/misc/wasm/wasm_exec.js" # Go before 1.24
cp "$exec_js" "$out/wasm_exec.js"
cp "$here"/web/* "$out/"
# Precompressed copy for servers that can send it (Content-Encoding: gzip).
gzip -9 -n -c "$out/snowfall.wasm" > "$out/snowfall.wasm.gz"
raw=$(wc -c < "$out/snowfall.wasm")
gz=$(wc -c < "$out/snowfall.wasm.gz")
# The budget is TestWasmSize's (proxy-wasm/deps_test.go).
echo "proxy-wasm: $out: snowfall.wasm $raw bytes, gzip $gz bytes (budget 5000000 and 1400000)"
