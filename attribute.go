package main

import (
	"errors"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"
	"weak"
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

// flowState is what the accountant knows of a flow.
type flowState struct {
	owner *process  // nil until resolved
	why   reason    // while owner is nil: why the last try failed
	tries uint8     // resolver passes that found no owner
	idle  uint16    // reports in a row without traffic
	stale uint16    // reports with traffic since the flow was given up on (see recheckReports)
	cur   traffic   // since the last report
	retry time.Time // while owner is nil and tries > 0: when to try again
	// inferred: the owner is the sole new process of the socket's user,
	// not found holding the socket, which had closed (see resolver.syn)
	inferred bool
	near     bool  // this end is on this host by the packets' direction (see handle)
	nat      *flow // the flow this one is a NAT'd copy of, by conntrack, if any
	foreign  bool  // its local address is no address of this machine (forwarded traffic)
	lo       bool  // seen on loopback, where both ends are on this host
	first    int64 // when its first packet was captured, Unix ns (see ownerBook.closedOwner)
	carried  bool  // a report kept its bytes for the next, as the resolver had not settled it yet
	// until is when the owner's socket closed, Unix ns, if the kernel's
	// records say so (0: open, or not known): a packet after it belongs to
	// a new socket that reuses the endpoints, and the flow is resolved anew
	until int64
}

// A flow whose owner was not found is tried again retryGap later, and
// again, since the owner of a socket that an old process opened is only
// found by a full scan of /proc, which runs at most every fullGap; after
// maxTries the flow keeps the reason it failed. A flow idle for
// idleReports reports is forgotten.
const (
	maxTries    = 3
	retryGap    = 250 * time.Millisecond
	idleReports = 30
	// A flow given up on that still moves bytes is tried once more every
	// recheckReports reports with traffic.
	recheckReports = 5
)

// The flow table holds at most --max-flows flow ends (a connection between
// this host and another is two: netuse keeps both until it knows which is
// a socket here). A flood of packets with random ports would otherwise
// grow it without bound. Past three quarters of it the report drops the
// flows idle in its interval, then flows without a process, and counts
// them; a new flow that finds the table full is not kept: its bytes go to
// the flow_table_full row, so they are still shown.
//
// maxFlows is the default: BenchmarkFlood measured 17 MiB of heap for a
// full table of 65,536.
const maxFlows = 1 << 16

// captured is what the capture saw in an interval.
type captured struct {
	traffic
	ifaces   []string
	drops    uint64 // frames the kernel dropped for want of room in the ring
	inferred uint64 // bytes credited to an inferred owner (flowState.inferred)
	flows    int    // flow ends in the table after the report
	evicted  uint64 // flow ends dropped early to keep the table under --max-flows
	// owners says where socket owners come from: "bpf", recorded by the
	// kernel as sockets are born, or "proc", searched for in /proc.
	owners string
	// ownersLost counts the kernel's owner records lost since netuse
	// started (a full ring) or dropped to keep the book bounded.
	ownersLost uint64
	// byIndex holds the frames of each interface, by index, as the
	// interface's counters count them; byIface the same by name (nameIfaces).
	byIndex map[int]traffic
	byIface map[string]traffic
}

// nameIfaces sets c.byIface from c.byIndex, naming each interface by
// names, and giving ifaces that moved nothing a zero entry. An index not
// in names (an interface closed meanwhile) is named "#index".
func (c *captured) nameIfaces(names map[int]string) {
	c.byIface = make(map[string]traffic, len(c.byIndex))
	for _, name := range c.ifaces {
		c.byIface[name] = traffic{}
	}
	for idx, t := range c.byIndex {
		name, ok := names[idx]
		if !ok {
			name = "#" + strconv.Itoa(idx)
		}
		c.byIface[name] = t
	}
}

// accountant adds captured packets to flows and flows to processes.
type accountant struct {
	mu        sync.Mutex
	flows     map[flow]*flowState
	pending   []flow        // new flows for the resolver
	retries   []flow        // flows to try again, each when its retry time has come
	wake      chan struct{} // has a value when pending has work
	nobody    [numReasons]*process
	cur       captured // since the last report
	dec       *decoder
	pkt       packet
	activeBuf []*process
	max       int              // flow ends the table may hold (--max-flows)
	ifaceCur  map[int]*traffic // frames by interface index since the last report
	lastIf    int              // the index of lastT, the last interface counted
	lastT     *traffic
	peak      int   // the most flow ends since the map was last rebuilt
	now       int64 // when the frame being handled was captured, Unix ns; 0 if not known
}

func newAccountant() *accountant {
	a := &accountant{
		flows:    map[flow]*flowState{},
		wake:     make(chan struct{}, 1),
		dec:      newDecoder(),
		max:      maxFlows,
		ifaceCur: map[int]*traffic{},
	}
	for r := range a.nobody {
		a.nobody[r] = &process{name: reasonName[r], reason: reason(r)}
	}
	// Fragments are aged by their frame's time, which the capture gives:
	// no clock read a fragment.
	a.dec.now = func() time.Time { return time.Unix(0, a.now) }
	return a
}

// batch takes the lock around a block of frames.
func (a *accountant) batch(begin bool) {
	if begin {
		a.mu.Lock()
	} else {
		a.mu.Unlock()
	}
}

// handle accounts one frame; the caller holds a.mu (see batch).
func (a *accountant) handle(f *frame) {
	// The kernel delivers each loopback packet twice to AF_PACKET: once
	// outgoing, once incoming. Count the incoming copy, as libpcap does.
	if f.loopback && f.dir == dirOut {
		return
	}
	if f.at != 0 {
		a.now = f.at
	}
	p := &a.pkt
	a.dec.decode(f, p)
	if f.loopback && !f.rawIP && p.length >= 14 {
		// lo counts a packet's length without its 14-byte Ethernet header
		// (loopback_xmit pulls it before counting); so does netuse, so that
		// proc matches iface.
		p.length -= 14
	}
	n := uint64(p.length)
	in := traffic{rxBytes: n, rxPackets: 1}
	out := traffic{txBytes: n, txPackets: 1}
	// The frame as its interface's own counters count it, decoded or not:
	// lo counts each packet as sent and as received.
	it := a.ifaceTraffic(f.ifindex)
	switch {
	case f.loopback:
		it.add(in)
		it.add(out)
	case f.dir == dirOut:
		it.add(out)
	default:
		it.add(in)
	}
	switch {
	case f.dir == dirOther:
		a.cur.add(in)
		a.nobody[notForHost].cur.add(in)
	case !p.ok:
		why := notTCPUDP
		if p.fragment {
			why = lostFragment
		}
		if f.loopback || f.dir == dirIn {
			a.cur.add(in)
			a.nobody[why].cur.add(in)
		}
		if f.loopback || f.dir == dirOut {
			a.cur.add(out)
			a.nobody[why].cur.add(out)
		}
	default:
		// A packet has two ends, and each that is a socket of this
		// machine, in any network namespace, is credited: the sender's
		// with tx, the receiver's with rx. Over loopback both are; over a
		// veth between two namespaces both may be; otherwise one is: the
		// sender if the packet went out, the receiver if it came in, as
		// the packet's direction says (the near end). Which ends are
		// sockets of this machine is known once they are resolved, so
		// both are kept and report decides what counts.
		a.credit(flow{p.proto, p.src, p.dst}, out, f.loopback || f.dir == dirOut, f.loopback)
		a.credit(flow{p.proto, p.dst, p.src}, in, f.loopback || f.dir == dirIn, f.loopback)
	}
}

// ifaceTraffic returns the counters of interface idx for this interval.
func (a *accountant) ifaceTraffic(idx int) *traffic {
	if a.lastT != nil && a.lastIf == idx {
		return a.lastT
	}
	t := a.ifaceCur[idx]
	if t == nil {
		t = &traffic{}
		a.ifaceCur[idx] = t
	}
	a.lastIf, a.lastT = idx, t
	return t
}

// credit adds t to fl, queueing fl for the resolver when it is new.
func (a *accountant) credit(fl flow, t traffic, near, lo bool) {
	st := a.flows[fl]
	if st == nil {
		if len(a.flows) >= a.max {
			if near {
				// The far end's bytes would be dropped in report, once it
				// is clear it has no socket here: count the near end's.
				a.cur.add(t)
				a.nobody[tableFull].cur.add(t)
			}
			return
		}
		st = &flowState{near: near, lo: lo, first: a.now}
		a.flows[fl] = st
		a.pending = append(a.pending, fl)
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	if st.until != 0 && a.now > st.until+reuseGap {
		// The owner's socket closed before this packet: another socket
		// has the same endpoints now (a new UDP client got the old
		// one's port). Find its owner.
		st.owner, st.tries, st.until, st.first, st.carried = nil, 0, 0, a.now, false
		a.pending = append(a.pending, fl)
	}
	st.near = st.near || near
	st.lo = st.lo || lo
	st.cur.add(t)
}

// takePending returns the new flows and those due to be tried again.
func (a *accountant) takePending(now time.Time) []flow {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pending
	a.pending = nil
	later := a.retries[:0]
	for _, fl := range a.retries {
		if st := a.flows[fl]; st != nil && st.owner == nil {
			if now.Before(st.retry) {
				later = append(later, fl)
			} else {
				p = append(p, fl)
			}
		}
	}
	a.retries = later
	return p
}

// firstSeen returns when each of fls was first seen (0 if it is gone).
func (a *accountant) firstSeen(fls []flow) []int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	at := make([]int64, len(fls))
	for i, fl := range fls {
		if st := a.flows[fl]; st != nil {
			at[i] = st.first
		}
	}
	return at
}

// settle records what the resolver found for each flow in fls: an owner,
// or a reason; a flow without an owner is queued again until maxTries.
// untils[i], if untils is not nil, is when owners[i]'s socket closed (see
// flowState.until).
func (a *accountant) settle(now time.Time, fls []flow, owners []*process, untils []int64, whys []reason, nats map[flow]flow, foreign []bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, fl := range fls {
		st := a.flows[fl]
		if st == nil || st.owner != nil {
			continue
		}
		if owners[i] != nil {
			st.owner = owners[i]
			if untils != nil {
				st.until = untils[i]
			}
			continue
		}
		if t, ok := nats[fl]; ok {
			st.nat = &t
		}
		st.foreign = foreign[i]
		st.why = whys[i]
		st.tries++
		if st.tries >= maxTries {
			st.owner = a.nobody[st.why]
		} else {
			st.retry = now.Add(retryGap)
			a.retries = append(a.retries, fl)
		}
	}
}

// learn records the owners found for connections as they opened; a
// connection not found is left to the ring's frames. An opening starts a
// new connection, so its owner replaces what the flow had. untils, if not
// nil, are as settle's.
func (a *accountant) learn(fls []flow, owners []*process, untils []int64, inferred []bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i, fl := range fls {
		if owners[i] == nil {
			continue
		}
		var until int64
		if untils != nil {
			until = untils[i]
		}
		if st := a.flows[fl]; st != nil {
			st.owner, st.tries, st.inferred, st.until = owners[i], 0, inferred[i], until
		} else {
			a.flows[fl] = &flowState{owner: owners[i], inferred: inferred[i], until: until}
		}
	}
}

// report moves the bytes of every flow to its owner and returns the rows of
// the owners that moved traffic since the last report, with what was
// captured. Unresolved flows count for the reason they failed so far. A
// flow the resolver has not settled yet (it began while a pass read the
// socket tables and /proc, or its first try failed and the next is due)
// keeps its bytes for the next report, once, unless this report is the
// final one.
func (a *accountant) report(final bool) ([]usage, captured) {
	a.mu.Lock()
	defer a.mu.Unlock()
	active := a.activeBuf[:0]
	add := func(p *process, t traffic) {
		if p.cur == (traffic{}) {
			active = append(active, p)
		}
		p.cur.add(t)
	}
	for _, p := range a.nobody {
		if p.cur != (traffic{}) {
			t := p.cur
			p.cur = traffic{}
			add(p, t)
		}
	}
	// Past three quarters of the table, evict drops flows below, the
	// unsettled first: nothing is carried then.
	carry := !final && len(a.flows) <= a.max/4*3
	for fl, st := range a.flows {
		if st.cur == (traffic{}) {
			if st.idle++; st.idle >= idleReports {
				delete(a.flows, fl)
			}
			continue
		}
		if st.owner == nil && !st.carried && carry {
			st.carried = true
			continue
		}
		t := st.cur
		st.cur, st.idle = traffic{}, 0
		owner := st.owner
		if owner != nil && owner.pid == 0 && st.near {
			// Given up on, but still moving bytes: look again now and
			// then. A socket may be found later (a process that was not
			// readable for a moment, a full scan that was held back).
			if st.stale++; st.stale >= recheckReports {
				st.owner, st.tries, st.stale, st.retry = nil, maxTries-1, 0, time.Time{}
				st.why = owner.reason
				a.retries = append(a.retries, fl)
			}
		}
		if owner == nil || owner.pid == 0 {
			why := st.why
			if owner != nil {
				why = owner.reason
			}
			// A far end that is a socket of this machine counts, with or
			// without its process: an end of a conversation between two
			// processes here is never lost silently.
			socketHere := why == noOwner || why == notReadable
			if (!st.near && !socketHere) || (st.foreign && a.ownedElsewhere(fl)) || a.capturedAsOriginal(st) {
				// The far end of packets that no socket of this machine
				// sent or received, or the near end of packets whose other
				// end is a process here (a container behind a bridge): the
				// bytes count once, at the other end.
				continue
			}
			if why == attributed {
				why = noSocket // not tried yet: the resolver is behind
			}
			owner = a.nobody[why]
		}
		a.cur.add(t)
		add(owner, t)
		if st.inferred {
			a.cur.inferred += t.rxBytes + t.txBytes
		}
	}
	if len(a.flows) > a.max/4*3 {
		a.evict()
	}
	a.peak = max(a.peak, len(a.flows))
	if a.peak > 4096 && len(a.flows) < a.peak/4 {
		// Deleting from a Go map does not give its memory back: after a
		// flood, copy what is left into a map of its size.
		m := make(map[flow]*flowState, len(a.flows))
		for fl, st := range a.flows {
			m[fl] = st
		}
		a.flows, a.peak = m, len(m)
	}
	a.cur.flows = len(a.flows)
	a.cur.byIndex = make(map[int]traffic, len(a.ifaceCur))
	for idx, t := range a.ifaceCur {
		if *t != (traffic{}) {
			a.cur.byIndex[idx] = *t
			*t = traffic{}
		}
	}
	rows := make([]usage, 0, len(active))
	for _, p := range active {
		p.total.add(p.cur)
		rows = append(rows, usage{name: p.name, interval: p.cur, total: p.total, proc: p})
		p.cur = traffic{}
	}
	a.activeBuf = active[:0]
	c := a.cur
	a.cur = captured{}
	return rows, c
}

// evict drops flows until the table is back to half its limit: first
// those idle in the interval just reported, then those without a process.
// Their bytes are reported already; a flow that comes back is a new one.
func (a *accountant) evict() {
	goal := a.max / 2
	for pass := 0; pass < 2 && len(a.flows) > goal; pass++ {
		for fl, st := range a.flows {
			if len(a.flows) <= goal {
				break
			}
			if (pass == 0 && st.idle > 0) || (pass == 1 && (st.owner == nil || st.owner.pid == 0)) {
				delete(a.flows, fl)
				a.cur.evicted++
			}
		}
	}
}

// capturedAsOriginal reports whether st is a NAT'd copy (on the uplink,
// with the host's address) of a flow also captured untranslated (on the
// bridge, with the container's): then its bytes count there.
func (a *accountant) capturedAsOriginal(st *flowState) bool {
	if st.nat == nil {
		return false
	}
	t := a.flows[*st.nat]
	return t != nil && t.owner != nil && t.owner.pid != 0
}

// ownedElsewhere reports whether the other end of fl is a process of this
// machine.
func (a *accountant) ownedElsewhere(fl flow) bool {
	m := a.flows[flow{fl.proto, fl.remote, fl.local}]
	return m != nil && m.owner != nil && m.owner.pid != 0
}

// socket is one entry of the kernel's socket table.
type socket struct {
	netns  uint64 // the network namespace's inode number
	proto  uint8
	local  netip.AddrPort
	remote netip.AddrPort // port 0: listening or unconnected
	inode  uint64         // 0: no file, as in TIME_WAIT
	uid    uint32
	cookie uint64 // the kernel's socket cookie, as the owner records have it
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
			k := boundKey{s.proto, s.local.Addr(), s.local.Port()}
			x.bound[k] = append(x.bound[k], s)
			continue
		}
		fl := flow{s.proto, s.local, s.remote}
		if old, ok := x.exact[fl]; !ok || old.inode == 0 {
			x.exact[fl] = s
		}
	}
	return x
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

