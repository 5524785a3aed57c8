package main

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// proc's --source kernel: bytes counted per socket by the counting
// programs (attribute_count_linux.go), attached to the root of the cgroup2
// hierarchy, instead of captured. Each report collects what every socket
// of netuse's network namespace moved on each interface netuse reports
// on, credits it to the socket's owner from the kernel's owner records
// (attribute_book.go), and credits what the interface's counters moved
// beyond that, which no socket of netuse's namespace moved (forwarded
// traffic, ARP and ND, the kernel's own replies and RSTs, other packet
// sockets' frames), to the "(no socket)" row: the rows add up to the
// interfaces' counters. A socket with no record (older than netuse, or
// accepted and still open) goes to "(no owner)". Every IP protocol's
// sockets are credited alike: TCP, UDP, ping and raw sockets.
//
// Not yet: sockets of other namespaces (a container's traffic crossing a
// host's veth is "(no socket)" here, where the capture credits it to the
// container's process), conn's rows.

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
	own    uint64 // netuse's network namespace's cookie
	// the fields below are the reporting goroutine's
	ifaces map[int]*kernelIface // the interfaces reported on, by index
	owners map[uint64]*process  // by socket cookie, the owners found of sockets not yet closed
	nobody [numReasons]*process
	deltas []countDelta
	lost   uint64 // counts lost (map and ring full) at the last stats
	done   chan struct{}
	once   sync.Once
}

// kernelIface is an interface reported on, and how its counters count.
type kernelIface struct {
	name     string
	kind     ifaceCounting
	l2       uint64  // link-layer header bytes a packet: 14 on Ethernet
	last     traffic // its counters at the last report
	credited traffic // of this report, credited to sockets
}

// ifaceCounting says what an interface's counters count a packet as.
type ifaceCounting uint8

const (
	countsSegments ifaceCounting = iota // each GSO segment and IP fragment: a device that segments, or a NIC (what the wire carries)
	countsSkbs                          // each skb, fragments each one: a veth with TSO on
	countsLoopback                      // lo: each packet at transmit and receive, L3 bytes only
)

// startKernelSource loads the counting programs, attaches them to the
// cgroup2 root, and picks the interfaces as the capture would.
func startKernelSource(globs []string, rec *ownerRecords) (kernelCounts, error) {
	k := &kernelSource{globs: globs, book: rec.book, procOf: rec.procs.process, ifaces: map[int]*kernelIface{},
		owners: map[uint64]*process{}, done: make(chan struct{})}
	for r := range k.nobody {
		k.nobody[r] = &process{name: reasonName[r], reason: reason(r)}
	}
	rec.book.mu.Lock()
	rec.book.keepGone = true
	rec.book.mu.Unlock()
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
	picked, names, err := pickIfaces(k.globs)
	if err != nil {
		return err
	}
	if first {
		if err := checkGlobs(k.globs, names); err != nil {
			return err
		}
	}
	keep := map[int]bool{}
	for _, i := range picked {
		keep[i.Index] = true
		if _, ok := k.ifaces[i.Index]; ok {
			continue
		}
		ifc := &kernelIface{name: i.Name, kind: counting(i)}
		if len(i.HardwareAddr) == 6 && ifc.kind != countsLoopback {
			ifc.l2 = 14 // Ethernet, and veth
		}
		ifc.last = readIfaceCounters(i.Name)
		k.ifaces[i.Index] = ifc
		k.progs.setMTU(k.own, uint32(i.Index), uint32(i.MTU))
	}
	for idx := range k.ifaces {
		if !keep[idx] {
			delete(k.ifaces, idx)
		}
	}
	return nil
}

// counting tells how interface i counts packets: lo, a veth with TSO on,
// or anything else, taken to count what the wire carries.
func counting(i net.Interface) ifaceCounting {
	if i.Flags&net.FlagLoopback != 0 {
		return countsLoopback
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return countsSegments
	}
	defer unix.Close(fd)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, i.Name)
	if err != nil || unix.ByteSliceToString(info.Driver[:]) != "veth" {
		return countsSegments
	}
	if on, err := ethtoolValue(fd, i.Name, 0x1e); err == nil && on != 0 { // ETHTOOL_GTSO
		return countsSkbs
	}
	return countsSegments
}

// ethtoolValue reads one of the ethtool ioctl's legacy values.
func ethtoolValue(fd int, dev string, cmd uint32) (uint32, error) {
	value := struct{ cmd, data uint32 }{cmd: cmd}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data uintptr
		_    [16]byte
	}
	copy(ifr.name[:], dev)
	ifr.data = uintptr(unsafe.Pointer(&value))
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return 0, errno
	}
	return value.data, nil
}

