// Package socks5test is a small SOCKS5 server (CONNECT and UDP ASSOCIATE,
// optional username/password) for tests of the client's upstream proxy
// support. It listens on loopback only and counts what it relays.
package socks5test

import (
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
)

// Server is a running SOCKS5 server.
type Server struct {
	ln       net.Listener
	user     string
	password string

	// Connects counts CONNECT requests served; Datagrams counts UDP
	// datagrams relayed in either direction.
	Connects  atomic.Int64
	Datagrams atomic.Int64

	mu    sync.Mutex
	conns []io.Closer
}

// Start runs a server on 127.0.0.1; user and password, when non-empty, are
// required from clients.
func Start(user, password string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, user: user, password: password}
	go s.serve()
	return s, nil
}

// Addr returns the server's host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server and everything it relays.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
}

func (s *Server) track(c io.Closer) {
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.track(c)
		go s.handle(c)
	}
}

func (s *Server) handle(c net.Conn) {
	defer c.Close()
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil || hdr[0] != 5 {
		return
	}
	methods := make([]byte, hdr[1])
	if _, err := io.ReadFull(c, methods); err != nil {
		return
	}
	want := byte(0)
	if s.user != "" || s.password != "" {
		want = 2
	}
	offered := false
	for _, m := range methods {
		offered = offered || m == want
	}
	if !offered {
		c.Write([]byte{5, 0xff})
		return
	}
	c.Write([]byte{5, want})
	if want == 2 {
		var v [2]byte
		if _, err := io.ReadFull(c, v[:]); err != nil {
			return
		}
		u := make([]byte, v[1])
		io.ReadFull(c, u)
		var pl [1]byte
		io.ReadFull(c, pl[:])
		p := make([]byte, pl[0])
		io.ReadFull(c, p)
		if string(u) != s.user || string(p) != s.password {
			c.Write([]byte{1, 1})
			return
		}
		c.Write([]byte{1, 0})
	}
	var req [4]byte
	if _, err := io.ReadFull(c, req[:]); err != nil {
		return
	}
	dst, ok := readAddr(c, req[3])
	if !ok {
		return
	}
	switch req[1] {
	case 1:
		s.connect(c, dst)
	case 3:
		s.associate(c)
	default:
		c.Write([]byte{5, 7, 0, 1, 0, 0, 0, 0, 0, 0})
	}
}

func readAddr(r io.Reader, atyp byte) (string, bool) {
	var host string
	switch atyp {
	case 1, 4:
		n := 4
		if atyp == 4 {
			n = 16
		}
		b := make([]byte, n)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", false
		}
		a, _ := netip.AddrFromSlice(b)
		host = a.Unmap().String()
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(r, l[:]); err != nil {
			return "", false
		}
		b := make([]byte, l[0])
		if _, err := io.ReadFull(r, b); err != nil {
			return "", false
		}
		host = string(b)
	default:
		return "", false
	}
	var p [2]byte
	if _, err := io.ReadFull(r, p[:]); err != nil {
		return "", false
	}
	return net.JoinHostPort(host, strconv.Itoa(int(binary.BigEndian.Uint16(p[:])))), true
}

func reply(c net.Conn, code byte, bound netip.AddrPort) {
	b := []byte{5, code, 0, 1}
	ip := bound.Addr().Unmap().As4()
	b = append(b, ip[:]...)
	b = binary.BigEndian.AppendUint16(b, bound.Port())
	c.Write(b)
}

func (s *Server) connect(c net.Conn, dst string) {
	out, err := net.Dial("tcp", dst)
	if err != nil {
		reply(c, 5, netip.AddrPort{})
		return
	}
	defer out.Close()
	s.track(out)
	s.Connects.Add(1)
	reply(c, 0, out.LocalAddr().(*net.TCPAddr).AddrPort())
	done := make(chan struct{}, 2)
	go func() { io.Copy(out, c); done <- struct{}{} }()
	go func() { io.Copy(c, out); done <- struct{}{} }()
	<-done
}

// associate relays datagrams between the client (the first source seen) and
// anyone else, like a full-cone NAT.
func (s *Server) associate(c net.Conn) {
	u, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		reply(c, 1, netip.AddrPort{})
		return
	}
	defer u.Close()
	s.track(u)
	// Leave the address unspecified so the client uses the server's IP.
	reply(c, 0, netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(u.LocalAddr().(*net.UDPAddr).Port)))
	go func() {
		io.Copy(io.Discard, c)
		u.Close()
	}()
	var client netip.AddrPort
	buf := make([]byte, 65535)
	for {
		n, from, err := u.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if !client.IsValid() {
			client = from
		}
		if from == client {
			if n < 4 || buf[2] != 0 {
				continue
			}
			r := &sliceReader{b: buf[4:n]}
			dst, ok := readAddr(r, buf[3])
			if !ok {
				continue
			}
			ua, err := net.ResolveUDPAddr("udp", dst)
			if err != nil {
				continue
			}
			u.WriteToUDP(r.b, ua)
		} else {
			ip := from.Addr().Unmap().As4()
			out := append([]byte{0, 0, 0, 1}, ip[:]...)
			out = binary.BigEndian.AppendUint16(out, from.Port())
			out = append(out, buf[:n]...)
			u.WriteToUDPAddrPort(out, client)
		}
		s.Datagrams.Add(1)
	}
}

type sliceReader struct{ b []byte }

func (r *sliceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}
