//go:build !linux

package server

import "syscall"

func bindAddressNoPort(network, address string, c syscall.RawConn) error { return nil }
