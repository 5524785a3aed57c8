package main

import (
	"net/netip"
	"testing"
	"time"
)

// bookSock is a socket as the kernel's records tell it: add gives a book
// its creation (unless accepted) and, if it closed, its release.
type bookSock struct {
	cookie, inode  uint64
	pid            int
	name           string
	local, remote  string // release endpoints; "" if still open
	opened, closed int64  // ns; opened 0: accepted (no creation record)
	proto          uint8
}

func (s bookSock) add(b *ownerBook) {
	if s.opened != 0 {
		b.add(ownerEvent{cookie: s.cookie, inode: s.inode, pid: s.pid, start: 7, name: s.name, at: s.opened, proto: s.proto})
	}
	if s.closed != 0 {
		b.add(ownerEvent{release: true, cookie: s.cookie, pid: s.pid, start: 7, name: s.name, at: s.closed, proto: s.proto,
			local: netip.MustParseAddrPort(s.local), remote: netip.MustParseAddrPort(s.remote)})
	}
}

func TestOwnerBookClosed(t *testing.T) {
	b := newOwnerBook()
	for _, s := range []bookSock{
		// A curl's port reused by another curl a millisecond later.
		{cookie: 1, pid: 100, name: "curl", local: "10.0.0.1:40000", remote: "10.0.0.2:80", opened: 1000, closed: 2000, proto: 6},
		{cookie: 2, pid: 101, name: "curl", local: "10.0.0.1:40000", remote: "10.0.0.2:80", opened: 3000, closed: 4000, proto: 6},
		// A server's accepted socket: no creation record.
		{cookie: 3, pid: 200, name: "server", local: "10.0.0.2:80", remote: "10.0.0.1:40001", closed: 5000, proto: 6},
		// An unconnected UDP socket on the wildcard address, and one on ::.
		{cookie: 4, pid: 300, name: "dig", local: "0.0.0.0:5353", remote: "0.0.0.0:0", opened: 1000, closed: 9000, proto: 17},
		{cookie: 5, pid: 301, name: "dual", local: "[::]:6000", remote: "[::]:0", opened: 1000, closed: 9000, proto: 17},
		// A TCP listener on the wildcard address, closed since.
		{cookie: 6, pid: 400, name: "web", local: "0.0.0.0:8080", remote: "0.0.0.0:0", opened: 1000, closed: 9000, proto: 6},
	} {
		s.add(b)
	}
	fl := func(proto uint8, local, remote string) flow {
		return flow{proto, netip.MustParseAddrPort(local), netip.MustParseAddrPort(remote)}
	}
	for _, c := range []struct {
		name string
		fl   flow
		at   int64
		pid  int // 0: none
	}{
		{"first curl", fl(6, "10.0.0.1:40000", "10.0.0.2:80"), 1500, 100},
		{"second curl", fl(6, "10.0.0.1:40000", "10.0.0.2:80"), 3500, 101},
		{"first curl, seen late", fl(6, "10.0.0.1:40000", "10.0.0.2:80"), 2500, 100},
		{"before either", fl(6, "10.0.0.1:40000", "10.0.0.2:80"), 500, 0},
		{"long after both", fl(6, "10.0.0.1:40000", "10.0.0.2:80"), 4000 + joinSlack + 1, 0},
		{"accepted", fl(6, "10.0.0.2:80", "10.0.0.1:40001"), 4000, 200},
		{"other protocol", fl(17, "10.0.0.1:40000", "10.0.0.2:80"), 1500, 0},
		{"UDP on the wildcard", fl(17, "10.0.0.1:5353", "10.0.0.9:53"), 2000, 300},
		{"IPv4 on ::", fl(17, "10.0.0.1:6000", "10.0.0.9:53"), 2000, 301},
		{"IPv6 on ::", fl(17, "[2001:db8::1]:6000", "[2001:db8::9]:53"), 2000, 301},
		{"another port", fl(17, "10.0.0.1:5354", "10.0.0.9:53"), 2000, 0},
		// A listener is never a TCP connection's own socket.
		{"closed listener", fl(6, "10.0.0.2:8080", "10.0.0.1:50000"), 2000, 0},
	} {
		o, ok := b.closedOwner(c.fl, c.at)
		if ok != (c.pid != 0) || o.pid != c.pid {
			t.Errorf("%s: closedOwner(%v, %d) = pid %d, %v; want pid %d", c.name, c.fl, c.at, o.pid, ok, c.pid)
		}
	}
	// But an accepted connection's listener it is, while it listened.
	for _, c := range []struct {
		at  int64
		pid int
	}{{2000, 400}, {500, 0}, {9000 + joinSlack + 1, 0}} {
		o, ok := b.closedListener(fl(6, "10.0.0.2:8080", "10.0.0.1:50000"), c.at)
		if ok != (c.pid != 0) || o.pid != c.pid {
			t.Errorf("closedListener at %d = pid %d, %v; want %d", c.at, o.pid, ok, c.pid)
		}
	}
}

