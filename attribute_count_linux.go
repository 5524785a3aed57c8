package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// Bytes and packets counted per socket in the kernel. Two cgroup_skb
// programs, one at egress and one at ingress, run for every packet a
// socket of the cgroup sends or is handed, and add it to the socket's
// counts on that device. A full socket's are a slot of an array, which
// the socket's own storage (SK_STORAGE) names: found without hashing,
// through the socket the stack has just touched (what that saves is in
// BENCHMARKS.md). Other packets count in a per-CPU hash
// keyed by the socket's cookie and the device's index: a socket that is
// not full (a request or TIME_WAIT socket), one on a second device,
// every socket once the slots run out, and a socket's packets after its
// close. A cgroup/sock_release program turns the socket's storage away
// from its slot and writes its cookie to a ring buffer, so that its slot
// and entries are read one last time and given back or deleted
// (drained) once the packets that follow a close (a passive closer's
// FIN, the last ACK) are in. A slot whose socket never sees a release
// (a connection the listener closed before accepting it, a socket the
// kernel made for itself and closes without a file) is taken back once
// it has moved nothing for idleEvict: the slot's generation, which the
// socket's reference to it carries, moves on first, so that a socket
// still alive takes another slot at its next packet (collectSlots); the
// hash takes over when no slot is left. A raw ICMP,
// ICMPv6 or TCP socket takes no slot: such are the kernel's own of each
// namespace, which go with it, and their hash entries go when idle.
//
// What the hooks see (measured on Linux 6.18, and checked by TestCountTraffic
// with offloads on and off, and TestCountLoopback):
// `len` is the L3 length of an skb; egress runs before GSO segmentation
// and IP fragmentation, ingress after GRO and reassembly. So each entry
// keeps two views: the skbs as the hooks saw them (packets, bytes), and
// the packets they are on the wire (segs, wire: GSO segments, each with
// its own copy of the IP and TCP/UDP headers, and IP fragments, each with
// its own IP header); frags and fragBytes keep the part of the second
// that fragmentation added, because a veth with TSO on counts GSO skbs as
// one packet but fragments as many. The L2 header is the reader's to add:
// it depends on the device (14 on Ethernet and veth, 0 on lo and on veth's
// NAPI path). Reconciled with a device's counters: a veth with TSO on
// counts skbs, fragments each one, plus 14 bytes a packet (packets +
// frags, bytes + fragBytes); without TSO and GRO it counts segments
// (segs, wire, plus 14 each). lo counts each packet at transmit and
// again at receive, L3 bytes only, and equals the ingress sums; its
// transmit side counts the skbs (lo passes a GSO skb whole when it fits
// lo's own GSO limit, and segments one that does not, which then counts
// more there than the skbs). A packet the kernel
// sends itself (an ICMP reply, a RST, a TIME_WAIT ACK) runs no program:
// it goes out through a control socket outside every cgroup. A
// namespace's own IPv6 ND and MLD sockets are the exception: made in the
// cgroup of the process that made the namespace, their packets run the
// programs, and the socket's type and protocol (sockKind, in its slot's
// header or its hash entry) tell them from a process's.
//
// The programs' instructions are in attribute_count_programs_linux.go.
//
// The same rules as the owner programs (attribute_records_linux.go): every
// path returns 1, "allow" (a cgroup_skb program that returns 0 drops the
// packet), proved by TestCountProgramsAllow; the programs run through
// BPF_PROG_TEST_RUN and on a cgroup of the test's own before anything else
// (TestCountProgramsRun, TestCountTraffic); links are never pinned.

