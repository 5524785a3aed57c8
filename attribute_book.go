package main

import (
	"net/netip"
	"sync"
)

// Socket owners as the kernel recorded them (see owners_bpf_linux.go):
// the book keeps the owner of every socket created since netuse started,
// by cookie while it is open, and by the addresses it had when it closed,
// with its lifetime, so that a flow whose socket is gone by the time it is
// looked up is still credited to the process that held it.

// ownerEvent is one record of the kernel's: a socket created or released.
type ownerEvent struct {
	release       bool
	cookie        uint64 // the socket's cookie, as sock_diag reports it
	inode         uint64 // its file's inode number; 0 if it has none
	netns         uint64 // its network namespace's cookie
	at            int64  // when, in Unix nanoseconds
	pid           int    // the process that created or closed it (tgid)
	start         uint64 // the process's start time, clock ticks after boot, as /proc/<pid>/stat has it
	uid           uint32
	name          string // the process's name then (comm)
	proto         uint8
	local, remote netip.AddrPort // at release: its endpoints; remote port 0 if unconnected
	cgroup        uint64         // the process's cgroup2 id; 0 if not known
}

// sockOwner is the owner of one socket and the socket's lifetime.
type sockOwner struct {
	pid    int
	start  uint64
	uid    uint32
	name   string
	netns  uint64 // network namespace cookie
	cgroup uint64 // the process's cgroup2 id
	inode  uint64 // the socket's inode number, if known
	opened int64  // Unix ns; 0: before netuse started, or accepted (no record of its birth)
	closed int64  // Unix ns; 0 while open
}

// The book's bounds: open sockets are kept until they close (a socket
// whose release record was lost is dropped past maxOpen, counted); closed
// ones for at least the resolver's retries, at most maxClosed of them.
const (
	maxOpen   = 1 << 16
	maxClosed = 1 << 15
	// joinSlack is how long after a socket closed a flow's first packet
	// may still be its own, when no socket's life holds the packet: a
	// packet of the connection's end (a FIN) captured after the close.
	joinSlack = 100e6 // ns
	// reuseGap is how long after its socket closed a UDP flow's packets
	// are still taken as that socket's: a later one belongs to a new
	// socket with the same endpoints (a new client got the old one's port;
	// at 1,000 lookups a second from 28,000 ports one in 2,800 does
	// within 10 ms). A datagram that comes later for the closed socket is
	// one the kernel drops: "(no socket)" is the truth for it.
	reuseGap = 10e6 // ns
)

// ownerBook holds the kernel's records. Its methods may be called from any
// goroutine.
type ownerBook struct {
	mu      sync.Mutex           // guards every field below
	open    map[uint64]sockOwner // by socket cookie
	inodes  map[uint64]uint64    // the cookies of open, by socket inode
	closed  map[flow][]sockOwner // by endpoints at release, oldest first
	ring    []flow               // the keys of closed, in the order they closed, for eviction
	next    int                  // the ring's oldest entry once it is full
	dropped uint64               // records dropped to stay in the bounds
	// gone holds closed sockets' owners by cookie: every one if keepGone
	// (--source kernel's last counts of a socket), else the TCP sockets
	// whose record has no local port (add); goneRing their cookies,
	// oldest first, to keep at most maxClosed
	keepGone bool
	gone     map[uint64]goneSock
	goneRing []uint64
	goneNext int
	lost     func() uint64 // records the kernel could not write; nil: none
	// catchUp returns once the records written so far are in the book;
	// nil: they always are
	catchUp func()
}

func newOwnerBook() *ownerBook {
	return &ownerBook{open: map[uint64]sockOwner{}, inodes: map[uint64]uint64{}, closed: map[flow][]sockOwner{}, gone: map[uint64]goneSock{}}
}

