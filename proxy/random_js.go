//go:build js

package proxy

import "syscall/js"

// randomBytes fills b from the browser's crypto.getRandomValues, the
// source crypto/rand would use too: calling it directly keeps crypto/rand's
// FIPS module (about 180 kB) out of the browser proxy's download.
func randomBytes(b []byte) {
	u8 := js.Global().Get("Uint8Array").New(len(b))
	js.Global().Get("crypto").Call("getRandomValues", u8)
	js.CopyBytesToGo(b, u8)
}
