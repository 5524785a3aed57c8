package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/user"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// nsTables reads the socket tables of every network namespace in use: a
// process in a container has its sockets in its own namespace, which the
// host's table does not list. For each namespace it keeps a sock_diag
// socket opened inside it (a socket stays in the namespace it was made in)
// and the namespace's addresses.
type nsTables struct {
	root     string
	own      uint64 // netuse's own namespace
	ns       map[uint64]*nsTable
	lastEnum time.Time
	socks    []socket   // the last read, whose array the next one reuses
	mu       sync.Mutex // guards addrs and byCookie, read by isLocal and netnsByCookie from other goroutines
	addrs    map[uint64]map[netip.Addr]bool
	byCookie map[uint64]uint64 // a namespace's inode number by its cookie, as the owner records give it
}

type nsTable struct {
	diag   *sockDiag
	cookie uint64 // the namespace's cookie (SO_NETNS_COOKIE); 0 if the kernel has none
}

// enumGap is how often the namespaces in use are listed again.
const enumGap = 2 * time.Second

func newNSTables() *nsTables {
	t := &nsTables{root: "/proc", ns: map[uint64]*nsTable{}, addrs: map[uint64]map[netip.Addr]bool{}}
	t.own, _ = netnsOf(t.root + "/self/ns/net")
	return t
}

// netnsOf reads a namespace link, "net:[4026531840]", as its inode number.
func netnsOf(link string) (uint64, bool) {
	target, err := os.Readlink(link)
	if err != nil {
		return 0, false
	}
	rest, ok := strings.CutPrefix(target, "net:[")
	if !ok || !strings.HasSuffix(rest, "]") {
		return 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	return n, err == nil
}

// read returns the TCP and UDP sockets of every namespace, each tagged
// with its namespace.
func (t *nsTables) read() ([]socket, error) {
	if time.Since(t.lastEnum) >= enumGap {
		t.lastEnum = time.Now()
		t.enumerate()
	}
	// The last read's slice, reused: growing a new one to 20,000 sockets
	// cost a sixth of the read in copying (BenchmarkSocketTable's profile).
	// The caller is done with the last read's sockets when it reads again.
	socks := t.socks[:0]
	defer func() { t.socks = socks }()
	for ns, nt := range t.ns {
		n := len(socks)
		var err error
		socks, err = nt.diag.dumpAll(socks)
		if err != nil && ns == t.own {
			return socks, err
		}
		for i := n; i < len(socks); i++ {
			socks[i].netns = ns
		}
	}
	return socks, nil
}

// enumerate finds the namespaces in use from /proc/<pid>/ns/net, opens a
// table for each new one and closes those no process uses any more.
func (t *nsTables) enumerate() {
	inUse := map[uint64]int{t.own: os.Getpid()}
	if d, err := os.Open(t.root); err == nil {
		names, _ := d.Readdirnames(-1)
		d.Close()
		for _, name := range names {
			pid, err := strconv.Atoi(name)
			if err != nil {
				continue
			}
			if ns, ok := netnsOf(t.root + "/" + name + "/ns/net"); ok {
				if _, seen := inUse[ns]; !seen {
					inUse[ns] = pid
				}
			}
		}
	}
	addrs := map[uint64]map[netip.Addr]bool{}
	for ns, pid := range inUse {
		nt := t.ns[ns]
		var a map[netip.Addr]bool
		err := inNetns(t.root+"/"+strconv.Itoa(pid)+"/ns/net", ns == t.own, func() error {
			if nt == nil {
				d, err := openSockDiag()
				if err != nil {
					return err
				}
				nt = &nsTable{diag: d}
				nt.cookie, _ = netnsCookie(d.fd)
			}
			a = interfaceAddrs()
			return nil
		})
		if err != nil || nt == nil {
			continue // the namespace went away, or netuse may not enter it
		}
		t.ns[ns] = nt
		addrs[ns] = a
	}
	for ns, nt := range t.ns {
		if _, ok := addrs[ns]; !ok {
			nt.diag.close()
			delete(t.ns, ns)
		}
	}
	byCookie := make(map[uint64]uint64, len(t.ns))
	for ns, nt := range t.ns {
		byCookie[nt.cookie] = ns
	}
	t.mu.Lock()
	t.addrs = addrs
	t.byCookie = byCookie
	t.mu.Unlock()
}

// netnsByCookie returns the inode number of the namespace with cookie c,
// or 0 if it is not (or no longer) in use.
func (t *nsTables) netnsByCookie(c uint64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byCookie[c]
}

// isLocal reports whether addr is an address of namespace ns: one of its
// interfaces', a loopback or multicast address, or the broadcast address.
func (t *nsTables) isLocal(ns uint64, addr netip.Addr) bool {
	if addr.IsLoopback() || addr.IsMulticast() || addr == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	a, ok := t.addrs[ns]
	return !ok || a[addr] // a namespace not listed yet: no reason to doubt
}

// ownAddr reports whether ns is netuse's own namespace and addr one of its
// addresses as last listed.
func (t *nsTables) ownAddr(ns uint64, addr netip.Addr) bool {
	if ns != t.own {
		return false
	}
	if addr.IsLoopback() {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.addrs[ns][addr]
}

// isOurs reports whether addr is an address of any namespace.
func (t *nsTables) isOurs(addr netip.Addr) bool {
	if addr.IsLoopback() {
		return true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, a := range t.addrs {
		if a[addr] {
			return true
		}
	}
	return false
}

// interfaceAddrs returns the addresses of the current thread's namespace.
func interfaceAddrs() map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	as, _ := net.InterfaceAddrs()
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				m[ip.Unmap()] = true
			}
		}
	}
	return m
}

