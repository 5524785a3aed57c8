package main

import (
	"net/netip"
	"testing"
	"time"
)

// deniedOwners is a finder that may read no process.
type deniedOwners struct{}

func (deniedOwners) find(map[uint64]*process) bool { return true }
func (deniedOwners) close()                        {}

// TestOpeningNotReadable: a connection whose socket the opening finds open,
// of a user netuse may not read, counts as "(not readable)" even if its
// first pass comes after it closed (TIME_WAIT: no file, "no owner" by then).
// Before, the pass's "no owner" won, and TestProcLeastPrivilege lost half
// its bytes to "(no owner)" one run in ten.
func TestOpeningNotReadable(t *testing.T) {
	fl := flow{6, netip.MustParseAddrPort("192.0.2.1:40000"), netip.MustParseAddrPort("192.0.2.2:7101")}
	a := newAccountant()
	r := &resolver{acc: a, quick: deniedOwners{}, readable: func(uid uint32) bool { return uid == 65534 },
		lookup: func(flow) (socket, bool) {
			return socket{proto: 6, local: fl.local, remote: fl.remote, inode: 77, uid: 0}, true
		}}
	r.openings([]opening{{fls: [2]flow{fl}, n: 1, opener: true, at: 1}})
	pending := a.takePending(time.Now())
	if len(pending) != 1 || pending[0] != fl {
		t.Fatalf("pending after the opening: %v, want the flow, for the passes", pending)
	}
	for try := 0; try < maxTries; try++ {
		a.settle(time.Now(), []resolution{{fl: fl, why: noOwner}}) // the socket closed: TIME_WAIT
	}
	if st := a.flows[fl]; st.owner == nil || st.owner.reason != notReadable {
		t.Errorf("after the passes the flow's owner is %+v, want the (not readable) row", st.owner)
	}
}

// TestFinalPassTriesEveryFlow: a server's end of a connection whose first
// try found no owner (its accepted socket open, with no record, not in
// /proc's cache yet) waits retryGap for its next; a run's last report has
// no later one, and its pass tries it at once: the socket gone, the
// listener's owner. Before, a one-shot run left such a flow "(no owner)"
// one time in ten (netuse conn -c 1 on the demonstration's HTTP server).
func TestFinalPassTriesEveryFlow(t *testing.T) {
	fl := flow{6, netip.MustParseAddrPort("192.0.2.2:18081"), netip.MustParseAddrPort("192.0.2.1:40000")}
	server := &process{pid: 300, name: "python3"}
	a := newAccountant()
	a.flows[fl] = &flowState{near: true}
	r := &resolver{acc: a, owners: fixedOwners{55: server},
		sockets: func() ([]socket, error) {
			return []socket{{proto: 6, local: fl.local, remote: netip.AddrPortFrom(netip.IPv4Unspecified(), 0), inode: 55}}, nil
		}}
	a.settle(time.Now(), []resolution{{fl: fl, why: noOwner}}) // the first try; the next is due in retryGap
	r.pass()
	if st := a.flows[fl]; st.owner != nil {
		t.Fatalf("a pass before the retry is due tried the flow: owner %+v", st.owner)
	}
	r.finalPass()
	if st := a.flows[fl]; st.owner != server {
		t.Errorf("after the final pass the flow's owner is %+v, want the listener's, %+v", st.owner, server)
	}
}
