package torpt

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/server"
)

func TestParseFlagsLimits(t *testing.T) {
	o, err := ParseFlags([]string{"--disable-tls", "--kcp-window", "256", "--max-sessions-per-source", "-1",
		"--first-frame-timeout", "5s", "--max-tor-dials", "8", "--debug-addr", "127.0.0.1:9"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Limits.KCPWindow != 256 || o.Limits.MaxSessionsPerSource != -1 || o.Limits.FirstFrameTimeout != 5*time.Second || o.MaxORDials != 8 {
		t.Errorf("limits not taken: %+v", o)
	}
	def, err := ParseFlags([]string{"--disable-tls"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if def.Limits.MaxStreamsPerSession != server.DefaultMaxStreamsPerSession || def.Limits.MaxSessions != server.DefaultMaxSessions {
		t.Errorf("defaults not set: %+v", def.Limits)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--kcp-window", "0"}, "kcp-window"},
		{[]string{"--kcp-window", "70000"}, "at most 65535"},
		{[]string{"--max-sessions-per-source", "0"}, "-1 for no limit"},
		{[]string{"--prologue-timeout", "0s"}, "positive"},
		{[]string{"--max-streams-per-session", "0"}, "max-streams-per-session"},
		{[]string{"--debug-addr", "0.0.0.0:9"}, "loopback"},
		{[]string{"--debug-addr", "localhost:9"}, "loopback"},
	} {
		_, err := ParseFlags(append([]string{"--disable-tls"}, tt.args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err %v, want one mentioning %q", tt.args, err, tt.want)
		}
	}
}
