//go:build js

package proxy

import "github.com/pion/webrtc/v4"

// settingEngine returns pion's settings in a browser, which chooses ports,
// addresses and mDNS itself; WebRTCConfig is ignored there.
func settingEngine(WebRTCConfig) (webrtc.SettingEngine, error) {
	return webrtc.SettingEngine{}, nil
}
