package main

import (
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The interfaces --source kernel reports on: how each counts a packet
// (countingOf), its counters (readIfaceCounters), and the containers'
// sockets that cross it (guests).
//
// Sockets of other network namespaces under --source kernel: a
// container's socket sends through its end of a veth pair whose other end
// is an interface of netuse's namespace, the host's end. What the socket
// sends there, the host's end receives, and what it receives, the host's
// end sent: each crosses the pair as the same skb, counted once on each
// end. The counting programs key a socket's counts by the namespace's
// cookie and the ifindex of the container's end; guests finds, for such a
// pair, the host's end.
//
// Finding it: the host's ends are the interfaces of netuse's namespace
// with a peer in another namespace (rtnetlink's IFLA_LINK and
// IFLA_LINK_NETNSID); each namespace in use (/proc/PID/ns/net) is entered
// once (setns, as the capture's socket tables do: CAP_SYS_ADMIN) for its
// cookie and its links, and its id as netuse's namespace knows it
// (RTM_GETNSID) tells which host end's peer is in it. A pair that is no
// such end (a container's lo, a tunnel) is remembered as none until the
// next look.

// guestKey is a container's end: its namespace's cookie and its ifindex
// there.
type guestKey struct {
	netns   uint64
	ifindex uint32
}

// guestEnd is a container's end of a veth pair whose other end is
// reported on.
type guestEnd struct {
	host int          // the host's end, an ifindex of netuse's namespace
	ifc  *kernelIface // the container's end, for how it counts (kind, l2)
}

// guests maps containers' ends to the host's ends. It belongs to the
// reporting goroutine.
type guests struct {
	root     string                 // /proc
	netnsDir string                 // ip netns's: /run/netns
	own      uint64                 // netuse's namespace's inode
	ends     map[guestKey]*guestEnd // nil: looked for, and no end of a pair reported on
	byIno    map[uint64]*guestNS    // the namespaces looked into, by inode
	last     time.Time              // the last look
	warn     func(string)
	denied   bool // warn was called
	// tellMTU and forgetMTU keep the counting programs' MTUs of the
	// namespaces' links (setMTU): a socket's datagram past its device's
	// MTU leaves in fragments, and the programs count them from it
	tellMTU   func(key guestKey, mtu uint32)
	forgetMTU func(key guestKey)
	// inodes maps the cookies of the namespaces looked into to their
	// inodes, for the records of processes gone (inodeOf, from another
	// goroutine)
	mu     sync.Mutex
	inodes map[uint64]uint64
}

// guestNS is what a look into a namespace found.
type guestNS struct {
	ino    uint64
	diag   *sockDiag // its socket tables, for the owners of sockets without a record; nil if it could not be opened
	cookie uint64
	nsid   int32 // its id in netuse's namespace; -1 if none
	links  []guestLink
}

// guestLink is a link of a namespace whose peer is in another one.
type guestLink struct {
	index, peer int // its ifindex; its peer's, in the peer's namespace
	kind        ifaceCounting
	mtu         uint32
}

// guestGap bounds how often the namespaces are looked at again for a
// pair not found: a container that came up a moment ago is found by the
// next report, a machine with thousands of namespaces is not listed at
// every packet of one that is no pair's.
const guestGap = 200 * time.Millisecond

func newGuests(warn func(string)) *guests {
	g := &guests{root: "/proc", netnsDir: "/run/netns", ends: map[guestKey]*guestEnd{}, byIno: map[uint64]*guestNS{}, warn: warn,
		tellMTU: func(guestKey, uint32) {}, forgetMTU: func(guestKey) {}}
	g.own, _ = netnsOf(g.root + "/self/ns/net")
	return g
}

// end returns the host's end of key, looking again (at most every
// guestGap) if key was not looked for since the interfaces last changed;
// a key not looked for yet is asked for again at the next report.
func (g *guests) end(key guestKey, host map[int]*kernelIface) *guestEnd {
	if e, ok := g.ends[key]; ok {
		return e
	}
	if time.Since(g.last) < guestGap {
		return nil
	}
	g.look(key.netns, host)
	e, ok := g.ends[key]
	if !ok {
		g.ends[key] = nil
	}
	return e
}

// forget drops what was found: the host's interfaces changed.
func (g *guests) forget() { clear(g.ends) }

// prime looks into the namespaces at once if one of host's interfaces
// is a veth whose peer is in another namespace, so that the programs
// have its devices' MTUs before its sockets' first packets rather than
// from the first report that sees them.
func (g *guests) prime(host map[int]*kernelIface) {
	peers, err := linkPeers()
	if err != nil {
		return
	}
	for index := range peers {
		if host[index] != nil {
			g.last = time.Now()
			g.lookWith(peers, 0, host)
			return
		}
	}
}

// told tells the programs ns's links' MTUs.
func (g *guests) told(ns *guestNS) {
	for _, l := range ns.links {
		if l.mtu > 0 {
			g.tellMTU(guestKey{ns.cookie, uint32(l.index)}, l.mtu)
		}
	}
}

// untold takes back the MTUs of old's links that now, the same
// namespace looked into again (nil: gone), does not have: told first and
// taken back after, a link of both keeps its MTU throughout.
func (g *guests) untold(old, now *guestNS) {
	keep := map[int]bool{}
	if now != nil {
		for _, l := range now.links {
			keep[l.index] = l.mtu > 0
		}
	}
	for _, l := range old.links {
		if !keep[l.index] {
			g.forgetMTU(guestKey{old.cookie, uint32(l.index)})
		}
	}
}

// look lists the namespaces in use, looks into those not looked into yet
// and into the one with cookie again (a veth may have moved into it since),
// and maps their ends to the host's ends among host.
func (g *guests) look(cookie uint64, host map[int]*kernelIface) {
	g.last = time.Now()
	peers, err := linkPeers() // netuse's namespace's
	if err != nil {
		return
	}
	g.lookWith(peers, cookie, host)
}

// lookWith is look with netuse's namespace's links' peers read.
func (g *guests) lookWith(peers map[int]linkPeer, cookie uint64, host map[int]*kernelIface) {
	inUse := g.namespaces()
	for ino, ns := range g.byIno {
		if _, ok := inUse[ino]; !ok {
			g.untold(ns, nil)
			ns.close()
			delete(g.byIno, ino)
		}
	}
	clear(g.ends)
	defer func() {
		inodes := make(map[uint64]uint64, len(g.byIno))
		for ino, ns := range g.byIno {
			inodes[ns.cookie] = ino
		}
		g.mu.Lock()
		g.inodes = inodes
		g.mu.Unlock()
	}()
	for ino, path := range inUse {
		ns := g.byIno[ino]
		if ns == nil || ns.cookie == cookie {
			old := ns
			var err error
			if ns, err = lookInto(path, ino); err != nil {
				if errors.Is(err, unix.EPERM) && !g.denied {
					g.denied = true
					g.warn(`netuse may not enter other network namespaces (setns needs CAP_SYS_ADMIN, which its capabilities leave out): with --source kernel, the traffic of processes in containers counts as "(no socket)"; run it as root to credit them`)
				}
				continue
			}
			g.told(ns)
			if old != nil {
				g.untold(old, ns)
				old.close()
			}
			g.byIno[ino] = ns
		}
		for _, l := range ns.links {
			p, ok := peers[l.peer]
			if !ok || p.peer != l.index || p.nsid != ns.nsid || ns.nsid < 0 || host[l.peer] == nil {
				continue
			}
			ifc := &kernelIface{kind: l.kind, l2: 14}
			g.ends[guestKey{ns.cookie, uint32(l.index)}] = &guestEnd{host: l.peer, ifc: ifc}
		}
	}
}

// namespaces returns the network namespaces other than netuse's, by
// inode, each with a path to it: those of processes (/proc/PID/ns/net),
// and those ip-netns(8) names (/run/netns), which may hold no process
// between two short-lived ones.
func (g *guests) namespaces() map[uint64]string {
	inUse := map[uint64]string{}
	add := func(path string) {
		var st unix.Stat_t
		if unix.Stat(path, &st) != nil || st.Ino == g.own {
			return
		}
		if _, seen := inUse[st.Ino]; !seen {
			inUse[st.Ino] = path
		}
	}
	for _, dir := range []string{g.netnsDir, g.root} {
		d, err := os.Open(dir)
		if err != nil {
			continue
		}
		names, _ := d.Readdirnames(-1)
		d.Close()
		for _, name := range names {
			if dir == g.netnsDir {
				add(dir + "/" + name)
			} else if _, err := strconv.Atoi(name); err == nil {
				add(dir + "/" + name + "/ns/net")
			}
		}
	}
	return inUse
}

// lookInto enters the namespace at path: its cookie, its links with a
// peer elsewhere and how each counts, and its id in netuse's namespace.
func lookInto(path string, ino uint64) (*guestNS, error) {
	ns := &guestNS{ino: ino, nsid: -1}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if id, err := nsidOf(fd); err == nil {
		ns.nsid = id
	}
	err = inNetns(path, false, func() error {
		s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		ns.cookie, err = netnsCookie(s)
		unix.Close(s)
		if err != nil {
			return err
		}
		ns.diag, _ = openSockDiag()
		links, err := linkPeers()
		if err != nil {
			return err
		}
		for index, p := range links {
			ns.links = append(ns.links, guestLink{index: index, peer: p.peer, kind: countingOf(p.name, false), mtu: p.mtu})
		}
		return nil
	})
	return ns, err
}

func (ns *guestNS) close() {
	if ns.diag != nil {
		ns.diag.close()
	}
}

// close closes every namespace's socket tables.
func (g *guests) close() {
	for ino, ns := range g.byIno {
		ns.close()
		delete(g.byIno, ino)
	}
}

// inodeOf returns the inode of the namespace with this cookie, as the last
// look found it; 0 if none did.
func (g *guests) inodeOf(cookie uint64) uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.inodes[cookie]
}

