package main

import "time"

// conn's STATE column, from the capture: each report reads the socket
// tables for the TCP flows' states.

// refreshStates reads the socket tables and gives each TCP flow its
// socket's state, for conn's STATE column; each report asks for it
// first. It does not wait for a pass that is reading /proc: if the
// resolver stays busy for statesWait, the states are the last report's.
func (r *resolver) refreshStates() {
	locked := r.mu.TryLock()
	for deadline := time.Now().Add(statesWait); !locked && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		locked = r.mu.TryLock()
	}
	if !locked {
		return
	}
	socks, err := r.sockets()
	if err != nil {
		r.mu.Unlock()
		r.warn(err)
		return
	}
	states := make(map[flow]tcpState, len(socks))
	for _, s := range socks {
		if s.proto == 6 && s.remote.Port() != 0 {
			states[flow{s.proto, s.local, s.remote}] = s.state
		}
	}
	r.mu.Unlock()
	r.acc.setStates(states)
}

// statesWait is how long a report waits for a pass to end before it
// reads the TCP states.
const statesWait = 20 * time.Millisecond

// setStates gives each TCP flow its socket's state from states, read from
// the socket tables; a flow whose socket has left them is closed, if it
// had one here (a state seen, or an owner).
func (a *accountant) setStates(states map[flow]tcpState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for fl, st := range a.flows {
		if fl.proto != 6 {
			continue
		}
		if s, ok := states[fl]; ok {
			st.state = s
		} else if st.state != 0 || (st.owner != nil && (st.owner.pid != 0 || st.owner.reason == noOwner || st.owner.reason == notReadable)) {
			st.state = tcpClosed
		}
	}
}