// inNetns runs fn on a thread of its own inside the namespace at path
// (here: fn runs in the current namespace). The thread returns to its
// namespace, or, if it cannot, ends with its goroutine.
func inNetns(path string, here bool, fn func() error) error {
	if here {
		return fn()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer unix.Close(self)
		target, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		err = unix.Setns(target, unix.CLONE_NEWNET)
		unix.Close(target)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		err = fn()
		if unix.Setns(self, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread() // else the thread ends with this goroutine
		}
		done <- err
	}()
	return <-done
}

// newLookup returns a function that asks the kernel for the one socket with
// a flow's endpoints, over a sock_diag socket kept open for it. It is for
// one goroutine.
func newLookup() func(flow) (socket, bool) {
	var d *sockDiag
	return func(fl flow) (socket, bool) {
		if d == nil {
			var err error
			if d, err = openSockDiag(); err != nil {
				d = nil
				return socket{}, false
			}
		}
		return d.lookup(fl)
	}
}

// sockDiag is a NETLINK_SOCK_DIAG socket. netuse speaks the protocol
// itself rather than through github.com/vishvananda/netlink: that library
// asks for every TCP socket's tcp_info, which netuse does not need, and
// allocates a net.IP per address; its reads took 50 ms at 20,000 sockets.
type sockDiag struct {
	fd  int
	seq uint32
	buf []byte
}

func openSockDiag() (*sockDiag, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind sock_diag socket: %w", err)
	}
	return &sockDiag{fd: fd, buf: make([]byte, 64<<10)}, nil
}

func (d *sockDiag) close() { unix.Close(d.fd) }

// Sizes and offsets of linux/inet_diag.h and linux/netlink.h.
const (
	nlmsgHdrLen     = 16
	inetDiagReqLen  = 56 // struct inet_diag_req_v2
	inetDiagMsgLen  = 72 // struct inet_diag_msg
	sockDiagByFam   = 20 // SOCK_DIAG_BY_FAMILY
	allTCPStates    = 0xfff
	diagNoCookie    = 0xffffffff
	nlmFDumpIntr    = 0x10
	diagMsgSportOff = 4 // in inet_diag_msg: id.idiag_sport
	diagMsgUIDOff   = 64
	diagMsgInodeOff = 68
	// idiag_cookie: two u32 halves, low first, in host order
	diagMsgCookieOff = diagMsgSportOff + 40
)

