package socks5

import (
	"context"
	"errors"
	"net"

	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// errNoInterfaces: through a proxy, local interfaces are meaningless.
var errNoInterfaces = errors.New("socks5: no local interfaces behind a proxy")

// proxyNet is a pion transport.Net whose UDP sockets are SOCKS5 UDP
// associations. It reports no local interfaces, so ICE gathers no host
// candidates, only server-reflexive ones (the proxy's public address as the
// STUN server sees it). Everything else falls back to the OS network.
type proxyNet struct {
	transport.Net
	c *Client
}

// Net returns a pion transport.Net that sends UDP through the proxy. Note
// that STUN server names are still resolved locally.
func (c *Client) Net() transport.Net {
	std, err := stdnet.NewNet()
	if err != nil {
		// stdnet.NewNet only fails when interfaces cannot be listed, which
		// does not matter here.
		std = &stdnet.Net{}
	}
	return &proxyNet{Net: std, c: c}
}

func (n *proxyNet) ListenUDP(string, *net.UDPAddr) (transport.UDPConn, error) {
	return n.c.ListenUDP(context.Background())
}

func (n *proxyNet) ListenPacket(string, string) (net.PacketConn, error) {
	return n.c.ListenUDP(context.Background())
}

func (n *proxyNet) Interfaces() ([]*transport.Interface, error) { return nil, nil }

func (n *proxyNet) InterfaceByIndex(int) (*transport.Interface, error) {
	return nil, errNoInterfaces
}

func (n *proxyNet) InterfaceByName(string) (*transport.Interface, error) {
	return nil, errNoInterfaces
}