// Offsets in the key and value of the counting map.
const (
	ckCookie  = 0  // u64 socket cookie
	ckIfindex = 8  // u32 the device's index in the socket's namespace: at egress the output device, at ingress the receiving one
	ckSize    = 16 // with 4 bytes of padding, zero

	cvNetns     = 0 // u64 the socket's network namespace cookie
	cvTx        = 8 // the egress half
	cvRx        = cvTx + chSize
	cvKind      = cvRx + chSize // u32 the socket's sockKind, written at the entry's insert on that CPU
	cvSize      = cvKind + 8
	chPackets   = 0  // u64 skbs
	chBytes     = 8  // u64 Σ len: L3 bytes of the skbs
	chSegs      = 16 // u64 packets on the wire beyond the skbs: Σ max(gso_segs, 1) - 1, a fragmented skb's fragments - 1
	chWire      = 24 // u64 L3 bytes on the wire beyond len: (segs-1)·(L3+L4 header), or the fragments' headers
	chFrags     = 32 // u64 of segs, those IP fragmentation added: Σ (fragments - 1)
	chFragBytes = 40 // u64 of wire, the bytes IP fragmentation added: Σ (fragments·fragment header - L3 header)
	chSize      = 48

	// A slot of the slots array: a socket's counts on one device, found
	// through the socket's storage (a slot reference) in place of a hash
	// lookup by cookie. Its two cache lines are its two halves: the egress
	// program writes only the first and the ingress program only the
	// second, each reading its own copy of the generation, as a socket's
	// packets out and in run on different CPUs (a TCP sender's data and
	// the ACKs to it), and a line both write goes from CPU to CPU on each
	// packet (BENCHMARKS.md, "A slot's halves in two cache lines").
	svTx      = 0             // the egress half, chSize bytes
	svCookie  = svTx + chSize // u64 the socket's cookie, written last: 0 is a free slot
	svGenTx   = svCookie + 8  // u32 the slot's generation, for the egress program; only netuse writes it
	svIfindex = svGenTx + 4   // u32 the device
	svRx      = svLine        // the ingress half, chSize bytes
	svNetns   = svRx + chSize // u64 the socket's network namespace cookie
	svGenRx   = svNetns + 8   // u32 svGenTx's copy, for the ingress program
	svKind    = svGenRx + 4   // u32 the socket's type (low 16 bits) and protocol (high 16 bits), as bpf_sock has them
	svLine    = 64            // a cache line
	svSize    = 2 * svLine    // svKind+4
	// srSlot is the u32 of a slot reference: its low 16 bits the slot +
	// 1 (0: none yet), its high 16 the slot's generation when it was
	// taken; noSlot: none to be had. A reference whose generation is not
	// the slot's any more is a slot netuse took back: the socket takes
	// another. 16 bits: a socket silent while its old slot went round
	// 65,536 generations would count in it again.
	srSlot     = 0
	srSlotMask = 0xffff
	srIfindex  = 4 // u32 the slot's device
	srSize     = 8
	noSlot     = 0x7fffffff // past any slot + 1 and generation
	// slotCount slots, 2 MiB preallocated: the sockets past them, and a
	// socket's packets on a second device, count in the hash.
	slotCount = 16384

	// lost's indexes, in a per-CPU array
	lostMapFull = 0 // a socket's first packet on a device found the counting map full: counted nowhere
	lostRing    = 1 // a closed socket's record found the ring full: its entry is never drained

	// fragFloor: an skb of at most 576 bytes, the datagram every IPv4
	// host must accept (RFC 791), is taken as one packet without looking
	// up its device's MTU; a device with a smaller MTU is counted as if
	// it had none.
	fragFloor = 576

	closedBytes = 1 << 20 // 43,690 records of 16 bytes and an 8-byte header: the sockets that may close between two collects
	// countBatch entries per BPF_MAP_LOOKUP_BATCH: 128 to 16,384 took the
	// same time a walk (2.4-2.6 ms for 10,000 entries, 39-61 ms for
	// 100,000); 1,024 keeps the buffer at 1,024·(16+104·CPUs) bytes.
	countBatch = 1024
)

// Offsets on the counting programs' stack, below the frame pointer.
const (
	fpKey       = -16               // the map key
	fpHdr       = -40               // 16 bytes of the packet's headers
	fpLostKey   = -44               // u32 an index of lost
	fpFrags     = -56               // u64 this skb's chFrags
	fpFragBytes = -64               // u64 this skb's chFragBytes
	fpL3        = -72               // u64 the L3 header's length, kept across a call
	fpMTUKey    = -88               // 16 bytes: netns cookie, ifindex, padding
	fpValue     = fpMTUKey - cvSize // a new entry's value
	fpSlotRef   = fpValue - 8       // u64 the socket's slot reference, kept across calls
	fpSlotPtr   = fpValue - 16      // u64 the slot's value, kept across calls
	fpSlot      = fpValue - 24      // u32 the slot's index
	fpKind      = fpValue - 32      // u32 the socket's sockKind, kept across calls
	fpGen       = fpValue - 36      // u32 the slot reference's generation, kept across a call
)

