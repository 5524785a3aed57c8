package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// Socket owners recorded by the kernel. Two cgroup programs, attached by
// link to the root of the cgroup2 hierarchy so that they run for every
// process, write a record to a ring buffer when a socket is created
// (cgroup/sock_create) and when it is released (cgroup/sock_release). Both
// run in the context of the process that creates or closes the socket: the
// creator is the owner of a socket it made, the closer the owner of a
// socket it accepted (no process-context hook sees accept). A record holds
// the socket's cookie (which sock_diag reports as well), its network
// namespace's cookie, the process (tgid, start time, name, uid), the time,
// and at release the socket's addresses and ports. A process of a
// millisecond is recorded before it can exit.
//
// The programs are written with cilium/ebpf's asm package, so that `go
// build` stays the whole build (no clang, no object files). They call
// GPL-only helpers (bpf_probe_read_kernel), so they declare a dual
// MIT/GPL license.
//
// A cgroup/sock_create program's return value decides whether the socket
// may be created: both programs return 1, "allow", on every path (the
// release hook's value is ignored). The kernel cannot run cgroup/sock
// programs with BPF_PROG_TEST_RUN ("not supported" on 6.18), so
// TestOwnerProgramsAllow proves the verdict by walking every path of the
// instructions, loads them through the verifier, and runs them attached to
// a cgroup of the test's own before netuse attaches them anywhere else.
//
// Links are never pinned: they go away with netuse's last reference to
// them, when it exits in any way, SIGKILL included.

// kernelOwners runs the owner programs and keeps what they record in a
// book.
type kernelOwners struct {
	progs  *ownerPrograms
	links  []*link.RawLink
	reader *ringbuf.Reader
	book   *ownerBook
	done   sync.WaitGroup
	// drained has a value when the reader, asked by catchUp, has read
	// every record written before the asking
	drained chan struct{}
	// catching is held by catchUp: the resolver's pass and its openings
	// call it from two goroutines, and each must wait for its own flush,
	// not take the signal of the other's, given before its records were in
	catching sync.Mutex
	cgroups  *cgroupPaths // names the cgroups of the records
}

// errNoBPF wraps every reason the kernel path cannot run.
var errNoBPF = errors.New("socket owners cannot be recorded in the kernel")

// startKernelOwners loads and attaches the programs and starts reading
// their records into book. The caller stops it with close.
func startKernelOwners(book *ownerBook) (*kernelOwners, error) {
	if missing := missingCaps(map[int]string{unix.CAP_NET_ADMIN: "CAP_NET_ADMIN", unix.CAP_PERFMON: "CAP_PERFMON", unix.CAP_BPF: "CAP_BPF"}); len(missing) > 0 {
		return nil, fmt.Errorf("%w: netuse lacks %s", errNoBPF, strings.Join(missing, ", "))
	}
	root, err := openCgroup2()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errNoBPF, err) // errNoCgroup2 is said apart
	}
	kept := false
	defer func() {
		if !kept {
			root.Close()
		}
	}()
	progs, err := loadOwnerPrograms()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNoBPF, err)
	}
	k := &kernelOwners{progs: progs, book: book, drained: make(chan struct{}, 1), cgroups: newCgroupPaths(root)}
	// The reader first, so that no record is missed between the attach
	// and the first read.
	k.reader, err = ringbuf.NewReader(progs.events)
	if err != nil {
		progs.close()
		return nil, fmt.Errorf("%w: %v", errNoBPF, err)
	}
	k.links, err = progs.attach(root)
	if err != nil {
		k.reader.Close()
		progs.close()
		return nil, fmt.Errorf("%w: %v", errNoBPF, err)
	}
	kept = true // cgroups names cgroups from it, until close
	k.done.Add(1)
	go k.run()
	return k, nil
}

