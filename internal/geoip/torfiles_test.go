//go:build integration

package geoip

// Needs Debian's tor-geoipdb, which make test installs.

import (
	"net/netip"
	"testing"
)

// The files installed with tor must load, and a few well-known ranges must
// resolve as they do in tor's own data.
func TestTorFiles(t *testing.T) {
	tab, err := Load("/usr/share/tor/geoip", "/usr/share/tor/geoip6")
	if err != nil {
		t.Fatalf("loading tor's geoip files (install the tor package): %v", err)
	}
	n4, n6 := tab.Len()
	if n4 < 1000 || n6 < 1000 {
		t.Fatalf("too few ranges: %d %d", n4, n6)
	}
	if cc, _ := tab.Country(netip.MustParseAddr("1.0.0.1")); cc != "AU" {
		t.Errorf("1.0.0.1: %s", cc)
	}
	if _, err := Load("/nonexistent/geoip", ""); err == nil {
		t.Error("missing file accepted")
	}
}