// countKey and countValue are the map's key and per-CPU value, as laid out
// above; exported fields, so that cilium/ebpf copies them without
// reflection.
type countKey struct {
	Cookie  uint64
	Ifindex uint32
	_       uint32
}

// countHalf is one direction's counts; see the ch* offsets.
type countHalf struct {
	Packets, Bytes, Segs, Wire, Frags, FragBytes uint64
}

type countValue struct {
	Netns  uint64
	Tx, Rx countHalf
	Kind   sockKind
	_      uint32
}

// mtuKey is the key of the map of the devices' MTUs.
type mtuKey struct {
	Netns   uint64
	Ifindex uint32
	_       uint32
}

// countPrograms are the kernel objects of the counting.
type countPrograms struct {
	counts, mtus, lost, closed  *ebpf.Map
	slotRefs, slots, free, next *ebpf.Map
	mtuFloor                    *ebpf.Map
	egress, ingress, release    *ebpf.Program
	mtuOf                       map[mtuKey]uint32 // what mtus holds
}

// countEntries bounds the counting map: sockets times the devices each
// uses. The map is not preallocated, so it takes about (104·CPUs + 64)
// bytes of kernel memory an entry in use, not the bound's worth (on 32
// CPUs, 0.9 GB). Not an LRU map, which would evict live counters
// silently: a socket that finds it full (or a failed allocation) is
// counted in lost.
const countEntries = 262144

// loadCountPrograms creates the maps, entries the size of the counting
// map and ring bytes the closed sockets' ring (0: closedBytes), and loads
// the programs, without attaching them.
func loadCountPrograms(entries, ring uint32) (*countPrograms, error) {
	if ring == 0 {
		ring = closedBytes
	}
	p := &countPrograms{}
	var err error
	for _, m := range []struct {
		spec *ebpf.MapSpec
		dst  **ebpf.Map
	}{
		{&ebpf.MapSpec{Name: "netuse_counts", Type: ebpf.PerCPUHash, KeySize: ckSize, ValueSize: cvSize, MaxEntries: entries, Flags: unix.BPF_F_NO_PREALLOC}, &p.counts},
		// 4,096 devices of all namespaces: one without an entry is
		// counted as if it never fragmented
		{&ebpf.MapSpec{Name: "netuse_mtus", Type: ebpf.Hash, KeySize: 16, ValueSize: 4, MaxEntries: 4096}, &p.mtus},
		{&ebpf.MapSpec{Name: "netuse_clost", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 2}, &p.lost},
		{&ebpf.MapSpec{Name: "netuse_closed", Type: ebpf.RingBuf, MaxEntries: ring}, &p.closed},
		// Socket-local storage wants BTF of its key and value.
		{&ebpf.MapSpec{Name: "netuse_slotref", Type: ebpf.SkStorage, KeySize: 4, ValueSize: srSize, Flags: unix.BPF_F_NO_PREALLOC,
			Key: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed},
			Value: &btf.Struct{Name: "slotref", Size: srSize, Members: []btf.Member{
				{Name: "slot", Type: &btf.Int{Name: "u32", Size: 4}, Offset: srSlot * 8},
				{Name: "ifindex", Type: &btf.Int{Name: "u32", Size: 4}, Offset: srIfindex * 8}}}}, &p.slotRefs},
		{&ebpf.MapSpec{Name: "netuse_slots", Type: ebpf.Array, KeySize: 4, ValueSize: svSize, MaxEntries: slotCount, Flags: unix.BPF_F_MMAPABLE}, &p.slots},
		{&ebpf.MapSpec{Name: "netuse_free", Type: ebpf.Stack, ValueSize: 4, MaxEntries: slotCount}, &p.free},
		// the lowest slot never used, so that the stack starts empty in
		// place of being filled with every slot, a syscall each
		{&ebpf.MapSpec{Name: "netuse_next", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}, &p.next},
		// the least of mtus' MTUs (setMTU): a longer skb than fragFloor
		// but not than this is one packet on every device, without a
		// lookup; one entry, read in place (a direct value load)
		{&ebpf.MapSpec{Name: "netuse_mtufl", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}, &p.mtuFloor},
	} {
		if *m.dst, err = ebpf.NewMap(m.spec); err != nil {
			p.close()
			return nil, fmt.Errorf("create map %s: %w", m.spec.Name, err)
		}
	}
	maps := map[string]*ebpf.Map{"counts": p.counts, "mtus": p.mtus, "lost": p.lost, "closed": p.closed,
		"slotrefs": p.slotRefs, "slots": p.slots, "free": p.free, "next": p.next, "mtufloor": p.mtuFloor}
	for _, pr := range []struct {
		name   string
		typ    ebpf.ProgramType
		attach ebpf.AttachType
		insns  asm.Instructions
		dst    **ebpf.Program
	}{
		{"netuse_egress", ebpf.CGroupSKB, ebpf.AttachCGroupInetEgress, countProgram(cvTx), &p.egress},
		{"netuse_ingress", ebpf.CGroupSKB, ebpf.AttachCGroupInetIngress, countProgram(cvRx), &p.ingress},
		{"netuse_closed", ebpf.CGroupSock, ebpf.AttachCgroupInetSockRelease, closedProgram(), &p.release},
	} {
		for name, m := range maps {
			if err := pr.insns.AssociateMap(name, m); err != nil && !errors.Is(err, asm.ErrUnreferencedSymbol) {
				p.close()
				return nil, err
			}
		}
		*pr.dst, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: pr.name, Type: pr.typ, AttachType: pr.attach,
			Instructions: pr.insns, License: bpfLicense})
		if err != nil {
			p.close()
			return nil, fmt.Errorf("load the %s program: %w", pr.attach, err)
		}
	}
	return p, nil
}