// readIfaceCounters reads an interface's counters from sysfs; zero if it
// is gone.
func readIfaceCounters(name string) traffic {
	var t traffic
	for _, f := range []struct {
		file string
		dst  *uint64
	}{{"rx_bytes", &t.rxBytes}, {"tx_bytes", &t.txBytes}, {"rx_packets", &t.rxPackets}, {"tx_packets", &t.txPackets}} {
		b, _ := os.ReadFile("/sys/class/net/" + name + "/statistics/" + f.file)
		*f.dst, _ = strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	}
	return t
}

// view is a delta as interface ifc counts it.
func (ifc *kernelIface) view(d countDelta) traffic {
	half := func(h countHalf, ingress bool) (packets, bytes uint64) {
		switch {
		case ifc.kind == countsSkbs:
			packets = h.Packets + h.Frags
			return packets, h.Bytes + h.FragBytes + ifc.l2*packets
		case ifc.kind == countsLoopback && ingress:
			return h.Packets, h.Bytes
		}
		return h.Segs, h.Wire + ifc.l2*h.Segs
	}
	var t traffic
	t.txPackets, t.txBytes = half(d.tx, false)
	t.rxPackets, t.rxBytes = half(d.rx, true)
	return t
}

// reportKernel adds to rows the interval's rows of the counted sockets
// and of what no socket moved, and their bytes to totals.
func (k *kernelSource) reportKernel(rows []usage, totals flowTotals) ([]usage, flowTotals, error) {
	k.book.sync() // the records of sockets made since the last report
	var err error
	if k.deltas, err = k.count.collect(k.deltas[:0]); err != nil {
		return rows, totals, err
	}
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
	for _, d := range k.deltas {
		ifc := k.ifaces[int(d.Ifindex)]
		if d.netns != k.own || ifc == nil {
			continue // another namespace's socket, or an interface not reported on
		}
		t := ifc.view(d)
		ifc.credited.add(t)
		bill(k.owner(d.Cookie), t)
	}
	for _, d := range k.deltas {
		if d.closed {
			delete(k.owners, d.Cookie)
		}
	}
	if totals.byIndex == nil {
		totals.byIndex = map[int]traffic{}
	}
	for idx, ifc := range k.ifaces {
		now := readIfaceCounters(ifc.name)
		moved := traffic{rxBytes: delta(ifc.last.rxBytes, now.rxBytes), txBytes: delta(ifc.last.txBytes, now.txBytes),
			rxPackets: delta(ifc.last.rxPackets, now.rxPackets), txPackets: delta(ifc.last.txPackets, now.txPackets)}
		ifc.last = now
		totals.byIndex[idx] = moved
		c := ifc.credited
		ifc.credited = traffic{}
		bill(k.nobody[noSocket], traffic{rxBytes: sub0(moved.rxBytes, c.rxBytes), txBytes: sub0(moved.txBytes, c.txBytes),
			rxPackets: sub0(moved.rxPackets, c.rxPackets), txPackets: sub0(moved.txPackets, c.txPackets)})
	}
	for _, p := range active {
		p.total.add(p.cur)
		rows = append(rows, usage{name: p.name, interval: p.cur, total: p.total, proc: p})
		totals.traffic.add(p.cur)
		p.cur = traffic{}
	}
	return rows, totals, nil
}

// sub0 is a-b, or 0 if b is larger: an interface that counted less than
// its sockets moved (lo's transmit side, a device that dropped) leaves no
// residual, and the rows then exceed its counters by the difference.
func sub0(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// owner returns the process of the socket with this cookie, from the
// kernel's records: the open socket's creator, the closed one's closer;
// "(no owner)" if it has no record.
func (k *kernelSource) owner(cookie uint64) *process {
	if p, ok := k.owners[cookie]; ok {
		return p
	}
	o, ok := k.book.openOwner(cookie, 0)
	if !ok {
		if o, ok = k.book.goneOwner(cookie); !ok {
			return k.nobody[noOwner]
		}
	}
	if len(k.owners) >= maxOpen {
		clear(k.owners) // sockets whose close went unrecorded: look again
	}
	p := k.procOf(o)
	k.owners[cookie] = p
	return p
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
	if full, ring, err := k.count.lost(); err == nil && full+ring > k.lost {
		st.drops, k.lost = full+ring-k.lost, full+ring
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
	if k.progs != nil {
		k.progs.close()
	}
	if k.root != nil {
		k.root.Close()
	}
}
