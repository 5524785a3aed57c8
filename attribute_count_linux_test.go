package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// TestCountProgramsAllow proves, without privileges, that the counting
// programs return "allow" on every path (a cgroup_skb program that
// returns 0 drops the packet), and that the check sees a path that does
// not.
func TestCountProgramsAllow(t *testing.T) {
	progs := map[string]asm.Instructions{"egress": countProgram(cvTx), "ingress": countProgram(cvRx), "release": closedProgram()}
	for name, insns := range progs {
		bad, err := exitCodes(insns)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(bad) > 0 {
			t.Errorf("%s: exits at %v may return other than 1", name, bad)
		}
	}
	// The check itself: a copy whose path past a full map returns what
	// the lookup returned.
	for name, insns := range progs {
		insns = append(asm.Instructions(nil), insns...)
		for i := range insns {
			if insns[i].Symbol() == "allow" {
				insns[i] = asm.FnKtimeGetNs.Call().WithSymbol("allow")
			}
		}
		if bad, err := exitCodes(insns); err != nil || len(bad) == 0 {
			t.Errorf("%s: a program that returns the time was passed: %v, %v", name, bad, err)
		}
	}
}

// countCase is one packet for BPF_PROG_TEST_RUN and what the program must
// count of it.
type countCase struct {
	name    string
	half    int16 // cvTx or cvRx
	pkt     []byte
	gsoSegs uint32
	gsoSize uint32
	want    countHalf
}

// ipPacket returns an Ethernet frame of an IPv4 packet, or with v6 an
// IPv6 one, of protocol proto, L3 length total, with an L4 header of l4
// bytes (a TCP header's data offset says l4).
func ipPacket(v6 bool, proto uint8, total, l4 int) []byte {
	b := make([]byte, 14+total)
	ip := b[14:]
	hdr := 20
	if v6 {
		binary.BigEndian.PutUint16(b[12:], unix.ETH_P_IPV6)
		ip[0] = 0x60
		binary.BigEndian.PutUint16(ip[4:], uint16(total-40))
		ip[6], ip[7] = proto, 64
		ip[23], ip[39] = 1, 1
		hdr = 40
	} else {
		binary.BigEndian.PutUint16(b[12:], unix.ETH_P_IP)
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(min(total, 65535)))
		ip[8], ip[9] = 64, proto
		copy(ip[12:], []byte{127, 0, 0, 1, 127, 0, 0, 1})
	}
	if proto == unix.IPPROTO_TCP {
		ip[hdr+12] = byte(l4/4) << 4
	}
	return b
}