// registry holds one record per process, whichever finder found it, so
// that a process is one row: it is known by its pid and start time.
//
// It holds its records weakly: a record lives while a flow, a finder's
// cache or a row refers to it, and the registry forgets it after that,
// so that a machine that runs a million short-lived processes does not
// grow netuse's memory (it used to keep every process ever seen).
type registry struct {
	mu    sync.Mutex
	m     map[procKey]weak.Pointer[process]
	swept int // len(m) after the last sweep of records gone
}

type procKey struct {
	pid   int
	start uint64
}

func newRegistry() *registry { return &registry{m: map[procKey]weak.Pointer[process]{}} }

// get returns the record of the process (pid, start), made by read, which
// reads the rest of it, the first time.
func (g *registry) get(pid int, start uint64, read func(*process)) *process {
	k := procKey{pid, start}
	g.mu.Lock()
	p := g.m[k].Value()
	g.mu.Unlock()
	if p != nil {
		return p
	}
	p = &process{pid: pid, start: start}
	read(p)
	g.mu.Lock()
	defer g.mu.Unlock()
	if old := g.m[k].Value(); old != nil {
		return old // another finder got there first
	}
	g.m[k] = weak.Make(p)
	if len(g.m) > 2*max(g.swept, 512) {
		for k, w := range g.m {
			if w.Value() == nil {
				delete(g.m, k)
			}
		}
		g.swept = len(g.m)
	}
	return p
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

// opening is a connection that a TCP SYN announced: the flows of its ends
// that are on this host, the first the sending end if opener.
type opening struct {
	fls    [2]flow
	n      int
	opener bool  // fls[0] is the end that opened it, on this host
	at     int64 // when the SYN was seen, Unix ns
}

// synQueue is how many openings may wait for the opening resolver; more
// are left to the ring's frames and the resolver's passes.
const synQueue = 1024

// syn takes a frame that opens a TCP connection, as soon as the capture
// sees it (before the ring hands its block over), and queues it for
// openings: a short-lived process may close its socket a millisecond
// later. It runs in the capture goroutine, which must never wait for
// /proc: a burst of thousands of connections would stop the capture and
// the kernel would drop frames; when the queue is full the opening is
// left to the ring's frames.
func (r *resolver) syn(f *frame) {
	if r.synq == nil {
		return
	}
	if r.dec == nil {
		r.dec = newDecoder()
	}
	p := &r.pkt
	r.dec.decode(f, p)
	if !p.ok {
		return
	}
	o := opening{at: time.Now().UnixNano()}
	if f.loopback || f.dir == dirOut {
		o.fls[o.n] = flow{p.proto, p.src, p.dst}
		o.n++
	}
	if f.loopback || f.dir == dirIn {
		o.fls[o.n] = flow{p.proto, p.dst, p.src}
		o.n++
	}
	o.opener = o.n > 0 && (f.loopback || f.dir == dirOut)
	select {
	case r.synq <- o:
	default:
	}
}

// startOpenings starts the goroutine that resolves the openings syn
// queues, until done is closed. Without lookup, or without both quick and
// book, it does nothing.
func (r *resolver) startOpenings(done <-chan struct{}) {
	if r.lookup == nil || (r.quick == nil && r.book == nil) {
		return
	}
	r.synq = make(chan opening, synQueue)
	go func() {
		var batch []opening
		for {
			select {
			case <-done:
				return
			case o := <-r.synq:
				batch = append(batch[:0], o)
			}
			// Take what else is waiting: one look at the newest
			// processes serves the whole burst.
		more:
			for len(batch) < 256 {
				select {
				case o := <-r.synq:
					batch = append(batch, o)
				default:
					break more
				}
			}
			r.openings(batch)
		}
	}()
}

// openings resolves the local ends of connections just opened: it asks the
// kernel for each connection's one socket rather than reading the whole
// table, and looks for the owners among the newest processes only. What it
// cannot find is left to the ring's frames.
func (r *resolver) openings(batch []opening) {
	var fls []flow
	var opener []bool
	var at []int64
	for _, o := range batch {
		for i := range o.n {
			fls = append(fls, o.fls[i])
			opener = append(opener, i == 0 && o.opener)
			at = append(at, o.at)
		}
	}
	if r.book != nil {
		r.openingsFromBook(fls, at)
		return
	}
	want := map[uint64]*process{}
	socks := make([]socket, len(fls))
	found := make([]bool, len(fls))
	guess := false
	for i, fl := range fls {
		socks[i], found[i] = r.lookup(fl)
		if found[i] && socks[i].inode != 0 {
			want[socks[i].inode] = nil
		} else {
			guess = guess || opener[i]
		}
	}
	if len(want) == 0 && !guess {
		return
	}
	r.quick.find(want)
	owners := make([]*process, len(fls))
	inferred := make([]bool, len(fls))
	g, canGuess := r.quick.(newcomers)
	for i, s := range socks {
		if s.inode != 0 {
			if owners[i] = want[s.inode]; owners[i] != nil || !canGuess || !opener[i] {
				continue
			}
			// Not found: the socket closed while the processes were read,
			// or its owner is no new process. Ask again.
			if again, ok := r.lookup(fls[i]); ok && again.inode != 0 {
				continue // open, and its owner not new: the passes will find it
			}
		}
		if !canGuess || !opener[i] {
			continue
		}
		// The socket closed before its owner was found: a connection of
		// a millisecond or less. If exactly one process of the socket's
		// user started since the last look, it is the owner; if the
		// socket is gone from the table too, so that its user is not
		// known either, the one process of any user that started. Only
		// for the end that opened the connection: a server's end is found
		// through its listener, and the newest process is the client.
		// Only in netuse's own namespace, and with the connection's
		// address: this keeps out the processes that start all the time
		// elsewhere, and the copies of another namespace's connections
		// that the host forwards (routed, or NAT'd: TestProcNAT's client
		// was credited a second time with the bridge's copy), which carry
		// addresses its socket never had.
		addr := fls[i].local.Addr()
		fits := func(netns uint64) bool { return r.ownAddr != nil && r.ownAddr(netns, addr) }
		if found[i] {
			owners[i] = g.soleNewcomer(s.uid, false, fits)
		} else {
			owners[i] = g.soleNewcomer(0, true, fits)
		}
		inferred[i] = owners[i] != nil
	}
	r.acc.learn(fls, owners, nil, inferred)
}

// openingsFromBook resolves the local ends of connections just opened
// from the kernel's records. A socket they do not have is older than
// netuse, or accepted: its owner is no newcomer, and the passes find it.
// The sockets are looked up first and the records caught up after, once
// for the batch: a socket in the table was recorded before it got there.
// A new connection can reuse the endpoints of one that closed a moment
// ago, so a record missed here would leave the old owner in place.
func (r *resolver) openingsFromBook(fls []flow, at []int64) {
	socks := make([]socket, len(fls))
	found := make([]bool, len(fls))
	for i, fl := range fls {
		socks[i], found[i] = r.lookup(fl)
	}
	r.book.sync()
	owners := make([]*process, len(fls))
	untils := make([]int64, len(fls))
	for i, fl := range fls {
		owners[i], untils[i] = r.fromBook(socks[i], found[i], fl, at[i])
	}
	r.acc.learn(fls, owners, untils, make([]bool, len(fls)))
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
	if open {
		return r.recordedOpen(s), 0
	}
	return nil, 0
}

// afterProc looks again in the kernel's records for the flows /proc left
// without an owner: a socket that closed while /proc was read, or an
// accepted one whose holder /proc did not show, which takes its
// listener's owner, the listener open or closed since (a server may close
// it and serve on: Go closes an unreferenced one when it collects it).
func (r *resolver) afterProc(x *sockIndex, fls []flow, inodes []uint64, at []int64, owners []*process, untils []int64) {
	for i, fl := range fls {
		if owners[i] == nil {
			owners[i], untils[i] = r.fromBook(socket{}, false, fl, at[i])
		}
		if owners[i] != nil || inodes[i] == 0 {
			continue
		}
		if l, ok := x.listener(fl); ok {
			owners[i] = r.recordedOpen(l)
		}
		if owners[i] == nil { // the listener closed, maybe since the table was read
			if o, ok := r.book.closedListener(fl, at[i]); ok {
				owners[i] = r.ofRecord(o)
			}
		}
	}
}

// recordedOpen returns the owner of the open socket s, if the kernel
// recorded its birth.
func (r *resolver) recordedOpen(s socket) *process {
	if o, ok := r.book.openOwner(s.cookie, s.inode); ok {
		return r.ofRecord(o)
	}
	return nil
}

// newcomers is an owner finder that can name the one process of a user
// that it saw start in its last look.
type newcomers interface {
	soleNewcomer(uid uint32, anyUID bool, fits func(netns uint64) bool) *process
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

// natCopies finds, among the flows without a socket, those that conntrack
// says are NAT'd: the host's side of a container's connection, seen on the
// uplink. It maps each to the flow as the container sees it.
func (r *resolver) natCopies(fls []flow, whys []reason) map[flow]flow {
	if r.conntrack == nil || !slices.Contains(whys, noSocket) {
		return nil
	}
	// At most every natGap: retries 250 ms apart see a fresh read.
	if time.Since(r.natAt) >= natGap {
		r.natAt = time.Now()
		entries, err := r.conntrack()
		if err != nil {
			entries = nil
		}
		r.nat = natTranslations(entries)
	}
	tr := r.nat
	if len(tr) == 0 {
		return nil
	}
	nats := map[flow]flow{}
	for i, fl := range fls {
		if t, ok := tr[fl]; ok && whys[i] == noSocket {
			nats[fl] = t
		}
	}
	return nats
}

// natGap is how long a read of the connection tracking table serves.
const natGap = 200 * time.Millisecond

// natted reports whether NAT rewrote e: its replies do not come back
// from where the connection went, or not to where it came from.
func (e natEntry) natted() bool {
	return e.replySrc != e.origDst || e.replyDst != e.origSrc
}

// natEntry is one conntrack entry: the tuple as the connection began and
// as its replies come back.
type natEntry struct {
	proto              uint8
	origSrc, origDst   netip.AddrPort
	replySrc, replyDst netip.AddrPort
}

// natTranslations maps the flows that NAT rewrote, as seen on the side of
// the translation that no socket has, to the flows as a socket sees them.
// An entry gives two: the flow toward the original destination, (local
// orig.dst, remote orig.src), is (local reply.src, remote reply.dst) at
// the replying end: a container behind a published port (DNAT); and the
// flow toward the original source, (local reply.dst, remote reply.src), is
// (local orig.src, remote orig.dst) at the opening end: a masqueraded
// container (SNAT), or a client of a published port seen on the bridge.
func natTranslations(entries []natEntry) map[flow]flow {
	m := map[flow]flow{}
	for _, e := range entries {
		toDst := flow{e.proto, e.origDst, e.origSrc}
		if t := (flow{e.proto, e.replySrc, e.replyDst}); t != toDst {
			m[toDst] = t
		}
		toSrc := flow{e.proto, e.replyDst, e.replySrc}
		if t := (flow{e.proto, e.origSrc, e.origDst}); t != toSrc {
			m[toSrc] = t
		}
	}
	return m
}