// tablesOf returns the socket tables of the namespace with this cookie,
// and its inode; nil if it was not looked into.
func (g *guests) tablesOf(cookie uint64) (*sockDiag, uint64) {
	for ino, ns := range g.byIno {
		if ns.cookie == cookie {
			return ns.diag, ino
		}
	}
	return nil, 0
}

// linkPeer is a link's peer, as rtnetlink gives it.
type linkPeer struct {
	name string
	peer int    // IFLA_LINK: the peer's ifindex in its namespace
	nsid int32  // IFLA_LINK_NETNSID: the peer's namespace's id here
	mtu  uint32 // IFLA_MTU
}

// linkPeers dumps the links of the calling thread's namespace and returns
// those with a peer in another namespace, by ifindex.
func linkPeers() (map[int]linkPeer, error) {
	b, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return nil, err
	}
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return nil, err
	}
	out := map[int]linkPeer{}
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		info := (*syscall.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			continue
		}
		p := linkPeer{peer: -1, nsid: -1}
		for _, a := range attrs {
			switch {
			case a.Attr.Type == syscall.IFLA_IFNAME && len(a.Value) > 0:
				p.name = unix.ByteSliceToString(a.Value)
			case a.Attr.Type == unix.IFLA_LINK && len(a.Value) >= 4:
				p.peer = int(binary.NativeEndian.Uint32(a.Value))
			case a.Attr.Type == unix.IFLA_LINK_NETNSID && len(a.Value) >= 4:
				p.nsid = int32(binary.NativeEndian.Uint32(a.Value))
			case a.Attr.Type == syscall.IFLA_MTU && len(a.Value) >= 4:
				p.mtu = binary.NativeEndian.Uint32(a.Value)
			}
		}
		if p.peer > 0 && p.nsid >= 0 {
			out[int(info.Index)] = p
		}
	}
	return out, nil
}

