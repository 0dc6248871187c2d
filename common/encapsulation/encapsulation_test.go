package encapsulation

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// writeRecorder records every Write call separately.
type writeRecorder struct{ calls [][]byte }

func (w *writeRecorder) Write(p []byte) (int, error) {
	w.calls = append(w.calls, bytes.Clone(p))
	return len(p), nil
}

func repeat(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestWriteDataVectors(t *testing.T) {
	for _, tt := range []struct {
		name    string
		payload []byte
		prefix  []byte
	}{
		{"empty", nil, []byte{0x80}},
		{"one", []byte("A"), []byte{0x81}},
		{"63", repeat('a', 63), []byte{0xbf}},
		{"64", repeat('b', 64), []byte{0xc0, 0x40}},
		{"1400", repeat('c', 1400), []byte{0xca, 0x78}},
		{"8191", repeat('d', 8191), []byte{0xff, 0x7f}},
		{"8192", repeat('e', 8192), []byte{0xc0, 0xc0, 0x00}},
		{"max", repeat('f', MaxDataLen), []byte{0xff, 0xff, 0x7f}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := cat(tt.prefix, tt.payload)
			var w writeRecorder
			n, err := WriteData(&w, tt.payload)
			if err != nil || n != len(tt.payload) {
				t.Fatalf("WriteData = %d, %v; want %d, nil", n, err, len(tt.payload))
			}
			if len(w.calls) != 1 {
				t.Fatalf("WriteData made %d Write calls, want 1", len(w.calls))
			}
			if !bytes.Equal(w.calls[0], want) {
				t.Fatalf("WriteData wrote % x..., want % x...", head(w.calls[0]), head(want))
			}
			got, err := AppendData([]byte("xy"), tt.payload)
			if err != nil || !bytes.Equal(got, cat([]byte("xy"), want)) {
				t.Fatalf("AppendData = % x..., %v", head(got), err)
			}
			if PrefixLen(len(tt.payload)) != len(tt.prefix) {
				t.Fatalf("PrefixLen(%d) = %d, want %d", len(tt.payload), PrefixLen(len(tt.payload)), len(tt.prefix))
			}
		})
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

func TestWriteDataTooLong(t *testing.T) {
	var w writeRecorder
	if _, err := WriteData(&w, make([]byte, MaxDataLen+1)); !errors.Is(err, ErrDataLen) {
		t.Fatalf("WriteData(MaxDataLen+1) err = %v, want ErrDataLen", err)
	}
	if len(w.calls) != 0 {
		t.Fatalf("WriteData wrote %d times on error", len(w.calls))
	}
	if _, err := AppendData(nil, make([]byte, MaxDataLen+1)); !errors.Is(err, ErrDataLen) {
		t.Fatalf("AppendData(MaxDataLen+1) err = %v, want ErrDataLen", err)
	}
}

// shortWriter accepts at most limit bytes per call without an error, which
// breaks the io.Writer contract; WriteData must still report it.
type shortWriter struct{ limit int }

func (w shortWriter) Write(p []byte) (int, error) { return min(len(p), w.limit), nil }

type errWriter struct{ n int }

var errBroken = errors.New("broken writer")

func (w errWriter) Write(p []byte) (int, error) { return min(len(p), w.n), errBroken }

func TestWriteDataShortAndFailedWrites(t *testing.T) {
	p := repeat('x', 100) // two-byte prefix
	for _, tt := range []struct {
		name  string
		w     io.Writer
		wantN int
		err   error
	}{
		{"short in payload", shortWriter{52}, 50, io.ErrShortWrite},
		{"short in prefix", shortWriter{1}, 0, io.ErrShortWrite},
		{"error in payload", errWriter{12}, 10, errBroken},
		{"error before anything", errWriter{0}, 0, errBroken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := WriteData(tt.w, p)
			if n != tt.wantN || !errors.Is(err, tt.err) {
				t.Fatalf("WriteData = %d, %v; want %d, %v", n, err, tt.wantN, tt.err)
			}
		})
	}
}

func TestWritePaddingVectors(t *testing.T) {
	padding := func(prefix []byte, n int) []byte { return cat(prefix, make([]byte, n)) }
	for _, tt := range []struct {
		n    int
		want []byte
	}{
		{0, nil},
		{1, []byte{0x00}},
		{4, []byte{0x03, 0, 0, 0}},
		{64, padding([]byte{0x3f}, 63)},
		{65, padding([]byte{0x40, 0x3f}, 63)},
		{1024, padding([]byte{0x47, 0x7e}, 1022)},
		{1025, cat(padding([]byte{0x47, 0x7e}, 1022), []byte{0x00})},
		{1090, cat(padding([]byte{0x47, 0x7e}, 1022), padding([]byte{0x40, 0x40}, 64))},
	} {
		var w writeRecorder
		n, err := WritePadding(&w, tt.n)
		if err != nil || n != tt.n {
			t.Fatalf("WritePadding(%d) = %d, %v", tt.n, n, err)
		}
		got := bytes.Join(w.calls, nil)
		if !bytes.Equal(got, tt.want) {
			t.Fatalf("WritePadding(%d) wrote % x, want % x", tt.n, got, tt.want)
		}
		if tt.n > 0 && len(w.calls) != 1 {
			t.Fatalf("WritePadding(%d) made %d Write calls, want 1", tt.n, len(w.calls))
		}
	}
	if _, err := WritePadding(io.Discard, -1); !errors.Is(err, ErrDataLen) {
		t.Fatalf("WritePadding(-1) err = %v, want ErrDataLen", err)
	}
	if _, err := AppendPadding(nil, -1); !errors.Is(err, ErrDataLen) {
		t.Fatalf("AppendPadding(-1) err = %v, want ErrDataLen", err)
	}
}

// chunkSizes splits an encapsulated stream into its chunks' total sizes
// (prefix included) and reports whether each is padding.
func chunkSizes(t *testing.T, b []byte) (sizes []int, padding []bool) {
	t.Helper()
	r := bytes.NewReader(b)
	for r.Len() > 0 {
		before := r.Len()
		n, data, err := readPrefix(r)
		if err != nil {
			t.Fatalf("bad prefix at offset %d: %v", len(b)-before, err)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(r, payload); err != nil {
			t.Fatalf("chunk overruns stream")
		}
		if !data && !bytes.Equal(payload, make([]byte, n)) {
			t.Fatalf("padding payload is not zero")
		}
		sizes = append(sizes, before-r.Len())
		padding = append(padding, !data)
	}
	return sizes, padding
}

func TestWritePaddingSizes(t *testing.T) {
	for n := 0; n <= 3*MaxPaddingChunk+130; n++ {
		var buf bytes.Buffer
		if _, err := WritePadding(&buf, n); err != nil {
			t.Fatal(err)
		}
		if buf.Len() != n {
			t.Fatalf("WritePadding(%d) wrote %d bytes", n, buf.Len())
		}
		sizes, padding := chunkSizes(t, buf.Bytes())
		total := 0
		for i, s := range sizes {
			if s > MaxPaddingChunk || !padding[i] {
				t.Fatalf("WritePadding(%d): chunk %d has size %d, padding %v", n, i, s, padding[i])
			}
			total += s
		}
		if total != n {
			t.Fatalf("WritePadding(%d): chunks add up to %d", n, total)
		}
		// Readers see nothing but a clean end.
		if m, err := ReadData(bufio.NewReader(&buf), make([]byte, 16)); m != 0 || err != io.EOF {
			t.Fatalf("ReadData after WritePadding(%d) = %d, %v; want 0, EOF", n, m, err)
		}
	}
}

func TestWritePaddingLarge(t *testing.T) {
	var w writeRecorder
	const n = maxPaddingWrite*2 + 5
	m, err := WritePadding(&w, n)
	if err != nil || m != n {
		t.Fatalf("WritePadding = %d, %v", m, err)
	}
	if len(w.calls) != 3 {
		t.Fatalf("WritePadding made %d calls, want 3", len(w.calls))
	}
	if _, err := WritePadding(errWriter{3}, 100); !errors.Is(err, errBroken) {
		t.Fatalf("WritePadding on failing writer: %v", err)
	}
	if _, err := WritePadding(shortWriter{3}, 100); !errors.Is(err, io.ErrShortWrite) {
		t.Fatalf("WritePadding on short writer: %v", err)
	}
}

type readResult struct {
	data string
	err  error
}

// readAll calls ReadData until it fails with anything but ErrShortBuffer,
// recording every result.
func readAll(r io.Reader, bufSize int) []readResult {
	p := make([]byte, bufSize)
	var out []readResult
	for {
		n, err := ReadData(r, p)
		out = append(out, readResult{string(p[:n]), err})
		if err != nil && err != io.ErrShortBuffer {
			return out
		}
	}
}

func TestReadDataVectors(t *testing.T) {
	for _, tt := range []struct {
		name  string
		input []byte
		want  []readResult
	}{
		{"empty stream", nil, []readResult{{"", io.EOF}}},
		{"empty packet", []byte{0x80}, []readResult{{"", nil}, {"", io.EOF}}},
		{"two packets", []byte{0x82, 'h', 'i', 0x81, '!'}, []readResult{{"hi", nil}, {"!", nil}, {"", io.EOF}}},
		{"spec: 01000000 00000100 is 4 bytes of padding",
			[]byte{0x40, 0x04, 1, 2, 3, 4, 0x81, 'x'}, []readResult{{"x", nil}, {"", io.EOF}}},
		{"padding everywhere",
			[]byte{0x00, 0x02, 9, 9, 0x81, 'a', 0x01, 7, 0x81, 'b', 0x00}, []readResult{{"a", nil}, {"b", nil}, {"", io.EOF}}},
		{"non-minimal two-byte data", []byte{0xc0, 0x03, 'a', 'b', 'c'}, []readResult{{"abc", nil}, {"", io.EOF}}},
		{"non-minimal three-byte data", []byte{0xc0, 0x80, 0x01, 'z'}, []readResult{{"z", nil}, {"", io.EOF}}},
		{"non-minimal three-byte padding", []byte{0x40, 0x80, 0x02, 0, 0, 0x81, 'q'}, []readResult{{"q", nil}, {"", io.EOF}}},
		{"fourth prefix byte", []byte{0xc0, 0x80, 0x80, 0x01, 'z'}, []readResult{{"", ErrTooLong}}},
		{"fourth prefix byte in padding", []byte{0x40, 0xff, 0xff, 0x7f}, []readResult{{"", ErrTooLong}}},
		{"EOF in payload", []byte{0x85, 'a', 'b'}, []readResult{{"", io.ErrUnexpectedEOF}}},
		{"EOF in prefix", []byte{0x81, 'a', 0xc0}, []readResult{{"a", nil}, {"", io.ErrUnexpectedEOF}}},
		{"EOF in three-byte prefix", []byte{0xc0, 0x80}, []readResult{{"", io.ErrUnexpectedEOF}}},
		{"EOF in padding", []byte{0x05, 0, 0}, []readResult{{"", io.ErrUnexpectedEOF}}},
		{"EOF after padding", []byte{0x02, 0, 0}, []readResult{{"", io.EOF}}},
		{"too long for buffer, then in sync",
			cat([]byte{0x8a}, repeat('L', 10), []byte{0x82, 'o', 'k'}),
			[]readResult{{"", io.ErrShortBuffer}, {"ok", nil}, {"", io.EOF}}},
		{"too long and truncated", cat([]byte{0x8a}, repeat('L', 9)), []readResult{{"", io.ErrUnexpectedEOF}}},
		{"exactly buffer size", cat([]byte{0x88}, repeat('E', 8)), []readResult{{"EEEEEEEE", nil}, {"", io.EOF}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			readers := map[string]func() io.Reader{
				"bufio":    func() io.Reader { return bufio.NewReader(bytes.NewReader(tt.input)) },
				"bytes":    func() io.Reader { return bytes.NewReader(tt.input) },
				"onebyte":  func() io.Reader { return iotest.OneByteReader(bytes.NewReader(tt.input)) },
				"dataerr":  func() io.Reader { return iotest.DataErrReader(bytes.NewReader(tt.input)) },
				"tinybufo": func() io.Reader { return bufio.NewReaderSize(iotest.HalfReader(bytes.NewReader(tt.input)), 16) },
			}
			for name, mk := range readers {
				got := readAll(mk(), 8)
				if len(got) != len(tt.want) {
					t.Fatalf("%s: got %v, want %v", name, got, tt.want)
				}
				for i := range got {
					if got[i].data != tt.want[i].data || !errors.Is(got[i].err, tt.want[i].err) {
						t.Fatalf("%s: result %d = %+v, want %+v", name, i, got[i], tt.want[i])
					}
				}
			}
		})
	}
}

func TestReadDataReaderError(t *testing.T) {
	errBoom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader([]byte{0x83, 'a'}), iotest.ErrReader(errBoom))
	if _, err := ReadData(bufio.NewReader(r), make([]byte, 8)); !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
	if _, err := ReadData(iotest.ErrReader(errBoom), make([]byte, 8)); !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
}

func TestReadDataLargePaddingZeroBuffer(t *testing.T) {
	// Padding must be skippable even when p is empty and r cannot Discard.
	var buf bytes.Buffer
	if _, err := WritePadding(&buf, 5000); err != nil {
		t.Fatal(err)
	}
	buf.Write([]byte{0x80})
	n, err := ReadData(iotest.OneByteReader(&buf), nil)
	if n != 0 || err != nil {
		t.Fatalf("ReadData = %d, %v; want the empty packet", n, err)
	}
}

func TestRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 63, 64, 65, 127, 128, 1399, 1400, 2048, 8191, 8192, 70000, MaxDataLen}
	var stream bytes.Buffer
	var want [][]byte
	for i, n := range sizes {
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(i*31 + j*7)
		}
		want = append(want, p)
		if _, err := WritePadding(&stream, i*97); err != nil {
			t.Fatal(err)
		}
		if _, err := WriteData(&stream, p); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&stream)
	buf := make([]byte, MaxDataLen)
	for i, p := range want {
		n, err := ReadData(r, buf)
		if err != nil || !bytes.Equal(buf[:n], p) {
			t.Fatalf("packet %d (len %d): got len %d, %v", i, len(p), n, err)
		}
	}
	if _, err := ReadData(r, buf); err != io.EOF {
		t.Fatalf("after last packet: %v, want EOF", err)
	}
}

