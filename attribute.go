package main

import (
	"errors"
	"net/netip"
	"sync"
	"time"
)

// Attribution: packet -> flow -> socket -> process.
//
// A captured packet becomes a flow as seen from this host: protocol, local
// endpoint, remote endpoint. The accountant adds the packet's bytes to its
// flow. A flow seen for the first time is queued for the resolver, which
// finds the flow's socket in the kernel's socket table (by both endpoints,
// then by the local endpoint alone for listening and unconnected sockets,
// wildcard addresses included) and the socket's owner by its inode. Each
// interval the flows' bytes go to their owners; what could not be
// attributed goes to rows of pid 0 that say why, so that the rows always
// add up to the bytes captured.

// flow is one end of a conversation, seen from this host.
type flow struct {
	proto         uint8 // 6 TCP, 17 UDP
	local, remote netip.AddrPort
}

// reason says why traffic has no process.
type reason uint8

const (
	attributed   reason = iota
	noSocket            // no socket in the table matches the flow
	noOwner             // the socket has no process: closed, TIME_WAIT, or its process is gone
	notReadable         // the socket's process could not be read (no CAP_SYS_PTRACE)
	notTCPUDP           // not TCP or UDP over IP, or not decodable
	notForHost          // addressed to another host, seen in promiscuous mode
	tableFull           // a new flow while the flow table was full (see maxFlows)
	lostFragment        // an IP fragment after the first whose first fragment was not seen
	numReasons
)

// reasonKey names a reason in NDJSON; reasonName in the table.
var (
	reasonKey  = [numReasons]string{"", "no_socket", "no_owner", "not_readable", "not_tcp_udp", "not_for_host", "flow_table_full", "fragment_unmatched"}
	reasonName = [numReasons]string{"", "(no socket)", "(no owner)", "(not readable)", "(not TCP/UDP)", "(not for host)", "(flow table full)", "(fragment unmatched)"}
)

// process owns traffic: a process, or for pid 0 a reason it has none.
// Everything but the counters is set once, when it is found.
type process struct {
	pid     int
	start   uint64 // start time in clock ticks after boot; pid and start identify a process
	name    string // as ps -o comm shows it, from /proc/<pid>/comm
	user    string
	cmdline string
	netns   uint64 // the network namespace's inode number; 0 if unknown
	cgroup  string // the cgroup path, which names the container or service
	foreign bool   // in another network namespace than netuse's: a container
	reason  reason // why pid 0 rows have no process

	cur   traffic // since the last report; guarded by accountant.mu
	total traffic // since netuse started; guarded by accountant.mu
}

// socketTables reads the kernel's socket tables and knows each network
// namespace's addresses.
type socketTables interface {
	read() ([]socket, error)
	isLocal(netns uint64, addr netip.Addr) bool
	isOurs(addr netip.Addr) bool
	ownAddr(netns uint64, addr netip.Addr) bool
	netnsByCookie(cookie uint64) uint64
}

// owners finds the processes that hold socket inodes.
type owners interface {
	// find sets want[inode] to the process holding each inode it can find.
	// denied reports that some process could not be read.
	find(want map[uint64]*process) (denied bool)
}

var errNotReadable = errors.New(`cannot read other users' processes: traffic of their sockets counts as "(not readable)"; ` +
	"run netuse as root or give it CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE (see the README)")

