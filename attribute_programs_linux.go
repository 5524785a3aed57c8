package main

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Offsets in the record the programs write (struct ownerEvent in Go terms).
const (
	evCookie  = 0   // u64 socket cookie
	evNetns   = 8   // u64 network namespace cookie
	evTime    = 16  // u64 CLOCK_MONOTONIC ns
	evStart   = 24  // u64 the thread group leader's start_boottime, ns
	evTgid    = 32  // u32
	evUID     = 36  // u32
	evComm    = 40  // [16]byte, the thread group leader's comm
	evKind    = 56  // u8: evCreate or evRelease
	evFamily  = 58  // u16 AF_INET or AF_INET6
	evProto   = 60  // u32 IPPROTO_TCP, IPPROTO_UDP, ...
	evAddrs   = 64  // at release: sock_common's skc_daddr, skc_rcv_saddr, skc_hash, skc_dport (be), skc_num
	evV6Daddr = 80  // [16]byte skc_v6_daddr
	evV6Saddr = 96  // [16]byte skc_v6_rcv_saddr
	evInode   = 112 // u64 the socket's inode number, as /proc/<pid>/fd and sock_diag show it
	evCgroup  = 120 // u64 the process's cgroup2 id: its directory's inode number
	evSize    = 128
	evScratch = evSize + 8 // stack slot for the leader pointer, below the record
	evLostKey = evSize + 12
	evCreate  = 1
	evRelease = 2
	// ringBytes holds 1,927 records (128 bytes and an 8-byte header each)
	// waiting for netuse; small, as the ring counts in netuse's RSS.
	ringBytes = 256 << 10
	// ringWakeAt is the bytes waiting in the ring at which a program wakes
	// the reader: an eighth, leaving 1,686 records for the time the
	// reader takes to wake and drain while the sockets' processes keep
	// the cores busy (10,000 sockets closed at once by 10 processes on 2
	// cores lost records with a quarter).
	ringWakeAt = ringBytes / 8
	bpfLicense = "Dual MIT/GPL"
)

// kernelOffsets are the offsets in kernel structures the programs read,
// from the kernel's BTF: they differ between kernel builds.
type kernelOffsets struct {
	groupLeader, startBoottime, comm uint32 // in task_struct
	daddr, v6Daddr, v6Saddr          uint32 // in sock_common
	skSocket                         uint32 // in sock
	inode                            uint32 // of i_ino from the struct socket: socket_alloc.vfs_inode + inode.i_ino
}

// loadKernelOffsets reads them from the kernel's BTF, once a process: the
// owner programs and --packet-senders' program both use them.
var loadKernelOffsets = sync.OnceValues(func() (kernelOffsets, error) {
	b, done, err := readKernelBTF()
	if err != nil {
		return kernelOffsets{}, fmt.Errorf("read the kernel's BTF: %w", err)
	}
	defer done()
	t, err := parseBTF(b)
	if err != nil {
		return kernelOffsets{}, fmt.Errorf("read the kernel's BTF: %w", err)
	}
	return kernelOffsetsOf(t)
})

// kernelOffsetsOf finds the offsets in the kernel's BTF t.
func kernelOffsetsOf(t *btfTypes) (kernelOffsets, error) {
	var o kernelOffsets
	var vfsIno uint32
	ids := t.structs("task_struct", "sock_common", "sock", "socket_alloc", "inode")
	for _, f := range []struct {
		typ, member string
		dst         *uint32
	}{
		{"task_struct", "group_leader", &o.groupLeader},
		{"task_struct", "start_boottime", &o.startBoottime},
		{"task_struct", "comm", &o.comm},
		{"sock_common", "skc_daddr", &o.daddr},
		{"sock_common", "skc_v6_daddr", &o.v6Daddr},
		{"sock_common", "skc_v6_rcv_saddr", &o.v6Saddr},
		{"sock", "sk_socket", &o.skSocket},
		{"socket_alloc", "vfs_inode", &o.inode},
		{"inode", "i_ino", &vfsIno},
	} {
		id, ok := ids[f.typ]
		if !ok {
			return o, fmt.Errorf("kernel BTF: no struct %s", f.typ)
		}
		off, ok := t.memberOffset(id, f.member)
		if !ok {
			return o, fmt.Errorf("kernel BTF: struct %s has no %s", f.typ, f.member)
		}
		*f.dst = off
	}
	o.inode += vfsIno
	// The programs copy skc_daddr, skc_rcv_saddr, skc_hash, skc_dport and
	// skc_num in one read of 16 bytes; check they lie as they always have.
	for member, want := range map[string]uint32{"skc_rcv_saddr": 4, "skc_dport": 12, "skc_num": 14} {
		if off, ok := t.memberOffset(ids["sock_common"], member); !ok || off != o.daddr+want {
			return o, fmt.Errorf("kernel BTF: sock_common.%s is not at skc_daddr+%d", member, want)
		}
	}
	return o, nil
}

