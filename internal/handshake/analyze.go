package handshake

import (
	"errors"
	"fmt"
)

// Datagram is one captured DTLS datagram and its direction.
type Datagram struct {
	FromClient bool
	Data       []byte
}

// FlightShape is one run of consecutive datagrams from one side: what an
// observer sees of a flight, encrypted or not.
type FlightShape struct {
	FromClient bool
	// Datagrams are the datagram sizes.
	Datagrams []int
	// Records are the records' sizes on the wire.
	Records []int
	// HandshakeRecords are the sizes of the records that carry the
	// handshake, not application data: in DTLS 1.3 the unified header's
	// epoch bits tell (3 is application traffic), in 1.2 the content type.
	HandshakeRecords []int
}

// isApplication reports a record of application data as an observer can
// tell it.
func isApplication(r Record) bool {
	if r.Unified {
		return r.Epoch == 3
	}
	return r.ContentType == ContentApplicationData
}

// DTLSHandshake is a DTLS handshake as seen on the path.
type DTLSHandshake struct {
	// ClientHello is the first ClientHello; ClientHellos counts them all
	// (more than one after a HelloVerifyRequest or HelloRetryRequest).
	ClientHello  *ClientHello
	ClientHellos []*ClientHello
	// FirstRecordVersion is the record-layer version of the datagram that
	// carried the first ClientHello's first fragment.
	FirstRecordVersion uint16
	// HelloDatagrams are the sizes of the datagrams carrying the first
	// ClientHello; HelloFragments its fragment count.
	HelloDatagrams []int
	HelloFragments int
	HelloSize      int

	HelloVerifyRequest *HelloVerifyRequest
	// ServerHello is the first real ServerHello (not a retry request).
	ServerHello       *ServerHello
	HelloRetryRequest *ServerHello
	// Certificates are sent in the clear (DTLS 1.2 only), per side.
	ClientCertificates, ServerCertificates [][]byte

	Flights []FlightShape
}

// ErrNoClientHello reports a capture without a ClientHello.
var ErrNoClientHello = errors.New("handshake: no ClientHello")

// ParseDTLSHandshake parses one connection's datagrams in capture order.
func ParseDTLSHandshake(datagrams []Datagram) (*DTLSHandshake, error) {
	h := &DTLSHandshake{}
	var client, server Reassembler
	seenC, seenS := 0, 0
	for i, d := range datagrams {
		if n := len(h.Flights); n == 0 || h.Flights[n-1].FromClient != d.FromClient {
			h.Flights = append(h.Flights, FlightShape{FromClient: d.FromClient})
		}
		fl := &h.Flights[len(h.Flights)-1]
		fl.Datagrams = append(fl.Datagrams, len(d.Data))
		recs, err := ParseDTLSRecords(d.Data)
		for _, r := range recs {
			fl.Records = append(fl.Records, r.Len())
			if !isApplication(r) {
				fl.HandshakeRecords = append(fl.HandshakeRecords, r.Len())
			}
		}
		if err != nil {
			return h, fmt.Errorf("datagram %d: %w", i+1, err)
		}
		a := &server
		if d.FromClient {
			a = &client
		}
		for _, r := range recs {
			if err := a.Add(r); err != nil {
				return h, fmt.Errorf("datagram %d: %w", i+1, err)
			}
		}
		if d.FromClient && h.ClientHello == nil && len(recs) > 0 && recs[0].ContentType == ContentHandshake {
			h.HelloDatagrams = append(h.HelloDatagrams, len(d.Data))
			if h.FirstRecordVersion == 0 {
				h.FirstRecordVersion = recs[0].Version
			}
		}
		// Decode whatever completed.
		for _, m := range client.Messages()[seenC:] {
			if err := h.clientMessage(m); err != nil {
				return h, err
			}
		}
		seenC = len(client.Messages())
		for _, m := range server.Messages()[seenS:] {
			if err := h.serverMessage(m); err != nil {
				return h, err
			}
		}
		seenS = len(server.Messages())
	}
	if h.ClientHello == nil {
		return h, ErrNoClientHello
	}
	return h, nil
}

func (h *DTLSHandshake) clientMessage(m Message) error {
	switch m.Type {
	case TypeClientHello:
		ch, err := ParseClientHello(m.Body, true)
		if err != nil {
			return err
		}
		if h.ClientHello == nil {
			h.ClientHello = ch
			h.HelloFragments = m.Fragments
			h.HelloSize = len(m.Body)
		}
		h.ClientHellos = append(h.ClientHellos, ch)
	case TypeCertificate:
		certs, err := Certificates(m.Body)
		if err != nil {
			return err
		}
		h.ClientCertificates = certs
	}
	return nil
}

func (h *DTLSHandshake) serverMessage(m Message) error {
	switch m.Type {
	case TypeHelloVerifyRequest:
		hv, err := ParseHelloVerifyRequest(m.Body)
		if err != nil {
			return err
		}
		h.HelloVerifyRequest = hv
	case TypeServerHello:
		sh, err := ParseServerHello(m.Body)
		if err != nil {
			return err
		}
		if sh.HelloRetryRequest {
			h.HelloRetryRequest = sh
		} else if h.ServerHello == nil {
			h.ServerHello = sh
		}
	case TypeCertificate:
		certs, err := Certificates(m.Body)
		if err != nil {
			return err
		}
		h.ServerCertificates = certs
	}
	return nil
}

// TLSClientHello is a ClientHello read off a TCP stream.
type TLSClientHello struct {
	*ClientHello
	// RecordVersion is the first record's version; Records how many
	// records carried the hello; Size its body length.
	RecordVersion uint16
	Records       int
	Size          int
}

// ParseTLSClientHello parses the ClientHello at the start of a client's
// TCP stream.
func ParseTLSClientHello(stream []byte) (*TLSClientHello, error) {
	recs, _, err := ParseTLSRecords(stream)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, ErrNoClientHello
	}
	msgs, err := TLSMessages(recs)
	if err != nil {
		return nil, err
	}
	if len(msgs) == 0 || msgs[0].Type != TypeClientHello {
		return nil, ErrNoClientHello
	}
	ch, err := ParseClientHello(msgs[0].Body, false)
	if err != nil {
		return nil, err
	}
	out := &TLSClientHello{ClientHello: ch, RecordVersion: recs[0].Version, Size: len(msgs[0].Body)}
	// Records up to the one completing the hello.
	n := 0
	for _, r := range recs {
		out.Records++
		n += len(r.Fragment)
		if n >= 4+len(msgs[0].Body) {
			break
		}
	}
	return out, nil
}