// dumpAll reads the TCP and UDP tables of both families. A dump that the
// kernel marks interrupted (the table changed under it) may miss sockets:
// it is run again, a few times, before netuse makes do with what came.
func (d *sockDiag) dumpAll(socks []socket) ([]socket, error) {
	for _, proto := range []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
			n := len(socks)
			for try := 1; ; try++ {
				socks = socks[:n]
				intr, err := d.query(family, proto, nil, func(m []byte) { socks = append(socks, parseDiagMsg(proto, m)) })
				if err != nil {
					return socks, fmt.Errorf("read socket table: %w", err)
				}
				if !intr || try == 4 {
					break
				}
			}
		}
	}
	return socks, nil
}

// lookup asks for the socket with fl's endpoints, without a dump.
func (d *sockDiag) lookup(fl flow) (socket, bool) {
	family := uint8(unix.AF_INET6)
	if fl.local.Addr().Is4() && fl.remote.Addr().Is4() {
		family = unix.AF_INET
	}
	var s socket
	found := false
	_, err := d.query(family, fl.proto, &fl, func(m []byte) { s, found = parseDiagMsg(fl.proto, m), true })
	return s, err == nil && found
}

// query sends one request, a dump if fl is nil, and calls fn with each
// inet_diag_msg of the answer. It reports whether a dump was interrupted.
func (d *sockDiag) query(family, proto uint8, fl *flow, fn func([]byte)) (interrupted bool, err error) {
	d.seq++
	req := make([]byte, nlmsgHdrLen+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFam)
	flags := uint16(unix.NLM_F_REQUEST)
	if fl == nil {
		flags |= unix.NLM_F_DUMP
	}
	ne.PutUint16(req[6:], flags)
	ne.PutUint32(req[8:], d.seq)
	r := req[nlmsgHdrLen:]
	r[0], r[1] = family, proto
	ne.PutUint32(r[4:], allTCPStates)
	if fl != nil {
		// inet_diag_sockid: ports and addresses in network byte order.
		binary.BigEndian.PutUint16(r[8:], fl.local.Port())
		binary.BigEndian.PutUint16(r[10:], fl.remote.Port())
		putDiagAddr(r[12:28], fl.local.Addr(), family)
		putDiagAddr(r[28:44], fl.remote.Addr(), family)
		ne.PutUint32(r[48:], diagNoCookie)
		ne.PutUint32(r[52:], diagNoCookie)
	}
	if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, err
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			return interrupted, err
		}
		for b := d.buf[:n]; len(b) >= nlmsgHdrLen; {
			l := int(ne.Uint32(b[0:]))
			if l < nlmsgHdrLen || l > len(b) {
				return interrupted, errors.New("malformed netlink message")
			}
			typ, mflags, seq := ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:])
			body := b[nlmsgHdrLen:l]
			b = b[min((l+3)&^3, len(b)):]
			if seq != d.seq {
				continue
			}
			interrupted = interrupted || mflags&nlmFDumpIntr != 0
			switch typ {
			case unix.NLMSG_DONE:
				return interrupted, nil
			case unix.NLMSG_ERROR:
				if len(body) >= 4 {
					if errno := -int32(ne.Uint32(body)); errno != 0 {
						return interrupted, unix.Errno(errno)
					}
				}
				return interrupted, nil
			case sockDiagByFam:
				if len(body) >= inetDiagMsgLen {
					fn(body)
				}
				if fl != nil {
					return false, nil // an exact request has one answer
				}
			}
		}
	}
}

// putDiagAddr writes a into a 16-byte inet_diag address field.
func putDiagAddr(dst []byte, a netip.Addr, family uint8) {
	if family == unix.AF_INET {
		b := a.As4()
		copy(dst, b[:])
		return
	}
	b := a.As16() // an IPv4 address becomes IPv4-mapped
	copy(dst, b[:])
}

// parseDiagMsg reads an inet_diag_msg. IPv4-mapped IPv6 addresses become
// IPv4, as packets carry them, and :: stays ::.
func parseDiagMsg(proto uint8, m []byte) socket {
	family := m[0]
	id := m[diagMsgSportOff:]
	addr := func(b []byte) netip.Addr {
		if family == unix.AF_INET {
			return netip.AddrFrom4([4]byte(b[:4]))
		}
		a := netip.AddrFrom16([16]byte(b[:16]))
		if a.Is4In6() {
			return a.Unmap()
		}
		return a
	}
	ne := binary.NativeEndian
	return socket{
		proto:  proto,
		local:  netip.AddrPortFrom(addr(id[4:20]), binary.BigEndian.Uint16(id[0:])),
		remote: netip.AddrPortFrom(addr(id[20:36]), binary.BigEndian.Uint16(id[2:])),
		uid:    ne.Uint32(m[diagMsgUIDOff:]),
		inode:  uint64(ne.Uint32(m[diagMsgInodeOff:])),
		cookie: uint64(ne.Uint32(m[diagMsgCookieOff:])) | uint64(ne.Uint32(m[diagMsgCookieOff+4:]))<<32,
	}
}