// newCounting loads the counting programs with a map of entries and a
// ring of ring bytes (0: the default size), and opens their counter;
// the test's end closes both.
func newCounting(t testing.TB, entries, ring uint32) (*countPrograms, *sockCounter) {
	t.Helper()
	p, err := loadCountPrograms(entries, ring)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	c, err := newSockCounter(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return p, c
}

// TestCountProgramsRun runs both skb programs through the verifier and
// BPF_PROG_TEST_RUN, on packets whose counts are worked out by hand from
// the rules of the facts file (GSO: len + (segs-1)·hdr; fragments:
// ⌈payload/((mtu-fh)&^7)⌉, each with an fh-byte header): each must be
// allowed and counted as said, in its own socket's entry.
func TestCountProgramsRun(t *testing.T) {
	needRoot(t)
	p, c := newCounting(t, 1024, 0)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	netns, err := netnsCookie(fd)
	unix.Close(fd)
	if err != nil {
		t.Fatal(err)
	}
	// BPF_PROG_TEST_RUN's skb is on lo, index 1, of the caller's
	// namespace; a device of a larger MTU beside it must leave the
	// programs' floor at lo's (an skb past the floor looks its device up).
	for _, m := range []struct{ ifindex, mtu uint32 }{{1, 1280}, {2, 9000}, {1, 1500}} {
		if err := p.setMTU(netns, m.ifindex, m.mtu); err != nil {
			t.Fatal(err)
		}
	}
	var floor uint32
	if err := p.mtuFloor.Lookup(uint32(0), &floor); err != nil || floor != 1500 {
		t.Fatalf("the programs' MTU floor is %d (%v) with MTUs 1500 and 9000, want 1500", floor, err)
	}
	// A container's device of a smaller MTU, told and then taken back
	// (gone): the floor goes down with it and back up after it.
	guest := mtuKey{Netns: netns + 1, Ifindex: 7}
	for _, step := range []struct {
		do   func() error
		want uint32
	}{{func() error { return p.setMTU(guest.Netns, guest.Ifindex, 1400) }, 1400}, {func() error { return p.dropMTU(guest.Netns, guest.Ifindex) }, 1500}} {
		if err := step.do(); err != nil {
			t.Fatal(err)
		}
		if err := p.mtuFloor.Lookup(uint32(0), &floor); err != nil || floor != step.want {
			t.Fatalf("the programs' MTU floor is %d (%v), want %d", floor, err, step.want)
		}
	}
	var m uint32
	if p.mtus.Lookup(guest, &m) == nil {
		t.Fatalf("a device taken back is still in the programs' MTUs, at %d", m)
	}
	cases := []countCase{
		{name: "tcp4 gso", half: cvTx, pkt: ipPacket(false, 6, 20+32+2*1448, 32), gsoSegs: 2, gsoSize: 1448,
			want: countHalf{Packets: 1, Bytes: 2948, Segs: 2, Wire: 2948 + 52}},
		{name: "tcp6 gso", half: cvRx, pkt: ipPacket(true, 6, 40+20+3*1000, 20), gsoSegs: 3, gsoSize: 1000,
			want: countHalf{Packets: 1, Bytes: 3060, Segs: 3, Wire: 3060 + 2*60}},
		// (BPF_PROG_TEST_RUN takes at most a page less the skb's
		// head- and tailroom: about 3,700 bytes.)
		{name: "udp4 gso", half: cvTx, pkt: ipPacket(false, 17, 20+8+3*1000, 8), gsoSegs: 3, gsoSize: 1000,
			want: countHalf{Packets: 1, Bytes: 3028, Segs: 3, Wire: 3028 + 2*28}},
		// 2,980 bytes of payload in fragments of 1,480: 3, 20 bytes of
		// header each.
		{name: "udp4 fragments", half: cvTx, pkt: ipPacket(false, 17, 3000, 8),
			want: countHalf{Packets: 1, Bytes: 3000, Segs: 3, Wire: 2980 + 3*20, Frags: 2, FragBytes: 40}},
		// 2,960 bytes in fragments of (1500-48)&^7 = 1,448: 3, 48 bytes
		// of header each.
		{name: "udp6 fragments", half: cvRx, pkt: ipPacket(true, 17, 3000, 8),
			want: countHalf{Packets: 1, Bytes: 3000, Segs: 3, Wire: 2960 + 3*48, Frags: 2, FragBytes: 3*48 - 40}},
		{name: "udp4 at the mtu", half: cvRx, pkt: ipPacket(false, 17, 1500, 8),
			want: countHalf{Packets: 1, Bytes: 1500, Segs: 1, Wire: 1500}},
		{name: "udp4 past the mtu by 1", half: cvTx, pkt: ipPacket(false, 17, 1501, 8),
			want: countHalf{Packets: 1, Bytes: 1501, Segs: 2, Wire: 1481 + 2*20, Frags: 1, FragBytes: 20}},
		{name: "icmp small", half: cvTx, pkt: ipPacket(false, 1, 84, 8),
			want: countHalf{Packets: 1, Bytes: 84, Segs: 1, Wire: 84}},
		{name: "raw 253 fragments", half: cvTx, pkt: ipPacket(false, 253, 3020, 0),
			want: countHalf{Packets: 1, Bytes: 3020, Segs: 3, Wire: 3000 + 3*20, Frags: 2, FragBytes: 40}},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			prog := p.egress
			if cs.half == cvRx {
				prog = p.ingress
			}
			ctx := make([]byte, 192) // struct __sk_buff
			binary.NativeEndian.PutUint32(ctx[164:], cs.gsoSegs)
			binary.NativeEndian.PutUint32(ctx[176:], cs.gsoSize)
			ret, err := prog.Run(&ebpf.RunOptions{Data: cs.pkt, Context: ctx})
			if err != nil {
				t.Fatal(err)
			}
			if ret != 1 {
				t.Errorf("returned %d, want 1 (allow)", ret)
			}
			got, err := c.collect(nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 {
				t.Fatalf("%d entries moved, want 1: %+v", len(got), got)
			}
			d := got[0]
			mine, other := d.tx, d.rx
			if cs.half == cvRx {
				mine, other = d.rx, d.tx
			}
			if mine != cs.want || other != (countHalf{}) {
				t.Errorf("counted %+v (other way %+v), want %+v", mine, other, cs.want)
			}
			if d.netns != netns || d.Ifindex != 1 || d.Cookie == 0 {
				t.Errorf("entry of cookie %d, netns %d, ifindex %d; want a cookie, netns %d, ifindex 1", d.Cookie, d.netns, d.Ifindex, netns)
			}
		})
	}
}

