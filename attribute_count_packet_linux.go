package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// --packet-senders: frames that packet sockets (AF_PACKET: scapy's send,
// arping, DHCP clients, packet generators) send on the interfaces
// reported on. No cgroup hook runs for a packet socket, so the counting
// programs never see its frames. A tcx egress program on each interface
// netuse reports on (in netuse's namespace) sees every skb the device is
// handed, with skb->sk its sender's socket; for a packet socket's frame
// it adds the frame to an entry keyed by the socket's cookie, the device
// and the sending process, which it reads from current: the frame goes
// down to the device in the sender's own sendmsg (packet_snd and
// tpacket_snd call dev_queue_xmit, which runs tcx egress before the
// qdisc). On the entry's insert the program writes what names the
// process (start time, uid, cgroup, name), so that a sender gone before
// the report is still credited.
//
// What it does not see, which stays "(no socket)": frames of a socket
// with PACKET_QDISC_BYPASS (they skip tcx), frames a tcx program before
// this one passed or dropped (it links at the end of the chain), and
// packet sockets of other namespaces (their frames reach netuse's side
// of a veth as received, with no socket). A frame's size is skb->len,
// the whole frame as the device counts it; one frame is one packet (a
// GSO frame, from a socket with PACKET_VNET_HDR, counts as one).
//
// Opt-in, because that program runs for every packet sent on the
// interface, for the rare sender (what a run costs is in BENCHMARKS.md).
//
// The program's rules are the counting programs': every path returns
// TCX_NEXT, which lets the frame go on as if no program ran
// (TestPacketProgramAllow); it runs through BPF_PROG_TEST_RUN
// (TestPacketProgramRun) and on a veth of the test's own
// (TestProcSourceKernelInjected) before anything else; its links are
// never pinned, so they go with netuse (TestProcSourceKernelGoneAfterKill).

// Offsets in the key and value of the packet senders' map.
const (
	pkCookie  = 0  // u64 the packet socket's cookie
	pkIfindex = 8  // u32 the device
	pkTgid    = 12 // u32 the sending process (current at the send)
	pkSize    = 16
	pvBytes   = 0  // u64 Σ skb->len: whole frames
	pvPackets = 8  // u64 frames
	pvStart   = 16 // u64 the sender's thread group leader's start_boottime, ns; written at insert on that CPU only
	pvCgroup  = 24 // u64 its cgroup2 id
	pvUID     = 32 // u32
	pvComm    = 40 // [16]byte its thread group leader's comm
	pvSize    = 56

	// Stack offsets below the frame pointer.
	fpPkKey     = -pkSize
	fpPkValue   = fpPkKey - pvSize
	fpPkScratch = fpPkValue - 8

	// pkLostFull is the one index of the lost map: a frame that found the
	// map full
	pkLostFull = 0

	// packetEntries bounds the map: packet sockets times devices times
	// processes that send through them, of which a machine has a few.
	// A frame that finds it full is counted in the lost array, and its
	// bytes stay "(no socket)".
	packetEntries = 1024
	// packetIdle is how many reports an entry may move nothing before it
	// is deleted: a packet socket has no release hook to say it closed.
	// A frame counted between the entry's last read and its delete is
	// lost to the entry, and its bytes are "(no socket)".
	packetIdle = 60

	tcxNext = -1 // TCX_NEXT: go on to the next program, or as if none ran
)

// packetKey and packetValue are the map's key and per-CPU value.
type packetKey struct {
	Cookie  uint64
	Ifindex uint32
	Tgid    uint32
}

type packetValue struct {
	Bytes, Packets, Start, Cgroup uint64
	UID                           uint32
	_                             uint32
	Comm                          [16]byte
}

