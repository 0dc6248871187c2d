//go:build !js

package pionpeer

import (
	"fmt"
	"net"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

// settingEngine returns pion's settings for a native proxy.
func settingEngine(wc Config) (webrtc.SettingEngine, error) {
	var se webrtc.SettingEngine
	// No .local candidates: they leak nothing useful to a client and cost a
	// multicast socket per peer.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if wc.PortMin != 0 || wc.PortMax != 0 {
		if err := se.SetEphemeralUDPPortRange(wc.PortMin, wc.PortMax); err != nil {
			return se, fmt.Errorf("ephemeral port range: %w", err)
		}
	}
	if a := wc.OutboundAddress; a.IsValid() {
		// Advertise the outbound address instead of the interface
		// addresses; when it is one of ours, gather only on it.
		if hasLocalAddr(a) {
			se.SetIPFilter(func(ip net.IP) bool {
				x, ok := netipFromIP(ip)
				return ok && x == a.Unmap()
			})
		} else {
			err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
				External:        []string{a.String()},
				AsCandidateType: webrtc.ICECandidateTypeHost,
				Mode:            webrtc.ICEAddressRewriteReplace,
			})
			if err != nil {
				return se, fmt.Errorf("outbound address: %w", err)
			}
		}
	}
	se.SetIncludeLoopbackCandidate(wc.IncludeLoopback)
	return se, nil
}
