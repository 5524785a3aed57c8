package main

// The flow table's bound (maxFlows, --max-flows): eviction, and memory
// given back after a flood.

// bound keeps the flow table within its limit (evict), and gives memory
// back after a flood.
func (a *accountant) bound() {
	if len(a.flows) > a.max/4*3 {
		a.evict()
	}
	a.peak = max(a.peak, len(a.flows))
	if a.peak > 4096 && len(a.flows) < a.peak/4 {
		// Deleting from a Go map does not give its memory back: after a
		// flood, copy what is left into a map of its size.
		m := make(map[flow]*flowState, len(a.flows))
		for fl, st := range a.flows {
			m[fl] = st
		}
		a.flows, a.peak = m, len(m)
	}
}

// evict drops flows until the table is back to half its limit: first
// those idle in the interval just reported, then those without a process.
// Their bytes are reported already; a flow that comes back is a new one.
func (a *accountant) evict() {
	goal := a.max / 2
	for pass := 0; pass < 2 && len(a.flows) > goal; pass++ {
		for fl, st := range a.flows {
			if len(a.flows) <= goal {
				break
			}
			if (pass == 0 && st.idle > 0) || (pass == 1 && (st.owner == nil || st.owner.pid == 0)) {
				delete(a.flows, fl)
				a.cur.evicted++
			}
		}
	}
}
