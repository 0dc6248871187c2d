//go:build !js

package proxy

import (
	"os/exec"
	"strings"
	"testing"
)

// TestCoreLinksNoWebRTC keeps pion out of the core: WebRTC is injected
// (proxy/pionpeer natively, the browser's in proxy-wasm), so that a program
// with its own WebRTC does not download or link a second one.
func TestCoreLinksNoWebRTC(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Fields(string(out))
	for _, p := range pkgs {
		if strings.HasPrefix(p, "github.com/pion/") || p == "github.com/snowfall-pt/snowfall/common/sdpjson" {
			t.Errorf("the proxy core imports %s; see why with: go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./proxy", p)
		}
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list gave %d packages: not the dependency list?", len(pkgs))
	}
}