// nsidOf asks rtnetlink for the id netuse's namespace gives the namespace
// of fd (RTM_GETNSID with NETNSA_FD); a veth pair's ends each have one for
// the other's namespace.
func nsidOf(fd int) (int32, error) {
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return -1, err
	}
	defer unix.Close(s)
	// nlmsghdr (16), rtgenmsg padded to 4, then the NETNSA_FD attribute
	// (4-byte header, 4-byte value).
	req := make([]byte, 16+4+8)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.RTM_GETNSID)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], 1)
	req[16] = unix.AF_UNSPEC
	ne.PutUint16(req[20:], 8)
	ne.PutUint16(req[22:], unix.NETNSA_FD)
	ne.PutUint32(req[24:], uint32(fd))
	if err := unix.Sendto(s, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return -1, err
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(s, buf, 0)
	if err != nil {
		return -1, err
	}
	msgs, err := syscall.ParseNetlinkMessage(buf[:n])
	if err != nil {
		return -1, err
	}
	for _, m := range msgs {
		if m.Header.Type == unix.NLMSG_ERROR {
			if len(m.Data) >= 4 {
				if e := int32(ne.Uint32(m.Data)); e != 0 {
					return -1, syscall.Errno(-e)
				}
			}
			continue
		}
		if m.Header.Type != unix.RTM_NEWNSID || len(m.Data) < 4 {
			continue
		}
		for a := m.Data[4:]; len(a) >= 4; {
			l, t := int(ne.Uint16(a)), ne.Uint16(a[2:])
			if l < 4 || l > len(a) {
				break
			}
			if t == unix.NETNSA_NSID && l >= 8 {
				return int32(ne.Uint32(a[4:])), nil
			}
			if l = (l + 3) &^ 3; l >= len(a) {
				break
			}
			a = a[l:]
		}
	}
	return -1, errors.New("no namespace id in the answer")
}

// countingOf tells how the interface of this name in the calling thread's
// namespace counts packets: lo, a veth with TSO on, or anything else,
// taken to count what the wire carries.
func countingOf(name string, loopback bool) ifaceCounting {
	if loopback {
		return countsLoopback
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return countsSegments
	}
	defer unix.Close(fd)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, name)
	if err != nil || unix.ByteSliceToString(info.Driver[:]) != "veth" {
		return countsSegments
	}
	if on, err := ethtoolValue(fd, name, 0x1e, 0); err == nil && on != 0 { // ETHTOOL_GTSO
		return countsSkbs
	}
	return countsSegments
}

// ethtoolValue runs one of the ethtool ioctl's legacy value commands: a
// get returns the value, a set gives it data.
func ethtoolValue(fd int, dev string, cmd, data uint32) (uint32, error) {
	value := struct{ cmd, data uint32 }{cmd, data}
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
