package testbed

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/stun/v3"
)

// STUNServer answers STUN Binding Requests on two addresses and names each
// as the other's OTHER-ADDRESS (RFC 5780), which is what lets a Snowflake
// client run the mapping test and learn that it is "unrestricted".
// CHANGE-REQUEST is not honoured: with two sockets it cannot be, and the
// Snowflake peers only run the mapping test.
type STUNServer struct {
	// Primary and Other are the two listening addresses.
	Primary, Other netip.AddrPort

	conns    [2]net.PacketConn
	wg       sync.WaitGroup
	requests atomic.Int64
}

// StartSTUNServer listens on primary and other inside ns (nil: the caller's
// namespace) and serves until Close.
func StartSTUNServer(ns *Namespace, primary, other netip.AddrPort) (*STUNServer, error) {
	s := &STUNServer{Primary: primary, Other: other}
	for i, a := range []netip.AddrPort{primary, other} {
		c, err := ns.ListenPacket("udp4", a.String())
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("testbed: STUN listen %s: %w", a, err)
		}
		s.conns[i] = c
	}
	for i := range s.conns {
		s.wg.Add(1)
		go s.serve(s.conns[i], s.addr(i), s.addr(1-i))
	}
	return s, nil
}

func (s *STUNServer) addr(i int) netip.AddrPort {
	if i == 0 {
		return s.Primary
	}
	return s.Other
}

// URL is the primary address as an ICE server URL ("stun:IP:PORT").
func (s *STUNServer) URL() string { return "stun:" + s.Primary.String() }

// Requests counts the Binding Requests answered so far.
func (s *STUNServer) Requests() int64 { return s.requests.Load() }

func (s *STUNServer) serve(c net.PacketConn, self, other netip.AddrPort) {
	defer s.wg.Done()
	buf := make([]byte, 1500)
	req := new(stun.Message)
	resp := new(stun.Message)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		ua, ok := from.(*net.UDPAddr)
		if !ok || !stun.IsMessage(buf[:n]) {
			continue
		}
		req.Raw = append(req.Raw[:0], buf[:n]...)
		if err := req.Decode(); err != nil || req.Type != stun.BindingRequest {
			continue
		}
		resp.Reset()
		err = resp.Build(
			stun.NewTransactionIDSetter(req.TransactionID),
			stun.BindingSuccess,
			&stun.XORMappedAddress{IP: ua.IP, Port: ua.Port},
			&stun.ResponseOrigin{IP: net.IP(self.Addr().AsSlice()), Port: int(self.Port())},
			&stun.OtherAddress{IP: net.IP(other.Addr().AsSlice()), Port: int(other.Port())},
			stun.NewSoftware("snowfall-testbed"),
			stun.Fingerprint,
		)
		if err != nil {
			continue
		}
		if _, err := c.WriteTo(resp.Raw, from); err == nil {
			s.requests.Add(1)
		}
	}
}

// Close stops both sockets and waits for the server goroutines.
func (s *STUNServer) Close() error {
	var errs []error
	for _, c := range s.conns {
		if c != nil {
			if err := c.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}
