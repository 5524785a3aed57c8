package main

import (
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// The counting programs' instructions, written with cilium/ebpf's asm
// package: the map layout and stack offsets they use are declared in
// attribute_count_linux.go, which loads them.

// countProgram returns the instructions of the egress (half cvTx) or
// ingress (half cvRx) program. R6 holds the skb, R7 its len, R8 its
// packets on the wire, R9 their L3 bytes. Every path ends in "return 1".
func countProgram(half int16) asm.Instructions {
	ld := func(dst asm.Register, off int16, size asm.Size) asm.Instruction {
		return asm.LoadMem(dst, asm.R6, off, size)
	}
	// loadBytes copies n bytes of the packet at offset R2 to fpHdr.
	loadBytes := func(n int32) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Reg(asm.R3, asm.RFP),
			asm.Add.Imm(asm.R3, fpHdr),
			asm.Mov.Imm(asm.R4, n),
			asm.FnSkbLoadBytes.Call(),
		}
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.Mov.Imm(asm.R1, 0),
		asm.StoreMem(asm.RFP, fpKey+8, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, fpFrags, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, fpFragBytes, asm.R1, asm.DWord),
		ld(asm.R1, 40, asm.Word), // __sk_buff.ifindex
		asm.StoreMem(asm.RFP, fpKey+ckIfindex, asm.R1, asm.Word),
		ld(asm.R7, 0, asm.Word),   // __sk_buff.len
		ld(asm.R8, 164, asm.Word), // __sk_buff.gso_segs
		asm.Mov.Reg(asm.R9, asm.R7),
		asm.JGT.Imm(asm.R8, 1, "gso"),
		asm.Mov.Imm(asm.R8, 1),
		asm.JLE.Imm(asm.R7, fragFloor, "count"),
		// Nor longer than every device's MTU the map knows (a full TCP
		// segment, a QUIC datagram): one packet whichever its device.
		asm.LoadMapValue(asm.R1, 0, 0).WithReference("mtufloor"),
		asm.LoadMem(asm.R1, asm.R1, 0, asm.Word),
		asm.JLE.Reg(asm.R7, asm.R1, "count"),

		// Longer than its device's MTU, a datagram leaves (and came) in
		// fragments: ⌈payload / ((mtu - fh) &^ 7)⌉ of them, each with a
		// header of fh bytes (IPv4: the first one's length; IPv6: 40 and
		// an 8-byte fragment header).
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnGetNetnsCookie.Call(),
		asm.StoreMem(asm.RFP, fpMTUKey, asm.R0, asm.DWord),
		ld(asm.R1, 40, asm.Word),
		asm.StoreMem(asm.RFP, fpMTUKey+8, asm.R1, asm.Word),
		asm.StoreImm(asm.RFP, fpMTUKey+12, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("mtus"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpMTUKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "count"),
		asm.LoadMem(asm.R8, asm.R0, 0, asm.Word), // R8: the MTU, for now
		asm.JLE.Reg(asm.R7, asm.R8, "one"),
		asm.Mov.Imm(asm.R2, 0),
	}
	insns = append(insns, loadBytes(1)...)
	insns = append(insns,
		asm.JNE.Imm(asm.R0, 0, "one"),
	)
	insns = append(insns, ipVersion(4, "frag4", 6, "one")...)
	insns = append(insns,
		asm.Mov.Imm(asm.R2, 40), // R2: the L3 header
		asm.Mov.Imm(asm.R3, 48), // R3: a fragment's header
		asm.Ja.Label("frag"),
		asm.LoadMem(asm.R2, asm.RFP, fpHdr, asm.Byte).WithSymbol("frag4"),
		asm.And.Imm(asm.R2, 0xf),
		asm.LSh.Imm(asm.R2, 2),
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.Mov.Reg(asm.R4, asm.R8).WithSymbol("frag"),
		asm.Sub.Reg(asm.R4, asm.R3),
		asm.And.Imm(asm.R4, -8), // R4: payload bytes a fragment carries
		asm.JSLE.Imm(asm.R4, 0, "one"),
		asm.Mov.Reg(asm.R5, asm.R7),
		asm.Sub.Reg(asm.R5, asm.R2), // R5: the payload
		asm.Mov.Reg(asm.R0, asm.R5),
		asm.Add.Reg(asm.R0, asm.R4),
		asm.Sub.Imm(asm.R0, 1),
		asm.Div.Reg(asm.R0, asm.R4),
		asm.JLE.Imm(asm.R0, 1, "one"),
		asm.Mov.Reg(asm.R8, asm.R0),
		asm.Mov.Reg(asm.R9, asm.R0),
		asm.Mul.Reg(asm.R9, asm.R3),
		asm.Add.Reg(asm.R9, asm.R5),
		asm.Mov.Reg(asm.R1, asm.R8),
		asm.Sub.Imm(asm.R1, 1),
		asm.StoreMem(asm.RFP, fpFrags, asm.R1, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R9),
		asm.Sub.Reg(asm.R1, asm.R7),
		asm.StoreMem(asm.RFP, fpFragBytes, asm.R1, asm.DWord),
		asm.Ja.Label("count"),
		asm.Mov.Imm(asm.R8, 1).WithSymbol("one"),
		asm.Ja.Label("count"),

		// A GSO skb leaves (or came) as gso_segs segments, each with its
		// own IP and TCP (or UDP) header: wire = len + (segs-1)·hdr. IPv6
		// extension headers are not counted in hdr. The headers are read
		// in place when the skb's linear part holds them (TCP's always
		// do), else copied below at "slow", a helper call each.
		asm.LoadMem(asm.R2, asm.R6, 76, asm.Word).WithSymbol("gso"), // __sk_buff.data: the L3 header
		asm.LoadMem(asm.R3, asm.R6, 80, asm.Word),                   // __sk_buff.data_end
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 20),
		asm.JGT.Reg(asm.R4, asm.R3, "slow"),
		asm.LoadMem(asm.R1, asm.R2, 0, asm.Byte),
		asm.RSh.Imm(asm.R1, 4),
		asm.JEq.Imm(asm.R1, 6, "direct6"),
		asm.JNE.Imm(asm.R1, 4, "count"),
		asm.LoadMem(asm.R5, asm.R2, 0, asm.Byte),
		asm.And.Imm(asm.R5, 0xf),
		asm.LSh.Imm(asm.R5, 2), // R5: the L3 header, 0..60
		asm.LoadMem(asm.R0, asm.R2, 9, asm.Byte),
		asm.Ja.Label("directl4"),
		asm.Mov.Reg(asm.R4, asm.R2).WithSymbol("direct6"),
		asm.Add.Imm(asm.R4, 40),
		asm.JGT.Reg(asm.R4, asm.R3, "slow"),
		asm.Mov.Imm(asm.R5, 40),
		asm.LoadMem(asm.R0, asm.R2, 6, asm.Byte),
		asm.JNE.Imm(asm.R0, unix.IPPROTO_UDP, "directtcp").WithSymbol("directl4"),
		asm.Mov.Reg(asm.R2, asm.R5),
		asm.Add.Imm(asm.R2, 8),
		asm.Ja.Label("hdr"),
		asm.JNE.Imm(asm.R0, unix.IPPROTO_TCP, "count").WithSymbol("directtcp"),
		asm.Add.Reg(asm.R2, asm.R5), // the TCP header
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, 13),
		asm.JGT.Reg(asm.R4, asm.R3, "slow"),
		asm.LoadMem(asm.R1, asm.R2, 12, asm.Byte), // its data offset
		asm.RSh.Imm(asm.R1, 4),
		asm.LSh.Imm(asm.R1, 2),
		asm.Mov.Reg(asm.R2, asm.R5),
		asm.Add.Reg(asm.R2, asm.R1),
		asm.Ja.Label("hdr"),

		asm.Mov.Imm(asm.R2, 0).WithSymbol("slow"),
	)
	insns = append(insns, loadBytes(16)...)
	insns = append(insns,
		asm.JNE.Imm(asm.R0, 0, "count"),
	)
	insns = append(insns, ipVersion(6, "gso6", 4, "count")...)
	insns = append(insns,
		asm.LoadMem(asm.R2, asm.RFP, fpHdr, asm.Byte),
		asm.And.Imm(asm.R2, 0xf),
		asm.LSh.Imm(asm.R2, 2),
		asm.LoadMem(asm.R3, asm.RFP, fpHdr+9, asm.Byte), // IPv4 protocol
		asm.Ja.Label("l4"),
		asm.Mov.Imm(asm.R2, 40).WithSymbol("gso6"),
		asm.LoadMem(asm.R3, asm.RFP, fpHdr+6, asm.Byte), // IPv6 next header
		asm.JNE.Imm(asm.R3, unix.IPPROTO_UDP, "tcp").WithSymbol("l4"),
		asm.Add.Imm(asm.R2, 8),
		asm.Ja.Label("hdr"),
		asm.JNE.Imm(asm.R3, unix.IPPROTO_TCP, "count").WithSymbol("tcp"),
		asm.StoreMem(asm.RFP, fpL3, asm.R2, asm.DWord),
		asm.Add.Imm(asm.R2, 12), // TCP data offset
	)
	insns = append(insns, loadBytes(1)...)
	insns = append(insns,
		asm.JNE.Imm(asm.R0, 0, "count"),
		asm.LoadMem(asm.R2, asm.RFP, fpL3, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, fpHdr, asm.Byte),
		asm.RSh.Imm(asm.R1, 4),
		asm.LSh.Imm(asm.R1, 2),
		asm.Add.Reg(asm.R2, asm.R1),
		asm.Mov.Reg(asm.R1, asm.R8).WithSymbol("hdr"),
		asm.Sub.Imm(asm.R1, 1),
		asm.Mul.Reg(asm.R1, asm.R2),
		asm.Add.Reg(asm.R9, asm.R1),

		// The entry keeps segments and wire bytes beyond the skb's own
		// (collect adds those back): a plain packet's are 0, and adding
		// nothing saves two atomic adds of the four.
		asm.Sub.Imm(asm.R8, 1).WithSymbol("count"),
		asm.Sub.Reg(asm.R9, asm.R7),
	)
	// fetchAdd adds src to the u32 at dst and sets src to what it was.
	// cilium/ebpf 0.22 marshals the instruction's immediate (the atomic
	// operation) from Constant as it was before it derives it from the
	// opcode, which loses BPF_FETCH: Constant says it, as it is encoded.
	fetchAdd := func(dst, src asm.Register) asm.Instruction {
		ins := asm.FetchAdd.Mem(dst, src, asm.Word, 0)
		ins.Constant = int64(asm.FetchAdd >> 8)
		return ins
	}
	xadd := func(off int16, src asm.Register) asm.Instruction {
		// StoreXAdd writes at dst+0; an offset needs the raw instruction.
		ins := asm.StoreXAdd(asm.R0, src, asm.DWord)
		ins.Offset = off
		return ins
	}
	// addTo adds this skb to the half at R0+half. Atomic: the same
	// socket's packets may come in an interrupt on this CPU while a
	// program for it runs (a TCP ACK sent from softirq), and a slot is
	// every CPU's.
	addTo := func(next string, half int16) asm.Instructions {
		return asm.Instructions{
			asm.Mov.Imm(asm.R1, 1),
			xadd(half+chPackets, asm.R1),
			xadd(half+chBytes, asm.R7),
			asm.JEq.Imm(asm.R8, 0, next+"wire"),
			xadd(half+chSegs, asm.R8),
			asm.JEq.Imm(asm.R9, 0, next+"frags").WithSymbol(next + "wire"),
			xadd(half+chWire, asm.R9),
			asm.LoadMem(asm.R1, asm.RFP, fpFrags, asm.DWord).WithSymbol(next + "frags"),
			asm.JEq.Imm(asm.R1, 0, "allow"),
			xadd(half+chFrags, asm.R1),
			asm.LoadMem(asm.R1, asm.RFP, fpFragBytes, asm.DWord),
			xadd(half+chFragBytes, asm.R1),
			asm.Ja.Label("allow"),
		}
	}
	// This program's half of a slot, and its copy of the generation.
	slotHalf, slotGen := int16(svTx), int16(svGenTx)
	if half == cvRx {
		slotHalf, slotGen = svRx, svGenRx
	}
	// The socket's slot, named by its storage; a socket without one (not
	// a full socket, no slot left) or on another device than its slot's
	// goes on to the hash at "cookie".
	insns = append(insns,
		// The storage helper takes the skb's socket as it is (since Linux
		// 5.11) and answers NULL for one that is not full, so no
		// bpf_sk_fullsock call comes first (what that saved a run is in
		// BENCHMARKS.md).
		ld(asm.R2, 168, asm.DWord), // __sk_buff.sk
		asm.JEq.Imm(asm.R2, 0, "cookie"),
		asm.LoadMapPtr(asm.R1, 0).WithReference("slotrefs"),
		asm.Mov.Imm(asm.R3, 0),
		asm.Mov.Imm(asm.R4, 1), // BPF_SK_STORAGE_GET_F_CREATE
		asm.FnSkStorageGet.Call(),
		asm.JEq.Imm(asm.R0, 0, "cookie"),
		asm.StoreMem(asm.RFP, fpSlotRef, asm.R0, asm.DWord),
		asm.LoadMem(asm.R1, asm.R0, srSlot, asm.Word),
		asm.JEq.Imm(asm.R1, 0, "take"),
		asm.JEq.Imm(asm.R1, noSlot, "cookie"),
		asm.LoadMem(asm.R2, asm.R0, srIfindex, asm.Word),
		ld(asm.R3, 40, asm.Word),
		asm.JNE.Reg(asm.R2, asm.R3, "cookie"),
		asm.Mov.Reg(asm.R2, asm.R1),
		asm.RSh.Imm(asm.R2, 16),
		asm.StoreMem(asm.RFP, fpGen, asm.R2, asm.Word),
		asm.And.Imm(asm.R1, srSlotMask),
		asm.Sub.Imm(asm.R1, 1),
		asm.StoreMem(asm.RFP, fpSlot, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("slots"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpSlot),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "cookie"),
		// A slot netuse took back (idle: collectSlots) has moved on to
		// another generation: this socket takes a new one.
		asm.LoadMem(asm.R1, asm.R0, slotGen, asm.Word),
		asm.LoadMem(asm.R2, asm.RFP, fpGen, asm.Word),
		asm.JNE.Reg(asm.R1, asm.R2, "take"),
	)
	insns = append(insns, addTo("slot", slotHalf)...)
	// The socket's first packet here (or its first since netuse took its
	// slot back): a slot given back (the free stack), else the lowest
	// never used, its header written before the storage names it. Two
	// first packets at once take a slot each (collect sums them by
	// cookie); one racing its socket's release can name a slot after the
	// release turned the storage away, and that socket's packets later
	// than the grace after its close would count in the slot's next
	// socket. The storage is at fpSlotRef.
	// Its type and protocol, for the slot's header. A raw ICMP, ICMPv6
	// or TCP socket takes none (sockKind.kernels): the kernel's own
	// sockets are such, and they go without a release (with their
	// namespace), which would keep a slot taken for good; their entries
	// in the hash go when idle.
	kind := sockKindTo(fpKind, "noslot")
	kind[0] = kind[0].WithSymbol("take")
	insns = append(insns, kind...)
	insns = append(insns,
		asm.LoadMem(asm.R2, asm.RFP, fpKind, asm.Word),
		asm.Mov.Reg(asm.R3, asm.R2),
		asm.And.Imm(asm.R2, 0xffff),
		asm.RSh.Imm(asm.R3, 16),
		asm.JNE.Imm(asm.R2, unix.SOCK_RAW, "pop"),
		asm.JEq.Imm(asm.R3, unix.IPPROTO_ICMP, "noslot"),
		asm.JEq.Imm(asm.R3, unix.IPPROTO_ICMPV6, "noslot"),
		asm.JEq.Imm(asm.R3, unix.IPPROTO_TCP, "noslot"),
		asm.LoadMapPtr(asm.R1, 0).WithReference("free").WithSymbol("pop"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpSlot),
		asm.FnMapPopElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "popped"),
		// None given back: the lowest never used, off the counter. It
		// is read before it is added to, so that it stops a few past
		// slotCount (one a CPU racing here) and never wraps round.
		asm.StoreImm(asm.RFP, fpSlot, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("next"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpSlot),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "noslot"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.Word),
		asm.JGE.Imm(asm.R1, slotCount, "noslot"),
		asm.Mov.Imm(asm.R1, 1),
		fetchAdd(asm.R0, asm.R1), // R1: the counter before
		asm.JGE.Imm(asm.R1, slotCount, "noslot"),
		asm.StoreMem(asm.RFP, fpSlot, asm.R1, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("slots").WithSymbol("popped"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpSlot),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "noslot"),
		asm.StoreMem(asm.RFP, fpSlotPtr, asm.R0, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnGetNetnsCookie.Call(),
		asm.LoadMem(asm.R1, asm.RFP, fpSlotPtr, asm.DWord),
		asm.StoreMem(asm.R1, svNetns, asm.R0, asm.DWord),
		ld(asm.R2, 40, asm.Word),
		asm.StoreMem(asm.R1, svIfindex, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, asm.RFP, fpKind, asm.Word),
		asm.StoreMem(asm.R1, svKind, asm.R2, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnGetSocketCookie.Call(),
		asm.LoadMem(asm.R1, asm.RFP, fpSlotPtr, asm.DWord),
		asm.StoreMem(asm.R1, svCookie, asm.R0, asm.DWord), // last: the reader takes a slot with a cookie as whole
		asm.LoadMem(asm.R1, asm.RFP, fpSlotRef, asm.DWord),
		ld(asm.R2, 40, asm.Word),
		asm.StoreMem(asm.R1, srIfindex, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, asm.RFP, fpSlot, asm.Word),
		asm.Add.Imm(asm.R2, 1),
		asm.LoadMem(asm.R3, asm.RFP, fpSlotPtr, asm.DWord),
		asm.LoadMem(asm.R3, asm.R3, slotGen, asm.Word),
		asm.LSh.Imm(asm.R3, 16),
		asm.Or.Reg(asm.R2, asm.R3),
		asm.StoreMem(asm.R1, srSlot, asm.R2, asm.Word),
		asm.LoadMem(asm.R0, asm.RFP, fpSlotPtr, asm.DWord),
	)
	insns = append(insns, addTo("taken", slotHalf)...)
	insns = append(insns,
		// No slot left: this socket counts in the hash from now on.
		asm.LoadMem(asm.R1, asm.RFP, fpSlotRef, asm.DWord).WithSymbol("noslot"),
		asm.StoreImm(asm.R1, srSlot, noSlot, asm.Word),

		// Add to the hash's entry, or make it.
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("cookie"),
		asm.FnGetSocketCookie.Call(),
		asm.StoreMem(asm.RFP, fpKey+ckCookie, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, 0).WithReference("counts"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "insert"),
	)
	insns = append(insns, addTo("found", half)...)
	// A new entry: this CPU's value is this skb, the other CPUs' zero.
	insns = append(insns, asm.Mov.Imm(asm.R1, 0).WithSymbol("insert"))
	for off := int16(0); off < cvSize; off += 8 {
		insns = append(insns, asm.StoreMem(asm.RFP, fpValue+off, asm.R1, asm.DWord))
	}
	insns = append(insns, sockKindTo(fpValue+cvKind, "kinded")...)
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("kinded"),
		asm.FnGetNetnsCookie.Call(),
		asm.StoreMem(asm.RFP, fpValue+cvNetns, asm.R0, asm.DWord),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreMem(asm.RFP, fpValue+half+chPackets, asm.R1, asm.DWord),
		asm.StoreMem(asm.RFP, fpValue+half+chBytes, asm.R7, asm.DWord),
		asm.StoreMem(asm.RFP, fpValue+half+chSegs, asm.R8, asm.DWord),
		asm.StoreMem(asm.RFP, fpValue+half+chWire, asm.R9, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, fpFrags, asm.DWord),
		asm.StoreMem(asm.RFP, fpValue+half+chFrags, asm.R1, asm.DWord),
		asm.LoadMem(asm.R1, asm.RFP, fpFragBytes, asm.DWord),
		asm.StoreMem(asm.RFP, fpValue+half+chFragBytes, asm.R1, asm.DWord),
		asm.LoadMapPtr(asm.R1, 0).WithReference("counts"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpKey),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, fpValue),
		asm.Mov.Imm(asm.R4, unix.BPF_NOEXIST),
		asm.FnMapUpdateElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
		// Made meanwhile by an interrupt on this CPU, or the map is full.
		asm.LoadMapPtr(asm.R1, 0).WithReference("counts"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "full"),
	)
	insns = append(insns, addTo("made", half)...)
	insns = append(insns, countLost(lostMapFull, "full")...)
	return append(insns,
		asm.Mov.Imm(asm.R0, 1).WithSymbol("allow"),
		asm.Return(),
	)
}

