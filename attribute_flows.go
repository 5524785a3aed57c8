package main

import (
	"sync"
	"time"
)

// flowState is what the accountant knows of a flow.
type flowState struct {
	owner *process  // nil until resolved
	why   reason    // while owner is nil: why the last try failed
	tries uint8     // resolver passes that found no owner
	idle  uint16    // reports in a row without traffic
	stale uint16    // reports with traffic since the flow was given up on (see recheckReports)
	cur   traffic   // since the last report
	retry time.Time // while owner is nil and tries > 0: when to try again
	// inferred: the owner is the sole new process of the socket's user,
	// not found holding the socket, which had closed (attribute_newcomers_linux.go)
	inferred bool
	near     bool  // this end is on this host by the packets' direction (see handle)
	nat      *flow // the flow this one is a NAT'd copy of, by conntrack, if any
	foreign  bool  // its local address is no address of this machine (forwarded traffic)
	lo       bool  // seen on loopback, where both ends are on this host
	first    int64 // when its first packet was captured, Unix ns (see ownerBook.closedOwner)
	last     int64 // when its last packet was captured, Unix ns
	state    tcpState
	total    traffic // reported since first, for conn's rows
	carried  bool    // a report kept its bytes for the next, as the resolver had not settled it yet
	// until is when the owner's socket closed, Unix ns, if the kernel's
	// records say so (0: open, or not known): a packet after it belongs to
	// a new socket that reuses the endpoints, and the flow is resolved anew
	until int64
}

// A flow whose owner was not found is tried again retryGap later, and
// again, since the owner of a socket that an old process opened is only
// found by a full scan of /proc, which runs at most every fullGap; after
// maxTries the flow keeps the reason it failed. A flow idle for
// idleReports reports is forgotten.
const (
	maxTries    = 3
	retryGap    = 250 * time.Millisecond
	idleReports = 30
	// A flow given up on that still moves bytes is tried once more every
	// recheckReports reports with traffic.
	recheckReports = 5
)

// The flow table holds at most --max-flows flow ends (a connection between
// this host and another is two: netuse keeps both until it knows which is
// a socket here). A flood of packets with random ports would otherwise
// grow it without bound. Past three quarters of it the report drops the
// flows idle in its interval, then flows without a process, and counts
// them; a new flow that finds the table full is not kept: its bytes go to
// the flow_table_full row, so they are still shown.
//
// maxFlows is the default: BenchmarkFlood measured 19.75 MiB of heap for a
// full table of 65,536.
const maxFlows = 1 << 16

// flowTotals is what the accountant counted in an interval, for the
// capture record (newCaptured).
type flowTotals struct {
	traffic                  // every byte of the rows
	inferred uint64          // bytes credited to an inferred owner (flowState.inferred)
	flows    int             // flow ends in the table after the report
	evicted  uint64          // flow ends dropped early to keep the table under --max-flows
	byIndex  map[int]traffic // the frames of each interface, by index, as its counters count them
}

// accountant adds captured packets to flows and flows to processes.
type accountant struct {
	mu       sync.Mutex // guards every field below, and the cur and total of every process
	flows    map[flow]*flowState
	pending  []flow        // new flows for the resolver
	retries  []flow        // flows to try again, each when its retry time has come
	wake     chan struct{} // has a value when pending has work
	nobody   [numReasons]*process
	cur      flowTotals       // since the last report
	active   []*process       // the rows of the report being made; reused
	max      int              // flow ends the table may hold (--max-flows)
	ifaceCur map[int]*traffic // frames by interface index since the last report
	lastIf   int              // the index of lastT, the last interface counted
	lastT    *traffic
	peak     int   // the most flow ends since the map was last rebuilt
	now      int64 // when the last packet that had a time was captured, Unix ns; 0 if not known
	// conns: report returns a row per connection too (conn, and the views
	// made of connections); connRows are those of the report being made.
	conns    bool
	connRows []usage
	loose    [numReasons]traffic // totals of the bytes of no flow, by reason, for their conn rows
}

