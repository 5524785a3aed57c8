package main

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// countNet is two network namespaces joined by a veth pair whose ends
// share one MAC address and do no ARP (IFF_NOARP): a NOARP device sends
// to its own address, which is its peer's, and joins no solicited-node
// group, so neither ARP nor ND nor MLD is ever sent (IPv6 link-local
// addresses, DAD and router solicitations are off as well). Every packet
// on the veths is one a test sends, or the kernel's answer to one.
type countNet struct {
	a, b           string // namespace names
	netnsA, netnsB uint64 // their cookies
	ifA, ifB       uint32 // the veth ends' indexes, in a and b
}

func newCountNet(t testing.TB) *countNet {
	t.Helper()
	ns := newNamespaces(t, "nuc", "a", "b")
	n := &countNet{a: ns[0], b: ns[1]}
	for _, ns := range ns {
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.addr_gen_mode=1", "net.ipv6.conf.default.accept_ra=0",
			"net.ipv6.conf.default.accept_dad=0", "net.ipv4.ping_group_range=0 2147483647")
	}
	const mac = "02:00:00:00:75:01"
	run(t, "ip", "-n", n.a, "link", "add", "veth-a", "address", mac, "type", "veth", "peer", "name", "veth-b", "address", mac, "netns", n.b)
	for _, c := range [][]string{
		{n.a, "veth-a", "192.0.2.1/24", "2001:db8::1/64"},
		{n.b, "veth-b", "192.0.2.2/24", "2001:db8::2/64"},
	} {
		runAll(t,
			[]string{"ip", "-n", c[0], "link", "set", c[1], "arp", "off"},
			[]string{"ip", "-n", c[0], "addr", "add", c[2], "dev", c[1]},
			[]string{"ip", "-n", c[0], "addr", "add", c[3], "dev", c[1], "nodad"},
			[]string{"ip", "-n", c[0], "link", "set", c[1], "up"})
	}
	idx := func(ns, dev string) uint32 {
		out, err := inNS(ns, "cat", "/sys/class/net/"+dev+"/ifindex").Output()
		v, err2 := strconv.ParseUint(strings.TrimSpace(string(out)), 10, 32)
		if err != nil || err2 != nil {
			t.Fatalf("the index of %s in %s: %v %v", dev, ns, err, err2)
		}
		return uint32(v)
	}
	n.ifA, n.ifB = idx(n.a, "veth-a"), idx(n.b, "veth-b")
	cookie := func(ns string) uint64 {
		cmd := inNS(ns, childArgv("traffic", "count-netns")...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("count-netns in %s: %v", ns, err)
		}
		v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(out)), "netns "), 10, 64)
		if err != nil {
			t.Fatalf("count-netns said %q", out)
		}
		return v
	}
	n.netnsA, n.netnsB = cookie(n.a), cookie(n.b)
	return n
}

// vethCounters are an interface's counters, from sysfs.
type vethCounters struct{ rxPackets, rxBytes, txPackets, txBytes uint64 }

func readVeth(t testing.TB, ns, dev string) vethCounters {
	t.Helper()
	var v vethCounters
	for _, f := range []struct {
		name string
		dst  *uint64
	}{{"rx_packets", &v.rxPackets}, {"rx_bytes", &v.rxBytes}, {"tx_packets", &v.txPackets}, {"tx_bytes", &v.txBytes}} {
		out, err := inNS(ns, "cat", "/sys/class/net/"+dev+"/statistics/"+f.name).Output()
		if err != nil {
			t.Fatal(err)
		}
		*f.dst, _ = strconv.ParseUint(strings.TrimSpace(string(out)), 10, 64)
	}
	return v
}

func (v vethCounters) minus(o vethCounters) vethCounters {
	return vethCounters{v.rxPackets - o.rxPackets, v.rxBytes - o.rxBytes, v.txPackets - o.txPackets, v.txBytes - o.txBytes}
}