// sockKindTo returns the instructions that write the skb's socket's
// sockKind (bpf_sock's type at 8 and protocol at 12) as a u32 at fp+off,
// or jump to none if it has no full socket (off is left as it was). R6
// holds the skb; R0-R5 are clobbered.
func sockKindTo(off int16, none string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R1, asm.R6, 168, asm.DWord), // __sk_buff.sk
		asm.JEq.Imm(asm.R1, 0, none),
		asm.FnSkFullsock.Call(),
		asm.JEq.Imm(asm.R0, 0, none),
		asm.LoadMem(asm.R2, asm.R0, 8, asm.Word),
		asm.LoadMem(asm.R3, asm.R0, 12, asm.Word),
		asm.LSh.Imm(asm.R3, 16),
		asm.Or.Reg(asm.R2, asm.R3),
		asm.StoreMem(asm.RFP, off, asm.R2, asm.Word),
	}
}

// ipVersion returns the instructions that read the IP version of the
// header at fpHdr into R1 and jump to label if it is v, to neither if it
// is not other either.
func ipVersion(v int32, label string, other int32, neither string) asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R1, asm.RFP, fpHdr, asm.Byte),
		asm.RSh.Imm(asm.R1, 4),
		asm.JEq.Imm(asm.R1, v, label),
		asm.JNE.Imm(asm.R1, other, neither),
	}
}