func newAccountant() *accountant {
	a := &accountant{
		flows:    map[flow]*flowState{},
		wake:     make(chan struct{}, 1),
		max:      maxFlows,
		ifaceCur: map[int]*traffic{},
	}
	for r := range a.nobody {
		a.nobody[r] = &process{name: reasonName[r], reason: reason(r)}
	}
	return a
}

// add accounts the packets of a block of frames, under one lock.
func (a *accountant) add(block []packet) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range block {
		a.handle(&block[i])
	}
}

// handle accounts one packet; the caller holds a.mu.
func (a *accountant) handle(p *packet) {
	if p.at != 0 {
		a.now = p.at
	}
	n := uint64(p.length)
	in := traffic{rxBytes: n, rxPackets: 1}
	out := traffic{txBytes: n, txPackets: 1}
	// The frame as its interface's own counters count it, decoded or not:
	// lo counts each packet as sent and as received.
	it := a.ifaceTraffic(p.ifindex)
	switch {
	case p.loopback:
		it.add(in)
		it.add(out)
	case p.dir == dirOut:
		it.add(out)
	default:
		it.add(in)
	}
	switch {
	case p.dir == dirOther:
		a.cur.add(in)
		a.nobody[notForHost].cur.add(in)
	case !p.ok:
		why := notTCPUDP
		if p.fragment {
			why = lostFragment
		}
		if p.loopback || p.dir == dirIn {
			a.cur.add(in)
			a.nobody[why].cur.add(in)
		}
		if p.loopback || p.dir == dirOut {
			a.cur.add(out)
			a.nobody[why].cur.add(out)
		}
	default:
		// A packet has two ends, and each that is a socket of this
		// machine, in any network namespace, is credited: the sender's
		// with tx, the receiver's with rx. Over loopback both are; over a
		// veth between two namespaces both may be; otherwise one is: the
		// sender if the packet went out, the receiver if it came in, as
		// the packet's direction says (the near end). Which ends are
		// sockets of this machine is known once they are resolved, so
		// both are kept and report decides what counts.
		a.credit(flow{p.proto, p.src, p.dst}, out, p.loopback || p.dir == dirOut, p.loopback)
		a.credit(flow{p.proto, p.dst, p.src}, in, p.loopback || p.dir == dirIn, p.loopback)
	}
}

// ifaceTraffic returns the counters of interface idx for this interval.
func (a *accountant) ifaceTraffic(idx int) *traffic {
	if a.lastT != nil && a.lastIf == idx {
		return a.lastT
	}
	t := a.ifaceCur[idx]
	if t == nil {
		t = &traffic{}
		a.ifaceCur[idx] = t
	}
	a.lastIf, a.lastT = idx, t
	return t
}

// credit adds t to fl, queueing fl for the resolver when it is new.
func (a *accountant) credit(fl flow, t traffic, near, lo bool) {
	st := a.flows[fl]
	if st == nil {
		if len(a.flows) >= a.max {
			if near {
				// The far end's bytes would be dropped in report, once it
				// is clear it has no socket here: count the near end's.
				a.cur.add(t)
				a.nobody[tableFull].cur.add(t)
			}
			return
		}
		st = &flowState{near: near, lo: lo, first: a.now}
		a.flows[fl] = st
		a.pending = append(a.pending, fl)
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	if st.until != 0 && a.now > st.until+reuseGap {
		// The owner's socket closed before this packet: another socket
		// has the same endpoints now (a new UDP client got the old
		// one's port). Find its owner.
		st.owner, st.tries, st.until, st.first, st.carried = nil, 0, 0, a.now, false
		st.state, st.total = 0, traffic{}
		a.pending = append(a.pending, fl)
	}
	st.last = a.now
	st.near = st.near || near
	st.lo = st.lo || lo
	st.cur.add(t)
}