// countCgroup makes a cgroup for the test under the cgroup2 root, with the
// programs attach links attached to it, and removes it at the end.
func countCgroup(t testing.TB, attach func(dir *os.File) ([]*link.RawLink, error)) *os.File {
	t.Helper()
	path := filepath.Join(testCgroup2Root(t), fmt.Sprintf("netuse-count-%d-%d", os.Getpid(), netSeq))
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.Open(path)
	if err != nil {
		os.Remove(path)
		t.Fatal(err)
	}
	links, err := attach(dir)
	if err != nil {
		dir.Close()
		os.Remove(path)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, l := range links {
			l.Close()
		}
		dir.Close()
		// The helpers have exited (their cleanups ran first): the cgroup
		// is empty, but the kernel may take a moment to say so.
		for deadline := time.Now().Add(5 * time.Second); os.Remove(path) != nil && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	})
	return dir
}

// cookieOf reads the cookie a helper printed ("cookie N").
func cookieOf(t testing.TB, h *helper) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(strings.TrimPrefix(h.expect(t, "cookie"), "cookie "), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCountTraffic attaches the counting programs to a cgroup of the
// test's own, runs TCP, UDP (datagrams under and over the MTU), ICMP echo
// from a ping socket and from a raw socket, and raw IP of protocol 253
// (under and over the MTU) from processes in it, between two namespaces,
// over IPv4 and over IPv6, and checks:
//   - each short-lived socket's counts, read after it closed (drained),
//     are what it sent and received, and its entries are gone;
//   - in the sender's namespace, where every packet is a counted socket's,
//     the programs' sums equal the veth's counters exactly, by the rule of
//     a veth with TSO on (the default): skbs, fragments as packets, 14
//     bytes of Ethernet header each;
//   - in the peer's namespace, the veth's counters less the sums are the
//     ICMP echoes the kernel answered, exactly (the kernel's replies go
//     through its own control socket, outside any cgroup).
func TestCountTraffic(t *testing.T) {
	t.Run("ipv4", func(t *testing.T) { testCountTraffic(t, ipv4Sizes, true) })
	t.Run("ipv6", func(t *testing.T) { testCountTraffic(t, ipv6Sizes, true) })
	t.Run("ipv4_offload_off", func(t *testing.T) { testCountTraffic(t, ipv4Sizes, false) })
	t.Run("ipv6_offload_off", func(t *testing.T) { testCountTraffic(t, ipv6Sizes, false) })
}

// ipSizes are a family's addresses and header sizes, for the counts a
// test expects.
type ipSizes struct {
	a, b    string // the addresses of namespaces a and b
	l3, fh  int    // the IP header; a fragment's IP header (and fragment header)
	udp     int    // IP and UDP headers
	echo    int    // an echo request or reply with 56 bytes of data, as an IP packet
	maxFrag int    // payload bytes a fragment carries at MTU 1500
}

var (
	ipv4Sizes = ipSizes{a: "192.0.2.1", b: "192.0.2.2", l3: 20, fh: 20, udp: 28, echo: 84, maxFrag: 1480}
	ipv6Sizes = ipSizes{a: "2001:db8::1", b: "2001:db8::2", l3: 40, fh: 48, udp: 48, echo: 104, maxFrag: 1448}
)

// ip returns the IP packet of payload bytes (after the IP header) as the
// programs count it, by the facts file's rules.
func (f ipSizes) ip(payload, k int) countHalf {
	h := countHalf{Packets: uint64(k), Bytes: uint64(k * (f.l3 + payload)), Segs: uint64(k), Wire: uint64(k * (f.l3 + payload))}
	if f.l3+payload > 1500 {
		frags := (payload + f.maxFrag - 1) / f.maxFrag
		h.Segs, h.Wire = uint64(k*frags), uint64(k*(payload+f.fh*frags))
		h.Frags, h.FragBytes = uint64(k*(frags-1)), uint64(k*(f.fh*frags-f.l3))
	}
	return h
}

// testCountTraffic runs the traffic of TestCountTraffic over family f,
// with the veths' TSO, GSO and GRO on (the default), or all off: a veth
// counts skbs in the first case and segments in the second (facts #2,
// rules A and B).
func testCountTraffic(t *testing.T, f ipSizes, offload bool) {
	n := newCountNet(t)
	view := skbView
	if !offload {
		view = segView
		for _, end := range [][2]string{{n.a, "veth-a"}, {n.b, "veth-b"}} {
			cmd := inNS(end[0], childArgv("traffic", "count-offload", end[1], "0")...)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("offload off on %s: %v: %s", end[1], err, out)
			}
		}
	}
	p, err := loadCountPrograms(4096, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	for _, m := range []struct {
		netns   uint64
		ifindex uint32
	}{{n.netnsA, n.ifA}, {n.netnsB, n.ifB}} {
		if err := p.setMTU(m.netns, m.ifindex, 1500); err != nil {
			t.Fatal(err)
		}
	}
	c, err := newSockCounter(p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	c.grace = 100 * time.Millisecond
	cg := countCgroup(t, p.attach)
	beforeA, beforeB := readVeth(t, n.a, "veth-a"), readVeth(t, n.b, "veth-b")

	// The receivers in b, then each sender in a in turn, to its end.
	const (
		tcpBytes = 3 << 20
		udpSmall = 200 // datagrams of 1,000 bytes
		udpBig   = 20  // datagrams of 6,000 bytes: 5 fragments each
		echoes   = 20  // of each ICMP sender
		raws     = 50  // protocol-253 packets of 200 bytes
		rawsBig  = 10  // of 3,000 bytes: 3 fragments each
	)
	tcpAddr, udpAddr := net.JoinHostPort(f.b, "7401"), net.JoinHostPort(f.b, "7402")
	tcpSrv := startChild(t, cg, n.b, "count-tcp-recv", tcpAddr)
	tcpSrv.expect(t, "listening")
	udpSrv := startChild(t, cg, n.b, "count-bind", "udp", udpAddr)
	udpSrv.expect(t, "listening")
	rawSrv := startChild(t, cg, n.b, "count-bind", "raw253", f.b)
	rawSrv.expect(t, "listening")
	want := map[uint64]struct{ tx, rx countHalf }{} // the short-lived sockets' counts, exactly
	senders := [][]string{
		{"count-tcp-send", tcpAddr, strconv.Itoa(tcpBytes)},
		{"count-udp-send", udpAddr, "1000", strconv.Itoa(udpSmall)},
		{"count-udp-send", udpAddr, "6000", strconv.Itoa(udpBig)},
		{"count-ping", "dgram", f.b, strconv.Itoa(echoes)},
		{"count-ping", "raw", f.b, strconv.Itoa(echoes)},
		{"count-raw253", f.b, "200", strconv.Itoa(raws)},
		{"count-raw253", f.b, "3000", strconv.Itoa(rawsBig)},
	}
	var tcpCookie uint64
	icmp := uint32(unix.IPPROTO_ICMP)
	if f.l3 == 40 {
		icmp = unix.IPPROTO_ICMPV6
	}
	wantKind := map[uint64]sockKind{} // each sender's socket's type and protocol
	for _, args := range senders {
		h := startChild(t, cg, n.a, args...)
		cookie := cookieOf(t, h)
		h.expect(t, "done")
		h.end()
		kind := map[string]uint32{"count-tcp-send": unix.SOCK_STREAM | unix.IPPROTO_TCP<<16, "count-udp-send": unix.SOCK_DGRAM | unix.IPPROTO_UDP<<16,
			"count-raw253": unix.SOCK_RAW | 253<<16}[args[0]]
		if args[0] == "count-ping" {
			kind = map[string]uint32{"dgram": unix.SOCK_DGRAM, "raw": unix.SOCK_RAW}[args[1]] | icmp<<16
		}
		wantKind[cookie] = sockKind(kind)
		switch args[0] {
		case "count-tcp-send":
			tcpCookie = cookie
		case "count-udp-send":
			size, _ := strconv.Atoi(args[2])
			k, _ := strconv.Atoi(args[3])
			want[cookie] = struct{ tx, rx countHalf }{tx: f.ip(8+size, k)}
		case "count-ping":
			e := f.ip(f.echo-f.l3, echoes)
			want[cookie] = struct{ tx, rx countHalf }{tx: e, rx: e}
		case "count-raw253":
			size, _ := strconv.Atoi(args[2])
			k, _ := strconv.Atoi(args[3])
			want[cookie] = struct{ tx, rx countHalf }{tx: f.ip(size, k)}
		}
	}
	// Every sender's socket took a slot but the raw ICMP one, which the
	// kernel's own are like: no collect has run, so none was given back.
	if err := c.mapSlots(64); err != nil {
		t.Fatal(err)
	}
	slotted := map[uint64]bool{}
	for i := range uint32(64) {
		slotted[c.slotWord(i, svCookie)] = true
	}
	for cookie, kind := range wantKind {
		if slotted[cookie] == kind.kernels() {
			t.Errorf("socket %d, kind %#x: in a slot %v, want %v", cookie, kind, slotted[cookie], !kind.kernels())
		}
	}
	got := tcpSrv.expect(t, "got")
	if got != "got "+strconv.Itoa(tcpBytes) {
		t.Errorf("the TCP receiver said %q, want got %d", got, tcpBytes)
	}
	for _, h := range []*helper{tcpSrv, udpSrv, rawSrv} {
		h.end()
	}

	// Collect until every sender's socket is drained and the sender's
	// side adds up (the sign that the last packets are in), or 5 s.
	type sum struct{ tx, rx countHalf }
	bySocket := map[uint64]*sum{}
	byNS := map[uint64]*sum{}
	drained := map[uint64]bool{}
	var deltas []countDelta
	var afterA, afterB vethCounters
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		deltas, err = c.collect(deltas[:0])
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deltas {
			for _, to := range []struct {
				m map[uint64]*sum
				k uint64
			}{{bySocket, d.Cookie}, {byNS, d.netns<<32 | uint64(d.Ifindex)}} {
				if to.m[to.k] == nil {
					to.m[to.k] = &sum{}
				}
				to.m[to.k].tx.add(d.tx)
				to.m[to.k].rx.add(d.rx)
			}
			if d.closed {
				drained[d.Cookie] = true
			}
			if w, ok := wantKind[d.Cookie]; ok && d.kind != 0 && d.kind != w {
				t.Errorf("socket %d: kind %#x, want %#x", d.Cookie, d.kind, w)
			}
			if d.kind != 0 {
				delete(wantKind, d.Cookie)
			}
		}
		afterA, afterB = readVeth(t, n.a, "veth-a"), readVeth(t, n.b, "veth-b")
		a := byNS[n.netnsA<<32|uint64(n.ifA)]
		all := drained[tcpCookie]
		for cookie := range want {
			all = all && drained[cookie]
		}
		if all && a != nil && view(a.tx, 14).txPackets == afterA.minus(beforeA).txPackets {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after 5 s: drained %v of the senders' sockets (want %d and tcp %d)", drained, len(want), tcpCookie)
			break
		}
	}
	for cookie, w := range want {
		g := bySocket[cookie]
		if g == nil {
			t.Errorf("socket %d: nothing counted", cookie)
			continue
		}
		if g.tx != w.tx || g.rx != w.rx {
			t.Errorf("socket %d: counted tx %+v rx %+v, want tx %+v rx %+v", cookie, g.tx, g.rx, w.tx, w.rx)
		}
	}
	if len(wantKind) > 0 {
		t.Errorf("sockets whose kind no delta gave (cookie: want): %#x", wantKind)
	}
	if g := bySocket[tcpCookie]; g == nil || g.tx.Bytes < tcpBytes {
		t.Errorf("the TCP sender's socket %d: counted %+v, want at least %d bytes out", tcpCookie, g, tcpBytes)
	}
	// Nothing of a drained socket is left in the map.
	var k countKey
	it := p.counts.Iterate()
	vals := make([]countValue, c.ncpu)
	for it.Next(&k, &vals) {
		if drained[k.Cookie] {
			t.Errorf("socket %d drained, but its entry on device %d is still in the map", k.Cookie, k.Ifindex)
		}
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	if full, ring, err := c.lost(); err != nil || full != 0 || ring != 0 {
		t.Errorf("lost: map full %d, ring full %d, %v; want none", full, ring, err)
	}

	sumOf := func(netns uint64, ifindex uint32) sum {
		if s := byNS[netns<<32|uint64(ifindex)]; s != nil {
			return *s
		}
		return sum{}
	}
	a, b := sumOf(n.netnsA, n.ifA), sumOf(n.netnsB, n.ifB)
	gotA := vethCounters{rxPackets: view(a.rx, 14).txPackets, rxBytes: view(a.rx, 14).txBytes,
		txPackets: view(a.tx, 14).txPackets, txBytes: view(a.tx, 14).txBytes}
	if wantA := afterA.minus(beforeA); gotA != wantA {
		t.Errorf("veth-a in %s: the programs counted %+v, the veth %+v", n.a, gotA, wantA)
	}
	// In b, the kernel answered each echo request of both ICMP senders:
	// on veth-b, 2·echoes requests in and 2·echoes replies out that no
	// socket of b sent or was handed.
	e := uint64(f.echo + 14)
	echo := vethCounters{rxPackets: 2 * echoes, rxBytes: 2 * echoes * e, txPackets: 2 * echoes, txBytes: 2 * echoes * e}
	gotB := vethCounters{rxPackets: view(b.rx, 14).txPackets, rxBytes: view(b.rx, 14).txBytes,
		txPackets: view(b.tx, 14).txPackets, txBytes: view(b.tx, 14).txBytes}
	if wantB := afterB.minus(beforeB).minus(echo); gotB != wantB {
		t.Errorf("veth-b in %s, less the kernel's echo replies: the programs counted %+v, the veth %+v", n.b, gotB, wantB)
	}
	t.Logf("veth-a %+v, veth-b %+v; sockets %d", afterA.minus(beforeA), afterB.minus(beforeB), len(bySocket))
}

// TestCountLoopback: TCP and UDP over lo, IPv4 and IPv6, both ends in
// the cgroup. lo counts each packet once at transmit and once at receive,
// L3 bytes only (facts #1f, #2); the programs see each packet twice, at
// the sender's egress and the receiver's ingress. lo's counters must
// equal the ingress sums, skb for skb: that is the side to reconcile lo
// with. The egress sums are not exact on lo and are only logged: lo
// passes a GSO skb whole when it fits lo's own GSO limit and segments
// one that does not, so neither the skb nor the segment view is lo's
// count.
func TestCountLoopback(t *testing.T) {
	n := newCountNet(t) // lo up, as newNamespaces makes it
	p, c := newCounting(t, 4096, 0)
	cg := countCgroup(t, p.attach)
	before := readVeth(t, n.a, "lo")
	for _, host := range []string{"127.0.0.1", "::1"} {
		tcpAddr, udpAddr := net.JoinHostPort(host, "7411"), net.JoinHostPort(host, "7412")
		srv := startChild(t, cg, n.a, "count-tcp-recv", tcpAddr)
		srv.expect(t, "listening")
		udp := startChild(t, cg, n.a, "count-bind", "udp", udpAddr)
		udp.expect(t, "listening")
		for _, args := range [][]string{{"count-tcp-send", tcpAddr, strconv.Itoa(8 << 20)}, {"count-udp-send", udpAddr, "1000", "200"}} {
			h := startChild(t, cg, n.a, args...)
			h.expect(t, "cookie")
			h.expect(t, "done")
			h.end()
		}
		srv.expect(t, "got")
		srv.end()
		udp.end()
	}
	var tx, rx countHalf
	var deltas []countDelta
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if deltas, err = c.collect(deltas[:0]); err != nil {
			t.Fatal(err)
		}
		for _, d := range deltas {
			if d.netns != n.netnsA || d.Ifindex != 1 {
				t.Errorf("a delta of netns %d, device %d: want only lo (1) of %d", d.netns, d.Ifindex, n.netnsA)
				continue
			}
			tx.add(d.tx)
			rx.add(d.rx)
		}
		lo := readVeth(t, n.a, "lo").minus(before)
		if rx.Packets == lo.rxPackets && rx.Bytes == lo.rxBytes {
			break
		}
		if time.Now().After(deadline) {
			break
		}
	}
	lo := readVeth(t, n.a, "lo").minus(before)
	if lo.txPackets != lo.rxPackets || lo.txBytes != lo.rxBytes || rx.Packets != lo.rxPackets || rx.Bytes != lo.rxBytes {
		t.Errorf("lo %+v; the ingress program counted %d packets, %d bytes", lo, rx.Packets, rx.Bytes)
	}
	if rx.Packets < 400+2*(8<<20)/65536 { // the datagrams, and the data at one skb per 64 KiB at least
		t.Errorf("lo moved %d packets: less than the test sent", rx.Packets)
	}
	t.Logf("lo %+v; egress %d skbs, %d bytes, %d segments, %d bytes of them", lo, tx.Packets, tx.Bytes, tx.Segs, tx.Wire)
}

// TestCountRingFull: closed sockets' records that find the ring full are
// counted in lost, not silently dropped; the rest are read.
func TestCountRingFull(t *testing.T) {
	needRoot(t)
	p, c := newCounting(t, 1024, 4096) // the smallest ring: 170 records of 16 bytes and a header of 8
	cg := countCgroup(t, p.attach)
	const sockets = 500
	h := startChild(t, cg, "", "count-sockets", strconv.Itoa(sockets))
	h.expect(t, "done")
	h.end()
	if _, err := c.collect(nil); err != nil {
		t.Fatal(err)
	}
	_, ring, err := c.lost()
	if err != nil {
		t.Fatal(err)
	}
	// The helper's own sockets (Go's runtime opens none at start; the
	// test binary may) are recorded too: at least 500 closed in all.
	if read := uint64(len(c.closing)); ring == 0 || read+ring < sockets || read > 4096/24 {
		t.Errorf("%d records read, %d lost for %d sockets closed; want at most %d read and the rest lost", read, ring, sockets, 4096/24)
	}
	t.Logf("%d records read, %d lost", len(c.closing), ring)
}

// TestCountProgramsGoneAfterKill: a process that attached the counting
// programs to a cgroup and is killed with SIGKILL leaves nothing
// attached: the links die with their last fd, nothing is pinned.
func TestCountProgramsGoneAfterKill(t *testing.T) {
	needRoot(t)
	path := filepath.Join(testCgroup2Root(t), fmt.Sprintf("netuse-count-kill-%d", os.Getpid()))
	if err := os.Mkdir(path, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(path) })
	attached := func() int {
		dir, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer dir.Close()
		n := 0
		for _, at := range []ebpf.AttachType{ebpf.AttachCGroupInetEgress, ebpf.AttachCGroupInetIngress, ebpf.AttachCgroupInetSockRelease} {
			res, err := link.QueryPrograms(link.QueryOptions{Target: int(dir.Fd()), Attach: at})
			if err != nil {
				t.Fatalf("query %s: %v", at, err)
			}
			n += len(res.Programs)
		}
		return n
	}
	h := startHelper(t, "", "count-attach", path)
	h.expect(t, "attached")
	if n := attached(); n != 3 {
		t.Fatalf("%d programs attached to %s, want 3", n, path)
	}
	h.cmd.Process.Kill()
	h.cmd.Wait()
	// The kernel frees a link's attachment from a work queue: look until
	// it has.
	for deadline := time.Now().Add(5 * time.Second); attached() != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("5 s after SIGKILL, %d programs are still attached to %s", attached(), path)
		}
	}
}

