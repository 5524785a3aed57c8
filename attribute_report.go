package main

import "time"

// The accountant's report: each interval, the flows' bytes move to their
// owners' rows, or to the rows of the reasons they have none.

// report moves the bytes of every flow to its owner and returns the rows of
// the owners that moved traffic since the last report, with what was
// captured. Unresolved flows count for the reason they failed so far. A
// flow the resolver has not settled yet (it began while a pass read the
// socket tables and /proc, or its first try failed and the next is due)
// keeps its bytes for the next report, once, unless this report is the
// final one.
//
// With conns set it returns a row per connection end too, whose bytes
// add up to the rows': a flow's, or the bytes of no flow by reason.
func (a *accountant) report(final bool) (rows, conns []usage, totals flowTotals) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.active = a.active[:0]
	a.connRows = nil
	for r, p := range a.nobody {
		if p.cur != (traffic{}) {
			t := p.cur
			p.cur = traffic{}
			a.bill(p, t)
			if a.conns {
				a.loose[r].add(t)
				a.connRows = append(a.connRows, usage{name: p.name, interval: t, total: a.loose[r], proc: p, conn: &connInfo{}})
			}
		}
	}
	// Past three quarters of the table, evict drops flows below, the
	// unsettled first: nothing is carried then.
	carry := !final && len(a.flows) <= a.max/4*3
	for fl, st := range a.flows {
		a.reportFlow(fl, st, carry)
	}
	a.bound()
	a.cur.flows = len(a.flows)
	a.cur.byIndex = make(map[int]traffic, len(a.ifaceCur))
	for idx, t := range a.ifaceCur {
		if *t != (traffic{}) {
			a.cur.byIndex[idx] = *t
			*t = traffic{}
		}
	}
	rows = make([]usage, 0, len(a.active))
	for _, p := range a.active {
		p.total.add(p.cur)
		rows = append(rows, usage{name: p.name, interval: p.cur, total: p.total, proc: p})
		p.cur = traffic{}
	}
	totals = a.cur
	a.cur = flowTotals{}
	return rows, a.connRows, totals
}

// bill adds t to p's interval, and p to the rows of the report.
func (a *accountant) bill(p *process, t traffic) {
	if p.cur == (traffic{}) {
		a.active = append(a.active, p)
	}
	p.cur.add(t)
}

// reportFlow moves the bytes of fl to its owner, or carries them to the
// next report if fl is not settled yet and carry allows, or forgets fl if
// it has been idle for idleReports reports.
func (a *accountant) reportFlow(fl flow, st *flowState, carry bool) {
	if st.cur == (traffic{}) {
		if st.idle++; st.idle >= idleReports {
			delete(a.flows, fl)
		}
		return
	}
	if st.owner == nil && !st.carried && carry {
		st.carried = true
		return
	}
	t := st.cur
	st.cur, st.idle = traffic{}, 0
	owner := st.owner
	if owner != nil && owner.pid == 0 && st.near {
		// Given up on, but still moving bytes: look again now and then.
		// A socket may be found later (a process that was not readable
		// for a moment, a full scan that was held back).
		if st.stale++; st.stale >= recheckReports {
			st.owner, st.tries, st.stale, st.retry = nil, maxTries-1, 0, time.Time{}
			st.why = owner.reason
			a.retries = append(a.retries, fl)
		}
	}
	a.settleBytes(fl, st, owner, t)
}

// settleBytes credits t, the bytes of fl in this interval, to owner, or
// if it has none (nil, or a pid 0 row) to the row of the reason, unless
// they count elsewhere.
func (a *accountant) settleBytes(fl flow, st *flowState, owner *process, t traffic) {
	if owner == nil || owner.pid == 0 {
		why := st.why
		if owner != nil {
			why = owner.reason
		}
		// A far end that is a socket of this machine counts, with or
		// without its process: an end of a conversation between two
		// processes here is never lost silently.
		socketHere := why == noOwner || why == notReadable
		if (!st.near && !socketHere) || (st.foreign && a.ownedElsewhere(fl)) || a.capturedAsOriginal(st) {
			// The far end of packets that no socket of this machine sent
			// or received, or the near end of packets whose other end is a
			// process here (a container behind a bridge): the bytes count
			// once, at the other end.
			return
		}
		if why == attributed {
			why = noSocket // not tried yet: the resolver is behind
		}
		owner = a.nobody[why]
	}
	a.cur.add(t)
	a.bill(owner, t)
	st.total.add(t)
	if a.conns {
		a.connRows = append(a.connRows, usage{name: owner.name, interval: t, total: st.total, proc: owner,
			conn: &connInfo{flow: fl, state: st.state, first: st.first, last: st.last}})
	}
	if st.inferred {
		a.cur.inferred += t.rxBytes + t.txBytes
	}
}

// ownedElsewhere reports whether the other end of fl is a process of this
// machine.
func (a *accountant) ownedElsewhere(fl flow) bool {
	m := a.flows[flow{fl.proto, fl.remote, fl.local}]
	return m != nil && m.owner != nil && m.owner.pid != 0
}