// procfs finds socket owners in /proc/<pid>/fd and keeps what it found:
// which process holds which inode, and each process's name, user and
// command line, read once.
type procfs struct {
	reg       *registry           // the process records, shared with other finders
	recent    bool                // look among the newest processes only
	root      string              // "/proc"
	byInode   map[uint64]*process // socket inode -> holder, as of the last scan
	procs     map[int]*process    // pid -> process, as of the last scan
	users     map[uint32]string   // uid -> user name
	lastFull  time.Time           // the last scan of every process
	fullTook  time.Duration       // how long it took
	fullGap   time.Duration       // at least this long between two full scans, and 10 times fullTook
	self      int                 // netuse's own pid: its capture sockets are not traffic
	capable   bool                // netuse may read every process: a refusal means the process is exiting
	ownNetns  uint64              // netuse\'s network namespace
	newcomers []newcomer          // recent mode: processes the last find saw for the first time
	now       func() time.Time
	ticks     func() uint64 // clock ticks since boot (bootTicks)
	execs     *execWatch    // recent mode: programs started, from the kernel; nil: none
	execHist  []execEvent   // the execs of the last execAge
}

func newProcfs(reg *registry, recent bool) *procfs {
	own, _ := netnsOf("/proc/self/ns/net")
	return &procfs{
		ownNetns: own,
		reg:      reg,
		recent:   recent,
		root:     "/proc",
		byInode:  map[uint64]*process{},
		procs:    map[int]*process{},
		users:    map[uint32]string{},
		fullGap:  200 * time.Millisecond,
		self:     os.Getpid(),
		capable:  capable(),
		now:      time.Now,
		ticks:    bootTicks,
	}
}

