//go:build !linux

package main

import "errors"

// errNotLinux is what proc mode says outside Linux.
var errNotLinux = errors.New("proc is supported on Linux only; total and iface work here")

// errNoCapRaw is returned when the kernel refuses a packet socket.
var errNoCapRaw = errors.New("capturing packets needs the CAP_NET_RAW capability")

// openCapture opens Linux's packet capture; elsewhere there is none.
func openCapture(globs []string) (frameSource, error) { return nil, errNotLinux }
