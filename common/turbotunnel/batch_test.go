package turbotunnel

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/snowfall-pt/snowfall/common/encapsulation"
)

func TestAppendBatch(t *testing.T) {
	q := make(chan []byte, 64)
	var want [][]byte
	for i := range 30 {
		p := bytes.Repeat([]byte{byte(i)}, MaxPacketSize-i)
		want = append(want, p)
		if i > 0 {
			q <- p
		}
	}
	var done [][]byte
	var got [][]byte
	for len(got) < len(want) {
		var first []byte
		if len(got) == 0 {
			first = want[0]
		} else {
			first = <-q
		}
		batch := appendBatch(nil, first, q, func(p []byte) { done = append(done, p) })
		if len(batch) > MaxBatchSize {
			t.Fatalf("batch of %d bytes exceeds MaxBatchSize %d", len(batch), MaxBatchSize)
		}
		r := bufio.NewReader(bytes.NewReader(batch))
		n := 0
		for {
			buf := make([]byte, MaxPacketSize)
			k, err := encapsulation.ReadData(r, buf)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, buf[:k])
			n++
		}
		if n < 2 && len(got) < len(want) {
			t.Fatalf("batch carried %d packet(s) although more were queued", n)
		}
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("packet %d differs after batching", i)
		}
	}
	if len(done) != len(want) {
		t.Fatalf("%d packets handed back, want %d", len(done), len(want))
	}
}