// run moves records from the ring to the book until the reader closes.
func (k *kernelOwners) run() {
	defer k.done.Done()
	clk := newMonoClock()
	var rec ringbuf.Record
	for {
		// No deadline: the reader sleeps until catchUp flushes it or a
		// program wakes it (ringWakeAt). Reading every 10 ms woke an idle
		// netuse a hundred times a second.
		if err := k.reader.ReadInto(&rec); err != nil {
			switch {
			case errors.Is(err, os.ErrClosed):
				return
			case errors.Is(err, ringbuf.ErrFlushed):
				select {
				case k.drained <- struct{}{}:
				default:
				}
			}
			continue
		}
		if ev, ok := parseOwnerEvent(rec.RawSample, clk); ok {
			k.book.add(ev)
		}
	}
}

// catchUp returns once every record the kernel wrote before the call is in
// the book (or after catchUpWait). The resolver calls it after reading the
// socket tables: a socket that had closed by then was recorded closed
// before it left the table.
func (k *kernelOwners) catchUp() {
	k.catching.Lock()
	defer k.catching.Unlock()
	select { // a signal left by an earlier call that gave up waiting
	case <-k.drained:
	default:
	}
	if k.reader.Flush() != nil {
		return
	}
	select {
	case <-k.drained:
	case <-time.After(catchUpWait):
	}
}

// catchUpWait bounds catchUp: the reader takes microseconds a record.
const catchUpWait = 50 * time.Millisecond

// lost returns the records the kernel could not write since netuse
// started, for want of room in the ring.
func (k *kernelOwners) lost() uint64 {
	var n uint64
	if err := k.progs.lost.Lookup(uint32(0), &n); err != nil {
		return 0
	}
	return n
}

// close detaches the programs, then stops the reader and waits for it.
func (k *kernelOwners) close() {
	for _, l := range k.links {
		l.Close()
	}
	k.reader.Close()
	k.done.Wait()
	k.progs.close()
	k.cgroups.close()
}

// monoClock turns CLOCK_MONOTONIC times, as bpf_ktime_get_ns gives them,
// into wall-clock times, as the capture's packet stamps are: the capture
// source matches a closed socket to a flow by whether the socket's life
// holds the flow's first packet, and a one-shot UDP client's socket is
// born some tens of microseconds before its first datagram. An offset off
// by more than that, the records' times late, matches none of them: one
// taken from two reads with a preemption between them cost every such
// client of that netuse process its bytes.
//
// The kernel's two clocks differ by an offset that changes only when the
// wall clock is stepped (settimeofday, an NTP step, a virtual machine
// restored). monoClock takes it from a wall-clock read between two
// monotonic ones, the narrowest pair of several, and takes it again when
// a record is more than monoRetake past the last taking, so that a step
// is followed within seconds (a long-running serve lives through them).
type monoClock struct {
	offset int64 // wall minus monotonic, ns
	taken  int64 // the monotonic time the offset was taken at; 0: never
	width  int64 // the narrowest pair's width: the offset is good to half of it
	// read reads the monotonic clock, the wall clock, and the monotonic
	// clock again, in ns; nil: the offset is never taken (a fixed clock)
	read func() (mono1, wall, mono2 int64)
}

// The bounds of monoClock's takings: up to monoTries pairs, fewer once one
// is no wider than monoTight (three clock reads take a microsecond or so
// when nothing preempts them, far less than the tens of microseconds the
// matching needs); again past monoRetake, or at the next record if no
// pair was within monoLoose.
const (
	monoTries  = 8
	monoTight  = 4e3 // ns
	monoLoose  = 50e3
	monoRetake = 1e9
)

func newMonoClock() *monoClock {
	c := &monoClock{read: readClocks}
	c.take()
	return c
}

func readClocks() (mono1, wall, mono2 int64) {
	var m1, w, m2 unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &m1)
	unix.ClockGettime(unix.CLOCK_REALTIME, &w)
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &m2)
	return m1.Nano(), w.Nano(), m2.Nano()
}

