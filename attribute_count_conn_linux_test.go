package main

import (
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// TestKernelConnsRows: --source kernel's conn rows over three reports, as
// the ledger (the summary) keeps them: two sockets of one process with the
// same endpoints make one row whose total is both of theirs; sockets of
// no known endpoints and no owner make one row; what no socket moved joins
// "(no socket)"'s row; a closed socket keeps the endpoints it had though
// its closer's record has given its port back; one in no table read and
// not known closed keeps its state; and a closed socket's last read, with
// nothing since, makes no row.
func TestKernelConnsRows(t *testing.T) {
	app := &process{pid: 10, start: 1, name: "app"}
	nobody := &process{name: reasonName[noSocket], reason: noSocket}
	orphan := &process{name: reasonName[noOwner], reason: noOwner}
	udp := flow{17, netip.MustParseAddrPort("10.0.0.1:53"), netip.AddrPort{}}
	tcp := flow{6, netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")}
	tables := &cookieTables{byCookie: map[uint64]int{}}
	open := func(socks ...socket) {
		tables.newReport()
		tables.socks = socks
		clear(tables.byCookie)
		for i, s := range socks {
			tables.byCookie[s.cookie] = i
		}
		tables.fresh = true
	}
	book := newOwnerBook()
	c := newKernelConns()
	l := newLedger()
	tx := func(n uint64) traffic { return traffic{txBytes: n, txPackets: 1} }
	type add struct {
		cookie uint64
		p      *process
		t      traffic
		closed bool
	}
	report := func(seq int, adds []add, residual traffic) map[rowKey]usage {
		t.Helper()
		var deltas []countDelta
		for _, a := range adds {
			d := countDelta{countKey: countKey{Cookie: a.cookie}, closed: a.closed}
			deltas = append(deltas, d)
			c.add(d, a.p, a.t, tables, book, int64(seq))
		}
		rows := c.report(nil, deltas, nobody, residual)
		l.note(seq, rows, false)
		got := map[rowKey]usage{}
		for _, u := range rows {
			if _, dup := got[keyOf(u)]; dup {
				t.Errorf("report %d: two rows of %+v", seq, keyOf(u))
			}
			got[keyOf(u)] = u
		}
		return got
	}
	key := func(p *process, fl flow) rowKey { return rowKey{pid: p.pid, start: p.start, reason: p.reason, fl: fl} }
	want := func(seq int, got map[rowKey]usage, k rowKey, interval, total uint64, state tcpState) {
		t.Helper()
		u, ok := got[k]
		switch {
		case !ok:
			t.Errorf("report %d: no row of %+v", seq, k)
		case u.interval.txBytes != interval || u.total.txBytes != total || u.conn.state != state:
			t.Errorf("report %d: row of %+v: %d bytes, %d in all, state %v; want %d, %d, %v", seq, k, u.interval.txBytes, u.total.txBytes, u.conn.state, interval, total, state)
		}
	}

	guest := flow{6, netip.MustParseAddrPort("10.0.1.1:40001"), netip.MustParseAddrPort("10.0.0.2:80")}
	open(socket{proto: 17, local: udp.local, cookie: 1}, socket{proto: 17, local: udp.local, cookie: 2},
		socket{proto: 6, local: tcp.local, remote: tcp.remote, cookie: 3, state: tcpState(1)},
		socket{proto: 6, local: guest.local, remote: guest.remote, cookie: 7, state: tcpState(1)})
	got := report(1, []add{{1, app, tx(100), false}, {2, app, tx(50), false}, {3, app, tx(10), false},
		{4, orphan, tx(5), false}, {5, orphan, tx(7), false}, {7, app, tx(3), false}}, tx(20))
	want(1, got, key(app, udp), 150, 150, 0)
	want(1, got, key(app, tcp), 10, 10, tcpState(1))
	want(1, got, key(orphan, flow{}), 12, 12, 0)
	want(1, got, key(nobody, flow{}), 20, 20, 0)
	if len(got) != 5 {
		t.Errorf("report 1: %d rows, want 5", len(got))
	}

	// Socket 3 closed: its record has given its port back.
	book.addGone(3, goneSock{sockOwner{pid: 10}, flow{6, netip.AddrPortFrom(tcp.local.Addr(), 0), tcp.remote}})
	open(socket{proto: 17, local: udp.local, cookie: 1}, socket{proto: 17, local: udp.local, cookie: 2})
	// Socket 7 is in no table read (its namespace's could not be): open
	// as far as anything says, it keeps its state.
	got = report(2, []add{{1, app, tx(30), false}, {3, app, tx(4), false}, {6, orphan, tx(1), false}, {7, app, tx(3), false}}, tx(2))
	want(2, got, key(app, udp), 30, 180, 0)
	want(2, got, key(app, tcp), 4, 14, tcpClosed)
	want(2, got, key(app, guest), 3, 6, tcpState(1))
	want(2, got, key(orphan, flow{}), 1, 13, 0)
	want(2, got, key(nobody, flow{}), 2, 22, 0)

	// Socket 3's last read after its close's grace: nothing since.
	got = report(3, []add{{3, app, traffic{}, true}, {2, app, tx(1), true}}, traffic{})
	want(3, got, key(app, udp), 1, 181, 0)
	if len(got) != 1 {
		t.Errorf("report 3: %d rows, want 1 (none for a socket that moved nothing)", len(got))
	}
	if len(c.socks) != 5 {
		t.Errorf("%d sockets kept, want 5 (1, 4, 5, 6, 7: 2 and 3 closed)", len(c.socks))
	}

	// The summary's totals are the rows'.
	sum := map[rowKey]uint64{}
	for _, u := range l.summary() {
		sum[keyOf(u)] += u.total.txBytes
	}
	for k, n := range map[rowKey]uint64{key(app, udp): 181, key(app, tcp): 14, key(orphan, flow{}): 13, key(nobody, flow{}): 22} {
		if sum[k] != n {
			t.Errorf("summary of %+v: %d bytes, want %d", k, sum[k], n)
		}
	}
}

// TestSockKindKernels: which sockets of no recorded process are taken for
// the kernel's own.
func TestSockKindKernels(t *testing.T) {
	for _, c := range []struct {
		kind sockKind
		want bool
	}{
		{3 | 58<<16, true},   // raw ICMPv6: ND, MLD
		{3 | 1<<16, true},    // raw ICMP
		{3 | 6<<16, true},    // raw TCP: RSTs, TIME_WAIT ACKs
		{3 | 253<<16, false}, // a process's raw socket
		{2 | 1<<16, false},   // a ping socket
		{1 | 6<<16, false},   // TCP
		{0, false},           // not known (the hash)
	} {
		if got := c.kind.kernels(); got != c.want {
			t.Errorf("%#x: %v, want %v", c.kind, got, c.want)
		}
	}
}

// TestSockKindInTables: only TCP, UDP and sockets of unknown kind are
// looked for in the socket tables.
func TestSockKindInTables(t *testing.T) {
	for _, c := range []struct {
		kind sockKind
		want bool
	}{
		{1 | 6<<16, true},    // TCP
		{2 | 17<<16, true},   // UDP
		{0, true},            // not known (the hash: a TIME_WAIT socket's)
		{3 | 58<<16, false},  // raw ICMPv6
		{3 | 253<<16, false}, // raw, protocol 253
		{2 | 1<<16, false},   // a ping socket
		{1 | 132<<16, false}, // SCTP
		{1 | 262<<16, false}, // MPTCP (its subflows are TCP)
	} {
		if got := c.kind.inTables(); got != c.want {
			t.Errorf("%#x: %v, want %v", c.kind, got, c.want)
		}
	}
}

// TestFindOwnersKernels: a raw ICMPv6 socket that no record has is the
// kernel's own, "(no socket)" at its first report without a look in the
// tables, in netuse's namespace and in a guest's (which counts from the
// host's side); one with a record is its process's; a process's raw
// socket of another protocol born before netuse is "(no owner)" at once,
// as no table netuse reads has it; a socket of unknown kind is looked for.
func TestFindOwnersKernels(t *testing.T) {
	app := &process{pid: 10, name: "app"}
	k := &kernelSource{own: 1, book: newOwnerBook(), owners: map[uint64]*process{},
		procOf: func(sockOwner) *process { return app },
		tables: &cookieTables{byCookie: map[uint64]int{}, tries: map[uint64]uint8{}, others: map[uint64]*sockDiag{}, fresh: true},
		guests: &guests{}}
	for r := range k.nobody {
		k.nobody[r] = &process{name: reasonName[r], reason: reason(r)}
	}
	k.book.add(ownerEvent{cookie: 2, pid: 10, name: "app"})
	icmp6 := sockKind(unix.SOCK_RAW | unix.IPPROTO_ICMPV6<<16)
	deltas := []countDelta{
		{countKey: countKey{Cookie: 1}, netns: 1, kind: icmp6},                             // the kernel's
		{countKey: countKey{Cookie: 2}, netns: 1, kind: icmp6},                             // a process's, recorded
		{countKey: countKey{Cookie: 3}, netns: 1, kind: sockKind(unix.SOCK_RAW | 253<<16)}, // a process's, born before netuse
		{countKey: countKey{Cookie: 4}, netns: 1},                                          // from the hash: not known
		{countKey: countKey{Cookie: 5}, netns: 2, kind: icmp6},                             // a guest namespace's kernel's
	}
	for i := range deltas {
		k.reported = append(k.reported, reportedDelta{countDelta: &deltas[i]})
	}
	k.findOwners()
	for _, c := range []struct {
		cookie uint64
		want   *process
	}{{1, k.nobody[noSocket]}, {2, app}, {3, k.nobody[noOwner]}, {4, k.nobody[noOwner]}, {5, k.nobody[noSocket]}} {
		if got := k.owner(countDelta{countKey: countKey{Cookie: c.cookie}}); got != c.want {
			t.Errorf("socket %d: %q, want %q", c.cookie, got.name, c.want.name)
		}
	}
	if len(k.tables.tries) != 1 || k.tables.tries[4] != 1 {
		t.Errorf("tries %v: want one for socket 4, none for the others", k.tables.tries)
	}
}
