package webrtcpeer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/datachannel"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/snowfall-pt/snowfall/common/iceaddr"
	"github.com/snowfall-pt/snowfall/common/sdpjson"
)

// answerer is an in-process proxy: it answers offers and hands each opened
// data channel to onOpen.
type answerer struct {
	t      *testing.T
	api    *webrtc.API
	onOpen func(rwc datachannel.ReadWriteCloser)
	edit   func(*webrtc.SessionDescription, *webrtc.PeerConnection)

	mu     sync.Mutex
	labels []string
	offers []string
	pcs    []*webrtc.PeerConnection
}

func newAnswerer(t *testing.T, onOpen func(datachannel.ReadWriteCloser)) *answerer {
	var se webrtc.SettingEngine
	se.DetachDataChannels()
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetIncludeLoopbackCandidate(true)
	a := &answerer{t: t, api: webrtc.NewAPI(webrtc.WithSettingEngine(se)), onOpen: onOpen}
	t.Cleanup(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, pc := range a.pcs {
			pc.Close()
		}
	})
	return a
}

func (a *answerer) exchange(ctx context.Context, offerJSON string) (string, error) {
	a.mu.Lock()
	a.offers = append(a.offers, offerJSON)
	a.mu.Unlock()
	offer, err := sdpjson.Decode(offerJSON)
	if err != nil {
		return "", err
	}
	pc, err := a.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	a.pcs = append(a.pcs, pc)
	a.mu.Unlock()
	pc.OnDataChannel(func(dc *webrtc.DataChannel) {
		a.mu.Lock()
		a.labels = append(a.labels, dc.Label())
		a.mu.Unlock()
		dc.OnOpen(func() {
			rwc, err := dc.Detach()
			if err != nil {
				a.t.Error(err)
				return
			}
			if a.onOpen != nil {
				go a.onOpen(rwc)
			}
		})
	})
	if err := pc.SetRemoteDescription(*offer); err != nil {
		return "", err
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", err
	}
	g := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		return "", err
	}
	<-g
	local := *pc.LocalDescription()
	if a.edit != nil {
		a.edit(&local, pc)
	}
	return sdpjson.Encode(&local)
}

func loopDialer(cfg Config) *Dialer {
	cfg.IncludeLoopback = true
	cfg.KeepLocalAddresses = true
	return NewDialer(cfg)
}

func echo(rwc datachannel.ReadWriteCloser) {
	buf := make([]byte, 65536)
	for {
		n, err := rwc.Read(buf)
		if err != nil {
			rwc.Close()
			return
		}
		if _, err := rwc.Write(buf[:n]); err != nil {
			return
		}
	}
}

func TestDialEcho(t *testing.T) {
	a := newAnswerer(t, echo)
	conn, err := loopDialer(Config{}).Dial(context.Background(), a.exchange)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	data := bytes.Repeat([]byte("snowfall"), 256<<10) // 2 MiB, written in one call
	go conn.Write(data)
	got := make([]byte, len(data))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("echo: %v", err)
	}
	// The answerer runs on this host: its end of the ICE pair is one of
	// this host's addresses (which one depends on the host's interfaces).
	if pa := conn.ProxyAddr(); !hostHasAddr(t, pa) {
		t.Errorf("ProxyAddr %v, want an address of this host", pa)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.labels) != 1 || !regexp.MustCompile(`^snowflake-[0-9a-f]{16}$`).MatchString(a.labels[0]) {
		t.Errorf("labels %q", a.labels)
	}
	offer := a.offers[0]
	if !strings.Contains(offer, "a=candidate") || !strings.Contains(offer, "end-of-candidates") {
		t.Errorf("offer lacks its candidates (trickle?)")
	}
	if !strings.Contains(offer, `"type":"offer"`) {
		t.Errorf("offer JSON %q", offer[:40])
	}
}

// TestStripLocalCandidates: the offer loses its loopback host candidates
// unless they are kept, and hides related addresses either way. The kept
// case proves that gathering found a loopback candidate to strip, so the
// test cannot pass on an offer that never had one.
func TestStripLocalCandidates(t *testing.T) {
	offer := func(keep bool) string {
		errStop := errors.New("stop")
		var offer string
		d := NewDialer(Config{IncludeLoopback: true, KeepLocalAddresses: keep})
		_, err := d.Dial(context.Background(), func(ctx context.Context, o string) (string, error) {
			offer = o
			return "", errStop
		})
		if !errors.Is(err, errStop) {
			t.Fatal(err)
		}
		desc, err := sdpjson.Decode(offer)
		if err != nil {
			t.Fatal(err)
		}
		return desc.SDP
	}
	loopbackHost := func(sdp string) bool {
		for _, l := range strings.Split(sdp, "\r\n") {
			f := strings.Fields(l)
			if strings.HasPrefix(l, "a=candidate") && len(f) >= 8 && f[7] == "host" {
				if a, err := netip.ParseAddr(f[4]); err == nil && (a.IsLoopback() || iceaddr.IsLocal(a)) {
					return true
				}
			}
		}
		return false
	}
	kept, stripped := offer(true), offer(false)
	if !loopbackHost(kept) {
		t.Fatalf("no loopback host candidate gathered with KeepLocalAddresses:\n%s", kept)
	}
	if loopbackHost(stripped) {
		t.Errorf("local host candidate kept:\n%s", stripped)
	}
	for _, sdp := range []string{kept, stripped} {
		if n := strings.Count(sdp, " raddr "); n != strings.Count(sdp, " raddr 0.0.0.0 rport 0") {
			t.Errorf("related address not hidden:\n%s", sdp)
		}
	}
}

