package proxy

import (
	"context"
	"io"
	"net"
	"testing"
	"time"
)

// BenchmarkRelay measures the copy loop between two in-memory conns.
func BenchmarkRelay(b *testing.B) {
	clientSide, clientProxy := net.Pipe()
	bridgeProxy, bridgeSide := net.Pipe()
	var st relayStats
	done := make(chan error, 1)
	go func() { done <- relay(context.Background(), clientProxy, bridgeProxy, time.Minute, nil, &st, nil) }()
	go io.Copy(io.Discard, bridgeSide)
	msg := make([]byte, 1400)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := clientSide.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	clientSide.Close()
	<-done
}
