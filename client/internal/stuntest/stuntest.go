// Package stuntest is a minimal STUN server for client tests: it answers
// Binding requests with the source address it saw, on loopback, and can act
// as an RFC 5780 server whose other address is on 127.0.0.2.
package stuntest

import (
	"net"
	"sync/atomic"

	"github.com/pion/stun/v3"
)

// Server is a running STUN server.
type Server struct {
	conn     net.PacketConn
	alt      net.PacketConn // nil unless RFC 5780
	Requests atomic.Int64
	// WithoutOther is how many more responses go out without
	// OTHER-ADDRESS, as from a server that lost its RFC 5780 support or
	// a test that failed; it counts down.
	WithoutOther atomic.Int64
}

// Start listens on 127.0.0.1.
func Start() (*Server, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{conn: c}
	go s.serve()
	return s, nil
}

// StartRFC5780 listens on 127.0.0.1 and 127.0.0.2 and sends OTHER-ADDRESS,
// for the NAT mapping test; both addresses see the same source, so the test
// finds an endpoint-independent mapping ("unrestricted").
func StartRFC5780() (*Server, error) {
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	alt, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		c.Close()
		return nil, err
	}
	s := &Server{conn: c, alt: alt}
	go s.serveOn(c)
	go s.serveOn(alt)
	return s, nil
}

// URL returns the server's stun: URL.
func (s *Server) URL() string { return "stun:" + s.conn.LocalAddr().String() }

// Close stops the server.
func (s *Server) Close() error {
	if s.alt != nil {
		s.alt.Close()
	}
	return s.conn.Close()
}

func (s *Server) serve() { s.serveOn(s.conn) }

func (s *Server) serveOn(conn net.PacketConn) {
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFrom(buf)
		if err != nil {
			return
		}
		req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if req.Decode() != nil || req.Type != stun.BindingRequest {
			continue
		}
		s.Requests.Add(1)
		src := from.(*net.UDPAddr)
		setters := []stun.Setter{stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: src.IP, Port: src.Port}}
		if s.alt != nil && s.WithoutOther.Add(-1) < 0 {
			s.WithoutOther.Store(0)
			a := s.alt.LocalAddr().(*net.UDPAddr)
			setters = append(setters, &stun.OtherAddress{IP: a.IP, Port: a.Port})
		}
		res, err := stun.Build(append(setters, stun.Fingerprint)...)
		if err != nil {
			continue
		}
		conn.WriteTo(res.Raw, from)
	}
}