// add takes one record.
func (b *ownerBook) add(ev ownerEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o := sockOwner{pid: ev.pid, start: ev.start, uid: ev.uid, name: ev.name, netns: ev.netns, inode: ev.inode, cgroup: ev.cgroup}
	if !ev.release {
		o.opened = ev.at
		if len(b.open) >= maxOpen {
			for c, o := range b.open { // an arbitrary one: its release was lost
				b.forgetOpen(c, o)
				b.dropped++
				break
			}
		}
		b.open[ev.cookie] = o
		if o.inode != 0 {
			b.inodes[o.inode] = ev.cookie
		}
		return
	}
	if born, ok := b.open[ev.cookie]; ok {
		b.forgetOpen(ev.cookie, born)
		o.opened = born.opened
		if ev.pid == 0 {
			// Closed by no process (the kernel itself): the creator owns it.
			o.pid, o.start, o.uid, o.name = born.pid, born.start, born.uid, born.name
		}
	}
	// The closer owns the socket: for an accepted socket the only process
	// recorded, and for one inherited it is the last holder, who moved its
	// bytes (the creator's record keeps its opening time).
	o.closed = ev.at
	key := flow{ev.proto, ev.local, ev.remote}
	// A TCP socket that reached TIME_WAIT before its file closed has
	// given its port back (its record's local port is 0): it is found by
	// the cookie its TIME_WAIT twin keeps.
	if o.pid != 0 && (b.keepGone || (ev.proto == 6 && ev.local.Port() == 0)) {
		b.addGone(ev.cookie, goneSock{o, key})
	}
	if ev.pid == 0 || !ev.local.IsValid() {
		return
	}
	if len(b.ring) < maxClosed {
		b.ring = append(b.ring, key)
	} else {
		b.forgetOldest(b.ring[b.next])
		b.ring[b.next] = key
		b.next = (b.next + 1) % maxClosed
	}
	b.closed[key] = append(b.closed[key], o)
}

// goneSock is a closed socket's owner and the endpoints it had: a zero
// local end if it had none (a raw socket's, one never bound).
type goneSock struct {
	sockOwner
	at flow
}

// addGone keeps closed socket c's owner by its cookie, the oldest
// dropped past maxClosed.
func (b *ownerBook) addGone(c uint64, o goneSock) {
	if len(b.goneRing) < maxClosed {
		b.goneRing = append(b.goneRing, c)
	} else {
		delete(b.gone, b.goneRing[b.goneNext])
		b.goneRing[b.goneNext] = c
		b.goneNext = (b.goneNext + 1) % maxClosed
	}
	b.gone[c] = o
}

// goneOwner returns the owner of the closed socket with cookie c, and
// the endpoints it had.
func (b *ownerBook) goneOwner(c uint64) (goneSock, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	o, ok := b.gone[c]
	return o, ok
}

// forgetOpen drops the open socket with cookie c.
func (b *ownerBook) forgetOpen(c uint64, o sockOwner) {
	delete(b.open, c)
	if b.inodes[o.inode] == c {
		delete(b.inodes, o.inode)
	}
}

// forgetOldest drops the oldest closed record under key.
func (b *ownerBook) forgetOldest(key flow) {
	l := b.closed[key]
	if len(l) <= 1 {
		delete(b.closed, key)
		return
	}
	b.closed[key] = append(l[:0], l[1:]...)
}

// sync returns once every record the kernel wrote so far is in the book.
func (b *ownerBook) sync() {
	if b.catchUp != nil {
		b.catchUp()
	}
}

// openOwner returns the owner of the open socket with cookie c, or else
// with inode ino: sock_diag reports an MPTCP socket's TCP subflow, whose
// cookie is its own but whose inode is the socket's.
func (b *ownerBook) openOwner(c, ino uint64) (sockOwner, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if o, ok := b.open[c]; ok && c != 0 {
		return o, true
	}
	if c, ok := b.inodes[ino]; ok && ino != 0 {
		return b.open[c], true
	}
	return sockOwner{}, false
}