func (p *countPrograms) close() {
	for _, pr := range []*ebpf.Program{p.egress, p.ingress, p.release} {
		if pr != nil {
			pr.Close()
		}
	}
	for _, m := range []*ebpf.Map{p.counts, p.mtus, p.lost, p.closed, p.slotRefs, p.slots, p.free, p.next, p.mtuFloor} {
		if m != nil {
			m.Close()
		}
	}
}

// attach links the three programs to the cgroup dir; closing the links
// detaches them. Links, never pinned: they die with netuse.
func (p *countPrograms) attach(dir *os.File) ([]*link.RawLink, error) {
	return attachLinks(dir, []cgroupProg{
		{p.release, ebpf.AttachCgroupInetSockRelease}, // first: a socket counted is a socket whose close is seen
		{p.egress, ebpf.AttachCGroupInetEgress},
		{p.ingress, ebpf.AttachCGroupInetIngress},
	})
}

// setMTU tells the programs the MTU of device ifindex of the namespace
// with cookie netns, for their count of fragments; nothing if they have
// it already. The floor goes down before a smaller MTU is in the map and
// up after a larger one is, so that it is never above one of the map's.
func (p *countPrograms) setMTU(netns uint64, ifindex, mtu uint32) error {
	if p.mtuOf == nil {
		p.mtuOf = map[mtuKey]uint32{}
	}
	k := mtuKey{Netns: netns, Ifindex: ifindex}
	if was, ok := p.mtuOf[k]; ok && was == mtu {
		return nil
	}
	before := p.mtuFloorOf()
	p.mtuOf[k] = mtu
	after := p.mtuFloorOf()
	if err := p.mtuFloor.Put(uint32(0), min(before, after)); err != nil {
		return err
	}
	if err := p.mtus.Put(k, mtu); err != nil {
		return err
	}
	return p.mtuFloor.Put(uint32(0), after)
}

// dropMTU takes back the MTU of a device setMTU was told of (a
// container's, gone), then raises the floor if it was the least.
func (p *countPrograms) dropMTU(netns uint64, ifindex uint32) error {
	k := mtuKey{Netns: netns, Ifindex: ifindex}
	if _, ok := p.mtuOf[k]; !ok {
		return nil
	}
	delete(p.mtuOf, k)
	if err := p.mtus.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return err
	}
	return p.mtuFloor.Put(uint32(0), p.mtuFloorOf())
}