// skbView is one direction's counts as a device that counts skbs (a veth
// with TSO on) counts them: a GSO skb as one packet, IP fragments each as
// one, l2 bytes of link header each. The result is in the tx fields.
func skbView(h countHalf, l2 uint64) vethCounters {
	pkts := h.Packets + h.Frags
	return vethCounters{txPackets: pkts, txBytes: h.Bytes + h.FragBytes + l2*pkts}
}

// segView is one direction's counts as a device that counts segments
// (a veth without TSO and GRO) counts them: each GSO segment and each IP
// fragment one packet with its own headers, l2 bytes of link header each.
func segView(h countHalf, l2 uint64) vethCounters {
	return vethCounters{txPackets: h.Segs, txBytes: h.Wire + l2*h.Segs}
}

// countHelper runs the helpers of the counting tests; false if args names
// none of them. Each sender prints "cookie N" (its socket's SO_COOKIE)
// and "done" once its socket is closed.
func countHelper(args []string) (bool, error) {
	num := func(i int) int { v, _ := strconv.Atoi(args[i]); return v }
	switch args[0] {
	case "count-attach":
		// count-attach CGROUP: attach the counting programs to the cgroup
		// directory, say so, and hold them until killed.
		p, err := loadCountPrograms(1024, 0)
		if err != nil {
			return true, err
		}
		dir, err := os.Open(args[1])
		if err != nil {
			return true, err
		}
		if _, err := p.attach(dir); err != nil {
			return true, err
		}
		fmt.Println("attached")
		io.Copy(io.Discard, os.Stdin)
		return true, nil
	case "count-serve-many":
		// count-serve-many ADDR N: accept N TCP connections on ADDR, one
		// after the other, say how much each sent, and exit after the last
		ln, err := listenTCP(args[1])
		if err != nil {
			return true, err
		}
		for range num(2) {
			c, err := ln.Accept()
			if err != nil {
				return true, err
			}
			got, err := io.Copy(io.Discard, c)
			c.Close()
			if err != nil {
				return true, err
			}
			fmt.Println("got", got)
		}
		return true, nil
	case "count-sockets":
		// count-sockets N: open and close N UDP sockets
		for range num(1) {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
			if err != nil {
				return true, err
			}
			unix.Close(fd)
		}
		fmt.Println("done")
		return true, nil
	case "count-offload":
		// count-offload DEV 0|1: TSO, GSO and GRO of DEV off or on, by
		// the ethtool ioctl (ETHTOOL_STSO, _SGSO, _SGRO)
		return true, setOffload(args[1], uint32(num(2)))
	case "count-netns":
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
		if err != nil {
			return true, err
		}
		defer unix.Close(fd)
		v, err := netnsCookie(fd)
		fmt.Println("netns", v)
		return true, err
	case "count-tcp-recv":
		ln, c, err := acceptOne(args[1])
		if err != nil {
			return true, err
		}
		got, err := io.Copy(io.Discard, c)
		c.Close()
		ln.Close()
		fmt.Println("got", got)
		return true, err
	case "count-bind":
		proto, typ := 253, unix.SOCK_RAW
		var ap netip.AddrPort
		if args[1] == "udp" {
			proto, typ = unix.IPPROTO_UDP, unix.SOCK_DGRAM
			ap = netip.MustParseAddrPort(args[2])
		} else {
			ap = netip.AddrPortFrom(netip.MustParseAddr(args[2]), 0)
		}
		family, sa := sockaddr(ap)
		fd, err := unix.Socket(family, typ, proto)
		if err != nil {
			return true, err
		}
		if err := unix.Bind(fd, sa); err != nil {
			return true, err
		}
		fmt.Println("listening")
		io.Copy(io.Discard, os.Stdin) // packets are counted whether read or not
		return true, unix.Close(fd)
	case "count-tcp-send":
		c, err := net.Dial("tcp", args[1])
		if err != nil {
			return true, err
		}
		printCookie(connFd(c))
		if _, err := c.Write(make([]byte, num(2))); err != nil {
			return true, err
		}
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c) // until the receiver closes
		c.Close()
		fmt.Println("done")
		return true, nil
	case "count-udp-send":
		c, err := net.Dial("udp", args[1])
		if err != nil {
			return true, err
		}
		printCookie(connFd(c))
		buf := make([]byte, num(2))
		for range num(3) {
			if _, err := c.Write(buf); err != nil {
				return true, err
			}
		}
		c.Close()
		fmt.Println("done")
		return true, nil
	case "count-ping":
		return true, pingHelper(args[1], args[2], num(3))
	case "count-raw253":
		family, dst := sockaddr(netip.AddrPortFrom(netip.MustParseAddr(args[1]), 0))
		fd, err := unix.Socket(family, unix.SOCK_RAW, 253)
		if err != nil {
			return true, err
		}
		printCookie(fd)
		buf := make([]byte, num(2))
		for range num(3) {
			if err := unix.Sendto(fd, buf, 0, dst); err != nil {
				return true, err
			}
		}
		unix.Close(fd)
		fmt.Println("done")
		return true, nil
	}
	return false, nil
}