// takeSlots takes every free slot, those given back and those never used,
// so that the programs count in the hash: the tests of the hash's own
// rules.
func takeSlots(t testing.TB, p *countPrograms) {
	t.Helper()
	if err := p.next.Update(uint32(0), uint32(slotCount), ebpf.UpdateAny); err != nil {
		t.Fatalf("take the slots never used: %v", err)
	}
	var slot uint32
	for {
		err := p.free.LookupAndDelete(nil, &slot)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return
		}
		if err != nil {
			t.Fatalf("take the free slots: %v", err)
		}
	}
}

// hashEntries returns the entries of the counting map (the hash).
func hashEntries(p *countPrograms, c *sockCounter) int {
	var k countKey
	v := make([]countValue, c.ncpu)
	n := 0
	for it := p.counts.Iterate(); it.Next(&k, &v); {
		n++
	}
	return n
}

// TestCountSlots: a socket's counts go to a slot of its own; a closed
// socket's slot is read one last time after the grace, cleared and given
// back, and the next socket takes it; with no slot free, a socket counts
// in the hash.
func TestCountSlots(t *testing.T) {
	needRoot(t)
	p, c := newCounting(t, 1024, 0)
	now := int64(1e12)
	c.now = func() int64 { return now }
	send := func(size int) {
		t.Helper()
		if ret, err := p.egress.Run(&ebpf.RunOptions{Data: ipPacket(false, 17, size, 8)}); err != nil || ret != 1 {
			t.Fatalf("run: %d, %v", ret, err)
		}
	}
	hashed := func() int { return hashEntries(p, c) }
	send(100) // BPF_PROG_TEST_RUN makes a socket a run
	send(200)
	var next uint32
	if err := p.next.Lookup(uint32(0), &next); err != nil || next != 2 {
		t.Errorf("the slots never used start at %d (%v) after two sockets; want 2", next, err)
	}
	d, err := c.collect(nil)
	if err != nil || len(d) != 2 || d[0].tx.Bytes+d[1].tx.Bytes != 300 || hashed() != 0 || len(c.slotPrev) != 2 {
		t.Fatalf("two sockets: %+v, %v, %d in the hash, %d slots; want two deltas of 300 bytes in all, none hashed, 2 slots", d, err, hashed(), len(c.slotPrev))
	}
	first := d[0].Cookie
	c.closing[first] = now // as its close record says
	now += int64(c.grace)
	d, err = c.collect(nil)
	if err != nil || len(d) != 1 || !d[0].closed || d[0].Cookie != first || d[0].tx != (countHalf{}) {
		t.Fatalf("after the grace: %+v, %v; want the closed socket's last, empty delta", d, err)
	}
	if c.slotWord(0, svCookie) != 0 || len(c.slotPrev) != 1 {
		t.Fatalf("the closed socket's slot: cookie %d, %d slots in use; want 0 and 1", c.slotWord(0, svCookie), len(c.slotPrev))
	}
	send(300) // takes the slot given back
	if d, err = c.collect(nil); err != nil || len(d) != 1 || d[0].tx.Bytes != 300 || c.slotWord(0, svCookie) != d[0].Cookie {
		t.Fatalf("a third socket: %+v, %v; want 300 bytes in slot 0", d, err)
	}
	takeSlots(t, p)
	send(400)
	if d, err = c.collect(nil); err != nil || len(d) != 1 || d[0].tx.Bytes != 400 || hashed() != 1 {
		t.Fatalf("no slot free: %+v, %v, %d in the hash; want 400 bytes from the hash", d, err, hashed())
	}
	if err := p.next.Lookup(uint32(0), &next); err != nil || next != slotCount {
		t.Errorf("the slots never used start at %d (%v) after a socket found none; want %d, not counted on", next, err, slotCount)
	}
}