// find resolves want from the cache, then from the processes that started
// since the last scan, newest first (a new flow's owner almost always is
// one of them), then, at most every fullGap, from every process.
func (p *procfs) find(want map[uint64]*process) (denied bool) {
	p.keepExecs()
	// With nothing to find, the quick finder still looks at every recent
	// process, so that soleNewcomer knows who is new.
	if len(want) > 0 && p.fill(want) {
		return false
	}
	// The newest processes, counting down from the last pid the kernel
	// gave out: no need to list /proc to find a process that just started.
	p.newcomers = p.newcomers[:0]
	if last, ok := p.lastPid(); ok {
		if p.recent && len(p.procs) > 4*recentPids {
			p.forget(last)
		}
		seen := map[int]bool{}
		for id := last; id > max(last-recentPids, 0); id-- {
			// Threads take ids from the same counter, and /proc/<tid>
			// answers for them though /proc does not list them: look at
			// the thread's process instead.
			pid, ok := p.tgid(id)
			if !ok || seen[pid] {
				continue
			}
			seen[pid] = true
			// The quick finder looks again at processes it saw without
			// sockets: they are the ones about to open one.
			_, known := p.procs[pid]
			if (known && !p.recent) || pid == p.self {
				continue
			}
			d, stat := p.scan(pid, p.byInode)
			denied = denied || d
			if !known && stat != nil && !d {
				// A process whose descriptors netuse may not read is no
				// newcomer to guess with: it is never known, so it would be
				// new at every look.
				p.noteNewcomer(pid, stat)
			}
			if len(want) > 0 && p.fill(want) {
				return denied
			}
		}
	}
	if p.recent {
		return denied
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
		d, _ := p.scan(pid, p.byInode)
		denied = denied || d
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
		d, _ := p.scan(pid, byInode)
		denied = denied || d
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

// forget keeps only the processes of the pids the kernel gave out most
// recently (up to last), and the inodes they hold. The quick finder looks
// at no others and never scans all of /proc, which is what forgets exited
// processes for the other finder; without this its cache would grow with
// every process that ever started.
func (p *procfs) forget(last int) {
	keep := func(pid int) bool { return pid <= last && pid > last-4*recentPids }
	for pid := range p.procs {
		if !keep(pid) {
			delete(p.procs, pid)
		}
	}
	byInode := make(map[uint64]*process, len(p.byInode))
	for ino, proc := range p.byInode {
		if keep(proc.pid) && p.procs[proc.pid] == proc {
			byInode[ino] = proc
		}
	}
	p.byInode = byInode
}

// tgid returns the process (thread group) of a thread id.
func (p *procfs) tgid(id int) (int, bool) {
	status, err := os.ReadFile(p.root + "/" + strconv.Itoa(id) + "/status")
	if err != nil {
		return 0, false
	}
	for _, line := range bytes.Split(status, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, []byte("Tgid:")); ok {
			pid, err := strconv.Atoi(string(bytes.TrimSpace(rest)))
			return pid, err == nil
		}
	}
	return 0, false
}

// recentPids is how many of the newest pids find tries before it lists /proc.
const recentPids = 32

// lastPid reads the pid the kernel gave out last: the last field of
// /proc/loadavg.
func (p *procfs) lastPid() (int, bool) {
	b, err := os.ReadFile(p.root + "/loadavg")
	if err != nil {
		return 0, false
	}
	f := bytes.Fields(b)
	if len(f) < 5 {
		return 0, false
	}
	pid, err := strconv.Atoi(string(f[4]))
	return pid, err == nil
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
func (p *procfs) scan(pid int, into map[uint64]*process) (denied bool, stat []byte) {
	dir := p.root + "/" + strconv.Itoa(pid) + "/fd"
	d, err := os.Open(dir)
	if err != nil {
		return errors.Is(err, os.ErrPermission) && !p.capable, nil
	}
	fds, _ := d.Readdirnames(-1)
	d.Close()
	var proc *process
	if p.recent {
		// A process that just started may be gone in a moment: take its
		// stat (name and start time) before its descriptors, and the rest
		// after.
		if stat, err = os.ReadFile(p.root + "/" + strconv.Itoa(pid) + "/stat"); err != nil {
			return false, nil
		}
	}
	found := false
	buf := make([]byte, 64)
	for _, fd := range fds {
		n, err := unix.Readlink(dir+"/"+fd, buf)
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			// The directory was readable (CAP_DAC_READ_SEARCH) but its links
			// are not: they need ptrace access (CAP_SYS_PTRACE). With both,
			// this is a process on its way out.
			return !p.capable, stat
		}
		if err != nil {
			continue
		}
		ino, ok := socketInode(buf[:n])
		if !ok {
			continue
		}
		if proc == nil {
			if proc = p.process(pid, stat); proc == nil {
				return false, nil // exited while we looked
			}
		}
		found = true
		if _, taken := into[ino]; !taken {
			into[ino] = proc // a socket shared after fork goes to the first holder found
		}
	}
	if !found {
		p.procs[pid] = nil // no sockets: known, so that it is not "new" again
	}
	return false, stat
}

// newcomer is a process that the quick finder saw for the first time in
// its last look.
type newcomer struct {
	pid   int
	uid   uint32
	netns uint64 // 0 if unknown
	start uint64 // clock ticks after boot
	stat  []byte
}

func (p *procfs) noteNewcomer(pid int, stat []byte) {
	var st unix.Stat_t
	// /proc/<pid> belongs to the process's effective user.
	base := p.root + "/" + strconv.Itoa(pid)
	if unix.Stat(base, &st) != nil {
		return
	}
	start, ok := parseStartTime(stat)
	if !ok {
		return
	}
	ns, _ := netnsOf(base + "/ns/net")
	p.newcomers = append(p.newcomers, newcomer{pid, st.Uid, ns, start, stat})
}

// newcomerAge is how long before a connection opens its opener may have
// started, for soleNewcomer: a curl connects within milliseconds of its
// start, and an old process is no newcomer even if the last look missed it.
const newcomerAge = 5 * ticksPerSecond

// ticksPerSecond is USER_HZ, the unit of start times in /proc/<pid>/stat:
// 100 on every Linux architecture.
const ticksPerSecond = 100

// execAge is how long an exec stays a candidate for soleNewcomer.
const execAge = time.Second

// keepExecs adds the execs the watch heard of to the history and drops
// those older than execAge.
func (p *procfs) keepExecs() {
	if p.execs == nil {
		return
	}
	now := p.now()
	p.execHist = slices.DeleteFunc(append(p.execHist, p.execs.take()...), func(e execEvent) bool { return now.Sub(e.at) > execAge })
}

// soleExited returns, from the execs of the last execAge, the one process
// of uid (any user if anyUID) that fits and is gone without any look
// having seen it, if there is exactly one: a program that connected and
// exited between two looks.
func (p *procfs) soleExited(uid uint32, anyUID bool, fits func(netns uint64) bool) *process {
	var only *execEvent
	for i, e := range p.execHist {
		if _, seen := p.procs[e.pid]; seen || (e.uid != uid && !anyUID) || !fits(e.netns) {
			continue
		}
		if _, err := os.Stat(p.root + "/" + strconv.Itoa(e.pid)); err == nil {
			continue // alive: the look would have seen it
		}
		if only != nil {
			return nil
		}
		only = &p.execHist[i]
	}
	if only == nil {
		return nil
	}
	proc := p.process(only.pid, only.stat)
	if proc != nil && proc.user == "" && proc.netns == 0 {
		// Read just now from the exec's stat: gone, so its status and
		// namespace could not be read; no one else has the record yet.
		proc.user, proc.netns = p.userName(only.uid), only.netns
		proc.foreign = proc.netns != 0 && p.ownNetns != 0 && proc.netns != p.ownNetns
	}
	return proc
}

// soleNewcomer returns the process of uid (of any user if anyUID) that
// the last look found for the first time, that started within newcomerAge
// and whose network namespace fits (the connection's address is one of
// that namespace's), if there was exactly one: when a connection's socket
// closed before its owner was found, that process is almost surely the
// owner.
func (p *procfs) soleNewcomer(uid uint32, anyUID bool, fits func(netns uint64) bool) *process {
	var only *newcomer
	now := p.ticks()
	for i, n := range p.newcomers {
		if (n.uid != uid && !anyUID) || now-n.start > newcomerAge || !fits(n.netns) {
			continue
		}
		if only != nil {
			return nil // two or more: no guess
		}
		only = &p.newcomers[i]
	}
	if only == nil {
		return p.soleExited(uid, anyUID, fits)
	}
	return p.process(only.pid, only.stat)
}

// bootTicks returns the time since boot in clock ticks, the unit of
// process start times.
func bootTicks() uint64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return uint64(ts.Sec)*ticksPerSecond + uint64(ts.Nsec)/(1e9/ticksPerSecond)
}

