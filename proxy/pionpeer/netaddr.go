package pionpeer

import (
	"net"
	"net/netip"
)

// netipFromIP converts a net.IP, unmapping IPv4-in-IPv6.
func netipFromIP(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}

// hasLocalAddr reports whether a is assigned to one of this host's
// interfaces.
func hasLocalAddr(a netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, x := range addrs {
		if n, ok := x.(*net.IPNet); ok {
			if y, ok := netipFromIP(n.IP); ok && y == a.Unmap() {
				return true
			}
		}
	}
	return false
}
