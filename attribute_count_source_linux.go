package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// proc's, conn's and serve's --source kernel: bytes counted per socket
// by the counting programs (attribute_count_linux.go), attached to the
// root of the cgroup2 hierarchy, instead of captured. Each report
// collects what every socket of netuse's network namespace moved on each
// interface netuse reports on, credits it to the socket's owner, and
// credits what the interface's counters moved beyond that, which no
// socket of netuse's namespace moved (forwarded traffic, ARP and ND, the
// kernel's own replies and RSTs, packet sockets' frames unless
// --packet-senders counts them), to the
// "(no socket)" row: the rows add up to the interfaces' counters. Every
// IP protocol's sockets are credited alike: TCP, UDP, ping and raw
// sockets.
//
// The owner of a socket, first that answers: the kernel's owner records
// (attribute_book.go: the creator of an open socket, the closer of a
// closed one); else, for a socket born before netuse or accepted (no
// record of its birth), the socket tables of netuse's namespace, read
// once in a report that meets such a socket (attribute_count_conn_linux.go):
// an accepted connection's listener's recorded owner, or the process
// holding the socket's inode in /proc. A socket none of these finds is
// "(no owner)".
//
// Sockets of other namespaces, a container's, are credited on the host's
// end of the veth pair they send through (attribute_count_ifaces_linux.go).

// kernelSource runs the counting programs and makes proc's rows from
// them. It is proc's frameSource too, one that captures nothing.
type kernelSource struct {
	progs  *countPrograms
	links  []*link.RawLink
	root   *os.File
	count  *sockCounter
	book   *ownerBook
	procOf func(sockOwner) *process
	globs  []string
	ifSeen uint64 // the interface notifications pick last saw (ifaceWatch)
	own    uint64 // netuse's network namespace's cookie
	tables *cookieTables
	guests *guests // other namespaces' sockets: the host's end of their veths
	// packets counts the frames of packet sockets (AF_PACKET), on the
	// interfaces reported on; nil where the kernel refused its program
	packets *packetSenders
	warn    func(string)
	// the fields below are the reporting goroutine's
	ifaces map[int]*kernelIface // the interfaces reported on, by index
	owners map[uint64]*process  // by socket cookie, the owners found of sockets not yet closed
	conns  *kernelConns         // conn's rows; nil for proc and serve
	nobody [numReasons]*process
	deltas []countDelta
	frames []packetDelta // this report's packet senders'
	// reported are the deltas of this report that crossed an interface
	// reported on (seenOn)
	reported []reportedDelta
	lost     uint64 // counts lost (map and ring full) at the last stats
	done     chan struct{}
	once     sync.Once
}

// kernelIface is an interface reported on, and how its counters count.
type kernelIface struct {
	name string
	kind ifaceCounting
	l2   uint64  // link-layer header bytes a packet: 14 on Ethernet
	last traffic // its counters at the last report
	now  traffic // at this one, read right before the sockets' counts
	// ahead holds what its sockets were credited beyond its counters, one
	// entry a report, the oldest at aheadAt, still to be paid back
	ahead   [aheadReports]traffic
	aheadAt int
	// Of this report: credited to sockets of netuse's namespace, as the
	// interface counts it (other namespaces' sockets come on top).
	credited traffic
}

// ifaceCounting says what an interface's counters count a packet as.
type ifaceCounting uint8

const (
	countsSegments ifaceCounting = iota // each GSO segment and IP fragment: a device that segments, or a NIC (what the wire carries)
	countsSkbs                          // each skb, fragments each one: a veth with TSO on
	countsLoopback                      // lo: each packet at transmit and receive, L3 bytes only, a GSO skb whole
)