// TestCountSlotsReclaim: a slot whose socket has moved nothing for
// idleEvict is taken back, in two collects (to its next generation, then
// given back), though the socket never closed (as a connection its
// listener never accepted does not); the next socket takes it, and the
// first socket's next packet, whose reference names the slot's old
// generation, takes another slot instead of adding to the new socket's.
func TestCountSlotsReclaim(t *testing.T) {
	needRoot(t)
	n := newCountNet(t)
	p, c := newCounting(t, 1024, 0)
	now := int64(1e12)
	c.now = func() int64 { return now }
	cg := countCgroup(t, p.attach)
	recv := startHelper(t, n.b, "count-bind", "udp", "192.0.2.2:7461")
	recv.expect(t, "listening")
	sender := startChild(t, cg, n.a, "send-hold", "udp", "192.0.2.2:7461", "100")
	sender.expect(t, "local")
	sender.expect(t, "sent")
	const dgram = 100 + 8 + 20
	d, err := c.collect(nil)
	if err != nil || len(d) != 1 || d[0].tx.Bytes != dgram || len(c.slotPrev) != 1 {
		t.Fatalf("the sender's datagram: %+v, %v, %d slots; want one delta of %d bytes, from a slot", d, err, len(c.slotPrev), dgram)
	}
	first := d[0].Cookie
	var slot uint32
	for i := range c.slotPrev {
		slot = i
	}
	now += int64(idleEvict)
	if d, err = c.collect(nil); err != nil || len(d) != 0 || c.slotWord(slot, svCookie) != first || c.slotWord32(slot, svGenTx) != 1 || c.slotWord32(slot, svGenRx) != 1 {
		t.Fatalf("idle for idleEvict: %+v, %v; slot %d has cookie %d, generation %d; want no delta, the sender's %d, generation 1",
			d, err, slot, c.slotWord(slot, svCookie), c.slotWord32(slot, svGenTx), first)
	}
	if d, err = c.collect(nil); err != nil || len(d) != 0 || c.slotWord(slot, svCookie) != 0 || c.slotWord32(slot, svGenTx) != 1 || c.slotWord32(slot, svGenRx) != 1 || len(c.slotPrev) != 0 {
		t.Fatalf("a collect later: %+v, %v; slot %d has cookie %d, generation %d, %d slots in use; want no delta, the slot given back at generation 1",
			d, err, slot, c.slotWord(slot, svCookie), c.slotWord32(slot, svGenTx), len(c.slotPrev))
	}
	if ret, err := p.egress.Run(&ebpf.RunOptions{Data: ipPacket(false, 17, 200, 8)}); err != nil || ret != 1 {
		t.Fatalf("run: %d, %v", ret, err) // BPF_PROG_TEST_RUN's socket, which takes the slot given back
	}
	fmt.Fprintln(sender.stdin)
	sender.expect(t, "sent")
	if d, err = c.collect(nil); err != nil || len(d) != 2 {
		t.Fatalf("both sockets: %+v, %v; want two deltas", d, err)
	}
	for _, x := range d {
		want := uint64(200)
		if x.Cookie == first {
			want = dgram
		}
		if x.tx.Bytes != want || x.closed {
			t.Errorf("socket %d (the sender's: %v) moved tx %d bytes, closed %v; want %d, open", x.Cookie, x.Cookie == first, x.tx.Bytes, x.closed, want)
		}
	}
	if other := c.slotWord(slot, svCookie); other == first || other == 0 {
		t.Errorf("slot %d has cookie %d; want the new socket's", slot, other)
	}
}

// TestCountIdleEvicted: an entry that has not moved for idleEvict is read
// and deleted without a delta (it moved nothing), one that moved since the
// last collect is not, and a deleted one's counts start again from zero.
func TestCountIdleEvicted(t *testing.T) {
	needRoot(t)
	p, c := newCounting(t, 1024, 0)
	takeSlots(t, p)
	now := int64(1e12)
	c.now = func() int64 { return now }
	send := func() {
		t.Helper()
		if ret, err := p.egress.Run(&ebpf.RunOptions{Data: ipPacket(false, 17, 100, 8)}); err != nil || ret != 1 {
			t.Fatalf("run: %d, %v", ret, err)
		}
	}
	entries := func() int { return hashEntries(p, c) }
	send()
	if d, err := c.collect(nil); err != nil || len(d) != 1 || d[0].tx.Bytes != 100 {
		t.Fatalf("first collect: %+v, %v; want one delta of 100 bytes", d, err)
	}
	now += int64(idleEvict) - 1
	send() // another socket (BPF_PROG_TEST_RUN makes one a run), moving now
	if d, err := c.collect(nil); err != nil || len(d) != 1 || entries() != 2 {
		t.Fatalf("before idleEvict: %d deltas, %d entries, %v; want 1 and 2", len(d), entries(), err)
	}
	now += 1
	if d, err := c.collect(nil); err != nil || len(d) != 0 || entries() != 1 {
		t.Fatalf("at idleEvict: %d deltas, %d entries, %v; want 0 and 1 (the idle one gone)", len(d), entries(), err)
	}
	if len(c.prev) != 1 {
		t.Errorf("%d totals kept, want 1", len(c.prev))
	}
}