// mtuFloorOf is the least MTU of mtuOf: the floor the programs read (0,
// none: every skb past fragFloor looks its device up).
func (p *countPrograms) mtuFloorOf() uint32 {
	least := uint32(0)
	for _, m := range p.mtuOf {
		if least == 0 || m < least {
			least = m
		}
	}
	return least
}

// countDelta is what one socket moved on one device since the last
// collect.
type countDelta struct {
	countKey
	netns  uint64
	tx, rx countHalf
	closed bool     // the socket closed, and this is the last of it
	kind   sockKind // 0: not known (not a full socket)
}

// sockKind is a socket's type (low 16 bits) and protocol (high 16 bits).
type sockKind uint32

// kernels reports whether a socket of this kind that no process made
// (sock_create never recorded it) is one of the kernel's own: a raw
// ICMP, ICMPv6 or TCP socket, which is what the kernel's control sockets
// are (IPv6 neighbour discovery and MLD, made with each namespace, in the
// cgroup of the process that made it). A process's raw socket of these
// protocols made before netuse started, which no table netuse reads has,
// is taken for one too.
func (k sockKind) kernels() bool {
	if k&0xffff != unix.SOCK_RAW {
		return false
	}
	switch k >> 16 {
	case unix.IPPROTO_ICMP, unix.IPPROTO_ICMPV6, unix.IPPROTO_TCP:
		return true
	}
	return false
}

// inTables reports whether a socket of this kind can be in the socket
// tables netuse reads (cookieTables: TCP and UDP, by sock_diag): a TCP
// or UDP socket, or one of unknown kind (0: not a full socket when
// counted, as a TIME_WAIT one). A raw, ping or SCTP socket is in none.
func (k sockKind) inTables() bool {
	switch {
	case k == 0:
		return true
	case k&0xffff == unix.SOCK_STREAM:
		return k>>16 == unix.IPPROTO_TCP
	case k&0xffff == unix.SOCK_DGRAM:
		return k>>16 == unix.IPPROTO_UDP
	}
	return false
}

// sockCounter reads the counting map: each collect, every entry's counts
// since the last, and the closed sockets' last counts. One goroutine at a
// time calls it.
type sockCounter struct {
	progs  *countPrograms
	reader *ringbuf.Reader
	grace  time.Duration          // a closed socket's entry is drained this long after its close
	now    func() int64           // CLOCK_MONOTONIC, ns
	prev   map[countKey]countSeen // each entry's totals at the last collect
	// closing holds the cookies of closed sockets, and when they closed
	// (CLOCK_MONOTONIC ns), until their entries are drained
	closing map[uint64]int64
	// drained holds the cookies drained, and when, for drainKeep: an
	// entry of one made again (a packet later than the grace) is read and
	// deleted at the next collect
	drained map[uint64]int64
	keys    []countKey
	vals    []countValue // countBatch entries of a value per CPU
	ncpu    int
	rec     ringbuf.Record
	// slots is the bottom of the slots array, mapped (mapSlots says how
	// much); the programs add to it as it is read, so every word is read
	// atomically
	slots []byte
	// slotPrev holds each slot in use's totals at the last collect
	slotPrev map[uint32]slotSeen
	// slotScan: the slots in use are below it. The programs take the
	// slots given back first (the free stack), then the lowest never
	// used, so the slots in use are the bottom of the array.
	slotScan uint32
}

// slotSeen is a slot's socket and totals at the last collect, when they
// last changed (CLOCK_MONOTONIC ns), and whether netuse is taking it back.
type slotSeen struct {
	countKey
	countValue
	moved   int64
	retired bool
}

// countGrace: a passive closer's FIN and the last ACK come a round trip
// after close() (facts #6: 1 packet egress, 1 ingress after the release);
// 2 s covers a round trip and a retransmission at the 1 s initial RTO.
// Packets later still are kept by drainKeep.
//
// idleEvict: an entry that has not moved for this long is read and
// deleted as a closed socket's is. Nothing is lost (the socket's next
// packet makes a new entry, whose counts are all new), the map keeps the
// sockets that move, and a socket whose close went unrecorded (a full
// ring) does not keep its entry for ever.
const (
	countGrace = 2 * time.Second
	drainKeep  = time.Minute
	idleEvict  = 5 * time.Minute
)