// decode reads every packet of stream with the given reader kind.
func decode(stream []byte, bufSize int, buffered bool) []readResult {
	var r io.Reader = bytes.NewReader(stream)
	if buffered {
		r = bufio.NewReaderSize(r, 16)
	} else {
		r = iotest.OneByteReader(r)
	}
	return readAll(r, bufSize)
}

func FuzzReadData(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Add([]byte{0x40, 0x04, 1, 2, 3, 4, 0x81, 'x'})
	f.Add([]byte{0xc0, 0x80, 0x80, 0x01})
	f.Add([]byte{0xff, 0xff, 0x7f, 0})
	f.Add(cat([]byte{0xca, 0x78}, repeat('c', 1400), []byte{0x03, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, stream []byte) {
		const bufSize = 300
		got := decode(stream, bufSize, true)
		// Every successful read consumes at least one byte.
		if len(got) > len(stream)+1 {
			t.Fatalf("%d results from %d bytes", len(got), len(stream))
		}
		last := got[len(got)-1].err
		if last != io.EOF && last != io.ErrUnexpectedEOF && last != ErrTooLong {
			t.Fatalf("unexpected final error %v", last)
		}
		// The unbuffered path must agree with the buffered one.
		other := decode(stream, bufSize, false)
		if len(other) != len(got) {
			t.Fatalf("buffered and unbuffered disagree: %d vs %d results", len(got), len(other))
		}
		for i := range got {
			if got[i] != other[i] {
				t.Fatalf("result %d: buffered %+v, unbuffered %+v", i, got[i], other[i])
			}
		}
		// Round trip: re-encoding the packets read and decoding them again
		// yields the same packets.
		var packets [][]byte
		var re bytes.Buffer
		for _, res := range got {
			if res.err == nil {
				packets = append(packets, []byte(res.data))
				if _, err := WriteData(&re, []byte(res.data)); err != nil {
					t.Fatal(err)
				}
				if _, err := WritePadding(&re, len(res.data)%5); err != nil {
					t.Fatal(err)
				}
			}
		}
		again := decode(re.Bytes(), bufSize, true)
		if len(again) != len(packets)+1 || again[len(again)-1].err != io.EOF {
			t.Fatalf("re-decoding gave %d results, want %d packets and EOF", len(again), len(packets))
		}
		for i, p := range packets {
			if again[i].err != nil || again[i].data != string(p) {
				t.Fatalf("packet %d changed in round trip", i)
			}
		}
	})
}

func BenchmarkWriteData(b *testing.B) {
	p := make([]byte, 1400)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := WriteData(io.Discard, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendData(b *testing.B) {
	p := make([]byte, 1400)
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendData(buf[:0], p)
	}
}

func BenchmarkReadData(b *testing.B) {
	var stream bytes.Buffer
	for range 1000 {
		if _, err := WriteData(&stream, make([]byte, 1400)); err != nil {
			b.Fatal(err)
		}
	}
	src := bytes.NewReader(stream.Bytes())
	r := bufio.NewReader(src)
	p := make([]byte, 2048)
	b.SetBytes(1400)
	b.ReportAllocs()
	for b.Loop() {
		_, err := ReadData(r, p)
		if err == io.EOF {
			src.Seek(0, io.SeekStart)
			r.Reset(src)
			_, err = ReadData(r, p)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
