package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// readSockets reads the TCP and UDP sockets of both families from the
// kernel over netlink sock_diag: a few milliseconds for thousands of
// sockets, where parsing /proc/net/tcp takes tens.
func readSockets() ([]socket, error) {
	var socks []socket
	for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
		tcp, err := dumpSockets(netlink.SocketDiagTCP, family)
		if err != nil {
			return socks, fmt.Errorf("read TCP socket table: %w", err)
		}
		socks = appendSockets(socks, unix.IPPROTO_TCP, tcp)
		udp, err := dumpSockets(netlink.SocketDiagUDP, family)
		if err != nil {
			return socks, fmt.Errorf("read UDP socket table: %w", err)
		}
		socks = appendSockets(socks, unix.IPPROTO_UDP, udp)
	}
	return socks, nil
}

// dumpSockets runs one sock_diag dump. The kernel marks a dump interrupted
// when the table changed under it, and then it may miss sockets: dump
// again, a few times, before making do with what came.
func dumpSockets(dump func(uint8) ([]*netlink.Socket, error), family uint8) ([]*netlink.Socket, error) {
	for try := 1; ; try++ {
		ss, err := dump(family)
		if errors.Is(err, netlink.ErrDumpInterrupted) && try < 4 {
			continue
		}
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, err
		}
		return ss, nil
	}
}

func appendSockets(socks []socket, proto uint8, ss []*netlink.Socket) []socket {
	for _, s := range ss {
		socks = append(socks, socket{
			proto:  proto,
			local:  netip.AddrPortFrom(ipAddr(s.ID.Source), s.ID.SourcePort),
			remote: netip.AddrPortFrom(ipAddr(s.ID.Destination), s.ID.DestinationPort),
			inode:  uint64(s.INode),
			uid:    s.UID,
		})
	}
	return socks
}

// ipAddr converts an address of the socket table; IPv4-mapped IPv6
// addresses become IPv4, as packets carry them, and :: stays ::.
func ipAddr(ip net.IP) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	if a.Is4In6() {
		return a.Unmap()
	}
	return a
}

// procfs finds socket owners in /proc/<pid>/fd and keeps what it found:
// which process holds which inode, and each process's name, user and
// command line, read once.
type procfs struct {
	root     string              // "/proc"
	byInode  map[uint64]*process // socket inode -> holder, as of the last scan
	procs    map[int]*process    // pid -> process, as of the last scan
	users    map[uint32]string   // uid -> user name
	lastFull time.Time           // the last scan of every process
	fullTook time.Duration       // how long it took
	fullGap  time.Duration       // at least this long between two full scans, and 10 times fullTook
	self     int                 // netuse's own pid: its capture sockets are not traffic
	now      func() time.Time
}

func newProcfs() *procfs {
	return &procfs{
		root:    "/proc",
		byInode: map[uint64]*process{},
		procs:   map[int]*process{},
		users:   map[uint32]string{},
		fullGap: 200 * time.Millisecond,
		self:    os.Getpid(),
		now:     time.Now,
	}
}

// find resolves want from the cache, then from the processes that started
// since the last scan, newest first (a new flow's owner almost always is
// one of them), then, at most every fullGap, from every process.
func (p *procfs) find(want map[uint64]*process) (denied bool) {
	if p.fill(want) {
		return false
	}
	pids, err := p.pids()
	if err != nil {
		return false
	}
	var fresh []int
	for _, pid := range pids {
		if _, ok := p.procs[pid]; !ok {
			fresh = append(fresh, pid)
		}
	}
	// Pids grow until they wrap: the highest are the newest.
	slices.SortFunc(fresh, func(a, b int) int { return b - a })
	for _, pid := range fresh {
		denied = p.scan(pid, p.byInode) || denied
		if p.fill(want) {
			return denied
		}
	}
	if p.now().Sub(p.lastFull) < max(p.fullGap, 10*p.fullTook) {
		return denied
	}
	// A full scan: rebuild the cache, so that the inodes of processes that
	// are gone are forgotten.
	p.lastFull = p.now()
	byInode := make(map[uint64]*process, len(p.byInode))
	alive := make(map[int]bool, len(pids))
	for _, pid := range pids {
		alive[pid] = true
		denied = p.scan(pid, byInode) || denied
	}
	for pid := range p.procs {
		if !alive[pid] {
			delete(p.procs, pid)
		}
	}
	p.byInode = byInode
	p.fullTook = p.now().Sub(p.lastFull)
	p.fill(want)
	return denied
}

