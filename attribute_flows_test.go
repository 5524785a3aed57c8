package main

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// floodFrame returns a frame template of a UDP datagram to this host and
// a function that makes it the i-th of a flood: each i is another source
// address and port, so another flow.
func floodFrame(t testing.TB) (*frame, func(i int)) {
	data := ethFrame(t, ip4("198.51.100.1", "192.0.2.1", layers.IPProtocolUDP),
		&layers.UDP{SrcPort: 1, DstPort: 53}, gopacket.Payload(make([]byte, 32)))
	f := &frame{dir: dirIn, length: len(data), data: data}
	return f, func(i int) {
		binary.BigEndian.PutUint16(data[14+12+2:], uint16(i>>16)) // source address, low half
		binary.BigEndian.PutUint16(data[14+20:], uint16(i))       // source port
	}
}

// TestFlowTableBounded floods a small flow table: it never holds more than
// its limit, the flows it could not keep are counted, evictions are
// counted, and every byte is still in a row.
func TestFlowTableBounded(t *testing.T) {
	a := newAccountant()
	a.max = 1000
	f, nth := floodFrame(t)
	s := newSniffer(a.add, nil)
	for i := range 10_000 {
		nth(i)
		s.frame(f)
		s.endBlock()
		if len(a.flows) > a.max {
			t.Fatalf("after %d packets the table holds %d flows, more than its %d", i+1, len(a.flows), a.max)
		}
	}
	rows, _, c := a.report(true)
	var sum traffic
	var full uint64
	for _, u := range rows {
		sum.add(u.interval)
		if u.proc.reason == tableFull {
			full += u.interval.rxBytes
		}
	}
	if sum != c.traffic || c.rxBytes != uint64(10_000*f.length) {
		t.Errorf("rows add up to %+v, captured %+v, want %d bytes in", sum, c.traffic, 10_000*f.length)
	}
	// Each datagram is two flow ends: 500 datagrams fill the table; the
	// near ends of the other 9,500 go to the flow_table_full row.
	if want := uint64(9_500 * f.length); full != want {
		t.Errorf("flow_table_full row has %d bytes, want %d", full, want)
	}
	if c.flows > a.max/2 || c.evicted != uint64(a.max-c.flows) {
		t.Errorf("after the report: %d flows, %d evicted; want at most %d, and the rest of %d evicted", c.flows, c.evicted, a.max/2, a.max)
	}
}

// BenchmarkFlood sends packets of distinct flows (one per packet, as a
// scan or a flood with random ports makes) through the accountant with
// its real limit, and reports every 100,000 packets, as an interval of a
// busy machine would: heap_MiB is the live heap at the end.
func BenchmarkFlood(b *testing.B) {
	for _, limit := range []int{1 << 16, 1 << 17, 1 << 18} {
		b.Run(fmt.Sprintf("max_%d", limit), func(b *testing.B) { benchFlood(b, limit) })
	}
}

func benchFlood(b *testing.B, limit int) {
	a := newAccountant()
	a.max = limit
	f, nth := floodFrame(b)
	s := newSniffer(a.add, nil)
	b.ReportAllocs()
	for i := range b.N {
		if i%100_000 == 0 && i > 0 {
			s.endBlock()
			a.report(true)
			a.takePending(time.Now()) // as the resolver would
		}
		nth(i)
		s.frame(f)
		if len(s.block) == blockFrames {
			s.endBlock()
		}
	}
	s.endBlock()
	a.report(true)
	b.StopTimer()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap_MiB")
	b.ReportMetric(float64(len(a.flows)), "flows")
}

// TestGivenUpFlowIsRechecked gives up on a flow (no owner after maxTries),
// keeps it moving bytes, and checks that it is tried again after
// recheckReports reports, and credited once found.
func TestGivenUpFlowIsRechecked(t *testing.T) {
	a := newAccountant()
	f, nth := floodFrame(t)
	nth(7)
	s := newSniffer(a.add, nil)
	send := func() {
		s.frame(f)
		s.endBlock()
	}
	send()
	now := epoch
	var near flow
	for try := 0; try < maxTries; try++ {
		now = now.Add(time.Second)
		fls := a.takePending(now)
		for _, fl := range fls {
			if a.flows[fl].near {
				near = fl
			}
		}
		a.settle(now, unresolved(fls))
	}
	if st := a.flows[near]; st == nil || st.owner == nil || st.owner.pid != 0 {
		t.Fatalf("after %d tries the flow is %+v, want given up on (pid 0)", maxTries, st)
	}
	for i := 0; i < recheckReports; i++ {
		if fls := a.takePending(now); len(fls) != 0 {
			t.Fatalf("report %d: %v pending, want none before %d reports", i, fls, recheckReports)
		}
		send()
		a.report(true)
	}
	fls := a.takePending(now)
	if !slices.Contains(fls, near) {
		t.Fatalf("after %d reports with traffic, pending %v, want the given-up flow %v", recheckReports, fls, near)
	}
	rs := unresolved(fls)
	rs[slices.Index(fls, near)].owner = &process{pid: 42, name: "late"}
	a.settle(now, rs)
	send()
	rows, _, _ := a.report(true)
	if len(rows) != 1 || rows[0].proc.pid != 42 || rows[0].interval.rxBytes != uint64(f.length) {
		t.Errorf("rows after the flow was found: %+v, want pid 42 with %d bytes", rows, f.length)
	}
}

