package main

import (
	"cmp"
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
		l.note(seq, []usage{{name: "p", proc: p, total: traffic{rxBytes: 3}}})
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
	if sum+l.other.total.rxBytes != want || l.other.proc == nil {
		t.Errorf("rows %d and (other) %d bytes; want %d in all, and (other) a process row", sum, l.other.total.rxBytes, want)
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
		sortRows(whole, "total", modeProc, false, reverse, 0)
		part := slices.Clone(rows)
		sortRows(part, "total", modeProc, false, reverse, 20)
		for i := range 20 {
			if keyOf(part[i]) != keyOf(whole[i]) || part[i].interval != whole[i].interval {
				t.Fatalf("reverse %v, row %d: %+v; want %+v", reverse, i, part[i], whole[i])
			}
		}
	}
}