// closedOwner returns the owner of the closed socket that had fl's
// endpoints or, for UDP, that was bound to fl's local endpoint unconnected,
// on its address or on the wildcard address of its family or "::"; whose
// life held at, fl's first packet's time; failing that, the one that
// closed last at most joinSlack before at. Endpoints are reused within
// seconds: the time tells the sockets apart. A TCP socket that was bound
// and not connected was a listener, never a connection's own socket.
func (b *ownerBook) closedOwner(fl flow, at int64) (sockOwner, bool) {
	keys := boundKeys(fl)
	if fl.proto != 17 {
		keys = keys[:1]
	}
	return b.closedIn(keys, at)
}

// closedListener returns the owner of the listener, closed since, that
// fl's local end was accepted from while it listened: by the listener's
// record, as for an open one (see resolver.afterProc).
func (b *ownerBook) closedListener(fl flow, at int64) (sockOwner, bool) {
	return b.closedIn(boundKeys(fl)[1:], at)
}

// boundKeys returns the keys a closed socket of fl's may have in the
// book: fl itself, then fl's local endpoint unconnected, on its own
// address, its family's wildcard and "::" (which takes IPv4 too).
func boundKeys(fl flow) []flow {
	unconnected := netip.AddrPortFrom(any6, 0)
	wild := any6
	if fl.local.Addr().Is4() {
		unconnected, wild = netip.AddrPortFrom(any4, 0), any4
	}
	return []flow{
		fl,
		{fl.proto, fl.local, unconnected},
		{fl.proto, netip.AddrPortFrom(wild, fl.local.Port()), unconnected},
		{fl.proto, netip.AddrPortFrom(any6, fl.local.Port()), netip.AddrPortFrom(any6, 0)},
	}
}

// closedIn looks for closedOwner's socket under keys, in order.
func (b *ownerBook) closedIn(keys []flow, at int64) (sockOwner, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range keys {
		var best sockOwner
		held := false // best's life holds at
		found := false
		for _, o := range b.closed[k] {
			switch {
			case o.opened <= at && at <= o.closed:
				if !held || o.opened > best.opened {
					best, held, found = o, true, true
				}
			case !held && at > o.closed && at-o.closed <= joinSlack:
				if !found || o.closed > best.closed {
					best, found = o, true
				}
			}
		}
		if found {
			return best, true
		}
	}
	return sockOwner{}, false
}

// stats returns how many sockets the book holds open and closed, and the
// records dropped or lost.
func (b *ownerBook) stats() (open, closed int, lost uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lost = b.dropped
	if b.lost != nil {
		lost += b.lost()
	}
	return len(b.open), len(b.ring), lost
}

// fromBook finds fl's owner in the kernel's records: by its open socket s,
// if found; else, if the socket is gone or has no file (TIME_WAIT), the
// closed socket that had fl's endpoints when at, fl's first packet's
// time, fell in its lifetime, and when that socket closed. nil if the
// records do not say.
func (r *resolver) fromBook(s socket, found bool, fl flow, at int64) (*process, int64) {
	if r.book == nil {
		return nil, 0
	}
	open := found && s.inode != 0
	// No socket, or (TCP) one in TIME_WAIT or the listener of a
	// connection whose own socket is gone: the connection's record first.
	if !open || (s.remote.Port() == 0 && fl.proto == 6) {
		if o, ok := r.book.closedOwner(fl, at); ok {
			until := o.closed
			if fl.proto != 17 {
				until = 0 // a new TCP connection on the endpoints opens with a SYN (see learn)
			}
			return r.ofRecord(o), until
		}
	}
	if found {
		// Open, or in TIME_WAIT with its file still open (a shutdown for
		// writing, then the peer's FIN: the socket keeps its cookie), or
		// closed since by the record kept by that cookie.
		if p := r.recordedOpen(s); p != nil {
			return p, 0
		}
		if g, ok := r.book.goneOwner(s.cookie); ok && s.cookie != 0 {
			return r.ofRecord(g.sockOwner), 0
		}
	}
	return nil, 0
}

// recordedOpen returns the owner of the open socket s, if the kernel
// recorded its birth.
func (r *resolver) recordedOpen(s socket) *process {
	if o, ok := r.book.openOwner(s.cookie, s.inode); ok {
		return r.ofRecord(o)
	}
	return nil
}
