package client

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
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
	timeout     time.Duration
}

// exchange sends offer (SDP JSON) and returns the proxy's answer.
func (b *broker) exchange(ctx context.Context, offer string) (string, error) {
	req := messages.ClientPollRequest{Offer: offer, NAT: b.nat.NATType(), Fingerprint: b.fingerprint}
	poll, err := req.Encode()
	if err != nil {
		return "", fmt.Errorf("encoding poll: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	reply, err := b.method.Exchange(ctx, poll)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return "", fmt.Errorf("broker did not answer within %v: %w", b.timeout, err)
		}
		return "", err
	}
	return decodeReply(reply)
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

// permanent reports errors that retrying with the same configuration cannot
// fix: the broker does not know the bridge, refuses the request, redirects
// it elsewhere, or presents a certificate that does not verify.
func permanent(err error) bool {
	if errors.Is(err, ErrBridgeUnknown) || errors.Is(err, rendezvous.ErrRedirect) ||
		errors.Is(err, ErrBadConfig) {
		return true
	}
	// A certificate the client does not trust will not become trusted by
	// retrying (and may be an interception attempt).
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
	)
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return true
	}
	var se *rendezvous.StatusError
	if errors.As(err, &se) {
		c := se.Code
		return c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests
	}
	return false
}
