package ipcount

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestCounter(t *testing.T) {
	var out bytes.Buffer
	c, err := New(&out, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"1.2.3.4", "1.2.3.4", "::ffff:1.2.3.4", "2001:db8::1", "5.6.7.8"} {
		c.Add(netip.MustParseAddr(a))
	}
	c.Add(netip.Addr{})
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := c.Flush(t0); err != nil {
		t.Fatal(err)
	}
	c.Add(netip.MustParseAddr("9.9.9.9"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines: %q", out.String())
	}
	var r1, r2 record
	if err := json.Unmarshal([]byte(lines[0]), &r1); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &r2); err != nil {
		t.Fatal(err)
	}
	if r1.DistinctAddresses != 3 || !r1.RecordingEnd.Equal(t0) {
		t.Errorf("first: %+v", r1)
	}
	if r2.DistinctAddresses != 1 || !r2.RecordingStart.Equal(t0) {
		t.Errorf("second: %+v", r2)
	}
	if !strings.Contains(lines[0], `"recordingStart":`) || !strings.Contains(lines[0], `"distinctAddresses":3`) {
		t.Errorf("format: %s", lines[0])
	}
	if _, err := New(&out, -time.Second); err == nil {
		t.Error("negative interval accepted")
	}
}
