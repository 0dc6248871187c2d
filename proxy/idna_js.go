//go:build js

package proxy

import (
	"errors"
	"syscall/js"
)

// relayNameToASCII maps a relay hostname to the form the browser itself
// will connect to: its URL parser's host (WHATWG URL: UTS #46 mapping to
// punycode, and IPv4 forms like "127.1" made canonical). Checking that
// form checks exactly what the browser dials, and keeps IDNA's tables
// (about 280 kB) out of the download.
func relayNameToASCII(host string) (ascii string, err error) {
	defer func() {
		if recover() != nil {
			ascii, err = "", errors.New("not a hostname the browser accepts")
		}
	}()
	u := js.Global().Get("URL").New("http://" + host + "/")
	return u.Get("hostname").String(), nil
}
