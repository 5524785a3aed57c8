package main

// The accountant's side of the resolver's pass (attribute.go) and of TCP
// openings (attribute_openings.go): the flows waiting for an owner taken,
// and what a pass found for each settled back onto the flow table.

import "time"

// takePending returns the new flows and those due to be tried again.
func (a *accountant) takePending(now time.Time) []flow {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pending
	a.pending = nil
	later := a.retries[:0]
	for _, fl := range a.retries {
		if st := a.flows[fl]; st != nil && st.owner == nil {
			if now.Before(st.retry) {
				later = append(later, fl)
			} else {
				p = append(p, fl)
			}
		}
	}
	a.retries = later
	return p
}

// hasRetries reports whether some flow waits to be tried again.
func (a *accountant) hasRetries() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.retries) > 0
}

// takeRetries returns the flows to be tried again, due or not.
func (a *accountant) takeRetries() []flow {
	a.mu.Lock()
	defer a.mu.Unlock()
	var fls []flow
	for _, fl := range a.retries {
		if st := a.flows[fl]; st != nil && st.owner == nil {
			fls = append(fls, fl)
		}
	}
	a.retries = a.retries[:0]
	return fls
}

// firstSeen sets when each flow of rs was first seen (0 if it is gone).
func (a *accountant) firstSeen(rs []resolution) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range rs {
		if st := a.flows[rs[i].fl]; st != nil {
			rs[i].at = st.first
		}
	}
}

// settle records what a resolver's pass found for each flow: an owner, or
// a reason; a flow without an owner is queued again until maxTries.
func (a *accountant) settle(now time.Time, rs []resolution) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, res := range rs {
		st := a.flows[res.fl]
		if st == nil || st.owner != nil {
			continue
		}
		if res.state != 0 {
			st.state = res.state
		}
		if res.owner != nil {
			st.owner, st.until = res.owner, res.until
			continue
		}
		st.nat, st.foreign = res.nat, res.foreign
		// A later try does not forget what an earlier one saw: a socket
		// whose owner netuse may not read stays "not readable" once it
		// has closed (TIME_WAIT, no file: "no owner" by then), and a
		// socket seen stays one once it is gone (TestProcLeastPrivilege's
		// client, whose upload ended before the second try).
		if detail(res.why) >= detail(st.why) {
			st.why = res.why
		}
		st.tries++
		if st.tries >= maxTries {
			st.owner = a.nobody[st.why]
		} else {
			st.retry = now.Add(retryGap)
			a.retries = append(a.retries, res.fl)
		}
	}
}

// detail ranks the reasons a try can give by what they say of the
// socket: none found, found without a process, found with one netuse may
// not read.
func detail(why reason) int {
	switch why {
	case notReadable:
		return 2
	case noOwner:
		return 1
	}
	return 0
}

// learn records the owners found for connections as they opened; a
// connection not found is left to the ring's frames. An opening starts a
// new connection, so its owner replaces what the flow had.
func (a *accountant) learn(rs []resolution) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, res := range rs {
		if res.owner == nil {
			a.learnWhy(res)
			continue
		}
		if st := a.flows[res.fl]; st != nil {
			if st.owner != nil && st.owner != res.owner {
				// A new connection on the endpoints of one reported
				// already: conn shows it as a row of its own.
				st.total, st.first = traffic{}, a.now
			}
			st.owner, st.tries, st.inferred, st.until = res.owner, 0, res.inferred, res.until
		} else {
			a.flows[res.fl] = &flowState{owner: res.owner, inferred: res.inferred, until: res.until}
		}
	}
}

// learnWhy records why an opening's owner was not found, if that says
// more than the flow knows: a later try that finds the socket closed keeps
// it (see settle). A flow not seen yet is made, and queued for the
// resolver as credit would queue it.
func (a *accountant) learnWhy(res resolution) {
	if res.why == attributed {
		return
	}
	st := a.flows[res.fl]
	if st == nil {
		if len(a.flows) >= a.max {
			return
		}
		st = &flowState{first: a.now}
		a.flows[res.fl] = st
		a.pending = append(a.pending, res.fl)
	}
	if detail(res.why) > detail(st.why) {
		st.why = res.why
	}
}
