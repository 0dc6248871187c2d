package carrier

import (
	"bufio"
	"bytes"
	"sync/atomic"
	"testing"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
	"github.com/snowfall-pt/snowfall/common/turbotunnel"
)

// BenchmarkPumpUp measures the per-packet cost of the upstream path:
// decapsulation and queueing into a KCP engine, which a reader drains.
func BenchmarkPumpUp(b *testing.B) {
	const packets = 1000
	var stream []byte
	pkt := make([]byte, 1200)
	for range packets {
		stream, _ = encapsulation.AppendData(stream, pkt)
	}
	in := NewIntake(testInletSize, 0)
	defer in.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := in.Read(buf); err != nil {
				return
			}
		}
	}()
	inl := in.NewInlet(turbotunnel.ClientID{1})
	var last atomic.Int64
	r := bytes.NewReader(stream)
	br := bufio.NewReaderSize(r, 4096)
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(stream)
		br.Reset(r)
		if err := turbotunnel.PumpUp(br, Queue(inl, &last, func() {})); err != nil {
			b.Fatal(err)
		}
	}
}
