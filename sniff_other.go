//go:build !linux

package main

import "errors"

// errNoCapRaw is returned when the kernel refuses a packet socket.
var errNoCapRaw = errors.New("capturing packets needs the CAP_NET_RAW capability")

// openCapture opens Linux's packet capture; elsewhere there is none.
func openCapture(globs []string) (frameSource, error) { return nil, errNotLinux }
