package main

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
)

// TestNetnsNames names a namespace the test makes with ip netns add, by
// the inode number a process inside it sees as its own; a namespace with
// no name (the host's) has none.
func TestNetnsNames(t *testing.T) {
	n := newTestNet(t)
	out, err := exec.Command("ip", "netns", "exec", n.a, "readlink", "/proc/self/ns/net").Output()
	if err != nil {
		t.Fatal(err)
	}
	ino, ok := netnsOf("/proc/self/ns/net")
	if !ok {
		t.Fatal("no namespace of our own")
	}
	var their uint64
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "net:[%d]", &their); err != nil {
		t.Fatalf("readlink said %q: %v", out, err)
	}
	names := newNetnsNames("/run/netns")
	if got := names.name(their); got != n.a {
		t.Errorf("name of %d: %q; want %q", their, got, n.a)
	}
	if got := names.name(ino); got != "" {
		t.Errorf("the test's own namespace %d is named %q; want none", ino, got)
	}
}

// TestTablesFind: nsTables.find, a lookup of one flow by exact requests,
// finds the socket that a read of the whole table finds for it (the same
// cookie): TCP connections of both ends, a listener for a connection not
// in the table, a dual-stack listener's IPv4 connection, connected and
// unconnected UDP sockets (whose request takes the far end first); and
// not a wildcard socket for an address of no namespace.
func TestTablesFind(t *testing.T) {
	tables := newNSTables(func(string) {})
	defer tables.close()
	l4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l4.Close()
	l6, err := net.Listen("tcp", "[::]:0") // dual-stack
	if err != nil {
		t.Fatal(err)
	}
	defer l6.Close()
	u, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	w, err := net.ListenPacket("udp", "[::]:0") // dual-stack, unconnected
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ap := func(a net.Addr) netip.AddrPort {
		p := netip.MustParseAddrPort(a.String())
		return netip.AddrPortFrom(p.Addr().Unmap(), p.Port())
	}
	var flows []flow
	for _, l := range []net.Listener{l4, l6} {
		c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", ap(l.Addr()).Port()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		flows = append(flows, flow{6, ap(c.LocalAddr()), ap(c.RemoteAddr())}, flow{6, ap(s.LocalAddr()), ap(s.RemoteAddr())})
	}
	cu, err := net.Dial("udp4", u.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer cu.Close()
	far := netip.MustParseAddrPort("127.0.0.1:9")
	flows = append(flows,
		flow{6, ap(l4.Addr()), netip.MustParseAddrPort("127.0.0.1:1")}, // no such connection: the listener
		flow{17, ap(cu.LocalAddr()), ap(cu.RemoteAddr())},
		flow{17, ap(u.LocalAddr()), far},
		flow{17, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), ap(w.LocalAddr()).Port()), far},
	)
	socks, err := tables.read()
	if err != nil {
		t.Fatal(err)
	}
	x := newSockIndex(socks, tables.isLocal)
	for _, fl := range flows {
		want, ok := x.lookup(fl)
		if !ok {
			t.Fatalf("%v %v -> %v: not in the table read whole", fl.proto, fl.local, fl.remote)
		}
		got, ok := tables.find(fl)
		if !ok || got.cookie != want.cookie || got.inode != want.inode || got.netns != want.netns {
			t.Errorf("find(%v %v -> %v) = %+v, %v; want the table's %+v", fl.proto, fl.local, fl.remote, got, ok, want)
		}
	}
	// 192.0.2.77 is no address of any namespace here (TEST-NET-1).
	stray := flow{17, netip.AddrPortFrom(netip.MustParseAddr("192.0.2.77"), ap(w.LocalAddr()).Port()), far}
	if s, ok := tables.find(stray); ok {
		t.Errorf("find(%v -> %v) = %+v; want nothing: the wildcard socket's namespace has no such address", stray.local, stray.remote, s)
	}
}
