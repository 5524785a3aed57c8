package main

import "slices"

// The bounded memory of rows over a run, which the ledger (every row a
// run has shown) and a view (its groups) keep: each row with the report
// it was last active in, and past a bound the rows idle longest folded
// into one "(other)" row, so that their bytes still count.

// keptRow is a row kept over a run and the report it was last active in.
type keptRow struct {
	u    usage
	last int
}

// foldIdle moves the n rows of rows idle longest into other, in one walk
// (a walk for each row folded is quadratic in the rows). other is made, if nil, as "(other)" of the kind
// of the first row folded: a group of the same keys, or processes (pid 0
// and no reason). It returns other.
func foldIdle[K comparable](rows map[K]*keptRow, n int, other *keptRow) *keptRow {
	lasts := make([]int, 0, len(rows))
	for _, kr := range rows {
		lasts = append(lasts, kr.last)
	}
	cut, atCut := foldCut(lasts, n)
	for k, kr := range rows {
		if kr.last > cut || (kr.last == cut && atCut == 0) {
			continue
		}
		if kr.last == cut {
			atCut--
		}
		if other == nil {
			other = &keptRow{u: usage{name: "(other)"}}
			switch u := kr.u; {
			case u.group != nil:
				other.u.group = &groupInfo{by: u.group.by}
			case u.proc != nil:
				other.u.proc = &process{name: "(other)"}
			}
		}
		other.u.total.add(kr.u.total)
		delete(rows, k)
	}
	return other
}

// foldCut picks the n oldest of lasts (the report each row was last
// active in): every row last active before cut, and atCut of those last
// active in cut.
func foldCut(lasts []int, n int) (cut, atCut int) {
	n = min(n, len(lasts))
	if n == 0 {
		return -1, 0
	}
	slices.Sort(lasts)
	cut = lasts[n-1]
	first, _ := slices.BinarySearch(lasts, cut)
	return cut, n - first
}
