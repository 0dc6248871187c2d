//go:build js

package main

import (
	"net/http"
	"os"

	"github.com/snowfall-pt/snowfall/proxy"
)

func main() {
	c := newController(platform{
		peers:     func(stun []string) proxy.PeerFactory { return &jsPeers{stun: stun} },
		dialer:    jsDialer{},
		transport: http.DefaultTransport, // the browser's fetch
		store:     newLocalStore(),
		webrtc:    webrtcAvailable,
		logOut:    os.Stderr, // the browser's console
	})
	publish(c)
	select {}
}