// countSeen is an entry's totals at the last collect, and when they last
// changed (CLOCK_MONOTONIC ns).
type countSeen struct {
	countValue
	moved int64
}

func newSockCounter(p *countPrograms) (*sockCounter, error) {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, err
	}
	r, err := ringbuf.NewReader(p.closed)
	if err != nil {
		return nil, err
	}
	c := &sockCounter{progs: p, reader: r, grace: countGrace, now: monoNow, prev: map[countKey]countSeen{},
		closing: map[uint64]int64{}, drained: map[uint64]int64{},
		keys: make([]countKey, countBatch), vals: make([]countValue, countBatch*ncpu), ncpu: ncpu,
		slotPrev: map[uint32]slotSeen{}}
	if err := c.mapSlots(1); err != nil {
		r.Close()
		return nil, err
	}
	return c, nil
}

// mapSlots maps at least the bottom n slots of the array, a page or
// twice what is mapped at a time: the kernel maps a mapping's every page
// at once, and the whole array's 2 MiB would be in netuse's RSS from the
// start.
func (c *sockCounter) mapSlots(n uint32) error {
	if uint32(len(c.slots)/svSize) >= n {
		return nil
	}
	size := max(os.Getpagesize(), 2*len(c.slots), int(n)*svSize)
	size = min((size+os.Getpagesize()-1)/os.Getpagesize()*os.Getpagesize(), slotCount*svSize)
	m, err := unix.Mmap(c.progs.slots.FD(), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("map the slots: %w", err)
	}
	if c.slots != nil {
		unix.Munmap(c.slots)
	}
	c.slots = m
	return nil
}

func monoNow() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

func (c *sockCounter) close() {
	c.reader.Close()
	if c.slots != nil {
		unix.Munmap(c.slots)
		c.slots = nil
	}
}

// entries returns the entries of the counting map and the slots in use
// as the last collect left them: a socket on a device each.
func (c *sockCounter) entries() int { return len(c.prev) + len(c.slotPrev) }

// collect appends to out what each socket moved on each device since the
// last collect (entries that moved nothing are left out), the last counts
// of the sockets closed more than grace ago (closed set), and deletes
// their entries and those idle for idleEvict.
func (c *sockCounter) collect(out []countDelta) ([]countDelta, error) {
	if err := c.readClosed(); err != nil {
		return out, err
	}
	now := c.now()
	due := func(cookie uint64) bool {
		if t, ok := c.closing[cookie]; ok && now-t >= int64(c.grace) {
			return true
		}
		_, ok := c.drained[cookie]
		return ok
	}
	type drainKey struct {
		countKey
		closed bool
	}
	var drain []drainKey
	var cursor ebpf.MapBatchCursor
	for {
		n, err := c.progs.counts.BatchLookup(&cursor, c.keys, c.vals, nil)
		for i := range n {
			k := c.keys[i]
			if due(k.Cookie) {
				drain = append(drain, drainKey{k, true})
				continue
			}
			var moved bool
			out, moved = c.delta(out, k, c.vals[i*c.ncpu:(i+1)*c.ncpu], false, now)
			if !moved && now-c.prev[k].moved >= int64(idleEvict) {
				drain = append(drain, drainKey{k, false})
			}
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		if err != nil {
			return out, fmt.Errorf("read the counting map: %w", err)
		}
	}
	// Read and delete in one call each: a packet counted between a read
	// and a delete would be lost.
	one := c.vals[:c.ncpu]
	for _, k := range drain {
		if err := c.progs.counts.LookupAndDelete(k.countKey, one); err != nil {
			continue // gone already
		}
		out, _ = c.delta(out, k.countKey, one, k.closed, now)
		delete(c.prev, k.countKey)
	}
	var err error
	if out, err = c.collectSlots(out, due); err != nil {
		return out, err
	}
	for cookie, t := range c.closing {
		if now-t >= int64(c.grace) {
			delete(c.closing, cookie)
			c.drained[cookie] = now
		}
	}
	for cookie, t := range c.drained {
		if now-t >= int64(drainKeep) {
			delete(c.drained, cookie)
		}
	}
	return out, nil
}

// delta appends entry k's counts since the last collect, its per-CPU
// values summed, keeps the totals, and reports whether they moved. A
// closed socket's delta is appended even if it moved nothing: it says
// the socket is done.
func (c *sockCounter) delta(out []countDelta, k countKey, perCPU []countValue, closed bool, now int64) ([]countDelta, bool) {
	var tot countValue
	for _, v := range perCPU {
		if v.Netns != 0 {
			tot.Netns = v.Netns
		}
		tot.Kind |= v.Kind // the inserting CPU's
		tot.Tx.add(v.Tx)
		tot.Rx.add(v.Rx)
	}
	tot.onWire()
	last, seen := c.prev[k]
	moved := !seen || tot != last.countValue
	if moved {
		c.prev[k] = countSeen{tot, now}
	}
	if !moved && !closed {
		return out, false
	}
	return append(out, countDelta{countKey: k, netns: tot.Netns, tx: tot.Tx.minus(last.Tx), rx: tot.Rx.minus(last.Rx), closed: closed, kind: tot.Kind}), moved
}

// slotWord reads the u64 at byte off of slot i, atomically.
func (c *sockCounter) slotWord(i uint32, off int) uint64 {
	return atomic.LoadUint64((*uint64)(unsafe.Pointer(&c.slots[int(i)*svSize+off])))
}

// slotWord32 reads the u32 at byte off of slot i, atomically.
func (c *sockCounter) slotWord32(i uint32, off int) uint32 {
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&c.slots[int(i)*svSize+off])))
}

