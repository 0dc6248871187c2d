package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/snowfall-pt/snowfall/client"
	"github.com/snowfall-pt/snowfall/client/internal/fakebridge"
	"github.com/snowfall-pt/snowfall/internal/safelog"
)

// Dial a stream to the bridge through Snowflake proxies found via the
// broker, and use it like any net.Conn.
func Example() {
	tr, err := client.NewTransport(client.Config{
		BrokerURL:  "https://snowflake-broker.torproject.net/",
		Fronts:     []string{"www.example-cdn.com"},
		ICEServers: []string{"stun:stun.l.google.com:19302", "stun:stun.antisip.com:3478"},
		MaxPeers:   1,
		// Scrub addresses from logs.
		Logger: safelog.NewLogger(os.Stderr, slog.LevelInfo, false),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	conn, err := tr.Dial(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	// conn carries, for example, a Tor OR connection to the bridge.
}

// pipePeers stands in for WebRTC proxies: each "proxy" is an in-memory pipe
// to a bridge in the same process.
type pipePeers struct{ bridge *fakebridge.Bridge }

func (p pipePeers) Connect(ctx context.Context) (net.Conn, error) {
	c, s := net.Pipe()
	go p.bridge.ServeCarrier(s)
	return c, nil
}

// A PeerSource replaces the broker and WebRTC, here to run a whole session
// in memory against a bridge that echoes.
func ExampleTransport_Dial() {
	bridge, _ := fakebridge.Start(func(c net.Conn) { io.Copy(c, c); c.Close() })
	defer bridge.Close()

	tr, err := client.NewTransport(client.Config{Peers: pipePeers{bridge}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tr.Close()
	conn, err := tr.Dial(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	fmt.Fprint(conn, "hello, bridge")
	buf := make([]byte, len("hello, bridge"))
	io.ReadFull(conn, buf)
	fmt.Println(string(buf))
	// Output: hello, bridge
}