// startKernelSource loads the counting programs, attaches them to the
// cgroup2 root, and picks the interfaces as the capture would. find looks
// for the holders of sockets without a record in /proc; conns: make
// conn's rows; packets: count packet sockets' frames too
// (attribute_count_packet_linux.go).
func startKernelSource(globs []string, rec *ownerRecords, find owners, conns, packets bool, warn func(string)) (kernelCounts, error) {
	k := &kernelSource{globs: globs, book: rec.book, procOf: rec.procs.process, ifaces: map[int]*kernelIface{},
		owners: map[uint64]*process{}, guests: newGuests(warn), warn: warn, done: make(chan struct{})}
	if conns {
		k.conns = newKernelConns()
	}
	for r := range k.nobody {
		k.nobody[r] = &process{name: reasonName[r], reason: reason(r)}
	}
	rec.book.mu.Lock()
	rec.book.keepGone = true
	rec.book.mu.Unlock()
	// A container's process gone before it was read has its namespace
	// from its record's cookie, which the guests' looks know.
	rec.procs.mu.Lock()
	if byCookie := rec.procs.netns; byCookie != nil {
		rec.procs.netns = func(c uint64) uint64 {
			if ino := k.guests.inodeOf(c); ino != 0 {
				return ino
			}
			return byCookie(c)
		}
	}
	rec.procs.mu.Unlock()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	k.own, err = netnsCookie(fd)
	unix.Close(fd)
	if err != nil {
		return nil, fmt.Errorf("netuse's network namespace: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			k.stop()
		}
	}()
	if k.progs, err = loadCountPrograms(countEntries, 0); err != nil {
		return nil, err
	}
	if k.count, err = newSockCounter(k.progs); err != nil {
		return nil, err
	}
	if k.tables, err = newCookieTables(find); err != nil {
		return nil, err
	}
	k.guests.tellMTU = func(g guestKey, mtu uint32) { k.progs.setMTU(g.netns, g.ifindex, mtu) }
	k.guests.forgetMTU = func(g guestKey) { k.progs.dropMTU(g.netns, g.ifindex) }
	if packets {
		k.packets = startPacketSenders(warn)
	}
	if err := k.pick(true); err != nil {
		return nil, err
	}
	if k.root, err = openCgroup2(); err != nil {
		return nil, err
	}
	if k.links, err = k.progs.attach(k.root); err != nil {
		return nil, err
	}
	ok = true
	return k, nil
}

// pick sets the interfaces to report on to those globs pick now; first:
// an error if a glob matches none.
func (k *kernelSource) pick(first bool) error {
	if changed := watchedIfaces().changed(&k.ifSeen); !changed && !first {
		return nil
	}
	picked, names, err := pickIfaces(k.globs)
	if err != nil {
		return err
	}
	k.guests.forget()
	if first {
		if err := checkGlobs(k.globs, names); err != nil {
			return err
		}
	}
	keep := map[int]bool{}
	for _, i := range picked {
		keep[i.Index] = true
		k.progs.setMTU(k.own, uint32(i.Index), uint32(i.MTU)) // a changed MTU too
		if _, ok := k.ifaces[i.Index]; ok {
			continue
		}
		ifc := &kernelIface{name: i.Name, kind: countingOf(i.Name, i.Flags&net.FlagLoopback != 0)}
		if len(i.HardwareAddr) == 6 && ifc.kind != countsLoopback {
			ifc.l2 = 14 // Ethernet, and veth
		}
		ifc.last = readIfaceCounters(i.Name)
		k.ifaces[i.Index] = ifc
		if k.packets != nil {
			if err := k.packets.attach(i.Index); errors.Is(err, ebpf.ErrNotSupported) {
				k.warn(fmt.Sprintf("packet sockets' frames stay \"(no socket)\": this kernel has no tcx (Linux 6.6 or later): %v", err))
				k.packets.close()
				k.packets = nil
			} else if err != nil {
				k.warn(fmt.Sprintf("packet sockets' frames on %s stay \"(no socket)\": tcx egress refused: %v", i.Name, err))
			}
		}
	}
	for idx := range k.ifaces {
		if !keep[idx] {
			delete(k.ifaces, idx)
			if k.packets != nil {
				k.packets.detach(idx)
			}
		}
	}
	k.guests.prime(k.ifaces)
	return nil
}