// collectSlots appends what each slot's socket moved since the last
// collect, and the last counts of the closed sockets whose grace is over
// (due), whose slots it clears and gives back. A closed socket's storage
// sends its later packets to the hash (the release program), so nothing
// adds to its slot by then.
//
// A slot whose socket never sees a release (a connection its listener
// closed before accepting it, a socket the kernel made for itself, a
// release record the ring had no room for) is taken back once it has
// moved nothing for idleEvict, in two collects: the first moves the slot
// to its next generation, so that its socket's next packet, if it has
// one, takes another slot (a packet on its way through the program then
// still adds to this one); the second, once the slot has moved nothing
// since, reads it a last time and gives it back.
func (c *sockCounter) collectSlots(out []countDelta, due func(cookie uint64) bool) ([]countDelta, error) {
	now := c.now()
	end := c.slotScan
	for i := uint32(0); i < slotCount; i++ {
		if err := c.mapSlots(i + 1); err != nil {
			return out, err
		}
		cookie := c.slotWord(i, svCookie)
		if i >= end {
			// Past the slots known: slots taken since, up to the first
			// never used.
			if cookie == 0 {
				break
			}
			end = i + 1
		}
		if cookie == 0 {
			delete(c.slotPrev, i)
			continue
		}
		key := countKey{Cookie: cookie, Ifindex: c.slotWord32(i, svIfindex)}
		var tot countValue
		tot.Netns = c.slotWord(i, svNetns)
		for _, h := range [...]struct {
			base int
			half *countHalf
		}{{svTx, &tot.Tx}, {svRx, &tot.Rx}} {
			base, half := h.base, h.half
			*half = countHalf{c.slotWord(i, base+chPackets), c.slotWord(i, base+chBytes), c.slotWord(i, base+chSegs),
				c.slotWord(i, base+chWire), c.slotWord(i, base+chFrags), c.slotWord(i, base+chFragBytes)}
		}
		tot.onWire()
		last, seen := c.slotPrev[i]
		if seen && last.countKey != key {
			last, seen = slotSeen{}, false // given back and taken again
		}
		closed := due(cookie)
		moved := !seen || tot != last.countValue
		if moved || closed {
			out = append(out, countDelta{countKey: key, netns: tot.Netns, tx: tot.Tx.minus(last.Tx), rx: tot.Rx.minus(last.Rx), closed: closed, kind: sockKind(c.slotWord32(i, svKind))})
		}
		switch {
		case closed:
			c.retire(i)
		case moved:
			c.slotPrev[i] = slotSeen{key, tot, now, last.retired}
			continue
		case !last.retired:
			if now-last.moved >= int64(idleEvict) {
				c.retire(i)
				last.retired = true
				c.slotPrev[i] = last
			}
			continue
		}
		// Cleared but for its generation, cookie first, and back on the
		// stack.
		c.clearSlotWord(i, svCookie)
		for off := 0; off < svSize; off += 8 {
			c.clearSlotWord(i, off)
		}
		delete(c.slotPrev, i)
		if err := c.progs.free.Update(nil, i, ebpf.UpdateAny); err != nil {
			return out, fmt.Errorf("give a slot back: %w", err)
		}
	}
	c.slotScan = end
	return out, nil
}

