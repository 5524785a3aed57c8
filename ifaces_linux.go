package main

// The interfaces netuse reads on Linux: those --iface picks (the
// capture's and the kernel source's), listed again when the kernel says
// they changed (ifaceWatch).

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// ifaceWatch counts the kernel's notifications of links and addresses
// (rtnetlink's multicast groups) in its namespace, so that a report lists
// the interfaces again only when one came, went, or changed its flags,
// MTU or addresses: a list is a netlink dump, and the capture's pick
// another dump for each interface's addresses, every report.
type ifaceWatch struct {
	gen atomic.Uint64 // notifications so far, plus one; 0 once the watch has ended
}

var (
	ifaceWatchOnce sync.Once
	ifaceWatcher   *ifaceWatch
)

// watchedIfaces returns the process's watch, started by its first call in
// the network namespace of the calling thread (netuse's); nil if the
// kernel refused the socket, and then every caller lists every time. The
// watch lives as long as the process: a goroutine that sleeps in the
// poller until a notification comes.
func watchedIfaces() *ifaceWatch {
	ifaceWatchOnce.Do(func() {
		fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
		if err != nil {
			return
		}
		groups := uint32(unix.RTMGRP_LINK | unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR)
		if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
			unix.Close(fd)
			return
		}
		w := &ifaceWatch{}
		w.gen.Store(1)
		go w.run(os.NewFile(uintptr(fd), "rtnetlink"))
		ifaceWatcher = w
	})
	return ifaceWatcher
}

// run counts each read, whatever it holds: a notification, or ENOBUFS,
// the kernel's word that some were dropped for want of room. Another
// error ends the watch, which then reads as changed at every look.
func (w *ifaceWatch) run(f *os.File) {
	buf := make([]byte, 16<<10)
	for {
		_, err := f.Read(buf)
		w.gen.Add(1)
		if err != nil && !errors.Is(err, unix.ENOBUFS) {
			w.gen.Store(0)
			return
		}
	}
}

// changed says whether a notification came since the last call with
// seen (0 at first: changed), and records that this one saw it.
func (w *ifaceWatch) changed(seen *uint64) bool {
	if w == nil {
		return true
	}
	g := w.gen.Load()
	if g != 0 && g == *seen {
		return false
	}
	*seen = g
	return true
}

// captureIfaces picks the interfaces to capture on: those matching globs,
// or by default every up interface with an address that is not link-local,
// except loopback.
// Loopback is left out by default because its traffic never leaves the
// machine; --iface lo adds it, and then both ends are credited.
func captureIfaces(globs []string) ([]net.Interface, error) {
	picked, names, err := pickIfaces(globs)
	if err != nil {
		return nil, err
	}
	if err := checkGlobs(globs, names); err != nil {
		return nil, err
	}
	if len(picked) == 0 {
		return nil, fmt.Errorf("no interface is up with an address; choose some with --iface (there are: %s)", strings.Join(names, ", "))
	}
	return picked, nil
}

// pickIfaces returns the interfaces that captureIfaces would pick now, and
// the names of all.
func pickIfaces(globs []string) (picked []net.Interface, names []string, err error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, nil, fmt.Errorf("list interfaces: %w", err)
	}
	for _, i := range all {
		names = append(names, i.Name)
		switch {
		case len(globs) > 0:
			if !matchAny(globs, i.Name) {
				continue
			}
		case i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0:
			continue
		case !hasRoutableAddr(i):
			continue
		}
		picked = append(picked, i)
	}
	return picked, names, nil
}

// hasRoutableAddr reports whether i has an address other than a link-local
// one. Every interface that is up gets an IPv6 link-local address, bridge
// ports and the host ends of container veths too: counting those would
// capture a container's traffic on its veth and again on the bridge.
func hasRoutableAddr(i net.Interface) bool {
	addrs, err := i.Addrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLinkLocalUnicast() {
			return true
		}
	}
	return false
}