// countLost returns the instructions, starting at label, that add one to
// lost[index] and go on to "allow".
func countLost(index int32, label string) asm.Instructions {
	inc := asm.StoreXAdd(asm.R0, asm.R1, asm.DWord)
	return asm.Instructions{
		asm.StoreImm(asm.RFP, fpLostKey, int64(index), asm.Word).WithSymbol(label),
		asm.LoadMapPtr(asm.R1, 0).WithReference("lost"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, fpLostKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
		asm.Mov.Imm(asm.R1, 1),
		inc,
	}
}

// closedProgram returns the instructions of the cgroup/sock_release
// program: the socket's cookie and the time to the ring (BPF_RB_NO_WAKEUP:
// the reader looks at each collect), or one more lost record.
func closedProgram() asm.Instructions {
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		// Its packets after close (a passive closer's FIN, the last ACK)
		// go to the hash, so that its slot can be read one last time and
		// given back after the grace.
		asm.LoadMapPtr(asm.R1, 0).WithReference("slotrefs"),
		asm.Mov.Reg(asm.R2, asm.R6),
		asm.Mov.Imm(asm.R3, 0),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnSkStorageGet.Call(),
		asm.JEq.Imm(asm.R0, 0, "record"),
		asm.StoreImm(asm.R0, srSlot, noSlot, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6).WithSymbol("record"),
		asm.FnGetSocketCookie.Call(),
		asm.StoreMem(asm.RFP, -16, asm.R0, asm.DWord),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.RFP, -8, asm.R0, asm.DWord),
		asm.LoadMapPtr(asm.R1, 0).WithReference("closed"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -16),
		asm.Mov.Imm(asm.R3, 16),
		asm.Mov.Imm(asm.R4, 1), // BPF_RB_NO_WAKEUP
		asm.FnRingbufOutput.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
	}
	insns = append(insns, countLost(lostRing, "ringfull")...)
	return append(insns,
		asm.Mov.Imm(asm.R0, 1).WithSymbol("allow"),
		asm.Return(),
	)
}