// resolver resolves the accountant's pending flows to processes.
type resolver struct {
	acc     *accountant
	sockets func() ([]socket, error)                 // the kernel's socket tables, of every network namespace
	isLocal func(netns uint64, addr netip.Addr) bool // see sockIndex; nil takes every address as local
	// isOurs reports whether addr is an address of any namespace of this
	// machine; nil takes every address as ours
	isOurs func(addr netip.Addr) bool
	// conntrack reads the NAT translations of netuse's namespace; nil: none
	conntrack func() ([]natEntry, error)
	lookup    func(flow) (socket, bool) // the one socket of a flow, if the kernel has it
	// ownAddr reports whether netns is netuse's own network namespace and
	// addr one of its addresses; nil: no owner is ever guessed (see
	// openings)
	ownAddr func(netns uint64, addr netip.Addr) bool
	owners  owners
	// quick finds the owners of connections just opened, among the newest
	// processes only, with a cache of its own, so that a pass that scans
	// all of /proc does not hold it up.
	quick owners
	// book holds the socket owners that the kernel recorded as sockets
	// were born and closed (owners.go); nil: /proc is all there is.
	book *ownerBook
	// ofRecord returns the process record of an owner from the book.
	ofRecord func(sockOwner) *process
	minGap   time.Duration // at least this long between two reads of the socket table
	nat      map[flow]flow // the last read of conntrack's translations (natCopies)
	natAt    time.Time     // when it was read
	warn     func(error)   // told once of a problem that makes attribution incomplete

	dec  *decoder     // for syn, which only the capture goroutine calls
	pkt  packet       // for syn
	synq chan opening // from syn to the openings goroutine; nil: none

	mu     sync.Mutex    // one pass at a time
	last   time.Time     // when the last pass began
	took   time.Duration // how long the last pass took
	denied bool          // some process could not be read
	warned bool          // errNotReadable was said
	// readable reports whether netuse may read the processes of a user
	// (without CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, only its own); nil:
	// every user's. An owner not found of a user it may not read is "not
	// readable" at once, not "no owner" until a full scan was refused.
	readable func(uid uint32) bool
}

// passCostShare bounds the resolver's work on a machine with a large
// socket table: after a pass that took d, the next waits at least
// passCostShare*d, so that resolving takes at most a fifth of a core.
const passCostShare = 4

// loop resolves flows as they come, and tries again those not resolved,
// until done is closed, in passes spaced by minGap and passCostShare.
// (Connection openings do not wait for it: see syn.)
func (r *resolver) loop(done <-chan struct{}) {
	retry := time.NewTicker(retryGap)
	defer retry.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	for {
		select {
		case <-done:
			return
		case <-r.acc.wake:
		case <-retry.C:
		case <-due.C:
		}
		r.mu.Lock()
		wait := max(r.minGap, passCostShare*r.took) - time.Since(r.last)
		r.mu.Unlock()
		if wait > 0 {
			due.Reset(wait)
			continue
		}
		r.pass()
	}
}

// pass resolves every pending flow once.
func (r *resolver) pass() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	fls := r.acc.takePending(now)
	if len(fls) == 0 {
		return
	}
	r.last = now
	defer func() { r.took = time.Since(now) }()
	owners := make([]*process, len(fls))
	untils := make([]int64, len(fls))
	whys := make([]reason, len(fls))
	socks, err := r.sockets()
	if err != nil {
		r.warn(err)
	}
	x := newSockIndex(socks, r.isLocal)
	want := map[uint64]*process{}
	inodes := make([]uint64, len(fls))
	uids := make([]uint32, len(fls))
	var at []int64
	if r.book != nil {
		r.book.sync() // a socket gone from the tables just read is in the book
		at = r.acc.firstSeen(fls)
	}
	for i, fl := range fls {
		s, ok := x.lookup(fl)
		if r.book != nil {
			if owners[i], untils[i] = r.fromBook(s, ok, fl, at[i]); owners[i] != nil {
				continue
			}
		}
		switch {
		case !ok:
			whys[i] = noSocket
		case s.inode == 0:
			whys[i] = noOwner
		default:
			inodes[i], uids[i] = s.inode, s.uid
			want[s.inode] = nil
		}
	}
	if len(want) > 0 && r.owners.find(want) {
		r.denied = true
	}
	for i, ino := range inodes {
		if ino == 0 {
			continue
		}
		if owners[i] = want[ino]; owners[i] == nil {
			whys[i] = noOwner
			if r.denied || (r.readable != nil && !r.readable(uids[i])) {
				whys[i] = notReadable
			}
		}
	}
	if r.book != nil {
		r.afterProc(x, fls, inodes, at, owners, untils)
	}
	for i := range fls {
		if owners[i] == nil && whys[i] == notReadable && !r.warned {
			r.warned = true
			r.warn(errNotReadable)
		}
	}
	foreign := make([]bool, len(fls))
	for i, fl := range fls {
		foreign[i] = owners[i] == nil && r.isOurs != nil && !r.isOurs(fl.local.Addr())
	}
	r.acc.settle(now, fls, owners, untils, whys, r.natCopies(fls, whys), foreign)
}