// TestCountMapFull: a socket's first packet that finds the map full is
// allowed, and counted in lost, not silently dropped.
func TestCountMapFull(t *testing.T) {
	needRoot(t)
	p, c := newCounting(t, 2, 0)
	takeSlots(t, p)
	for i := range 5 { // five sockets: BPF_PROG_TEST_RUN makes one a run
		if ret, err := p.ingress.Run(&ebpf.RunOptions{Data: ipPacket(false, 6, 60, 20)}); err != nil || ret != 1 {
			t.Fatalf("run %d: %d, %v; want 1 (allow) on a full map too", i, ret, err)
		}
	}
	full, ring, err := c.lost()
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.collect(nil)
	if err != nil {
		t.Fatal(err)
	}
	if full != 3 || ring != 0 || len(d) != 2 {
		t.Errorf("lost %d (map full), %d (ring); %d entries; want 3, 0 and 2", full, ring, len(d))
	}
}

// TestCountViews: a delta as each kind of interface counts it.
func TestCountViews(t *testing.T) {
	d := countDelta{tx: countHalf{Packets: 2, Bytes: 3000, Segs: 5, Wire: 3100, Frags: 1, FragBytes: 20},
		rx: countHalf{Packets: 4, Bytes: 400, Segs: 4, Wire: 400}}
	for _, c := range []struct {
		ifc  kernelIface
		want traffic
	}{
		{kernelIface{kind: countsSkbs, l2: 14}, traffic{txPackets: 3, txBytes: 3020 + 3*14, rxPackets: 4, rxBytes: 400 + 4*14}},
		{kernelIface{kind: countsSegments, l2: 14}, traffic{txPackets: 5, txBytes: 3100 + 5*14, rxPackets: 4, rxBytes: 400 + 4*14}},
		{kernelIface{kind: countsSegments}, traffic{txPackets: 5, txBytes: 3100, rxPackets: 4, rxBytes: 400}},
		{kernelIface{kind: countsLoopback}, traffic{txPackets: 3, txBytes: 3020, rxPackets: 4, rxBytes: 400}}, // the skbs out, as lo passes a GSO skb whole
	} {
		if got := c.ifc.view(d); got != c.want {
			t.Errorf("kind %d, l2 %d: %+v, want %+v", c.ifc.kind, c.ifc.l2, got, c.want)
		}
	}
}

// TestIfaceRest: what no socket moved is the interface's bytes beyond the
// sockets', less what the sockets were credited beyond the interface in
// the reports before (a backlog counted by a program before the device)
// and not yet paid back, up to aheadReports reports old.
func TestIfaceRest(t *testing.T) {
	ifc := &kernelIface{}
	type report struct{ moved, credited, want uint64 }
	check := func(name string, reports []report) {
		t.Helper()
		for i, c := range reports {
			got := ifc.rest(traffic{rxBytes: c.moved, txPackets: c.moved}, traffic{rxBytes: c.credited, txPackets: c.credited})
			if got != (traffic{rxBytes: c.want, txPackets: c.want}) {
				t.Errorf("%s, report %d: moved %d, credited %d: rest %+v, want %d in rx bytes and tx packets", name, i+1, c.moved, c.credited, got, c.want)
			}
		}
	}
	check("one excess", []report{
		{moved: 1000, credited: 900, want: 100},
		{moved: 1000, credited: 1300, want: 0}, // 300 ahead
		{moved: 1000, credited: 600, want: 100},
		{moved: 1000, credited: 1000, want: 0},
	})
	// The lag of workload 5: it grows over reports, then shrinks; the
	// rows and the rest add up to the interface.
	check("excesses in a row", []report{
		{moved: 1000, credited: 1100, want: 0},
		{moved: 1000, credited: 1200, want: 0}, // 300 ahead in all
		{moved: 1000, credited: 1000, want: 0},
		{moved: 1000, credited: 950, want: 0},
		{moved: 1000, credited: 800, want: 0},
		{moved: 1000, credited: 900, want: 50},
	})
	excess := []report{{moved: 1000, credited: 1100, want: 0}}
	for range aheadReports - 1 {
		excess = append(excess, report{moved: 1000, credited: 1000, want: 0})
	}
	check("an excess kept", append(excess, report{moved: 1000, credited: 900, want: 0}))
	check("an excess dropped", append(excess, report{moved: 1000, credited: 1000, want: 0}, report{moved: 1000, credited: 900, want: 100}))
}
