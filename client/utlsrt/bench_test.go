package utlsrt

import "testing"

// BenchmarkChromiumSpec measures building a ClientHelloSpec from the
// profile, done once per TLS connection to the broker.
func BenchmarkChromiumSpec(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := chromiumSpec(true); err != nil {
			b.Fatal(err)
		}
	}
}