// view is a delta as interface ifc counts it.
func (ifc *kernelIface) view(d countDelta) traffic {
	half := func(h countHalf, ingress bool) (packets, bytes uint64) {
		switch {
		case ifc.kind == countsLoopback && ingress:
			return h.Packets, h.Bytes
		case ifc.kind == countsSkbs, ifc.kind == countsLoopback:
			// lo's transmit side: the skbs, as lo passes a GSO skb
			// whole; one it segments (past lo's GSO limit) counts more
			// there, and the difference goes to "(no socket)", as do
			// the kernel's own ACKs and RSTs, which run no program.
			packets = h.Packets + h.Frags
			return packets, h.Bytes + h.FragBytes + ifc.l2*packets
		}
		return h.Segs, h.Wire + ifc.l2*h.Segs
	}
	var t traffic
	t.txPackets, t.txBytes = half(d.tx, false)
	t.rxPackets, t.rxBytes = half(d.rx, true)
	return t
}

// reportKernel adds to rows the interval's rows of the counted sockets
// and of what no socket moved, and their bytes to totals; for conn, to
// conns each socket's row.
func (k *kernelSource) reportKernel(rows, conns []usage, totals flowTotals, final bool) ([]usage, []usage, flowTotals, error) {
	// The interfaces' counters right before the sockets' counts, not
	// after or with slower work between them (the records, the tables,
	// other namespaces): what moves between the two reads is credited to
	// its socket in this report and moved by the interface in the next,
	// an excess that rest pays back from the next reports. Read the other
	// way round, it was "(no socket)" in this report and credited again
	// in the next, and a read of many sockets' counts under load takes
	// long enough for that to be large (bench/run.sh's workload 5).
	k.readIfaces()
	var err error
	if k.deltas, err = k.count.collect(k.deltas[:0]); err != nil {
		return rows, conns, totals, err
	}
	if k.packets != nil {
		if k.frames, err = k.packets.collect(k.frames[:0]); err != nil {
			return rows, conns, totals, err
		}
	}
	if final {
		// The last report has no next one to pay back what its sockets
		// were credited beyond the interfaces (a packet a program counted
		// after the read above): the interfaces again, after the sockets,
		// so that the rows add up to them; what moved between the two
		// reads with no socket counted yet is "(no socket)".
		k.readIfaces()
	}
	fitMemoryLimit(k.count.entries())
	if k.needRecords() {
		k.book.sync() // the records of sockets made since the last report
	}
	k.tables.newReport()
	if k.conns != nil {
		// every socket's endpoints and state: netuse's namespace's, and
		// those of the other namespaces whose sockets moved bytes
		for _, d := range k.deltas {
			k.alsoRead(d.netns)
		}
		k.tables.read()
	}
	k.reported = k.reported[:0]
	for i := range k.deltas {
		if ifc, t, seen, ok := k.seenOn(k.deltas[i]); ok { // else an interface not reported on
			k.reported = append(k.reported, reportedDelta{&k.deltas[i], ifc, t, seen})
		}
	}
	k.findOwners()
	var active []*process
	bill := func(p *process, t traffic) {
		if t == (traffic{}) {
			return
		}
		if p.cur == (traffic{}) {
			active = append(active, p)
		}
		p.cur.add(t)
	}
	now := wallNow()
	for _, r := range k.reported {
		p := k.owner(*r.countDelta)
		if r.countDelta.netns == k.own {
			r.ifc.credited.add(r.seen)
		} else if p.pid == 0 {
			// A container's socket of no process found (the kernel's own
			// of that namespace: ND, MLD) counts from the host's side,
			// with what no socket here moved.
			continue
		}
		bill(p, r.t)
		if k.conns != nil {
			k.conns.add(*r.countDelta, p, r.t, k.tables, k.book, now)
		}
	}
	for _, f := range k.frames {
		ifc := k.ifaces[int(f.Ifindex)]
		if ifc == nil {
			continue // an interface no longer reported on: its frames were its last report's
		}
		o := f.owner
		o.netns = k.own
		p := k.procOf(o)
		t := traffic{txPackets: f.packets, txBytes: f.bytes}
		ifc.credited.add(t)
		bill(p, t)
		if k.conns != nil {
			k.conns.credit(connKey{p: p}, t, connInfo{first: now, last: now})
		}
	}
	for _, d := range k.deltas {
		if d.closed {
			delete(k.owners, d.Cookie)
		}
	}
	if totals.byIndex == nil {
		totals.byIndex = map[int]traffic{}
	}
	var residual traffic
	for idx, ifc := range k.ifaces {
		now := ifc.now
		moved := traffic{rxBytes: delta(ifc.last.rxBytes, now.rxBytes), txBytes: delta(ifc.last.txBytes, now.txBytes),
			rxPackets: delta(ifc.last.rxPackets, now.rxPackets), txPackets: delta(ifc.last.txPackets, now.txPackets)}
		ifc.last = now
		totals.byIndex[idx] = moved
		// What this namespace's sockets did not move, as the capture
		// says it: a container's socket is the far end of what it moved
		// through this end, and its row comes on top; what the host
		// forwarded to it, or an AF_PACKET socket here sent it, is "(no
		// socket)" on this side.
		c := ifc.credited
		ifc.credited = traffic{}
		residual.add(ifc.rest(moved, c))
	}
	bill(k.nobody[noSocket], residual)
	totals.flows = k.count.entries()
	for _, p := range active {
		p.total.add(p.cur)
		rows = append(rows, usage{name: p.name, interval: p.cur, total: p.total, proc: p})
		totals.traffic.add(p.cur)
		p.cur = traffic{}
	}
	if k.conns != nil {
		conns = k.conns.report(conns, k.deltas, k.nobody[noSocket], residual)
	}
	return rows, conns, totals, nil
}