// take takes the offset from the narrowest of up to monoTries pairs.
func (c *monoClock) take() {
	best := int64(-1)
	for range monoTries {
		m1, w, m2 := c.read()
		c.taken = m2
		if d := m2 - m1; best < 0 || d < best {
			best, c.offset = d, w-(m1+d/2)
		}
		if best <= monoTight {
			break
		}
	}
	c.width = best
	if best > monoLoose {
		c.taken = 0 // again at the next record
	}
}

// wall returns the wall-clock time of monotonic time mono, a record's
// time, which is about now: past monoRetake since the last taking, the
// offset is taken again first.
func (c *monoClock) wall(mono uint64) int64 {
	if c.read != nil && int64(mono)-c.taken > monoRetake {
		c.take()
	}
	return int64(mono) + c.offset
}

// parseOwnerEvent reads one record of the programs: sockets of IPv4 and
// IPv6 of every protocol, TCP, UDP, ping and raw sockets alike (--source
// kernel credits each by its cookie; the capture's flows are TCP's and
// UDP's, whose keys the others never match). A raw socket's "port" is its
// protocol, a ping socket's its echo identifier, as the kernel keeps them.
func parseOwnerEvent(b []byte, clk *monoClock) (ownerEvent, bool) {
	if len(b) < evSize {
		return ownerEvent{}, false
	}
	ne := binary.NativeEndian
	proto := ne.Uint32(b[evProto:])
	if proto == unix.IPPROTO_MPTCP {
		proto = unix.IPPROTO_TCP // Go listens with MPTCP; its packets are TCP's
	}
	family := ne.Uint16(b[evFamily:])
	if family != unix.AF_INET && family != unix.AF_INET6 {
		return ownerEvent{}, false
	}
	comm := b[evComm : evComm+16]
	if i := strings.IndexByte(string(comm), 0); i >= 0 {
		comm = comm[:i]
	}
	ev := ownerEvent{
		release: b[evKind] == evRelease,
		cookie:  ne.Uint64(b[evCookie:]),
		netns:   ne.Uint64(b[evNetns:]),
		at:      clk.wall(ne.Uint64(b[evTime:])),
		pid:     int(ne.Uint32(b[evTgid:])),
		start:   ne.Uint64(b[evStart:]) / (1e9 / ticksPerSecond),
		uid:     ne.Uint32(b[evUID:]),
		name:    string(comm),
		proto:   uint8(proto),
		inode:   ne.Uint64(b[evInode:]),
		cgroup:  ne.Uint64(b[evCgroup:]),
	}
	if ev.release {
		a := b[evAddrs:]
		remotePort := binary.BigEndian.Uint16(a[12:])
		localPort := ne.Uint16(a[14:])
		var local, remote netip.Addr
		if family == unix.AF_INET {
			remote, local = netip.AddrFrom4([4]byte(a[0:4])), netip.AddrFrom4([4]byte(a[4:8]))
		} else {
			remote = netip.AddrFrom16([16]byte(b[evV6Daddr:])).Unmap()
			local = netip.AddrFrom16([16]byte(b[evV6Saddr:])).Unmap()
		}
		if remote.IsUnspecified() && local.Is4() {
			remote = netip.IPv4Unspecified() // unconnected, bound to an IPv4-mapped address
		}
		if local.Is4() == remote.Is4() { // else no packet has such a flow: left unindexed
			ev.local = netip.AddrPortFrom(local, localPort)
			ev.remote = netip.AddrPortFrom(remote, remotePort)
		}
	}
	return ev, true
}

// netnsCookie returns the cookie of the network namespace of socket fd.
func netnsCookie(fd int) (uint64, error) {
	v, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	return v, err
}

// recordProcs makes the process records of the owners the kernel recorded:
// read from /proc while the process lives (its start time tells a reused
// pid), else made of the record itself.
type recordProcs struct {
	mu        sync.Mutex // guards p, which serves one goroutine at a time
	p         *procfs
	netns     func(cookie uint64) uint64 // a namespace's inode number by its cookie; 0 if unknown
	ownCookie uint64                     // netuse's namespace's cookie
	ownInode  uint64                     // netuse's namespace's inode number; 0 if unknown
	cgroupOf  func(id uint64) string     // a cgroup's path by its id; "" if unknown
}

