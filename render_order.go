package main

import (
	"cmp"
	"encoding/binary"
	"slices"
	"strings"
)

// The rows a report shows, in their order: the view the keys chose (a
// report's rows, or with t every row of the run with its totals), sorted
// by --sort or the s key's column, and cut to --top.

// order is how rows are ordered, as --sort and the keys chose.
type order struct {
	column  string // the column chosen with s (or --sort); "" the mode's default
	reverse bool   // the order reversed with r
	totals  bool   // t: every row of the run, with its totals, sorted by them
}

// rowView is how a report's rows are shown: in the order --sort and the
// keys chose, cut to --top; in the totals view (t) every row of the run.
type rowView struct {
	order
	top int     // --top: rows to show; 0 means all
	run []usage // every row of the run with its totals (the ledger's), for the totals view and the metrics; nil if neither needs it
}

// arrange returns rep with the rows v shows, in order. Only the first
// rows the sink shows need their order (0: all of them); a sink that
// shows fewer than --top's says so (table.first). It makes v's column the
// mode's default if none was chosen.
func (v *rowView) arrange(rep report, first int) report {
	if v.column == "" {
		v.column = sortColumns(rep.mode)[0]
	}
	if v.totals {
		rep.rows = v.run
	}
	rep.rows = slices.Clone(rep.rows)
	sortRows(rep.rows, v.order, rep.mode, first)
	rep.cutTop(v.top)
	return rep
}

// sortColumns are the columns s cycles through, first the mode's default.
func sortColumns(m mode) []string {
	if m.captures() {
		return []string{"total", "rx", "tx", "name", "pid"}
	}
	return []string{"name", "total", "rx", "tx"}
}

// sortColumn is the column rows are sorted by now.
func (ord order) sortColumn(m mode) string {
	if ord.column != "" {
		return ord.column
	}
	return sortColumns(m)[0]
}

// sortRows orders rows by ord's column: volumes descending, names
// ascending, with the name as the tie-break so that equal rows keep their
// place between reports; ord.reverse turns the order round. The volumes
// are the interval's, or with ord.totals the totals since the start. With
// first above 0, only the first rows need be in order: they are, and the
// others follow in no order.
func sortRows(rows []usage, ord order, m mode, first int) {
	column := ord.column
	if column == "" {
		column = "name"
		if m.captures() {
			column = "total"
		}
	}
	key := func(u usage) uint64 {
		t := u.interval
		if ord.totals {
			t = u.total
		}
		switch column {
		case "rx":
			return t.rxBytes
		case "tx":
			return t.txBytes
		case "total":
			return t.rxBytes + t.txBytes
		}
		return 0
	}
	// The keys first, in a slice of small items, computed once a row:
	// not the rows themselves, nor a key at each comparison
	// (BenchmarkConnReport).
	type item struct {
		key    uint64
		pid    int
		name   string
		fl     [2]uint64 // an IPv4 connection's flow, packed (packFlow)
		packed bool
		i      int
	}
	items := make([]item, len(rows))
	for i, u := range rows {
		items[i] = item{key: key(u), pid: pidOf(u), name: u.name, i: i}
		if u.conn != nil {
			items[i].fl, items[i].packed = packFlow(u.conn.flow)
		}
	}
	// The name, the pid and compareName break every tie: the order is
	// total, so an unstable sort gives the same rows every time.
	compare := func(a, b item) int {
		if column == "pid" {
			if c := cmp.Compare(a.pid, b.pid); c != 0 {
				return c
			}
		}
		if c := cmp.Compare(b.key, a.key); c != 0 {
			return c
		}
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := cmp.Compare(a.pid, b.pid); c != 0 {
			return c
		}
		if a.packed && b.packed {
			if c := cmp.Compare(a.fl[0], b.fl[0]); c != 0 {
				return c
			}
			return cmp.Compare(a.fl[1], b.fl[1])
		}
		return compareName(rows[a.i], rows[b.i])
	}
	if ord.reverse {
		forward := compare
		compare = func(a, b item) int { return forward(b, a) }
	}
	if first > 0 && first < len(items)/4 {
		selectFirst(items, first, compare)
	} else {
		slices.SortFunc(items, compare)
	}
	sorted := make([]usage, len(rows))
	for j, it := range items {
		sorted[j] = rows[it.i]
	}
	copy(rows, sorted)
}

// selectFirst moves the n items that come first by cmp to the front of
// items, in order; the others follow in no order. A live table of 10,000
// connections shows some 46: a heap of n finds them in n log n steps of
// the items' count, against a sort's log of it (BenchmarkConnReport/live).
func selectFirst[T any](items []T, n int, cmp func(a, b T) int) {
	// items[:n] is a heap with the last of the first n at its root.
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= n {
				return
			}
			if c+1 < n && cmp(items[c+1], items[c]) > 0 {
				c++
			}
			if cmp(items[c], items[i]) <= 0 {
				return
			}
			items[i], items[c] = items[c], items[i]
			i = c
		}
	}
	for i := n/2 - 1; i >= 0; i-- {
		down(i)
	}
	for j := n; j < len(items); j++ {
		if cmp(items[j], items[0]) < 0 {
			items[0], items[j] = items[j], items[0]
			down(0)
		}
	}
	slices.SortFunc(items[:n], cmp)
}

// compareName orders rows by name, then pid, then connection.
func compareName(a, b usage) int {
	if c := strings.Compare(a.name, b.name); c != 0 {
		return c
	}
	if c := cmp.Compare(pidOf(a), pidOf(b)); c != 0 || a.conn == nil || b.conn == nil {
		return c
	}
	return compareFlow(a.conn.flow, b.conn.flow)
}

// packFlow packs an IPv4 flow into two numbers that order as compareFlow
// orders flows, so that a tie between rows costs two comparisons of
// numbers rather than of addresses. ok is false for other flows.
func packFlow(fl flow) (packed [2]uint64, ok bool) {
	l, r := fl.local.Addr(), fl.remote.Addr()
	if !l.Is4() || !r.Is4() || l.Zone() != "" {
		return packed, false
	}
	l4, r4 := l.As4(), r.As4()
	packed[0] = uint64(fl.proto)<<56 | uint64(binary.BigEndian.Uint32(l4[:]))<<16 | uint64(fl.local.Port())
	packed[1] = uint64(binary.BigEndian.Uint32(r4[:]))<<16 | uint64(fl.remote.Port())
	return packed, true
}

// compareFlow orders flows by protocol, local end, remote end.
func compareFlow(a, b flow) int {
	if c := cmp.Compare(a.proto, b.proto); c != 0 {
		return c
	}
	if c := a.local.Compare(b.local); c != 0 {
		return c
	}
	return a.remote.Compare(b.remote)
}

func pidOf(u usage) int {
	if u.proc == nil {
		return 0
	}
	return u.proc.pid
}

// cutTop keeps the first top rows (0: all), after iface's "(all)" row
// has added them all up: it is the machine's, whatever --top shows.
func (rep *report) cutTop(top int) {
	if rep.mode == modeIface && len(rep.rows) > 1 {
		all := sumRows(rep.rows)
		all.name = "(all)"
		rep.all = &all
	}
	if top > 0 && len(rep.rows) > top {
		rep.rows = rep.rows[:top]
	}
}

// sumRows adds up rows into one: iface's "(all)" row.
func sumRows(rows []usage) usage {
	var sum usage
	for _, u := range rows {
		sum.interval.add(u.interval)
		sum.total.add(u.total)
	}
	return sum
}