// setOffload sets a device's TSO, GSO and GRO with the ethtool ioctl's
// legacy commands: no ethtool(8) needed.
func setOffload(dev string, on uint32) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	for _, cmd := range []uint32{0x1f, 0x24, 0x2c} { // ETHTOOL_STSO, ETHTOOL_SGSO, ETHTOOL_SGRO
		if _, err := ethtoolValue(fd, dev, cmd, on); err != nil {
			return fmt.Errorf("ethtool command %#x on %s: %w", cmd, dev, err)
		}
	}
	return nil
}

// sockaddr returns the family and socket address of ap.
func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	if ap.Addr().Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
}

// pingHelper sends n echo requests of 56 bytes of data to dst from a ping
// socket (kind "dgram") or a raw ICMP socket ("raw"), one at a time, each
// answered before the next, then closes the socket.
func pingHelper(kind, dst string, n int) error {
	typ := unix.SOCK_DGRAM
	if kind == "raw" {
		typ = unix.SOCK_RAW
	}
	family, to := sockaddr(netip.AddrPortFrom(netip.MustParseAddr(dst), 0))
	proto, request, reply := unix.IPPROTO_ICMP, byte(8), byte(0)
	if family == unix.AF_INET6 {
		proto, request, reply = unix.IPPROTO_ICMPV6, 128, 129 // the kernel sums ICMPv6 itself
	}
	fd, err := unix.Socket(family, typ, proto)
	if err != nil {
		return err
	}
	printCookie(fd)
	tv := unix.Timeval{Sec: 2}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 1500)
	for seq := range n {
		msg := make([]byte, 8+56)
		msg[0] = request
		binary.BigEndian.PutUint16(msg[4:], 0x4e55)
		binary.BigEndian.PutUint16(msg[6:], uint16(seq))
		if family == unix.AF_INET {
			binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
		}
		if err := unix.Sendto(fd, msg, 0, to); err != nil {
			return err
		}
		for {
			m, _, err := unix.Recvfrom(fd, buf, 0)
			if err != nil {
				return fmt.Errorf("echo %d: %w", seq, err)
			}
			got := buf[:m]
			if typ == unix.SOCK_RAW && family == unix.AF_INET {
				got = got[int(got[0]&0xf)*4:] // a raw IPv4 socket reads the IP header too
			}
			if len(got) >= 8 && got[0] == reply && binary.BigEndian.Uint16(got[6:]) == uint16(seq) {
				break
			}
		}
	}
	unix.Close(fd)
	fmt.Println("done")
	return nil
}

func icmpChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func printCookie(fd int) {
	v, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper: SO_COOKIE:", err)
	}
	fmt.Println("cookie", v)
}

// connFd returns the file descriptor of a net.Conn, valid while c is open.
func connFd(c net.Conn) int {
	var fd int
	raw, _ := c.(syscall.Conn).SyscallConn()
	raw.Control(func(f uintptr) { fd = int(f) })
	return fd
}
