package main

import (
	"cmp"
	"net/netip"
	"slices"
	"testing"
)

// TestLedgerBounded notes more rows than the ledger holds: it folds the
// quarter idle longest into "(other)" at once, and no byte is lost.
func TestLedgerBounded(t *testing.T) {
	l := newLedger()
	var want uint64
	for seq := 1; seq <= maxLedger+100; seq++ {
		p := &process{pid: seq, start: 1, name: "p"}
		l.note(seq, []usage{{name: "p", proc: p, total: traffic{rxBytes: 3}}}, false)
		want += 3
	}
	if len(l.rows) > maxLedger {
		t.Errorf("%d rows; want at most %d", len(l.rows), maxLedger)
	}
	var sum uint64
	for _, lr := range l.rows {
		sum += lr.u.total.rxBytes
		if lr.last <= maxLedger/4 {
			t.Errorf("row of interval %d kept; the %d idle longest were to go", lr.last, maxLedger/4)
		}
	}
	if sum+l.other.u.total.rxBytes != want || l.other.u.proc == nil {
		t.Errorf("rows %d and (other) %d bytes; want %d in all, and (other) a process row", sum, l.other.u.total.rxBytes, want)
	}
}

func TestFoldCut(t *testing.T) {
	for _, tc := range []struct {
		lasts      []int
		n          int
		cut, atCut int
	}{
		{[]int{5, 1, 3, 3, 3, 9}, 2, 3, 1}, // 1, and one of the three 3s
		{[]int{5, 1, 3, 3, 3, 9}, 4, 3, 3},
		{[]int{5, 1, 3, 3, 3, 9}, 5, 5, 1},
		{[]int{2, 2}, 9, 2, 2},
		{nil, 3, -1, 0},
	} {
		cut, atCut := foldCut(append([]int(nil), tc.lasts...), tc.n)
		if cut != tc.cut || atCut != tc.atCut {
			t.Errorf("foldCut(%v, %d) = %d, %d; want %d, %d", tc.lasts, tc.n, cut, atCut, tc.cut, tc.atCut)
		}
	}
}

// TestSelectFirst checks that the first n items selectFirst gives are
// those a sort gives, in order, and that no item is lost, for every n.
func TestSelectFirst(t *testing.T) {
	items := make([]int, 200)
	for i := range items {
		items[i] = (i * 7919) % 61 // ties, in no order
	}
	want := slices.Clone(items)
	slices.Sort(want)
	for n := 1; n <= len(items); n++ {
		got := slices.Clone(items)
		selectFirst(got, n, cmp.Compare[int])
		if !slices.Equal(got[:n], want[:n]) {
			t.Fatalf("n %d: first %v; want %v", n, got[:n], want[:n])
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("n %d: items lost or made", n)
		}
	}
}

// TestSortRowsFirst sorts rows whole and with first, forward and
// reversed: the first rows are the same.
func TestSortRowsFirst(t *testing.T) {
	var rows []usage
	for i := range 400 {
		p := &process{pid: 1000 + i%37, name: []string{"a", "b", "c"}[i%3]}
		rows = append(rows, usage{name: p.name, proc: p, interval: traffic{rxBytes: uint64(i*31) % 50}})
	}
	for _, reverse := range []bool{false, true} {
		whole := slices.Clone(rows)
		sortRows(whole, order{column: "total", reverse: reverse}, modeProc, 0)
		part := slices.Clone(rows)
		sortRows(part, order{column: "total", reverse: reverse}, modeProc, 20)
		for i := range 20 {
			if keyOf(part[i]) != keyOf(whole[i]) || part[i].interval != whole[i].interval {
				t.Fatalf("reverse %v, row %d: %+v; want %+v", reverse, i, part[i], whole[i])
			}
		}
	}
}

// TestLedgerWide notes reports of more rows than maxLedger: it keeps one
// report's rows, up to maxLedgerWide, and loses no byte.
func TestLedgerWide(t *testing.T) {
	for _, n := range []int{10_000, 2 * maxLedgerWide} {
		l := newLedger()
		rows := make([]usage, n)
		for i := range rows {
			p := &process{pid: i + 1, name: "p"}
			rows[i] = usage{name: "p", proc: p, total: traffic{rxBytes: 1}}
		}
		l.note(1, rows, false)
		l.note(2, rows, false)
		var sum uint64
		for _, lr := range l.rows {
			sum += lr.u.total.rxBytes
		}
		want := min(n, maxLedgerWide)
		if len(l.rows) > want || (n < maxLedgerWide && len(l.rows) != n) {
			t.Errorf("a report of %d rows: the ledger keeps %d; want %d", n, len(l.rows), want)
		}
		var other uint64
		if l.other != nil {
			other = l.other.u.total.rxBytes
		}
		if sum+other < uint64(n) {
			t.Errorf("a report of %d rows: %d bytes kept and %d in (other)", n, sum, other)
		}
	}
}

// TestPackFlow: packed IPv4 flows order as compareFlow orders them.
func TestPackFlow(t *testing.T) {
	var fls []flow
	for i := range 300 {
		a := netip.AddrFrom4([4]byte{byte(i % 3), 0, byte(i % 7), byte(i % 5)})
		b := netip.AddrFrom4([4]byte{10, byte(i % 11), 0, 1})
		fls = append(fls, flow{[]uint8{6, 17}[i%2], netip.AddrPortFrom(a, uint16(i%13)), netip.AddrPortFrom(b, uint16(i*7919%65536))})
	}
	for _, x := range fls {
		for _, y := range fls {
			px, _ := packFlow(x)
			py, ok := packFlow(y)
			got := cmp.Or(cmp.Compare(px[0], py[0]), cmp.Compare(px[1], py[1]))
			if !ok || got != compareFlow(x, y) {
				t.Fatalf("%v against %v: packed %d, compareFlow %d", x, y, got, compareFlow(x, y))
			}
		}
	}
	if _, ok := packFlow(flow{6, netip.MustParseAddrPort("[2001:db8::1]:1"), netip.MustParseAddrPort("[2001:db8::2]:2")}); ok {
		t.Error("an IPv6 flow packed")
	}
}
