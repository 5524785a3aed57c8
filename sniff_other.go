//go:build !linux

package main

import (
	"errors"
	"net"
)

// errNotLinux is what proc mode says outside Linux.
var errNotLinux = errors.New("proc is supported on Linux only; total and iface work here")

// errNoCapRaw is returned when the kernel refuses a packet socket.
var errNoCapRaw = errors.New("capturing packets needs the CAP_NET_RAW capability")

// capture is Linux's packet capture; elsewhere it cannot be opened.
type capture struct{}

func captureIfaces(globs []string) ([]net.Interface, error) { return nil, errNotLinux }
func pickIfaces(globs []string) ([]net.Interface, []string, error) {
	return nil, nil, errNotLinux
}
func openCapture(ifaces []net.Interface) (*capture, error) { return nil, errNotLinux }
func (c *capture) update(ifaces []net.Interface)           {}
func (c *capture) run(handle func(*frame), batch func(begin bool), syn func(*frame)) error {
	return errNotLinux
}
func (c *capture) stop()                      {}
func (c *capture) ifaces() []string           { return nil }
func (c *capture) indexNames() map[int]string { return nil }
func (c *capture) takeDrops() uint64          { return 0 }
