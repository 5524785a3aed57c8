package main

import (
	"errors"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// The attribute stage: packet -> flow -> socket -> process.
//
// A packet record from the sniffer becomes two flows, one per end, as seen
// from this host: protocol, local endpoint, remote endpoint. The
// accountant (attribute_flows.go) adds the packet's bytes to its flows and
// queues each new flow for the resolver (this file), whose passes find its
// owner. Each interval, report moves the flows' bytes to their owners;
// what could not be attributed goes to rows of pid 0 that say why, so that
// the rows always add up to the bytes captured.
//
// The ladder, rung by rung, first that answers wins:
//
//  1. A connection's opening (TCP SYN), as soon as it is captured: its
//     socket by its exact tuple from sock_diag (attribute_sockdiag_linux.go),
//     the owner from the kernel's records (attribute_book.go), or else
//     among the newest processes in /proc (attribute_procfs_linux.go);
//     without records, the one process that started since the last look
//     if the socket closed already (inferred: attribute_newcomers_linux.go).
//     attribute_openings.go.
//  2. Every new flow, in the resolver's pass: the socket tables of every
//     network namespace (attribute_netns_linux.go), indexed by exact
//     tuple, then by a listening or unconnected socket's local endpoint,
//     wildcards included (attribute_sockindex.go).
//  3. The socket's owner in the kernel's records: the open socket by its
//     cookie or inode; a closed one by the endpoints it had when the
//     flow's first packet came; an accepted socket by its listener's
//     owner, open or closed since (attribute_book.go, filled by
//     attribute_records_linux.go from attribute_programs_linux.go).
//  4. The socket's owner in /proc/<pid>/fd by its inode, newest processes
//     first, all of /proc at most every fullGap (attribute_procfs_linux.go,
//     parsers in attribute_procparse_linux.go); processes are one record
//     each, by pid and start time (attribute_registry.go).
//  5. Pid 0, with the reason (attribute_flows.go decides at report):
//     - no_socket: no socket matches the flow; a NAT'd copy of a flow
//       captured untranslated counts once, there (attribute_nat.go,
//       attribute_conntrack_linux.go);
//     - no_owner: a socket without a process (TIME_WAIT, closed, gone);
//     - not_readable: the socket's process is another user's and netuse
//       may not read it (or the socket, without a file, is of such a user);
//     - not_tcp_udp, fragment_unmatched: the sniffer found no flow
//       (sniff_decode.go, sniff_frag.go);
//     - not_for_host: a promiscuous interface's frame for another host;
//     - flow_table_full: a new flow while the table held --max-flows.
//
// A flow without an owner is tried again (maxTries, retryGap), and a flow
// given up on that keeps moving bytes now and then (recheckReports).

// socketTables reads the kernel's socket tables and knows each network
// namespace's addresses.
type socketTables interface {
	read() ([]socket, error)
	isLocal(netns uint64, addr netip.Addr) bool
	isOurs(addr netip.Addr) bool
	ownAddr(netns uint64, addr netip.Addr) bool
	netnsByCookie(cookie uint64) uint64
	// rescan lists the namespaces in use again, if it did not just now,
	// and reports whether there is a new one
	rescan() bool
	// find looks up the one socket of a flow in every namespace, without
	// reading a whole table: its connection, else the listening or
	// unconnected socket of its local end
	find(fl flow) (socket, bool)
	close() // closes the sock_diag socket of every namespace
}

// owners finds the processes that hold socket inodes.
type owners interface {
	// find sets want[inode] to the process holding each inode it can find.
	// denied reports that some process could not be read.
	find(want map[uint64]*process) (denied bool)
	close() // ends what the finder runs and closes what it opened
}

// socketLookup asks the kernel for the one socket of a flow.
type socketLookup interface {
	lookup(fl flow) (socket, bool)
	close()
}

var errNotReadable = errors.New(`cannot read other users' processes: traffic of their sockets counts as "(not readable)"; ` +
	"run netuse as root or give it CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE (see the README)")

// resolver resolves the accountant's pending flows to processes. Its
// fields are set when it is made and only read after, except those under
// mu, which its passes use, and those of the openings goroutine.
type resolver struct {
	acc     *accountant
	isLocal func(netns uint64, addr netip.Addr) bool // see sockIndex; nil takes every address as local
	// isOurs reports whether addr is an address of any namespace of this
	// machine; nil takes every address as ours
	isOurs func(addr netip.Addr) bool
	// ownAddr reports whether netns is netuse's own network namespace and
	// addr one of its addresses; nil: no owner is ever guessed (see
	// openings)
	ownAddr func(netns uint64, addr netip.Addr) bool
	// book holds the socket owners that the kernel recorded as sockets
	// were born and closed (attribute_book.go); nil: /proc is all there
	// is. It has a lock of its own.
	book *ownerBook
	// ofRecord returns the process record of an owner from the book.
	ofRecord func(sockOwner) *process
	// readable reports whether netuse may read the processes of a user
	// (without CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH, only its own); nil:
	// every user's. An owner not found of a user it may not read is "not
	// readable" at once, not "no owner" until a full scan was refused.
	readable func(uid uint32) bool
	minGap   time.Duration // at least this long between two reads of the socket table
	warn     func(error)   // told of a problem that makes attribution incomplete; safe from any goroutine

	// For the openings goroutine only (attribute_openings.go).
	synq   chan opening              // from opening, in the capture goroutine, to the openings goroutine; nil: none
	lookup func(flow) (socket, bool) // the one socket of a flow, if the kernel has it
	// quick finds the owners of connections just opened, among the newest
	// processes only, with a cache of its own, so that a pass that scans
	// all of /proc does not hold it up.
	quick owners

	kick chan struct{} // has a value when a report asked for a pass (nudge)
	// states: each report reads the TCP states of the flows' sockets
	// first (refreshStates), for conn's STATE column
	states bool

	mu sync.Mutex // one pass at a time; guards the fields below, and what sockets, owners and conntrack use
	// sockets reads the kernel's socket tables, of every network namespace
	sockets func() ([]socket, error)
	// find looks up one flow's socket without reading a table
	// (socketTables.find); nil: a pass always reads the tables
	find func(fl flow) (socket, bool)
	// rescan lists the network namespaces in use again (socketTables);
	// nil: never out of turn
	rescan func() bool
	owners owners // finds socket owners in all of /proc
	// conntrack reads the NAT translations of netuse's namespace; nil: none
	conntrack func() ([]natEntry, error)
	nat       map[flow]flow // the last read of conntrack's translations (natCopies)
	natAt     time.Time     // when it was read
	last      time.Time     // when the last pass began
	took      time.Duration // how long the last pass took
	denied    bool          // some process could not be read
	warned    bool          // errNotReadable was said
}

// passCostShare bounds the resolver's work on a machine with a large
// socket table: after a pass that took d, the next waits at least
// passCostShare*d, so that resolving takes at most a fifth of a core.
const passCostShare = 4

// loop resolves flows as they come, and tries again those not resolved,
// until done is closed, in passes spaced by minGap and passCostShare.
// (Connection openings do not wait for it: see syn.)
func (r *resolver) loop(done <-chan struct{}) {
	// retry runs only while some flow waits to be tried again: a ticker
	// woke an idle netuse four times a second for nothing. Flows a report
	// queues again come with its nudge.
	retry := time.NewTimer(retryGap)
	retry.Stop()
	defer retry.Stop()
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	for {
		kicked := false
		select {
		case <-done:
			return
		case <-r.acc.wake:
		case <-retry.C:
		case <-due.C:
		case <-r.kick:
			kicked = true
		}
		r.mu.Lock()
		wait := max(r.minGap, passCostShare*r.took) - time.Since(r.last)
		r.mu.Unlock()
		if wait > 0 && !kicked {
			due.Reset(wait)
			continue
		}
		r.pass()
		if r.acc.hasRetries() {
			retry.Reset(retryGap)
		}
	}
}

// nudge asks the loop for a pass now, past passCostShare's spacing, and
// does not wait for it: each report does, so that the flows it carried
// are settled by the next one (TestProcLeastPrivilege's client, whose
// first try came after its socket closed when passes were spaced by a
// slow one), as they were when the report ran a pass itself.
func (r *resolver) nudge() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// resolution is what the resolver found for one flow: an owner, or why
// there is none.
type resolution struct {
	fl       flow
	owner    *process // nil: not found
	until    int64    // when owner's socket closed, Unix ns, if the kernel's records say (see flowState.until)
	why      reason   // without an owner: why
	nat      *flow    // without a socket: the flow this one is a NAT'd copy of, by conntrack
	foreign  bool     // without an owner: fl's local address is no address of this machine
	inferred bool     // the owner is a guess (see flowState.inferred)
	at       int64    // when fl's first packet was captured, Unix ns (for the kernel's records)
	inode    uint64   // fl's socket's inode, while its owner is searched for in /proc
	uid      uint32   // fl's socket's user, likewise
	state    tcpState // fl's socket's TCP state, if its own (not its listener's)
}

// pass resolves every pending flow once: it reads the socket tables, finds
// each flow's socket, the socket's owner in the kernel's records or in
// /proc, and says why for those it could not find.
func (r *resolver) pass() { r.passOf(false) }

// finalPass is the pass of a run's last report, which has no later one to
// carry a flow to: it tries again every flow without an owner, its retry
// due or not. A server's end of a connection that opened and closed in
// the last moments (its first try found the accepted socket open, with no
// record and not in /proc's cache yet) was "no owner" in one one-shot run
// of ten; its retry finds the listener's owner.
func (r *resolver) finalPass() { r.passOf(true) }

// passOf is pass, of every flow without an owner if all.
func (r *resolver) passOf(all bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	fls := r.acc.takePending(now)
	if all {
		fls = append(fls, r.acc.takeRetries()...)
	}
	if len(fls) == 0 {
		return
	}
	r.last = now
	defer func() { r.took = time.Since(now) }()
	rs := make([]resolution, len(fls))
	for i, fl := range fls {
		rs[i].fl = fl
	}
	x, want := r.findEach(rs)
	if x == nil {
		// Some flow the lookups left without an owner, or a socket whose
		// holder /proc may show: the tables may know better (a socket in
		// a namespace not listed yet, a connection's listener).
		socks, err := r.sockets()
		if err != nil {
			r.warn(err)
		}
		x = newSockIndex(socks, r.isLocal)
		if r.book != nil {
			r.book.sync() // a socket gone from the tables just read is in the book
			r.acc.firstSeen(rs)
		}
		want = r.findSockets(x, rs)
	}
	if r.rescan != nil && slices.ContainsFunc(rs, func(res resolution) bool { return res.why == noSocket }) && r.rescan() {
		// A namespace that had no process at the last listing has one
		// now, and perhaps the sockets not found: a container that just
		// started, whose first connection would otherwise wait for the
		// next listing (enumGap) and be given up on before it.
		socks, err := r.sockets()
		if err != nil {
			r.warn(err)
		}
		x = newSockIndex(socks, r.isLocal)
		clearFound(rs)
		want = r.findSockets(x, rs)
	}
	r.findHolders(want, rs)
	if r.book != nil {
		r.afterProc(x, rs)
	}
	r.explain(rs)
	r.acc.settle(now, rs)
}

// findEach settles the flows of a pass by looking each one's socket up
// alone (find), with no table read: the kernel's records must know the
// owner of every socket found, or of its endpoints once closed. It returns
// the index of the sockets found and what findSockets does; nil if some
// flow is left, for the pass to read the tables, rs as it was given. A
// full dump walks every bucket of the kernel's TCP hash, which all
// namespaces share, however few sockets netuse's own has: per short-lived
// connection it cost more than the rest of netuse (BENCHMARKS.md, bench/run.sh).
func (r *resolver) findEach(rs []resolution) (*sockIndex, map[uint64]*process) {
	if r.find == nil || r.book == nil || len(rs) > findEachMax {
		return nil, nil
	}
	socks := make([]socket, 0, len(rs))
	for _, res := range rs {
		if s, ok := r.find(res.fl); ok {
			socks = append(socks, s)
		}
	}
	x := newSockIndex(socks, r.isLocal)
	r.book.sync() // a socket gone by the lookup is in the book
	r.acc.firstSeen(rs)
	want := r.findSockets(x, rs)
	for i := range rs {
		res := &rs[i]
		switch {
		case res.owner != nil:
		case res.inode == 0:
			clearFound(rs)
			return nil, nil
		case res.fl.proto == 6: // TCP
			// A connection whose holder /proc may not show: an accepted
			// one goes to its listener's owner (afterProc).
			wild := netip.AddrPortFrom(any6, 0)
			if res.fl.local.Addr().Is4() {
				wild = netip.AddrPortFrom(any4, 0)
			}
			if l, ok := r.find(flow{res.fl.proto, res.fl.local, wild}); ok && l.remote.Port() == 0 {
				x.addBound(l)
			}
		}
	}
	return x, want
}

// clearFound forgets what a pass found of each flow of rs, keeping the flow
// and when it was first seen, for the pass to look again.
func clearFound(rs []resolution) {
	for i := range rs {
		rs[i] = resolution{fl: rs[i].fl, at: rs[i].at}
	}
}

// findEachMax is the most flows a pass looks up one by one; past it, one
// read of the tables serves them all. A lookup is a netlink round trip
// per namespace tried: a burst of thousands of new flows (10,000 UDP
// sockets opened at once) costs more looked up one by one than read
// whole, and passes slowed that much leave flows unowned at their report.
const findEachMax = 64

// findSockets finds each flow's socket in x, and its owner in the kernel's
// records if there are any; it returns the inodes whose holders are to be
// searched for in /proc.
func (r *resolver) findSockets(x *sockIndex, rs []resolution) map[uint64]*process {
	want := map[uint64]*process{}
	for i := range rs {
		res := &rs[i]
		s, ok := x.lookup(res.fl)
		if ok && s.remote == res.fl.remote {
			res.state = s.state
		}
		if r.book != nil {
			if res.owner, res.until = r.fromBook(s, ok, res.fl, res.at); res.owner != nil {
				continue
			}
		}
		switch {
		case !ok:
			res.why = noSocket
		case s.inode == 0:
			// No file: not accepted yet (its uid is the listener's), or
			// closed and orphaned. Of a user netuse may not read, it says
			// so, as the file would have: the bytes of a server's
			// connection looked up before accept() count as not
			// readable, not as no owner (TestProcLeastPrivilege, 1 run
			// in 10).
			res.why = noOwner
			if r.readable != nil && !r.readable(s.uid) {
				res.why = notReadable
			}
		default:
			res.inode, res.uid = s.inode, s.uid
			want[s.inode] = nil
		}
	}
	return want
}

// findHolders searches /proc for the processes that hold the inodes in
// want; a socket whose holder was not found has no owner, or one netuse
// may not read.
func (r *resolver) findHolders(want map[uint64]*process, rs []resolution) {
	if len(want) > 0 && r.owners.find(want) {
		r.denied = true
	}
	for i := range rs {
		res := &rs[i]
		if res.inode == 0 {
			continue
		}
		if res.owner = want[res.inode]; res.owner == nil {
			res.why = noOwner
			if r.denied || (r.readable != nil && !r.readable(res.uid)) {
				res.why = notReadable
			}
		}
	}
}

// explain completes what is known of the flows left without an owner: a
// warning, once, if netuse may not read some processes; whether the flow
// is forwarded traffic; whether it is a NAT'd copy of another.
func (r *resolver) explain(rs []resolution) {
	for i := range rs {
		res := &rs[i]
		if res.owner != nil {
			continue
		}
		if res.why == notReadable && !r.warned {
			r.warned = true
			r.warn(errNotReadable)
		}
		res.foreign = r.isOurs != nil && !r.isOurs(res.fl.local.Addr())
	}
	r.natCopies(rs)
}

// afterProc looks again in the kernel's records for the flows /proc left
// without an owner: a socket that closed while /proc was read, or an
// accepted one whose holder /proc did not show, which takes its
// listener's owner, the listener open or closed since (a server may close
// it and serve on: Go closes an unreferenced one when it collects it).
func (r *resolver) afterProc(x *sockIndex, rs []resolution) {
	for i := range rs {
		res := &rs[i]
		if res.owner == nil {
			res.owner, res.until = r.fromBook(socket{}, false, res.fl, res.at)
		}
		if res.owner != nil || res.inode == 0 {
			continue
		}
		if l, ok := x.listener(res.fl); ok {
			res.owner = r.recordedOpen(l)
		}
		if res.owner == nil { // the listener closed, maybe since the table was read
			if o, ok := r.book.closedListener(res.fl, res.at); ok {
				res.owner = r.ofRecord(o)
			}
		}
	}
}