// ownerProgram returns the instructions of the program for kind
// (evCreate or evRelease). The record is built on the stack, from
// fp-evSize up, and handed to the ring buffer; when the ring is full the
// counter in lost goes up instead. Every path ends in "return 1".
func ownerProgram(kind uint8, off kernelOffsets) asm.Instructions {
	rec := func(field int16) int16 { return -evSize + field }
	// read copies a kernel value into the record's field.
	read := func(field int16, size int32, src asm.Register, add uint32) asm.Instructions {
		return probeRead(rec(field), size, src, add)
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // R6: the socket (struct sock)
		asm.Mov.Imm(asm.R7, 0),
	}
	for i := int16(0); i < evSize; i += 8 { // the verifier wants it all written
		insns = append(insns, asm.StoreMem(asm.RFP, rec(i), asm.R7, asm.DWord))
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnGetSocketCookie.Call(),
		asm.StoreMem(asm.RFP, rec(evCookie), asm.R0, asm.DWord),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.FnGetNetnsCookie.Call(),
		asm.StoreMem(asm.RFP, rec(evNetns), asm.R0, asm.DWord),
		asm.FnKtimeGetNs.Call(),
		asm.StoreMem(asm.RFP, rec(evTime), asm.R0, asm.DWord),
		asm.FnGetCurrentPidTgid.Call(),
		asm.RSh.Imm(asm.R0, 32),
		asm.StoreMem(asm.RFP, rec(evTgid), asm.R0, asm.Word),
	)
	insns = append(insns, currentTo(off, rec(evUID), rec(evCgroup), rec(evStart), rec(evComm), -evScratch)...)
	insns = append(insns,
		asm.StoreImm(asm.RFP, rec(evKind), int64(kind), asm.Byte),
		asm.LoadMem(asm.R1, asm.R6, 4, asm.Word), // struct bpf_sock.family
		asm.StoreMem(asm.RFP, rec(evFamily), asm.R1, asm.Half),
		asm.LoadMem(asm.R1, asm.R6, 12, asm.Word), // struct bpf_sock.protocol
		asm.StoreMem(asm.RFP, rec(evProto), asm.R1, asm.Word),
	)
	// The inode of the socket's file: sock_diag reports it, and for an
	// MPTCP socket (Go's listeners) it reports the TCP subflow, with a
	// cookie of its own but the inode of the socket the process holds.
	insns = append(insns, deref(asm.R8, asm.R6, off.skSocket, -evScratch)...) // R8: sk->sk_socket
	insns = append(insns, asm.JEq.Imm(asm.R8, 0, "noinode"))
	insns = append(insns, read(evInode, 8, asm.R8, off.inode)...)
	insns = append(insns, asm.Mov.Imm(asm.R7, 0).WithSymbol("noinode"))
	if kind == evRelease {
		// The addresses and ports, which a cgroup/sock program may not
		// read through its context at release: copied from sock_common.
		insns = append(insns, read(evAddrs, 16, asm.R6, off.daddr)...)
		insns = append(insns, read(evV6Daddr, 16, asm.R6, off.v6Daddr)...)
		insns = append(insns, read(evV6Saddr, 16, asm.R6, off.v6Saddr)...)
	}
	insns = append(insns,
		// BPF_RB_NO_WAKEUP while the ring holds less than ringWakeAt:
		// waking the reader for each record cost the process that made
		// the socket 6 to 23 us of CPU, ten times the programs' own work
		// (BenchmarkOwnerPrograms). The reader reads when the resolver
		// asks (catchUp), or when this wakes it (BPF_RB_FORCE_WAKEUP) once
		// the ring holds ringWakeAt; it sleeps otherwise, however long.
		asm.LoadMapPtr(asm.R1, 0).WithReference("events"),
		asm.Mov.Imm(asm.R2, 0), // BPF_RB_AVAIL_DATA
		asm.FnRingbufQuery.Call(),
		asm.Mov.Imm(asm.R4, 1), // BPF_RB_NO_WAKEUP
		asm.JLT.Imm(asm.R0, ringWakeAt, "output"),
		asm.Mov.Imm(asm.R4, 2), // BPF_RB_FORCE_WAKEUP
		asm.LoadMapPtr(asm.R1, 0).WithReference("events").WithSymbol("output"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -evSize),
		asm.Mov.Imm(asm.R3, evSize),
		asm.FnRingbufOutput.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
		// The ring was full: count the record lost.
		asm.StoreImm(asm.RFP, -evLostKey, 0, asm.Word),
		asm.LoadMapPtr(asm.R1, 0).WithReference("lost"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -evLostKey),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "allow"),
		asm.Mov.Imm(asm.R1, 1),
		asm.StoreXAdd(asm.R0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("allow"),
		asm.Return(),
	)
	return insns
}