// fill sets the holders of want that the cache knows, and reports whether
// it knows them all.
func (p *procfs) fill(want map[uint64]*process) bool {
	all := true
	for ino, got := range want {
		if got != nil {
			continue
		}
		if want[ino] = p.byInode[ino]; want[ino] == nil {
			all = false
		}
	}
	return all
}

// pids lists the processes in /proc.
func (p *procfs) pids() ([]int, error) {
	d, err := os.Open(p.root)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil && pid != p.self {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// scan records the socket inodes that pid holds in into, and reports
// whether its descriptors could not be read for want of permission.
func (p *procfs) scan(pid int, into map[uint64]*process) (denied bool) {
	dir := p.root + "/" + strconv.Itoa(pid) + "/fd"
	d, err := os.Open(dir)
	if err != nil {
		return errors.Is(err, os.ErrPermission)
	}
	fds, _ := d.Readdirnames(-1)
	d.Close()
	var proc *process
	buf := make([]byte, 64)
	for _, fd := range fds {
		n, err := unix.Readlink(dir+"/"+fd, buf)
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			// The directory was readable (CAP_DAC_READ_SEARCH) but its links
			// are not: they need ptrace access (CAP_SYS_PTRACE).
			return true
		}
		if err != nil {
			continue
		}
		ino, ok := socketInode(buf[:n])
		if !ok {
			continue
		}
		if proc == nil {
			if proc = p.process(pid); proc == nil {
				return false // exited while we looked
			}
		}
		if _, taken := into[ino]; !taken {
			into[ino] = proc // a socket shared after fork goes to the first holder found
		}
	}
	if proc == nil {
		p.procs[pid] = nil // no sockets: known, so that it is not "new" again
	}
	return false
}

// socketInode parses the target of a /proc/<pid>/fd link, "socket:[12345]".
func socketInode(link []byte) (uint64, bool) {
	rest, ok := bytes.CutPrefix(link, []byte("socket:["))
	if !ok || len(rest) < 2 || rest[len(rest)-1] != ']' {
		return 0, false
	}
	ino, err := strconv.ParseUint(string(rest[:len(rest)-1]), 10, 64)
	return ino, err == nil
}

// process returns pid's process, read from /proc once: a pid whose start
// time changed is a new process.
func (p *procfs) process(pid int) *process {
	base := p.root + "/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(base + "/stat")
	if err != nil {
		return nil
	}
	start, ok := parseStartTime(stat)
	if !ok {
		return nil
	}
	if old := p.procs[pid]; old != nil && old.start == start {
		return old
	}
	proc := &process{pid: pid, start: start}
	if comm, err := os.ReadFile(base + "/comm"); err == nil {
		proc.name = strings.TrimSuffix(string(comm), "\n")
	}
	if cmd, err := os.ReadFile(base + "/cmdline"); err == nil {
		proc.cmdline = strings.TrimRight(strings.ReplaceAll(string(cmd), "\x00", " "), " ")
	}
	if status, err := os.ReadFile(base + "/status"); err == nil {
		if uid, ok := parseEffectiveUID(status); ok {
			proc.user = p.userName(uid)
		}
	}
	p.procs[pid] = proc
	return proc
}

// parseStartTime reads field 22 of /proc/<pid>/stat, the start time in
// clock ticks after boot. The name in field 2 may hold spaces and
// parentheses, so fields are counted from the last ')'.
func parseStartTime(stat []byte) (uint64, bool) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(stat[i+1:])
	const startField = 22 - 3 // fields after ')' start at field 3, state
	if len(fields) <= startField {
		return 0, false
	}
	v, err := strconv.ParseUint(string(fields[startField]), 10, 64)
	return v, err == nil
}

// parseEffectiveUID reads the effective uid from /proc/<pid>/status, the
// user that ps shows: "Uid:\treal\teffective\tsaved\tfs".
func parseEffectiveUID(status []byte) (uint32, bool) {
	for _, line := range bytes.Split(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte("Uid:"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 2 {
			return 0, false
		}
		uid, err := strconv.ParseUint(string(f[1]), 10, 32)
		return uint32(uid), err == nil
	}
	return 0, false
}

func (p *procfs) userName(uid uint32) string {
	if name, ok := p.users[uid]; ok {
		return name
	}
	name := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	p.users[uid] = name
	return name
}