func TestBadAnswers(t *testing.T) {
	a := newAnswerer(t, echo)
	noCand := func(d *webrtc.SessionDescription, _ *webrtc.PeerConnection) {
		var keep []string
		for _, l := range strings.Split(d.SDP, "\r\n") {
			if !strings.HasPrefix(l, "a=candidate") {
				keep = append(keep, l)
			}
		}
		d.SDP = strings.Join(keep, "\r\n")
	}
	tests := []struct {
		name     string
		exchange ExchangeFunc
		want     error
	}{
		{"no candidates", func(ctx context.Context, o string) (string, error) {
			a.edit = noCand
			defer func() { a.edit = nil }()
			return a.exchange(ctx, o)
		}, ErrNoCandidates},
		{"offer back", func(ctx context.Context, o string) (string, error) { return o, nil }, ErrNotAnswer},
		{"not json", func(ctx context.Context, o string) (string, error) { return "{", nil }, nil},
		{"unknown type", func(ctx context.Context, o string) (string, error) { return `{"type":"x","sdp":"v=0"}`, nil }, nil},
		{"garbage sdp", func(ctx context.Context, o string) (string, error) {
			return `{"type":"answer","sdp":"a=candidate:garbage"}`, nil
		}, nil},
	}
	for _, tt := range tests {
		_, err := loopDialer(Config{}).Dial(context.Background(), tt.exchange)
		if err == nil {
			t.Errorf("%s: no error", tt.name)
			continue
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestNeverOpens: the proxy answers but then vanishes; Dial must fail, not
// hang.
func TestNeverOpens(t *testing.T) {
	a := newAnswerer(t, nil)
	a.edit = func(_ *webrtc.SessionDescription, pc *webrtc.PeerConnection) { pc.Close() }
	done := make(chan error, 1)
	go func() {
		_, err := loopDialer(Config{OpenTimeout: time.Second}).Dial(context.Background(), a.exchange)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Dial succeeded")
		}
	case <-time.After(time.Minute):
		t.Fatal("Dial hung")
	}
}

func TestStale(t *testing.T) {
	hold := make(chan struct{})
	defer close(hold)
	a := newAnswerer(t, func(rwc datachannel.ReadWriteCloser) { <-hold })
	conn, err := loopDialer(Config{StaleTimeout: 800 * time.Millisecond}).Dial(context.Background(), a.exchange)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Done():
		if !errors.Is(conn.Err(), ErrStale) {
			t.Fatalf("closed with %v, want ErrStale", conn.Err())
		}
	case <-time.After(time.Minute):
		t.Fatal("stale channel not closed")
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("read on a stale conn succeeded")
	}
}

// TestBackpressure: while the proxy does not read, writes block instead of
// buffering without bound; once it reads, everything arrives.
func TestBackpressure(t *testing.T) {
	start := make(chan struct{})
	var received atomic.Int64
	a := newAnswerer(t, func(rwc datachannel.ReadWriteCloser) {
		<-start
		buf := make([]byte, 65536)
		for {
			n, err := rwc.Read(buf)
			received.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	conn, err := loopDialer(Config{StaleTimeout: time.Minute}).Dial(context.Background(), a.exchange)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const total = 32 << 20
	var written atomic.Int64
	done := make(chan error, 1)
	blocked := make(chan struct{}, 1)
	conn.onBlocked = func() {
		select {
		case blocked <- struct{}{}:
		default:
		}
	}
	go func() {
		chunk := make([]byte, 16<<10)
		for written.Load() < total {
			n, err := conn.Write(chunk)
			written.Add(int64(n))
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// The writer must end up waiting for the send buffer to drain, with
	// the transfer unfinished.
	select {
	case <-blocked:
	case err := <-done:
		t.Fatalf("wrote all %d bytes to a proxy that reads nothing (err %v)", written.Load(), err)
	case <-time.After(time.Minute):
		t.Fatal("the writer never waited for the send buffer")
	}
	select {
	case err := <-done:
		t.Fatalf("writer finished (err %v) while the proxy reads nothing", err)
	default:
	}
	if w := written.Load(); w >= total {
		t.Fatalf("wrote all %d bytes to a proxy that reads nothing", w)
	}
	close(start)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("writer stuck after the proxy started reading")
	}
	for i := 0; i < 600 && received.Load() < total; i++ {
		time.Sleep(100 * time.Millisecond)
	}
	if received.Load() != total {
		t.Fatalf("proxy received %d of %d bytes", received.Load(), total)
	}
}

func TestLabel(t *testing.T) {
	re := regexp.MustCompile(`^snowflake-[0-9a-f]{16}$`)
	if l1, l2 := Label(), Label(); !re.MatchString(l1) || l1 == l2 {
		t.Errorf("labels %q %q", l1, l2)
	}
}

// hostHasAddr reports whether a is assigned to one of this host's
// interfaces.
func hostHasAddr(t *testing.T, a netip.Addr) bool {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, ia := range addrs {
		if p, err := netip.ParsePrefix(ia.String()); err == nil && p.Addr().Unmap() == a {
			return true
		}
	}
	return false
}