// clearSlotWord zeroes the u64 at byte off of slot i, but for a
// generation in it.
func (c *sockCounter) clearSlotWord(i uint32, off int) {
	at := func(off int) unsafe.Pointer { return unsafe.Pointer(&c.slots[int(i)*svSize+off]) }
	switch off {
	case svGenTx, svGenRx:
		atomic.StoreUint32((*uint32)(at(off+4)), 0)
	default:
		atomic.StoreUint64((*uint64)(at(off)), 0)
	}
}

// retire moves slot i to its next generation: a socket's reference to it
// from before is no longer its. Each half's copy moves; a packet between
// the two stores that takes a new slot leaves the other half's last
// packets here, read at the give-back.
func (c *sockCounter) retire(i uint32) {
	gen := (c.slotWord32(i, svGenTx) + 1) & srSlotMask
	for _, off := range []int{svGenTx, svGenRx} {
		atomic.StoreUint32((*uint32)(unsafe.Pointer(&c.slots[int(i)*svSize+off])), gen)
	}
}

// onWire adds the skbs back to the segments and wire bytes, which the
// programs keep beyond each skb's own.
func (v *countValue) onWire() {
	v.Tx.Segs, v.Tx.Wire = v.Tx.Segs+v.Tx.Packets, v.Tx.Wire+v.Tx.Bytes
	v.Rx.Segs, v.Rx.Wire = v.Rx.Segs+v.Rx.Packets, v.Rx.Wire+v.Rx.Bytes
}

func (h *countHalf) add(o countHalf) {
	h.Packets += o.Packets
	h.Bytes += o.Bytes
	h.Segs += o.Segs
	h.Wire += o.Wire
	h.Frags += o.Frags
	h.FragBytes += o.FragBytes
}

func (h countHalf) minus(o countHalf) countHalf {
	return countHalf{h.Packets - o.Packets, h.Bytes - o.Bytes, h.Segs - o.Segs, h.Wire - o.Wire, h.Frags - o.Frags, h.FragBytes - o.FragBytes}
}

// readClosed moves the closed sockets' records from the ring to closing.
func (c *sockCounter) readClosed() error {
	if c.reader.AvailableBytes() == 0 {
		return nil // this goroutine alone reads the ring: nothing is half-read
	}
	if err := c.reader.Flush(); err != nil {
		return fmt.Errorf("read closed sockets: %w", err)
	}
	for {
		err := c.reader.ReadInto(&c.rec)
		if errors.Is(err, ringbuf.ErrFlushed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read closed sockets: %w", err)
		}
		if b := c.rec.RawSample; len(b) >= 16 {
			c.closing[binary.NativeEndian.Uint64(b)] = int64(binary.NativeEndian.Uint64(b[8:]))
		}
	}
}

// lost returns the counts lost for want of room: first packets of a
// socket on a device that found the counting map full, and closed
// sockets' records that found the ring full.
func (c *sockCounter) lost() (mapFull, ring uint64, err error) {
	var per []uint64
	for i, dst := range []*uint64{&mapFull, &ring} {
		if err := c.progs.lost.Lookup(uint32(i), &per); err != nil {
			return 0, 0, err
		}
		for _, n := range per {
			*dst += n
		}
	}
	return mapFull, ring, nil
}
