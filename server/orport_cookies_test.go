package server

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	pt "gitlab.torproject.org/tpo/anti-censorship/pluggable-transports/goptlib"
)

// With several tor instances behind one ExtORPort address, each with its
// own cookie, the dialer finds the instance's cookie among the alternates.
func TestORDialerAlternateCookies(t *testing.T) {
	tor := newFakeExtORPort(t)
	other := filepath.Join(t.TempDir(), "other_cookie")
	if err := os.WriteFile(other, append([]byte("! Extended ORPort Auth Cookie !\x0a"), make([]byte, 32)...), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, tt := range []struct {
		name  string
		first string
		alts  []string
		ok    bool
	}{
		{"first cookie matches", tor.cookiePath, []string{other}, true},
		{"an alternate matches", other, []string{other, tor.cookiePath}, true},
		{"none matches", other, []string{other}, false},
		{"first file gone", filepath.Join(t.TempDir(), "gone"), []string{tor.cookiePath}, true},
	} {
		info := &pt.ServerInfo{ExtendedOrAddr: tor.info().ExtendedOrAddr, AuthCookiePath: tt.first, AlternateAuthCookiePaths: tt.alts}
		d := &ORDialer{Info: info, Transport: "snowflake"}
		c, err := d.Dial(ctx, "192.0.2.1:1")
		s := tor.next(t)
		if c != nil {
			c.Close()
		}
		if tt.ok != (err == nil) || tt.ok != (s.conn != nil) {
			t.Errorf("%s: dial err %v, tor side %v; want success %v", tt.name, err, s.err, tt.ok)
		}
		if s.conn != nil {
			s.conn.Close()
		}
	}
}
