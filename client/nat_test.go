package client

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/client/internal/stuntest"
	"github.com/snowfall-pt/snowfall/common/messages"
	"github.com/snowfall-pt/snowfall/common/nattype"
)

// waitFor polls cond until it holds or the bound passes.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// scriptedNAT returns a test function giving results in order, the last
// repeating, and counting calls.
func scriptedNAT(results ...string) (func(context.Context) (string, error), *atomic.Int64) {
	var calls atomic.Int64
	return func(context.Context) (string, error) {
		n := int(calls.Add(1))
		r := results[min(n, len(results))-1]
		if r == nattype.Unknown {
			return r, errors.New("STUN request timed out")
		}
		return r, nil
	}, &calls
}

// TestNATDiscoveryRetries: a failed test used to leave the type unknown
// for the whole session; now it is retried with back-off until it works.
func TestNATDiscoveryRetries(t *testing.T) {
	test, calls := scriptedNAT(nattype.Unknown, nattype.Unknown, nattype.Unrestricted)
	var logs syncBuffer
	d := newDiscoveredNAT(test, slog.New(slog.NewTextHandler(&logs, nil)))
	d.retryBase, d.retryMax = time.Millisecond, 4*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.run(ctx)
	waitFor(t, 10*time.Second, "NAT type known", func() bool { return d.NATType() == nattype.Unrestricted })
	if n := calls.Load(); n != 3 {
		t.Errorf("%d tests, want 3", n)
	}
	out := logs.String()
	for _, want := range []string{
		`msg="NAT type discovery failed; will retry" failures=1 retry_in=`,
		`msg="NAT type discovery failed; will retry" failures=2 retry_in=`,
		`msg="NAT type" nat=unrestricted`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestNATRecheckKeepsKnownType: a re-check that fails keeps what was known.
func TestNATRecheckKeepsKnownType(t *testing.T) {
	test, calls := scriptedNAT(nattype.Restricted, nattype.Unknown, nattype.Unrestricted)
	d := newDiscoveredNAT(test, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.run(ctx)
	waitFor(t, 10*time.Second, "first test", func() bool { return d.NATType() == nattype.Restricted })
	d.recheck(ctx)
	if got := d.NATType(); got != nattype.Restricted || calls.Load() != 2 {
		t.Fatalf("after a failed re-check: %q after %d tests", got, calls.Load())
	}
	d.recheck(ctx)
	if got := d.NATType(); got != nattype.Unrestricted || calls.Load() != 3 {
		t.Fatalf("after a good re-check: %q after %d tests", got, calls.Load())
	}
}

// noProxiesBroker answers every poll with "no proxies" and records the NAT
// type each poll reported, and the tests run in between.
type noProxiesBroker struct {
	mu     sync.Mutex
	events []string
}

func (b *noProxiesBroker) Exchange(_ context.Context, poll []byte) ([]byte, error) {
	req, err := messages.DecodeClientPollRequest(poll)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.events = append(b.events, "poll:"+req.NAT)
	b.mu.Unlock()
	return (&messages.ClientPollResponse{Error: messages.StrNoProxies}).Encode()
}

func (b *noProxiesBroker) note(e string) {
	b.mu.Lock()
	b.events = append(b.events, e)
	b.mu.Unlock()
}

// TestNATRecheckAfterNoProxies: after noProxiesRecheck "no proxies" in a
// row the NAT is tested again before the next poll, which reports the new
// type.
func TestNATRecheckAfterNoProxies(t *testing.T) {
	method := &noProxiesBroker{}
	test, _ := scriptedNAT(nattype.Restricted, nattype.Unrestricted)
	d := newDiscoveredNAT(func(ctx context.Context) (string, error) {
		nat, err := test(ctx)
		method.note("test:" + nat)
		return nat, err
	}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.run(ctx)
	waitFor(t, 10*time.Second, "first test", func() bool { return d.NATType() == nattype.Restricted })

	b := &broker{method: method, nat: d, recheckNAT: d.recheck, timeout: time.Minute}
	for range noProxiesRecheck + 1 {
		if _, err := b.exchange(ctx, `{"type":"offer","sdp":"v=0"}`); !errors.Is(err, ErrNoProxies) {
			t.Fatalf("err = %v", err)
		}
	}
	method.mu.Lock()
	defer method.mu.Unlock()
	want := "test:restricted poll:restricted poll:restricted poll:restricted test:unrestricted poll:unrestricted"
	if got := strings.Join(method.events, " "); got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
}

// TestTransportNATRetry runs the real RFC 5780 test through a Transport
// against a server whose first answer lacks OTHER-ADDRESS (so the first test
// fails): the Transport must still learn the type.
func TestTransportNATRetry(t *testing.T) {
	srv, err := stuntest.StartRFC5780()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.WithoutOther.Store(1)
	tr, err := NewTransport(Config{BrokerURL: "https://broker.invalid/", ICEServers: []string{srv.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	// The first retry comes within natRetryBase.
	waitFor(t, natRetryBase+10*time.Second, "NAT type learned", func() bool { return tr.NATType() == nattype.Unrestricted })
	if n := srv.Requests.Load(); n < 3 {
		t.Errorf("%d STUN requests, want a failed test and a full one", n)
	}
}
