package main

import "slices"

// ledger remembers every row a run has shown, with its totals since the
// start: the cumulative view lists them all, idle and exited processes
// too, and the summary at the end is made of them. It holds at most
// maxLedger rows; past that the quarter of them idle longest is folded
// into one "(other)" row, so that their bytes still count.
type ledger struct {
	rows  map[rowKey]*keptRow // each row as last shown
	other *keptRow            // the rows folded away; nil until one is
	seq   int                 // the interval last noted
}

// rowKey identifies a row over a run: an interface by name; a process by
// pid and start time (a reused pid is another row); a pid 0 row by reason;
// a connection by its flow too; a group by its key.
type rowKey struct {
	name   string
	pid    int
	start  uint64
	reason reason
	fl     flow     // conn: the connection
	group  groupKey // --by: the group
}

// maxLedger bounds the rows a run remembers: a machine that starts
// thousands of processes a minute would grow it without end.
const maxLedger = 4096

// maxLedgerWide bounds it when a report has more rows than maxLedger (a
// conn report of 10,000 connections): it keeps a report's rows and a
// quarter of maxLedger more, up to this: folding rows that are active at
// every report would only make them again at the next one.
const maxLedgerWide = 1 << 14

// bound is the most rows the ledger keeps while it notes a report of n.
func (l *ledger) bound(n int) int {
	return min(max(maxLedger, n+maxLedger/4), maxLedgerWide)
}

func newLedger() *ledger {
	return &ledger{rows: map[rowKey]*keptRow{}}
}

func keyOf(u usage) rowKey {
	switch {
	case u.group != nil:
		return rowKey{name: u.name, group: u.group.key}
	case u.proc == nil:
		return rowKey{name: u.name}
	}
	k := rowKey{pid: u.proc.pid, start: u.proc.start, reason: u.proc.reason}
	if u.conn != nil {
		k.fl = u.conn.flow
	}
	return k
}

// note records the rows of interval seq and, with all, returns every
// row of the run (ledger.all).
func (l *ledger) note(seq int, rows []usage, all bool) []usage {
	l.seq = seq
	for _, u := range rows {
		k := keyOf(u)
		if lr := l.rows[k]; lr != nil {
			lr.u, lr.last = u, seq
			continue
		}
		if len(l.rows) >= l.bound(len(rows)) {
			l.other = foldIdle(l.rows, maxLedger/4, l.other)
		}
		l.rows[keyOf(u)] = &keptRow{u: u, last: seq}
	}
	if !all {
		return nil
	}
	return l.all()
}

// all returns every row of the run: this interval's traffic for those
// active in the last interval noted, none for the others, and each row's
// totals since the start.
func (l *ledger) all() []usage {
	rows := make([]usage, 0, len(l.rows)+1)
	for _, lr := range l.rows {
		u := lr.u
		if lr.last != l.seq {
			u.interval, u.rxErrors, u.txErrors, u.rxDrops, u.txDrops = traffic{}, 0, 0, 0, 0
		}
		rows = append(rows, u)
	}
	if l.other != nil && l.other.u.total != (traffic{}) {
		rows = append(rows, l.other.u)
	}
	return rows
}

// summary returns the rows of the run as a summary shows them: each row's
// traffic over the whole run in place of an interval's, so that its rates
// are the run's averages.
func (l *ledger) summary() []usage {
	rows := l.all()
	for i := range rows {
		rows[i].interval = rows[i].total
		rows[i].rxErrors, rows[i].txErrors, rows[i].rxDrops, rows[i].txDrops = 0, 0, 0, 0
	}
	slices.SortStableFunc(rows, func(a, b usage) int { return compareName(a, b) })
	return rows
}