// capable reports whether netuse may read every process's descriptors:
// CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH in its effective set.
// readableUsers returns resolver.readable: nil with both capabilities,
// else a test for netuse's own effective user.
func readableUsers() func(uid uint32) bool {
	if capable() {
		return nil
	}
	me := uint32(os.Geteuid())
	return func(uid uint32) bool { return uid == me }
}

func capable() bool {
	return len(missingCaps(map[int]string{unix.CAP_SYS_PTRACE: "", unix.CAP_DAC_READ_SEARCH: ""})) == 0
}

// missingCaps returns the names of the capabilities in want (number ->
// name) that netuse's effective set lacks, in order of number; all of
// them if the set cannot be read.
func missingCaps(want map[int]string) []string {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	err := unix.Capget(&hdr, &data[0])
	var missing []string
	for _, c := range slices.Sorted(maps.Keys(want)) {
		if err != nil || data[c/32].Effective&(1<<(c%32)) == 0 {
			missing = append(missing, want[c])
		}
	}
	return missing
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
// time changed is a new process. stat is its stat file if read already.
func (p *procfs) process(pid int, stat []byte) *process {
	base := p.root + "/" + strconv.Itoa(pid)
	if stat == nil {
		var err error
		if stat, err = os.ReadFile(base + "/stat"); err != nil {
			return nil
		}
	}
	start, ok := parseStartTime(stat)
	if !ok {
		return nil
	}
	if old := p.procs[pid]; old != nil && old.start == start {
		return old
	}
	proc := p.reg.get(pid, start, func(proc *process) { p.read(proc, base, stat) })
	p.procs[pid] = proc
	return proc
}

// read fills in proc's name, command line, user, namespace and cgroup from
// /proc/<pid> (base), whose stat file is read already.
func (p *procfs) read(proc *process, base string, stat []byte) {
	// The name comes from stat, read already: one file fewer to read
	// while a short-lived process may be exiting.
	proc.name = parseStatName(stat)
	if cmd, err := os.ReadFile(base + "/cmdline"); err == nil {
		proc.cmdline = strings.TrimRight(strings.ReplaceAll(string(cmd), "\x00", " "), " ")
	}
	if status, err := os.ReadFile(base + "/status"); err == nil {
		if uid, ok := parseEffectiveUID(status); ok {
			proc.user = p.userName(uid)
		}
	}
	proc.netns, _ = netnsOf(base + "/ns/net")
	proc.foreign = proc.netns != 0 && p.ownNetns != 0 && proc.netns != p.ownNetns
	if cg, err := os.ReadFile(base + "/cgroup"); err == nil {
		proc.cgroup = parseCgroup(cg)
	}
}

// parseCgroup picks the path from /proc/<pid>/cgroup: the unified
// hierarchy's ("0::/system.slice/docker-3f2a.scope"), else systemd's, else
// the first.
func parseCgroup(b []byte) string {
	first, systemd := "", ""
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			return parts[2]
		case parts[1] == "name=systemd":
			systemd = parts[2]
		case first == "":
			first = parts[2]
		}
	}
	if systemd != "" {
		return systemd
	}
	return first
}

