package pionpeer

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

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