// cgroup returns the path of the cgroup with this id, "" if not known.
func (k *recordProcs) cgroup(id uint64) string {
	if id == 0 || k.cgroupOf == nil {
		return ""
	}
	return k.cgroupOf(id)
}

// ownInode returns the inode number of netuse's network namespace.
func ownInode() uint64 {
	ino, _ := netnsOf("/proc/self/ns/net")
	return ino
}

func (k *recordProcs) process(o sockOwner) *process {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.p.reg.get(o.pid, o.start, func(proc *process) {
		base := k.p.root + "/" + strconv.Itoa(o.pid)
		if stat, err := os.ReadFile(base + "/stat"); err == nil {
			if start, ok := parseStartTime(stat); ok && start == o.start {
				k.p.read(proc, base, stat, nil)
				if proc.netns == 0 { // its namespace link needs CAP_SYS_PTRACE
					proc.netns = k.inode(o.netns)
					proc.foreign = k.inContainer(o.netns, proc.netns)
				}
				if proc.user == "" { // it exited while /proc was read
					proc.user = k.p.userName(o.uid)
				}
				if proc.cgroup == "" {
					proc.cgroup = k.cgroup(o.cgroup)
				}
				return
			}
		}
		// Gone already: what the kernel recorded is all there is.
		proc.name = o.name
		proc.user = k.p.userName(o.uid)
		proc.netns = k.inode(o.netns)
		proc.foreign = k.inContainer(o.netns, proc.netns)
		proc.cgroup = k.cgroup(o.cgroup)
	})
}

// inode returns the inode number of the namespace with this cookie; 0 if
// not known.
func (k *recordProcs) inode(cookie uint64) uint64 {
	if cookie == k.ownCookie && k.ownInode != 0 {
		return k.ownInode
	}
	return k.netns(cookie)
}

// inContainer reports whether a process of the namespace with this cookie
// and inode (0 if not known) is in a container: by the inode, as procfs
// tells; else by the cookie, against netuse's own namespace.
func (k *recordProcs) inContainer(cookie, inode uint64) bool {
	if inode != 0 {
		return k.p.inContainer(inode)
	}
	return cookie != k.ownCookie
}

// ownerRecords is the kernel path at work: the programs, the book they
// fill, and the maker of process records from it.
type ownerRecords struct {
	kern  *kernelOwners
	book  *ownerBook
	procs *recordProcs
}

// startOwnerRecords loads and attaches the owner programs. An error wraps
// errNoBPF and says what the kernel refused.
func startOwnerRecords(reg *registry, tables socketTables) (*ownerRecords, error) {
	book := newOwnerBook()
	kern, err := startKernelOwners(book)
	if err != nil {
		return nil, err
	}
	book.lost, book.catchUp = kern.lost, kern.catchUp
	own := uint64(0)
	if fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0); err == nil {
		own, _ = netnsCookie(fd)
		unix.Close(fd)
	}
	return &ownerRecords{kern: kern, book: book,
		procs: &recordProcs{p: newProcfs(reg, false), netns: tables.netnsByCookie, ownCookie: own, ownInode: ownInode(),
			cgroupOf: kern.cgroups.path}}, nil
}

// close detaches the programs and waits for the reader.
func (o *ownerRecords) close() { o.kern.close() }

// liveName returns the name process p has now (/proc/<pid>/stat), so that
// a row follows exec and prctl renames; false if p is gone.
func liveName(p *process) (string, bool) {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/stat")
	if err != nil {
		return "", false
	}
	if start, ok := parseStartTime(stat); !ok || start != p.start {
		return "", false
	}
	return parseStatName(stat), true
}
