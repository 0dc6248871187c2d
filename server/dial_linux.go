package server

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from <linux/in.h>; the
// syscall package does not define it.
const ipBindAddressNoPort = 24

// bindAddressNoPort lets the kernel pick the source port at connect time, so
// that binding many connections to random source addresses does not use up
// the ephemeral ports of each address at bind time.
func bindAddressNoPort(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	// Old kernels lack the option; the connection works without it.
	_ = serr
	return nil
}