// readIfaces reads the counters of the interfaces reported on, into now.
func (k *kernelSource) readIfaces() {
	for _, ifc := range k.ifaces {
		ifc.now = readIfaceCounters(ifc.name)
	}
}

// reportedDelta is a delta of this report's deltas, the interface
// reported on it crossed, and its traffic as seenOn gives it. It points
// into kernelSource.deltas, which collect refills at the next report: a
// copy cost 120 bytes an entry, kept at the peak's capacity.
type reportedDelta struct {
	*countDelta
	ifc     *kernelIface
	t, seen traffic
}

// seenOn returns the interface reported on that d's packets crossed, d
// as that interface counts it from the socket's side (the row's traffic),
// and as the interface itself counts it (seen, for what no socket
// moved). A socket of netuse's namespace crossed its own interface: the
// two are the same. A container's socket crossed the host's end of its
// veth pair, which received what the socket sent and sent what it
// received; its row says what it sent as sent, as the capture's does.
func (k *kernelSource) seenOn(d countDelta) (ifc *kernelIface, t, seen traffic, ok bool) {
	if d.netns == k.own {
		if ifc = k.ifaces[int(d.Ifindex)]; ifc == nil {
			return nil, t, seen, false
		}
		t = ifc.view(d)
		return ifc, t, t, true
	}
	e := k.guests.end(guestKey{d.netns, d.Ifindex}, k.ifaces)
	if e == nil || k.ifaces[e.host] == nil {
		return nil, t, seen, false
	}
	t = e.ifc.view(d)
	seen = traffic{rxBytes: t.txBytes, txBytes: t.rxBytes, rxPackets: t.txPackets, txPackets: t.rxPackets}
	return k.ifaces[e.host], t, seen, true
}

// aheadReports bounds how many reports an excess of the sockets over
// their interface is kept to pay back. Such an excess is mostly a lag that
// turns round within a report or two: a packet counted by the egress
// program before the device counts it, or by the device before the
// ingress program, on either side of the report's two reads; under load
// (workload 5's 1,000 connections) the lag grows over several reports
// before it shrinks. An excess that never turns round is the device's: a
// packet the program counted and the device dropped (a qdisc's drop, a
// full veth peer); kept for ever it would hide every later "(no socket)".
const aheadReports = 8

