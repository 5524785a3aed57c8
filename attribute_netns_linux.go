package main

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
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
	// root, own, ns, lastEnum and socks belong to the goroutine that
	// reads (the resolver's pass, under resolver.mu), then to close.
	root     string
	own      uint64 // netuse's own namespace
	ns       map[uint64]*nsTable
	lastEnum time.Time
	socks    []socket   // the last read, whose array the next one reuses
	mu       sync.Mutex // guards addrs and byCookie, read by isLocal and netnsByCookie from other goroutines
	addrs    map[uint64]map[netip.Addr]bool
	byCookie map[uint64]uint64 // a namespace's inode number by its cookie, as the owner records give it
	warn     func(string)      // says once that netuse may not enter other namespaces
	denied   bool              // warn was called
}

type nsTable struct {
	diag   *sockDiag
	cookie uint64 // the namespace's cookie (SO_NETNS_COOKIE); 0 if the kernel has none
}

// enumGap is how often the namespaces in use are listed again; a pass
// with a flow whose socket it did not find lists them again sooner
// (rescan), but not within rescanGap of the last listing.
const (
	enumGap   = 2 * time.Second
	rescanGap = 200 * time.Millisecond
)

func newNSTables(warn func(string)) *nsTables {
	t := &nsTables{root: "/proc", ns: map[uint64]*nsTable{}, addrs: map[uint64]map[netip.Addr]bool{}, warn: warn}
	t.own, _ = netnsOf(t.root + "/self/ns/net")
	return t
}

// close closes the sock_diag socket of every namespace.
func (t *nsTables) close() {
	for ns, nt := range t.ns {
		nt.diag.close()
		delete(t.ns, ns)
	}
}

// read returns the TCP and UDP sockets of every namespace, each tagged
// with its namespace.
func (t *nsTables) read() ([]socket, error) {
	t.enumerateDue()
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

// find looks fl's socket up in each namespace, netuse's own first, by
// exact requests (the kernel's hash lookups: the connection's socket, else
// the listening or unconnected one of its local end), without a dump. A
// socket bound to a wildcard is taken only if fl's local address is one of
// its namespace's, as sockIndex.listener does.
func (t *nsTables) find(fl flow) (socket, bool) {
	t.enumerateDue()
	try := func(ns uint64, nt *nsTable) (socket, bool) {
		s, ok := nt.diag.lookup(fl)
		if !ok || (s.remote.Port() == 0 && s.local.Addr().IsUnspecified() && !t.isLocal(ns, fl.local.Addr())) {
			return socket{}, false
		}
		s.netns = ns
		return s, true
	}
	if nt := t.ns[t.own]; nt != nil {
		if s, ok := try(t.own, nt); ok {
			return s, true
		}
	}
	for ns, nt := range t.ns {
		if ns == t.own {
			continue
		}
		if s, ok := try(ns, nt); ok {
			return s, true
		}
	}
	return socket{}, false
}

// enumerateDue lists the namespaces in use again if the last listing is
// enumGap old.
func (t *nsTables) enumerateDue() {
	if time.Since(t.lastEnum) >= enumGap {
		t.lastEnum = time.Now()
		t.enumerate()
	}
}

// rescan lists the namespaces in use again, unless that was done within
// rescanGap, and reports whether a new one is in use.
func (t *nsTables) rescan() bool {
	if time.Since(t.lastEnum) < rescanGap {
		return false
	}
	known := len(t.ns)
	before := make(map[uint64]bool, known)
	for ns := range t.ns {
		before[ns] = true
	}
	t.lastEnum = time.Now()
	t.enumerate()
	for ns := range t.ns {
		if !before[ns] {
			return true
		}
	}
	return false
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
		if errors.Is(err, unix.EPERM) && !t.denied {
			// setns(2) into another namespace needs CAP_SYS_ADMIN, which
			// the README's setcap line leaves out.
			t.denied = true
			t.warn(`netuse may not enter other network namespaces (setns needs CAP_SYS_ADMIN, which its capabilities leave out): the sockets of processes in containers and other namespaces are not found, and their traffic counts as "(no socket)" or "(no owner)"; run it as root to credit them`)
		}
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

// netnsNames names network namespaces as ip netns does: each file of
// /run/netns is a bind mount of a namespace, whose inode number is the
// namespace's.
type netnsNames struct {
	dir    string
	mu     sync.Mutex // guards byIno and read
	byIno  map[uint64]string
	read   time.Time // the last listing of dir
	listed bool
}

// netnsNamesGap bounds how often a namespace without a name lists dir
// again: a container's namespace never has one.
const netnsNamesGap = 2 * time.Second

func newNetnsNames(dir string) *netnsNames { return &netnsNames{dir: dir} }

// name returns the name of namespace ino, "" if it has none.
func (n *netnsNames) name(ino uint64) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if name, ok := n.byIno[ino]; ok || (n.listed && time.Since(n.read) < netnsNamesGap) {
		return name
	}
	n.read, n.listed = time.Now(), true
	n.byIno = map[uint64]string{}
	ents, _ := os.ReadDir(n.dir) // none: no namespace is named
	for _, e := range ents {
		var st unix.Stat_t
		if unix.Stat(n.dir+"/"+e.Name(), &st) == nil {
			n.byIno[st.Ino] = e.Name()
		}
	}
	return n.byIno[ino]
}