// packetProgram returns the tcx egress program's instructions.
func packetProgram(off kernelOffsets) asm.Instructions {
	ld := func(dst asm.Register, field int16, size asm.Size) asm.Instruction {
		return asm.LoadMem(dst, asm.R6, field, size) // struct __sk_buff
	}
	// lookup looks the key up, and goes to none if it is not there.
	lookup := func(none string) asm.Instructions {
		return asm.Instructions{
			asm.LoadMapPtr(asm.R1, 0).WithReference("packets"),
			asm.Mov.Reg(asm.R2, asm.RFP),
			asm.Add.Imm(asm.R2, fpPkKey),
			asm.FnMapLookupElem.Call(),
			asm.JEq.Imm(asm.R0, 0, none),
		}
	}
	// add adds the frame to the entry at R0.
	add := func(label string) asm.Instructions {
		inc := asm.StoreXAdd(asm.R0, asm.R1, asm.DWord)
		inc.Offset = pvPackets
		return asm.Instructions{
			ld(asm.R1, 0, asm.Word).WithSymbol(label), // len
			asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),  // pvBytes
			asm.Mov.Imm(asm.R1, 1),
			inc,
			asm.Ja.Label("allow"),
		}
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		ld(asm.R1, 168, asm.DWord), // __sk_buff.sk
		asm.JEq.Imm(asm.R1, 0, "allow"),
		asm.LoadMem(asm.R2, asm.R1, 4, asm.Word), // bpf_sock.family
		asm.JNE.Imm(asm.R2, unix.AF_PACKET, "allow"),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnGetSocketCookie.Call(),
		asm.StoreMem(asm.RFP, fpPkKey+pkCookie, asm.R0, asm.DWord),
		ld(asm.R1, 40, asm.Word), // __sk_buff.ifindex: the device
		asm.StoreMem(asm.RFP, fpPkKey+pkIfindex, asm.R1, asm.Word),
		asm.FnGetCurrentPidTgid.Call(),
		asm.RSh.Imm(asm.R0, 32),
		asm.StoreMem(asm.RFP, fpPkKey+pkTgid, asm.R0, asm.Word),
	}
	insns = append(insns, lookup("insert")...)
	insns = append(insns, add("found")...)
	// A new entry: this frame, and its sender.
	insns = append(insns, asm.Mov.Imm(asm.R1, 0).WithSymbol("insert"))
	for o := int16(0); o < pvSize; o += 8 {
		insns = append(insns, asm.StoreMem(asm.RFP, fpPkValue+o, asm.R1, asm.DWord))
	}
	insns = append(insns,
		ld(asm.R1, 0, asm.Word),
		asm.StoreMem(asm.RFP, fpPkValue+pvBytes, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreMem(asm.RFP, fpPkValue+pvPackets, asm.R1, asm.DWord),
	)
	insns = append(insns, currentTo(off, fpPkValue+pvUID, fpPkValue+pvCgroup, fpPkValue+pvStart, fpPkValue+pvComm, fpPkScratch)...)
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, 0).WithReference("packets"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpPkKey),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, fpPkValue),
		asm.Mov.Imm(asm.R4, unix.BPF_NOEXIST),
		asm.FnMapUpdateElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
	)
	// Made meanwhile on another CPU, or the map is full: counted in this
	// program's own lost map (countLost's key is at fpLostKey, inside the
	// value, which is no longer needed by then).
	insns = append(insns, lookup("full")...)
	insns = append(insns, add("made")...)
	insns = append(insns, countLost(pkLostFull, "full")...)
	return append(insns,
		asm.Mov.Imm(asm.R0, tcxNext).WithSymbol("allow"),
		asm.Return(),
	)
}

// packetSenders is the program, its maps, its links by device, and what
// each entry had at the last collect.
type packetSenders struct {
	prog          *ebpf.Program
	packets, lost *ebpf.Map
	links         map[int]link.Link
	prev          map[packetKey]*packetSeen
}

type packetSeen struct {
	bytes, packets uint64
	idle           int // collects since it last moved
}

// packetDelta is what one process sent through one packet socket on one
// device since the last collect, and who it is.
type packetDelta struct {
	packetKey
	bytes, packets uint64
	owner          sockOwner
}

