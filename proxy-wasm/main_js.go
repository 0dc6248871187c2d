//go:build js

package main

import (
	"os"

	"github.com/snowfall-pt/snowfall/proxy"
)

func main() {
	c := newController(platform{
		peers:  func(stun []string) proxy.PeerFactory { return &jsPeers{stun: stun} },
		dialer: jsDialer{},
		poster: fetchPoster{},
		store:  newLocalStore(),
		webrtc: webrtcAvailable,
		logOut: os.Stderr, // the browser's console
	})
	publish(c)
	select {}
}