// parseStatName reads field 2 of /proc/<pid>/stat, the name between the
// first '(' and the last ')': the name itself may hold parentheses.
func parseStatName(stat []byte) string {
	i, j := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if i < 0 || j < i {
		return ""
	}
	return string(stat[i+1 : j])
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

// readConntrack reads the connection tracking table of netuse's namespace
// from /proc/net/nf_conntrack, where the kernel has it (CONFIG_NF_CONNTRACK_PROCFS):
//
//	ipv4 2 tcp 6 431999 ESTABLISHED src=A dst=B sport=P dport=Q src=C dst=D sport=R dport=S [ASSURED] ...
//
// the first four keys are the original direction, the next four the reply.
func readConntrack() ([]natEntry, error) {
	f, err := os.Open("/proc/net/nf_conntrack")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// A line at a time, keeping only the entries that NAT rewrote: a flood
	// of packets to closed ports fills the table with hundreds of
	// thousands of entries (TestProcFlood, a million flows), and reading
	// the file whole took tens of megabytes at each pass.
	var es []natEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if e, ok := parseConntrackLine(sc.Text()); ok && e.natted() {
			es = append(es, e)
		}
	}
	return es, sc.Err()
}

// parseConntrack parses the lines of /proc/net/nf_conntrack.
func parseConntrack(b []byte) []natEntry {
	var es []natEntry
	for _, line := range strings.Split(string(b), "\n") {
		if e, ok := parseConntrackLine(line); ok {
			es = append(es, e)
		}
	}
	return es
}

// parseConntrackLine parses one line of /proc/net/nf_conntrack: a TCP or
// UDP entry with its original and reply tuples.
func parseConntrackLine(line string) (natEntry, bool) {
	f := strings.Fields(line)
	var e natEntry
	if len(f) < 3 {
		return e, false
	}
	switch f[2] {
	case "tcp":
		e.proto = 6
	case "udp":
		e.proto = 17
	default:
		return e, false
	}
	var addrs [4]netip.Addr
	var ports [4]uint16
	na, np := 0, 0
	for _, kv := range f[3:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch k {
		case "src", "dst":
			if a, err := netip.ParseAddr(v); err == nil && na < 4 {
				addrs[na] = a.Unmap()
				na++
			}
		case "sport", "dport":
			if p, err := strconv.ParseUint(v, 10, 16); err == nil && np < 4 {
				ports[np] = uint16(p)
				np++
			}
		}
	}
	if na != 4 || np != 4 {
		return e, false
	}
	e.origSrc, e.origDst = netip.AddrPortFrom(addrs[0], ports[0]), netip.AddrPortFrom(addrs[1], ports[1])
	e.replySrc, e.replyDst = netip.AddrPortFrom(addrs[2], ports[2]), netip.AddrPortFrom(addrs[3], ports[3])
	return e, true
}