func TestOwnerBookOpen(t *testing.T) {
	b := newOwnerBook()
	bookSock{cookie: 10, inode: 555, pid: 400, name: "go", opened: 1000, proto: 6}.add(b)
	for _, c := range []struct {
		cookie, inode uint64
		pid           int
	}{
		{10, 0, 400},
		{99, 555, 400}, // an MPTCP subflow: its own cookie, the socket's inode
		{99, 556, 0},
		{0, 0, 0},
	} {
		o, ok := b.openOwner(c.cookie, c.inode)
		if ok != (c.pid != 0) || o.pid != c.pid {
			t.Errorf("openOwner(%d, %d) = pid %d, %v; want %d", c.cookie, c.inode, o.pid, ok, c.pid)
		}
	}
	// Its release moves it to the closed sockets, with the time it was born.
	b.add(ownerEvent{release: true, cookie: 10, pid: 400, name: "go2", at: 2000, proto: 6,
		local: netip.MustParseAddrPort("10.0.0.1:1"), remote: netip.MustParseAddrPort("10.0.0.2:2")})
	if _, ok := b.openOwner(10, 555); ok {
		t.Error("a released socket is still open")
	}
	o, ok := b.closedOwner(flow{6, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2")}, 1500)
	if !ok || o.opened != 1000 || o.closed != 2000 || o.name != "go2" {
		t.Errorf("closed record %+v, %v; want opened 1000, closed 2000, the closer's name go2", o, ok)
	}
}

// TestOwnerBookBounds fills the book past its bounds: the oldest closed
// sockets go first, open ones are dropped and counted.
func TestOwnerBookBounds(t *testing.T) {
	b := newOwnerBook()
	for i := range maxClosed + 10 {
		b.add(ownerEvent{release: true, cookie: uint64(i + 1), pid: 1, at: int64(i + 1), proto: 17,
			local: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(i%60000+1)), remote: netip.MustParseAddrPort("10.0.0.2:53")})
	}
	for i := range maxOpen + 5 {
		b.add(ownerEvent{cookie: uint64(1e9 + i), pid: 1, at: 1, proto: 6})
	}
	open, closed, lost := b.stats()
	if open != maxOpen || closed != maxClosed || lost != 5 {
		t.Errorf("open %d, closed %d, dropped %d; want %d, %d, 5", open, closed, lost, maxOpen, maxClosed)
	}
	n := 0
	for _, l := range b.closed {
		n += len(l)
	}
	if n != maxClosed {
		t.Errorf("%d closed records kept, want %d", n, maxClosed)
	}
	first := flow{17, netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:53")}
	if _, ok := b.closedOwner(first, 1); ok {
		t.Error("the oldest closed socket is still there")
	}
	last := flow{17, netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16((maxClosed+9)%60000+1)), netip.MustParseAddrPort("10.0.0.2:53")}
	if _, ok := b.closedOwner(last, maxClosed+10); !ok {
		t.Error("the newest closed socket is gone")
	}
}

// TestFlowReusedEndpoints: a flow whose owner's socket closed is resolved
// anew when packets come after the close, and not before.
func TestFlowReusedEndpoints(t *testing.T) {
	a := newAccountant()
	fl := flow{17, netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:53")}
	old := &process{pid: 100, name: "dig"}
	base := time.Now().UnixNano()
	a.now = base
	a.credit(fl, traffic{txBytes: 100, txPackets: 1}, true, false)
	a.takePending(time.Now())
	a.settle(time.Now(), []resolution{{fl: fl, owner: old, until: base + 1e6}})

	a.now = base + 1e6 + reuseGap // after the close, but within reuseGap
	a.credit(fl, traffic{rxBytes: 100, rxPackets: 1}, true, false)
	if got := a.takePending(time.Now()); len(got) != 0 || a.flows[fl].owner != old {
		t.Fatalf("a packet within the slack re-queued the flow (%v) or dropped its owner", got)
	}
	a.now = base + 1e6 + reuseGap + 1 // later: a new socket with the old one's port
	a.credit(fl, traffic{txBytes: 100, txPackets: 1}, true, false)
	if got := a.takePending(time.Now()); len(got) != 1 || a.flows[fl].owner != nil || a.flows[fl].first != a.now {
		t.Fatalf("a packet after the close: pending %v, owner %v; want the flow queued anew, without owner", got, a.flows[fl].owner)
	}
}

// TestBookGone: with keepGone, a closed socket's owner is kept by its
// cookie (the closer, as by its endpoints), the oldest dropped past
// maxClosed; without it, nothing is kept.
func TestBookGone(t *testing.T) {
	for _, keep := range []bool{true, false} {
		b := newOwnerBook()
		b.keepGone = keep
		b.add(ownerEvent{cookie: 7, pid: 10, name: "maker"})
		b.add(ownerEvent{release: true, cookie: 7, pid: 11, name: "closer"})
		o, ok := b.goneOwner(7)
		if ok != keep || (keep && o.pid != 11) {
			t.Errorf("keepGone %v: goneOwner(7) = %+v, %v", keep, o, ok)
		}
	}
	b := newOwnerBook()
	b.keepGone = true
	for c := uint64(1); c <= maxClosed+1; c++ {
		b.add(ownerEvent{release: true, cookie: c, pid: 1})
	}
	if _, ok := b.goneOwner(1); ok {
		t.Error("the oldest of maxClosed+1 closed sockets is still kept")
	}
	if _, ok := b.goneOwner(maxClosed + 1); !ok || len(b.gone) != maxClosed {
		t.Errorf("the newest is kept: %v; %d kept, want %d", ok, len(b.gone), maxClosed)
	}
}

// TestBookGonePortless: a TCP socket that reached TIME_WAIT before its
// file closed has no local port in its release record (the kernel gave it
// back); its owner is kept by cookie even without keepGone, and the
// resolver finds it through the TIME_WAIT socket's cookie, where the
// endpoints find nothing (the capture lost a third of 60 sequential
// connections of one process so: the scorecard's s19).
func TestBookGonePortless(t *testing.T) {
	b := newOwnerBook()
	local := netip.MustParseAddrPort("192.0.2.1:45110")
	remote := netip.MustParseAddrPort("192.0.2.2:5001")
	b.add(ownerEvent{cookie: 9, pid: 10, name: "maker", proto: 6, at: 100})
	b.add(ownerEvent{release: true, cookie: 9, pid: 10, name: "maker", proto: 6, at: 200,
		local: netip.AddrPortFrom(local.Addr(), 0), remote: remote})
	if _, ok := b.closedOwner(flow{6, local, remote}, 150); ok {
		t.Fatal("closedOwner found a socket by endpoints its record does not have")
	}
	g, ok := b.goneOwner(9)
	if !ok || g.pid != 10 {
		t.Fatalf("goneOwner(9) = %+v, %v; want pid 10", g, ok)
	}
	b.add(ownerEvent{cookie: 11, pid: 12, proto: 6, at: 300})
	b.add(ownerEvent{release: true, cookie: 11, pid: 12, proto: 6, at: 400, local: local, remote: remote})
	if _, ok := b.goneOwner(11); ok {
		t.Error("a socket released with its port is kept by cookie without keepGone")
	}
	reg := newRegistry()
	r := &resolver{book: b, ofRecord: func(o sockOwner) *process {
		return reg.get(o.pid, o.start, func(p *process) { p.pid, p.name = o.pid, o.name })
	}}
	p, _ := r.fromBook(socket{proto: 6, local: local, remote: remote, cookie: 9, state: 6}, true, flow{6, local, remote}, 150)
	if p == nil || p.pid != 10 {
		t.Errorf("fromBook of the TIME_WAIT socket with cookie 9: %+v, want pid 10", p)
	}
}
