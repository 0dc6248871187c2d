package client

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/snowfall-pt/snowfall/client/rendezvous"
)

func TestFatal(t *testing.T) {
	for _, err := range []error{
		&BrokerError{Msg: "bridge with requested fingerprint is unknown to the broker"},
		fmt.Errorf("%w: url: bad", ErrBadConfig),
	} {
		if !fatal(err) {
			t.Errorf("%v: not fatal", err)
		}
	}
	// Everything else may pass: a front's or cache's status, a redirect,
	// an intercepting certificate, a timeout, a bad or empty reply.
	transient := []error{
		ErrNoProxies,
		fmt.Errorf("%w: %w", ErrBadReply, errors.New("x")),
		fmt.Errorf("%w (HTTP 302)", rendezvous.ErrRedirect),
		fmt.Errorf("broker request: %w", x509.UnknownAuthorityError{}),
		fmt.Errorf("broker request: %w", x509.HostnameError{}),
		fmt.Errorf("broker did not answer: %w", context.DeadlineExceeded),
		errors.New("connection refused"),
	}
	for _, code := range []int{400, 403, 404, 405, 408, 410, 429, 500, 502, 503} {
		transient = append(transient, &rendezvous.StatusError{Code: code})
	}
	for _, err := range transient {
		if fatal(err) {
			t.Errorf("%v: fatal", err)
		}
		if failureReason(err) == "" {
			t.Errorf("%v: no reason", err)
		}
	}
	for err, want := range map[error]string{
		ErrNoProxies:                                "no proxies available",
		&rendezvous.StatusError{Code: 403}:          "broker or front answered HTTP 403",
		rendezvous.ErrRedirect:                      "broker or cache redirected",
		x509.UnknownAuthorityError{}:                "certificate not trusted",
		context.DeadlineExceeded:                    "timeout",
		fmt.Errorf("%w: x", ErrBadConfig):           "configuration error",
		fmt.Errorf("x: %w", rendezvous.ErrTooLarge): "malformed broker reply",
	} {
		if got := failureReason(err); got != want {
			t.Errorf("failureReason(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	const base, max = 2 * time.Second, 10 * time.Second
	for attempt := range 70 {
		d := min(base<<min(attempt, 10), max)
		seen := map[time.Duration]bool{}
		for range 50 {
			got := backoff(attempt, base, max)
			if got < d/2 || got > d {
				t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, got, d/2, d)
			}
			seen[got] = true
		}
		if len(seen) < 2 {
			t.Fatalf("attempt %d: no jitter, always %v", attempt, seen)
		}
	}
}

// syncBuffer is a log destination safe to read while goroutines log.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// flakyMethod fails its first exchanges with errs, then hands polls to next.
type flakyMethod struct {
	errs  []error
	next  rendezvous.Method
	calls atomic.Int64
}

func (m *flakyMethod) Exchange(ctx context.Context, poll []byte) ([]byte, error) {
	if n := m.calls.Add(1); int(n) <= len(m.errs) {
		return nil, m.errs[n-1]
	}
	return m.next.Exchange(ctx, poll)
}

// TestTransientRendezvousErrors: a CDN's 403 and an AMP cache's redirect
// used to end the session's collector for good; now they are retried, and
// the log says so.
func TestTransientRendezvousErrors(t *testing.T) {
	bridge := echoBridge(t)
	method := &flakyMethod{
		errs: []error{&rendezvous.StatusError{Code: 403}, fmt.Errorf("%w (HTTP 302)", rendezvous.ErrRedirect)},
		next: newLoopProxy(t, bridge, ""),
	}
	cfg := loopConfig(nil)
	cfg.Rendezvous = method
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.ConnectTimeout = time.Minute
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	conn, err := tr.Dial(context.Background())
	if err != nil {
		t.Fatalf("Dial after a 403 and a redirect: %v\n%s", err, logs.String())
	}
	transfer(t, conn, 100000, nil)
	conn.Close()
	if n := method.calls.Load(); n < 3 {
		t.Errorf("%d rendezvous attempts, want 3", n)
	}
	out := logs.String()
	for _, want := range []string{
		`msg="cannot collect a proxy; will retry" reason="broker or front answered HTTP 403" failures=1 retry_in=`,
		`msg="cannot collect a proxy; will retry" reason="broker or cache redirected" failures=2 retry_in=`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "giving up") {
		t.Errorf("collector gave up:\n%s", out)
	}
}

// TestFatalRendezvousError: a configuration error still ends Dial at once,
// with a log line that says why.
func TestFatalRendezvousError(t *testing.T) {
	method := &flakyMethod{errs: []error{&BrokerError{Msg: "bridge with requested fingerprint is unknown to the broker"}}}
	cfg := loopConfig(nil)
	cfg.Rendezvous = method
	var logs syncBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.ConnectTimeout = time.Hour
	tr, err := NewTransport(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.Dial(context.Background()); !errors.Is(err, ErrBridgeUnknown) {
		t.Fatalf("err = %v, want ErrBridgeUnknown", err)
	}
	if n := method.calls.Load(); n != 1 {
		t.Errorf("%d attempts, want 1", n)
	}
	if want := `msg="cannot collect proxies; giving up: the configuration must change" reason="bridge unknown to the broker"`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %q:\n%s", want, logs.String())
	}
}