// newFinder returns the finder of socket owners: with recent, the quick
// one for connections just opened, which also hears of every exec.
func newFinder(reg *registry, recent bool) owners {
	p := newProcfs(reg, recent)
	if recent {
		p.execs = watchExecs(p.root)
	}
	return p
}

// execWatch hears of every program started on the machine, from the
// kernel's process connector (PROC_EVENT_EXEC), and reads each one's
// stat, user and network namespace as it starts. A short-lived process,
// a curl, can be gone before the look after its connection opened; its
// exec event still says who it was. The connector only works in the
// machine's first network namespace: elsewhere (netuse in a container)
// there is no watch, and the look after the SYN is all there is.
type execWatch struct {
	root  string
	mu    sync.Mutex
	execs []execEvent // since the last take, oldest first; at most maxExecs
}

type execEvent struct {
	at    time.Time // when the watch heard of it
	pid   int
	uid   uint32
	netns uint64
	stat  []byte
}

// maxExecs bounds the events kept between two looks: on a machine that
// starts thousands of programs a second, the oldest are dropped; the look
// needs only the newest.
const maxExecs = 256

// Offsets in a process connector message: nlmsghdr (16 bytes), cn_msg
// (20), then struct proc_event: what, cpu, timestamp_ns, and for an exec
// process_pid and process_tgid (linux/cn_proc.h).
const (
	cnMsgOff        = 16
	procEventOff    = 16 + 20
	procEventExec   = 0x00000002
	execTgidOff     = procEventOff + 20
	cnIdxProc       = 1
	cnValProc       = 1
	procMcastListen = 1
)

// watchExecs subscribes to the process connector; nil if the kernel
// refuses (another network namespace, no CAP_NET_ADMIN, no connector).
func watchExecs(root string) *execWatch {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil
	}
	if unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}) != nil {
		unix.Close(fd)
		return nil
	}
	req := make([]byte, procEventOff+4)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.NLMSG_DONE)
	ne.PutUint32(req[12:], uint32(os.Getpid()))
	ne.PutUint32(req[cnMsgOff:], cnIdxProc)
	ne.PutUint32(req[cnMsgOff+4:], cnValProc)
	ne.PutUint16(req[cnMsgOff+16:], 4) // payload length
	ne.PutUint32(req[procEventOff:], procMcastListen)
	if unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}) != nil {
		unix.Close(fd) // ECONNREFUSED outside the first network namespace
		return nil
	}
	w := &execWatch{root: root}
	go w.run(fd)
	return w
}

// run reads exec events until the socket fails; netuse's exit closes it.
func (w *execWatch) run(fd int) {
	defer unix.Close(fd)
	ne := binary.NativeEndian
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
			continue // ENOBUFS: events were lost, the socket goes on
		}
		if err != nil {
			return
		}
		if n < execTgidOff+4 || ne.Uint32(buf[procEventOff:]) != procEventExec {
			continue
		}
		w.note(int(ne.Uint32(buf[execTgidOff:])))
	}
}

// note reads the process that just called exec, while it is there.
func (w *execWatch) note(pid int) {
	base := w.root + "/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(base + "/stat")
	if err != nil {
		return
	}
	var st unix.Stat_t
	if unix.Stat(base, &st) != nil {
		return
	}
	ns, _ := netnsOf(base + "/ns/net")
	w.mu.Lock()
	if len(w.execs) == maxExecs {
		w.execs = append(w.execs[:0], w.execs[1:]...)
	}
	w.execs = append(w.execs, execEvent{time.Now(), pid, st.Uid, ns, stat})
	w.mu.Unlock()
}

// take returns the events since the last take.
func (w *execWatch) take() []execEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.execs
	w.execs = nil
	return e
}