// probeRead returns the instructions that copy size bytes from the
// kernel address src+add to the stack at fp+to (bpf_probe_read_kernel).
func probeRead(to int16, size int32, src asm.Register, add uint32) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R3, src),
		asm.Add.Imm(asm.R3, int32(add)),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, int32(to)),
		asm.Mov.Imm(asm.R2, size),
		asm.FnProbeReadKernel.Call(),
	}
}

// deref returns the instructions that load into dst the kernel pointer at
// src+add, through the 8-byte stack slot at fp+scratch.
func deref(dst, src asm.Register, add uint32, scratch int16) asm.Instructions {
	return append(probeRead(scratch, 8, src, add), asm.LoadMem(dst, asm.RFP, scratch, asm.DWord))
}

// currentTo returns the instructions that write what names the current
// process on the stack: its uid (u32) at fp+uid, its cgroup2 id (u64) at
// fp+cgroup, and its thread group leader's start_boottime (u64) at
// fp+start and comm ([16]byte) at fp+comm, through the scratch slot. The
// cgroup is for a process gone before /proc is read: a container's
// short-lived process keeps its container. R9 is left holding the
// leader; R0-R5 are clobbered.
func currentTo(off kernelOffsets, uid, cgroup, start, comm, scratch int16) asm.Instructions {
	insns := asm.Instructions{
		asm.FnGetCurrentUidGid.Call(),
		asm.StoreMem(asm.RFP, uid, asm.R0, asm.Word),
		asm.FnGetCurrentCgroupId.Call(),
		asm.StoreMem(asm.RFP, cgroup, asm.R0, asm.DWord),
		asm.FnGetCurrentTask.Call(),
	}
	insns = append(insns, deref(asm.R9, asm.R0, off.groupLeader, scratch)...) // R9: current->group_leader
	insns = append(insns, probeRead(start, 8, asm.R9, off.startBoottime)...)
	return append(insns, probeRead(comm, 16, asm.R9, off.comm)...)
}

// ownerPrograms are the kernel objects of the owner records.
type ownerPrograms struct {
	events, lost    *ebpf.Map
	create, release *ebpf.Program
}