func loadPacketSenders(off kernelOffsets) (*packetSenders, error) {
	s := &packetSenders{links: map[int]link.Link{}, prev: map[packetKey]*packetSeen{}}
	var err error
	if s.packets, err = ebpf.NewMap(&ebpf.MapSpec{Name: "netuse_packets", Type: ebpf.PerCPUHash,
		KeySize: pkSize, ValueSize: pvSize, MaxEntries: packetEntries}); err != nil {
		return nil, fmt.Errorf("create map netuse_packets: %w", err)
	}
	if s.lost, err = ebpf.NewMap(&ebpf.MapSpec{Name: "netuse_plost", Type: ebpf.PerCPUArray,
		KeySize: 4, ValueSize: 8, MaxEntries: 1}); err != nil {
		s.close()
		return nil, fmt.Errorf("create map netuse_plost: %w", err)
	}
	insns := packetProgram(off)
	for name, m := range map[string]*ebpf.Map{"packets": s.packets, "lost": s.lost} {
		if err := insns.AssociateMap(name, m); err != nil {
			s.close()
			return nil, err
		}
	}
	s.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{Name: "netuse_packet", Type: ebpf.SchedCLS,
		AttachType: ebpf.AttachTCXEgress, Instructions: insns, License: bpfLicense})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("load the tcx egress program: %w", err)
	}
	return s, nil
}

// startPacketSenders loads the program, or says on stderr, once, why
// packet sockets' frames stay "(no socket)" and returns nil.
func startPacketSenders(warn func(string)) *packetSenders {
	off, err := loadKernelOffsets()
	if err == nil {
		var s *packetSenders
		if s, err = loadPacketSenders(off); err == nil {
			return s
		}
	}
	warn(fmt.Sprintf("packet sockets' frames stay \"(no socket)\": %v", err))
	return nil
}

// attach links the program at the end of device ifindex's tcx egress
// chain, if not yet.
func (s *packetSenders) attach(ifindex int) error {
	if _, ok := s.links[ifindex]; ok {
		return nil
	}
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: s.prog, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		return err
	}
	s.links[ifindex] = l
	return nil
}

// detach unlinks it from device ifindex (gone, or no longer reported on).
func (s *packetSenders) detach(ifindex int) {
	if l, ok := s.links[ifindex]; ok {
		l.Close()
		delete(s.links, ifindex)
	}
}

func (s *packetSenders) close() {
	if s == nil {
		return
	}
	for idx := range s.links {
		s.detach(idx)
	}
	if s.prog != nil {
		s.prog.Close()
	}
	for _, m := range []*ebpf.Map{s.packets, s.lost} {
		if m != nil {
			m.Close()
		}
	}
}

// collect appends to out what each entry moved since the last collect,
// and deletes the entries idle for packetIdle collects.
func (s *packetSenders) collect(out []packetDelta) ([]packetDelta, error) {
	var (
		key    packetKey
		perCPU []packetValue
		idle   []packetKey
	)
	it := s.packets.Iterate()
	for it.Next(&key, &perCPU) {
		d := packetDelta{packetKey: key, owner: sockOwner{pid: int(key.Tgid)}}
		var bytes, packets uint64
		for _, v := range perCPU {
			bytes += v.Bytes
			packets += v.Packets
			if v.Start != 0 || v.Comm[0] != 0 { // the inserting CPU's
				d.owner.name, _, _ = strings.Cut(string(v.Comm[:]), "\x00")
				d.owner.start, d.owner.uid, d.owner.cgroup = v.Start/(1e9/ticksPerSecond), v.UID, v.Cgroup
			}
		}
		seen := s.prev[key]
		if seen == nil {
			seen = &packetSeen{}
			s.prev[key] = seen
		}
		if bytes == seen.bytes && packets == seen.packets {
			if seen.idle++; seen.idle >= packetIdle {
				idle = append(idle, key)
			}
			continue
		}
		d.bytes, d.packets = bytes-seen.bytes, packets-seen.packets
		*seen = packetSeen{bytes: bytes, packets: packets}
		out = append(out, d)
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("read the packet senders' counts: %w", err)
	}
	for _, key := range idle {
		if err := s.packets.Delete(key); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return out, fmt.Errorf("delete a packet sender's entry: %w", err)
		}
		delete(s.prev, key)
	}
	return out, nil
}

// lostFrames returns the frames that found the map full.
func (s *packetSenders) lostFrames() (uint64, error) {
	var per []uint64
	if err := s.lost.Lookup(uint32(pkLostFull), &per); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range per {
		n += v
	}
	return n, nil
}
