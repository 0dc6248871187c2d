package deps

import (
	_ "github.com/coder/websocket"
	_ "github.com/pion/stun/v3"
	_ "github.com/pion/webrtc/v4"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/refraction-networking/utls"
	_ "github.com/xtaci/kcp-go/v5"
	_ "github.com/xtaci/smux"
	_ "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
	_ "golang.org/x/crypto/acme/autocert"
	_ "golang.org/x/crypto/sha3"
	_ "golang.org/x/net/html"
	_ "golang.org/x/net/idna"
)