// loadOwnerPrograms creates the maps and loads the programs, without
// attaching them.
func loadOwnerPrograms() (*ownerPrograms, error) {
	off, err := loadKernelOffsets()
	if err != nil {
		return nil, err
	}
	p := &ownerPrograms{}
	p.events, err = ebpf.NewMap(&ebpf.MapSpec{Name: "netuse_owners", Type: ebpf.RingBuf, MaxEntries: ringBytes})
	if err != nil {
		return nil, fmt.Errorf("create ring buffer: %w", err)
	}
	p.lost, err = ebpf.NewMap(&ebpf.MapSpec{Name: "netuse_lost", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		p.close()
		return nil, fmt.Errorf("create counter map: %w", err)
	}
	for _, pr := range []struct {
		kind   uint8
		attach ebpf.AttachType
		dst    **ebpf.Program
	}{
		{evCreate, ebpf.AttachCGroupInetSockCreate, &p.create},
		{evRelease, ebpf.AttachCgroupInetSockRelease, &p.release},
	} {
		insns := ownerProgram(pr.kind, off)
		if err := insns.AssociateMap("events", p.events); err != nil {
			p.close()
			return nil, err
		}
		if err := insns.AssociateMap("lost", p.lost); err != nil {
			p.close()
			return nil, err
		}
		*pr.dst, err = ebpf.NewProgram(&ebpf.ProgramSpec{
			Name:         "netuse_sock" + map[uint8]string{evCreate: "new", evRelease: "end"}[pr.kind],
			Type:         ebpf.CGroupSock,
			AttachType:   pr.attach,
			Instructions: insns,
			License:      bpfLicense,
		})
		if err != nil {
			p.close()
			return nil, fmt.Errorf("load the %s program: %w", pr.attach, err)
		}
	}
	return p, nil
}

// close closes what was loaded (a nil program or map closes as nothing).
func (p *ownerPrograms) close() {
	p.create.Close()
	p.release.Close()
	p.events.Close()
	p.lost.Close()
}

// attach links both programs to the cgroup dir; closing the links detaches
// them.
func (p *ownerPrograms) attach(dir *os.File) ([]*link.RawLink, error) {
	return attachLinks(dir, []cgroupProg{
		{p.create, ebpf.AttachCGroupInetSockCreate},
		{p.release, ebpf.AttachCgroupInetSockRelease},
	})
}

// cgroupProg is a program and where on a cgroup it goes.
type cgroupProg struct {
	prog   *ebpf.Program
	attach ebpf.AttachType
}

// attachLinks links each program to cgroup dir, in order, or none: a
// link, not BPF_PROG_ATTACH, as a link is undone when its last fd closes,
// so the programs cannot outlive netuse.
func attachLinks(dir *os.File, progs []cgroupProg) ([]*link.RawLink, error) {
	var links []*link.RawLink
	for _, pr := range progs {
		l, err := link.AttachRawLink(link.RawLinkOptions{Target: int(dir.Fd()), Program: pr.prog, Attach: pr.attach})
		if err != nil {
			for _, l := range links {
				l.Close()
			}
			return nil, fmt.Errorf("attach %s to cgroup %s: %w", pr.attach, dir.Name(), err)
		}
		links = append(links, l)
	}
	return links, nil
}

// cgroup2Root finds where the cgroup2 hierarchy is mounted: /sys/fs/cgroup
// on most distributions, /sys/fs/cgroup/unified in a hybrid layout.
func cgroup2Root(mountinfo []byte) (string, bool) {
	for line := range strings.Lines(string(mountinfo)) {
		// ... mount-point ... - fstype source options
		pre, post, ok := strings.Cut(line, " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		f := strings.Fields(pre)
		if len(f) >= 5 && f[3] == "/" {
			return unescapeMount(f[4]), true
		}
	}
	return "", false
}

// openCgroup2 opens the root of the cgroup2 hierarchy: where netuse's
// mount namespace has it mounted, else (`ip netns exec` runs netuse in a
// mount namespace of its own, with a new /sys and no cgroup mounts) a
// mount of its own, undone at once: the open directory is all the
// programs' links need.
func openCgroup2() (*os.File, error) {
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		if path, ok := cgroup2Root(mi); ok {
			return os.Open(path)
		}
	}
	dir, err := os.MkdirTemp("", "netuse-cgroup2-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(dir)
	if err := unix.Mount("cgroup2", dir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("%w, and mounting one failed: %w", errNoCgroup2, err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	return os.Open(dir)
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	isOct := func(c byte) bool { return c >= '0' && c <= '7' }
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOct(s[i+1]) && isOct(s[i+2]) && isOct(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
