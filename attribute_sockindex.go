package main

import "net/netip"

// socket is one entry of the kernel's socket table.
type socket struct {
	netns  uint64 // the network namespace's inode number
	proto  uint8
	local  netip.AddrPort
	remote netip.AddrPort // port 0: listening or unconnected
	inode  uint64         // 0: no file, as in TIME_WAIT
	uid    uint32
	cookie uint64 // the kernel's socket cookie, as the owner records have it
	state  tcpState
}

// boundKey is a listening or unconnected socket's local endpoint.
type boundKey struct {
	proto uint8
	addr  netip.Addr
	port  uint16
}

// sockIndex finds the socket of a flow, among the sockets of every
// network namespace.
type sockIndex struct {
	exact map[flow]socket
	bound map[boundKey][]socket
	// isLocal reports whether addr is an address of the namespace netns;
	// nil takes every address as local.
	isLocal func(netns uint64, addr netip.Addr) bool
}

func newSockIndex(socks []socket, isLocal func(uint64, netip.Addr) bool) *sockIndex {
	x := &sockIndex{exact: make(map[flow]socket, len(socks)), bound: map[boundKey][]socket{}, isLocal: isLocal}
	for _, s := range socks {
		if s.remote.Port() == 0 {
			x.addBound(s)
			continue
		}
		fl := flow{s.proto, s.local, s.remote}
		if old, ok := x.exact[fl]; !ok || old.inode == 0 {
			x.exact[fl] = s
		}
	}
	return x
}

// addBound adds the listening or unconnected socket s.
func (x *sockIndex) addBound(s socket) {
	k := boundKey{s.proto, s.local.Addr(), s.local.Port()}
	x.bound[k] = append(x.bound[k], s)
}

var (
	any4 = netip.IPv4Unspecified()
	any6 = netip.IPv6Unspecified()
)

// lookup finds fl's socket: by both endpoints, else by the local endpoint
// of a listening or unconnected socket, bound to the address or to the
// wildcard of its family, or to :: (a dual-stack socket takes IPv4 too).
// A connection without a file (SYN_RECV before accept, TIME_WAIT) on a
// listening port goes to the listener, whose process serves it.
func (x *sockIndex) lookup(fl flow) (socket, bool) {
	exact, ok := x.exact[fl]
	if ok && exact.inode != 0 {
		return exact, true
	}
	if s, found := x.listener(fl); found && (s.inode != 0 || !ok) {
		return s, true
	}
	return exact, ok
}

// listener finds a listening or unconnected socket for fl's local end. A
// socket bound to a wildcard takes only addresses of its own namespace:
// the far end of an outgoing connection to port 443 is not the local web
// server's.
func (x *sockIndex) listener(fl flow) (socket, bool) {
	port := fl.local.Port()
	keys := [3]netip.Addr{fl.local.Addr(), any6, any6}
	if fl.local.Addr().Is4() {
		keys[1] = any4
	}
	var found socket
	ok := false
	for i, a := range keys {
		for _, s := range x.bound[boundKey{fl.proto, a, port}] {
			if i > 0 && x.isLocal != nil && !x.isLocal(s.netns, fl.local.Addr()) {
				continue
			}
			// Several sockets may bind one port (SO_REUSEPORT, a listener
			// and its TIME_WAIT children): prefer one with a file.
			if !ok || found.inode == 0 {
				found, ok = s, true
			}
		}
		if ok {
			return found, true
		}
	}
	return socket{}, false
}

// tcpState is a TCP socket's state as the kernel's socket table gives it
// (include/net/tcp_states.h); 0 is not known.
type tcpState uint8

// tcpClosed is the state netuse gives a connection whose socket left the
// table: closed, its TIME_WAIT over.
const tcpClosed tcpState = 7

var tcpStateNames = [...]string{"", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV"}

// String names the state as ss(8) and netstat do; "" if not known.
func (s tcpState) String() string {
	if int(s) < len(tcpStateNames) {
		return tcpStateNames[s]
	}
	return ""
}
