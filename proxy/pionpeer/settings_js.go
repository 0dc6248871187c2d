//go:build js

package pionpeer

import "github.com/pion/webrtc/v4"

// settingEngine returns pion's settings in a browser, which chooses ports,
// addresses and mDNS itself; Config is ignored there.
func settingEngine(Config) (webrtc.SettingEngine, error) {
	return webrtc.SettingEngine{}, nil
}