// TestRegistryForgets makes records of many processes that nothing refers
// to afterwards: the registry must not keep them all, and must still give
// one record per process while something refers to it.
func TestRegistryForgets(t *testing.T) {
	g := newRegistry()
	kept := g.get(1, 100, func(p *process) { p.name = "kept" })
	for pid := 2; pid < 100_000; pid++ {
		g.get(pid, 100, func(*process) {})
		if pid%10_000 == 0 {
			runtime.GC()
		}
	}
	if n := len(g.m); n > 25_000 {
		t.Errorf("the registry holds %d records after 100,000 processes that nothing refers to", n)
	}
	if p := g.get(1, 100, func(p *process) { p.name = "new" }); p != kept {
		t.Errorf("a record still referred to was made again: %+v, want %+v", p, kept)
	}
	runtime.KeepAlive(kept)
}

// unresolved returns what a pass that found nothing returns for fls.
func unresolved(fls []flow) []resolution {
	rs := make([]resolution, len(fls))
	for i, fl := range fls {
		rs[i].fl = fl
	}
	return rs
}

// blockFrames is about how many frames a ring block holds (blockSize over
// some 272 bytes a frame: see sniff_linux.go).
const blockFrames = 960

// TestLaterTryKeepsDetail: a flow whose socket was seen with an owner
// netuse may not read, and then closed (no owner by the next try), stays
// "(not readable)"; a flow that only ever had no socket stays "(no socket)".
func TestLaterTryKeepsDetail(t *testing.T) {
	a := newAccountant()
	f, nth := floodFrame(t)
	s := newSniffer(a.add, nil)
	nth(1)
	s.frame(f)
	s.endBlock()
	now := epoch
	whys := []reason{notReadable, noOwner, noSocket}
	var fls []flow
	for _, why := range whys {
		now = now.Add(time.Second)
		fls = a.takePending(now)
		if len(fls) != 2 {
			t.Fatalf("pending %v, want the datagram's two ends", fls)
		}
		rs := unresolved(fls)
		for i := range rs {
			rs[i].why = why
		}
		a.settle(now, rs)
	}
	for _, fl := range fls {
		if st := a.flows[fl]; st.owner == nil || st.owner.reason != notReadable {
			t.Errorf("flow %v after tries %v: owner %+v, want the (not readable) row", fl, whys, st.owner)
		}
	}
}

// TestLiveNamesBudget: a report reads at most liveNameBudget names again,
// those read longest ago first, so that with more processes each is read
// in turn; with fewer, every one every report; a final report, all.
func TestLiveNamesBudget(t *testing.T) {
	reads := map[int]int{}
	p := &pipeline{liveName: func(pr *process) (string, bool) {
		reads[pr.pid]++
		return "now-" + pr.name, true
	}}
	rows := func(n int) []usage {
		us := make([]usage, n)
		for i := range us {
			us[i] = usage{name: "was", proc: &process{pid: i + 1, name: "was"}}
		}
		return us
	}
	few := rows(liveNameBudget)
	for range 3 {
		p.liveNames(few, false)
	}
	for _, u := range few {
		if reads[u.proc.pid] != 3 || u.name != "now-was" {
			t.Fatalf("%d processes, 3 reports: pid %d read %d times, named %q; want 3 and now-was", liveNameBudget, u.proc.pid, reads[u.proc.pid], u.name)
		}
	}

	clear(reads)
	many := rows(3 * liveNameBudget)
	p.liveNames(many, false)
	if len(reads) != liveNameBudget {
		t.Fatalf("one report of %d processes read %d names; want %d", len(many), len(reads), liveNameBudget)
	}
	for range 2 {
		p.liveNames(many, false)
	}
	for _, u := range many {
		if n := reads[u.proc.pid]; n != 1 {
			t.Fatalf("after 3 reports of %d processes, pid %d was read %d times; want each once, in turn", len(many), u.proc.pid, n)
		}
	}
	p.liveNames(many, true)
	for _, u := range many {
		if n := reads[u.proc.pid]; n != 2 || u.name != "now-was" {
			t.Fatalf("after the final report, pid %d read %d times, named %q; want 2 and now-was", u.proc.pid, n, u.name)
		}
	}
}

// TestFindSocketsNoFile: a socket without a file (not accepted yet, or
// orphaned) has no owner; of a user netuse may not read, it is "not
// readable", as its file would have been, so that a server's connection
// looked up before accept() is not counted as no owner.
func TestFindSocketsNoFile(t *testing.T) {
	local := netip.MustParseAddrPort("192.0.2.1:7102")
	mine := flow{proto: 6, local: local, remote: netip.MustParseAddrPort("192.0.2.2:40000")}
	theirs := flow{proto: 6, local: local, remote: netip.MustParseAddrPort("192.0.2.2:40001")}
	x := newSockIndex([]socket{
		{proto: 6, local: mine.local, remote: mine.remote, uid: 65534, state: 1},
		{proto: 6, local: theirs.local, remote: theirs.remote, uid: 0, state: 1},
	}, nil)
	r := &resolver{readable: func(uid uint32) bool { return uid == 65534 }}
	rs := []resolution{{fl: mine}, {fl: theirs}}
	if want := r.findSockets(x, rs); len(want) != 0 {
		t.Errorf("searched /proc for %v; want no inode searched", want)
	}
	if rs[0].why != noOwner || rs[1].why != notReadable {
		t.Errorf("readable user's socket without a file: %v, another user's: %v; want %v and %v", rs[0].why, rs[1].why, noOwner, notReadable)
	}
}