// rest is what the interface moved in this report beyond what its sockets
// were credited, less what they were credited beyond it in the last
// aheadReports reports and has not been paid back yet, oldest first: a
// packet a program counted in one report and the device in a later one
// is credited once, and not "(no socket)" too (the other way round, the
// device first, it is both: reportKernel reads the map last, so that
// only a lag longer than the read does that). An excess older than that is
// dropped: where the interface counts less than its sockets for good (a
// device that dropped), the rows exceed its counters by the difference.
func (ifc *kernelIface) rest(moved, credited traffic) traffic {
	var r, excess traffic
	field := func(t *traffic, i int) *uint64 {
		return [...]*uint64{&t.rxBytes, &t.txBytes, &t.rxPackets, &t.txPackets}[i]
	}
	for i := range 4 {
		m, c := *field(&moved, i), *field(&credited, i)
		if c >= m {
			*field(&excess, i) = c - m
			continue
		}
		owed := m - c
		for j := range aheadReports {
			a := field(&ifc.ahead[(ifc.aheadAt+j)%aheadReports], i)
			pay := min(*a, owed)
			*a -= pay
			if owed -= pay; owed == 0 {
				break
			}
		}
		*field(&r, i) = owed
	}
	// This report's excess takes the place of the oldest, which is dropped.
	ifc.ahead[ifc.aheadAt] = excess
	ifc.aheadAt = (ifc.aheadAt + 1) % aheadReports
	return r
}

// owner returns the process of d's socket; "(no owner)" if it has none
// (findOwners looked for it).
func (k *kernelSource) owner(d countDelta) *process {
	if p, ok := k.known(d.Cookie); ok {
		return p
	}
	return k.nobody[noOwner]
}

// needRecords says whether the report needs the kernel's records of
// sockets up to now: for a socket it has no owner for yet, and for conn,
// whose closed sockets' endpoints are in their records. A report that
// needs none (an idle machine's, or one of sockets all known) does not
// wait for the reader.
func (k *kernelSource) needRecords() bool {
	if len(k.deltas) > 0 && k.conns != nil {
		return true
	}
	for _, d := range k.deltas {
		if p, ok := k.owners[d.Cookie]; !ok || p.pid == 0 {
			return true
		}
	}
	return false
}

// The frameSource half: nothing is captured.

func (k *kernelSource) run(*sniffer) error { <-k.done; return nil }

func (k *kernelSource) rescan() { k.pick(false) }

func (k *kernelSource) stats() captureStats {
	st := captureStats{names: map[int]string{}}
	for idx, ifc := range k.ifaces {
		st.ifaces = append(st.ifaces, ifc.name)
		st.names[idx] = ifc.name
	}
	slices.Sort(st.ifaces)
	if full, ring, err := k.count.lost(); err == nil {
		if k.packets != nil {
			if n, err := k.packets.lostFrames(); err == nil {
				full += n
			}
		}
		if full+ring > k.lost {
			st.drops, k.lost = full+ring-k.lost, full+ring
		}
	}
	return st
}

// stop detaches the programs, then closes what they used; run returns.
func (k *kernelSource) stop() {
	k.once.Do(func() { close(k.done) })
	for _, l := range k.links {
		l.Close()
	}
	if k.count != nil {
		k.count.close()
	}
	if k.tables != nil {
		k.tables.close()
	}
	k.guests.close()
	k.packets.close()
	if k.progs != nil {
		k.progs.close()
	}
	if k.root != nil {
		k.root.Close()
	}
}

// heapPerSocket is the heap a socket in the counting map keeps live (its
// totals, its last delta, its owner, its record): bench/reportcost.sh's
// RSS at 100,000 sockets without a limit (BENCHMARKS.md), less the 15 MiB
// or so that is not heap, over GOGC=50's 1.5, is about 800 bytes a socket.
const heapPerSocket = 768

// fitMemoryLimit raises the soft limit on the heap (memoryLimit, set in
// main) by what n counted sockets keep live, unless GOMEMLIMIT set it.
// memoryLimit is for floods of flows, a heap that a limit keeps from
// doubling; live sockets are not garbage, and a fixed limit below their
// heap keeps the collector running without pause.
func fitMemoryLimit(n int) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(memoryLimit + int64(n)*heapPerSocket)
}
