package proxy

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"

	"github.com/snowfall-pt/snowfall/common/messages"
)

// MaxReplyBody bounds what the proxy reads from a broker or probe reply, as
// the broker bounds what it reads from us.
const MaxReplyBody = 100000

// Errors from the broker exchange.
var (
	ErrBrokerStatus     = errors.New("unexpected HTTP status from broker")
	ErrBrokerBodyTooBig = errors.New("broker reply too large")
	// ErrRelayPatternRejected means the broker refused our
	// AcceptedRelayPattern: it only has relays that we would not accept.
	ErrRelayPatternRejected = errors.New("broker rejected our relay pattern")
	// ErrNoPoster reports a platform without a default Poster (js/wasm).
	ErrNoPoster = errors.New("proxy: no Poster for HTTP on this platform")
)

// brokerClient speaks the proxy side of the broker protocol (PROTOCOL.md
// §3.5, §3.6).
type brokerClient struct {
	pollURL   string
	answerURL string
	poster    Poster
	proxyType string
	pattern   string
}

func newBrokerClient(base string, poster Poster, proxyType, pattern string) (*brokerClient, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, fmt.Errorf("broker URL: %w", err)
	}
	// Resolved as relative references, like the reference proxy: a broker
	// at https://host/a/ is polled at https://host/a/proxy.
	return &brokerClient{
		pollURL:   u.ResolveReference(&url.URL{Path: "proxy"}).String(),
		answerURL: u.ResolveReference(&url.URL{Path: "answer"}).String(),
		poster:    poster,
		proxyType: proxyType,
		pattern:   pattern,
	}, nil
}

// newSid returns a fresh session id: 16 random bytes in standard base64
// without padding (22 characters), as Tor's proxy makes them.
func newSid() string {
	var b [16]byte
	randomBytes(b[:])
	return base64.RawStdEncoding.EncodeToString(b[:])
}

// floorClients rounds a client count down to a multiple of 8, so that the
// broker learns little about how busy a proxy is.
func floorClients(n int) int {
	if n < 0 {
		return 0
	}
	return n / 8 * 8
}

// poll asks the broker for a client. The broker holds the request for up to
// 10 s when it has no client.
func (b *brokerClient) poll(ctx context.Context, sid, nat string, clients int) (*messages.ProxyPollResponse, error) {
	return b.pollPattern(ctx, sid, nat, clients, b.pattern)
}

// pollPattern is poll with another AcceptedRelayPattern.
func (b *brokerClient) pollPattern(ctx context.Context, sid, nat string, clients int, pattern string) (*messages.ProxyPollResponse, error) {
	req := messages.ProxyPollRequest{
		Sid:                  sid,
		Version:              messages.ProxyVersion,
		Type:                 b.proxyType,
		NAT:                  nat,
		Clients:              floorClients(clients),
		AcceptedRelayPattern: &pattern,
	}
	body, err := req.Encode()
	if err != nil {
		return nil, fmt.Errorf("encoding poll: %w", err)
	}
	reply, err := b.post(ctx, b.pollURL, body)
	if err != nil {
		return nil, err
	}
	return decodePollResponse(reply)
}

// decodePollResponse parses a broker's reply to a poll. It is separate from
// poll so that fuzzing reaches everything the proxy does with broker bytes.
func decodePollResponse(reply []byte) (*messages.ProxyPollResponse, error) {
	resp, err := messages.DecodeProxyPollResponse(reply)
	if err != nil {
		if resp != nil && resp.Status == messages.StatusIncorrectRelayPattern ||
			err.Error() == messages.StatusIncorrectRelayPattern {
			return resp, ErrRelayPatternRejected
		}
		return nil, fmt.Errorf("decoding poll reply: %w", err)
	}
	if resp == nil {
		return nil, errors.New("decoding poll reply: empty")
	}
	return resp, nil
}

// answer sends our answer for the client of sid. It fails when the broker
// reports that the client is gone.
func (b *brokerClient) answer(ctx context.Context, sid, answer string) error {
	req := messages.ProxyAnswerRequest{Version: messages.ProxyVersion, Sid: sid, Answer: answer}
	body, err := req.Encode()
	if err != nil {
		return fmt.Errorf("encoding answer: %w", err)
	}
	reply, err := b.post(ctx, b.answerURL, body)
	if err != nil {
		return err
	}
	if _, err := messages.DecodeProxyAnswerResponse(reply); err != nil {
		return fmt.Errorf("broker refused answer: %w", err)
	}
	return nil
}

func (b *brokerClient) post(ctx context.Context, u string, body []byte) ([]byte, error) {
	reply, err := b.poster.Post(ctx, u, body)
	if err == nil && len(reply) > MaxReplyBody {
		// A Poster that does not bound its reply is still held to it.
		return nil, ErrBrokerBodyTooBig
	}
	return reply, err
}
