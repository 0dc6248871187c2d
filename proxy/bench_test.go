package proxy

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// BenchmarkRelay measures the copy loop between two in-memory conns.
func BenchmarkRelay(b *testing.B) {
	clientSide, clientProxy := net.Pipe()
	bridgeProxy, bridgeSide := net.Pipe()
	var st relayStats
	done := make(chan error, 1)
	go func() { done <- relay(context.Background(), clientProxy, bridgeProxy, time.Minute, nil, &st) }()
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

// BenchmarkDCConn measures a message through the data-channel adapter in
// both directions.
func BenchmarkDCConn(b *testing.B) {
	dc := &nullDC{}
	c := newDCConn(dc, nil)
	defer c.Close()
	msg := webrtc.DataChannelMessage{Data: make([]byte, 1400)}
	buf := make([]byte, 2048)
	b.SetBytes(int64(len(msg.Data)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		dc.onMessage(msg)
		if _, err := c.Read(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write(buf[:1400]); err != nil {
			b.Fatal(err)
		}
	}
}

// nullDC is a data channel that sends nowhere.
type nullDC struct {
	onMessage func(webrtc.DataChannelMessage)
}

func (d *nullDC) Send([]byte) error                           { return nil }
func (d *nullDC) BufferedAmount() uint64                      { return 0 }
func (d *nullDC) SetBufferedAmountLowThreshold(uint64)        {}
func (d *nullDC) OnBufferedAmountLow(func())                  {}
func (d *nullDC) OnMessage(f func(webrtc.DataChannelMessage)) { d.onMessage = f }
func (d *nullDC) OnClose(func())                              {}
func (d *nullDC) Close() error                                { return nil }
