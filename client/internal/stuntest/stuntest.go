// Package stuntest is a minimal STUN server for client tests: it answers
// Binding requests with the source address it saw, on loopback.
package stuntest

import (
	"net"
	"sync/atomic"

	"github.com/pion/stun/v3"
)

// Server is a running STUN server.
type Server struct {
	conn     net.PacketConn
	Requests atomic.Int64
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

// URL returns the server's stun: URL.
func (s *Server) URL() string { return "stun:" + s.conn.LocalAddr().String() }

// Close stops the server.
func (s *Server) Close() error { return s.conn.Close() }

func (s *Server) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		req := &stun.Message{Raw: append([]byte(nil), buf[:n]...)}
		if req.Decode() != nil || req.Type != stun.BindingRequest {
			continue
		}
		s.Requests.Add(1)
		src := from.(*net.UDPAddr)
		res, err := stun.Build(stun.NewTransactionIDSetter(req.TransactionID), stun.BindingSuccess,
			&stun.XORMappedAddress{IP: src.IP, Port: src.Port}, stun.Fingerprint)
		if err != nil {
			continue
		}
		s.conn.WriteTo(res.Raw, from)
	}
}
