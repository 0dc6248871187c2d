package client

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/snowfall-pt/snowfall/client/rendezvous"
	"github.com/snowfall-pt/snowfall/common/messages"
)

// Broker errors, to be tested with errors.Is.
var (
	// ErrNoProxies is the broker saying no proxy was available.
	ErrNoProxies = errors.New(messages.StrNoProxies)
	// ErrBridgeUnknown is the broker not knowing the requested bridge.
	ErrBridgeUnknown = errors.New(messages.StrBridgeUnknown)
	// ErrBadReply is a broker reply that could not be decoded.
	ErrBadReply = errors.New("malformed broker reply")
)

// BrokerError is an error message sent by the broker.
type BrokerError struct{ Msg string }

func (e *BrokerError) Error() string { return "broker: " + e.Msg }

// Is relates well-known broker messages to ErrNoProxies and ErrBridgeUnknown.
func (e *BrokerError) Is(target error) bool {
	switch target {
	case ErrNoProxies:
		return e.Msg == messages.StrNoProxies
	case ErrBridgeUnknown:
		return e.Msg == messages.StrBridgeUnknown
	}
	return false
}

// broker exchanges offers for answers through a rendezvous method.
type broker struct {
	method      rendezvous.Method
	fingerprint string
	nat         NATSource
	// recheckNAT, when set, tests the NAT again and returns when done
	// (or when its context ends); it runs after noProxiesRecheck
	// consecutive "no proxies" replies, before the next rendezvous.
	recheckNAT func(context.Context)
	timeout    time.Duration

	noProxies atomic.Int32 // consecutive "no proxies" replies
}

// exchange sends offer (SDP JSON) and returns the proxy's answer.
func (b *broker) exchange(ctx context.Context, offer string) (string, error) {
	req := messages.ClientPollRequest{Offer: offer, NAT: b.nat.NATType(), Fingerprint: b.fingerprint}
	poll, err := req.Encode()
	if err != nil {
		return "", fmt.Errorf("encoding poll: %w", err)
	}
	xctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	reply, err := b.method.Exchange(xctx, poll)
	if err != nil {
		if xctx.Err() == context.DeadlineExceeded {
			return "", fmt.Errorf("broker did not answer within %v: %w", b.timeout, err)
		}
		return "", err
	}
	answer, err := decodeReply(reply)
	switch {
	case err == nil:
		b.noProxies.Store(0)
	case errors.Is(err, ErrNoProxies):
		b.afterNoProxies(ctx)
	}
	return answer, err
}

// afterNoProxies counts a "no proxies" reply and, every noProxiesRecheck in
// a row, re-checks the NAT type so that the next poll reports a fresh one.
// The check runs here, before the error goes back to the collector, rather
// than at the next rendezvous, whose offer would wait for it with its
// candidates going stale.
func (b *broker) afterNoProxies(ctx context.Context) {
	if b.noProxies.Add(1) < noProxiesRecheck || b.recheckNAT == nil {
		return
	}
	b.noProxies.Store(0)
	ctx, cancel := context.WithTimeout(ctx, natRecheckTimeout)
	defer cancel()
	b.recheckNAT(ctx)
}

// decodeReply turns a broker reply into an answer or an error.
func decodeReply(reply []byte) (string, error) {
	resp, err := messages.DecodeClientPollResponse(reply)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadReply, err)
	}
	if resp.Error != "" {
		return "", &BrokerError{Msg: resp.Error}
	}
	return resp.Answer, nil
}

// fatal reports the errors that no retry can fix because the configuration
// is wrong: the broker does not know the requested bridge, or a setting is
// invalid. Everything else may pass and is retried with back-off: an HTTP
// status (a CDN's 403, the 404 an AMP cache returns for a broker's 500), a
// redirect (an AMP cache without a fresh copy), a certificate that does not
// verify (a captive portal), a timeout, a malformed reply, "no proxies".
func fatal(err error) bool {
	return errors.Is(err, ErrBridgeUnknown) || errors.Is(err, ErrBadConfig)
}

// failureReason names the kind of a collection error for the log, so that
// a reader can tell a broker without proxies from a blocked front.
func failureReason(err error) string {
	var (
		se        *rendezvous.StatusError
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	switch {
	case errors.Is(err, ErrNoProxies):
		return "no proxies available"
	case errors.Is(err, ErrBridgeUnknown):
		return "bridge unknown to the broker"
	case errors.Is(err, ErrBadConfig):
		return "configuration error"
	case errors.As(err, &se):
		return fmt.Sprintf("broker or front answered HTTP %d", se.Code)
	case errors.Is(err, rendezvous.ErrRedirect):
		return "broker or cache redirected"
	case errors.As(err, &unknownCA), errors.As(err, &hostname), errors.As(err, &invalid):
		return "certificate not trusted"
	case errors.Is(err, ErrBadReply), errors.Is(err, rendezvous.ErrTooLarge):
		return "malformed broker reply"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout"
	}
	return "connection failed"
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
