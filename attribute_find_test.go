package main

import (
	"net/netip"
	"testing"
	"time"
)

// TestPassFindsEachWithoutDump: with the kernel's records, a pass looks
// each new flow's socket up alone and reads no table when the records own
// them all: an open socket by its cookie, a closed one by its endpoints.
// A flow they leave without an owner (no socket, or one of no record and
// no file) makes the pass read the tables, as before, with the same
// results. bench/run.sh's 200 curls spent 60% of netuse's CPU in the
// kernel's walks of the TCP hash for those reads.
func TestPassFindsEachWithoutDump(t *testing.T) {
	ap := netip.MustParseAddrPort
	curl := flow{6, ap("10.0.0.1:40000"), ap("10.0.0.2:80")}
	gone := flow{6, ap("10.0.0.1:40001"), ap("10.0.0.2:80")}
	dns := flow{17, ap("10.0.0.1:5353"), ap("10.0.0.3:53")}
	forwarded := flow{6, ap("10.0.0.9:1234"), ap("10.0.0.2:80")}
	now := time.Now().UnixNano()
	table := []socket{
		{proto: 6, local: curl.local, remote: curl.remote, inode: 11, cookie: 1},
		{proto: 17, local: ap("0.0.0.0:5353"), remote: ap("0.0.0.0:0"), inode: 13, cookie: 3},
	}
	book := func() *ownerBook {
		b := newOwnerBook()
		b.add(ownerEvent{cookie: 1, inode: 11, pid: 100, start: 7, name: "curl", at: now - 2e9, proto: 6})
		b.add(ownerEvent{cookie: 2, inode: 12, pid: 101, start: 7, name: "curl", at: now - 2e9, proto: 6})
		b.add(ownerEvent{release: true, cookie: 2, pid: 101, start: 7, name: "curl", at: now + 1e9, proto: 6, local: gone.local, remote: gone.remote})
		b.add(ownerEvent{cookie: 3, inode: 13, pid: 102, start: 7, name: "avahi", at: now - 2e9, proto: 17})
		return b
	}
	// Past findEachMax flows, one read serves them all.
	many := []flow{curl, gone, dns}
	for i := range findEachMax {
		many = append(many, flow{6, netip.AddrPortFrom(curl.local.Addr(), uint16(50000+i)), curl.remote})
	}
	for _, c := range []struct {
		name  string
		flows []flow
		dumps int
	}{
		{"open, closed and unconnected sockets, all recorded", []flow{curl, gone, dns}, 0},
		{"and a forwarded flow, of no socket", []flow{curl, gone, dns, forwarded}, 1},
		{"more than findEachMax flows", many, 1},
	} {
		a := newAccountant()
		for _, fl := range c.flows {
			a.flows[fl] = &flowState{near: true, first: now}
			a.pending = append(a.pending, fl)
		}
		dumps := 0
		procs := map[int]*process{}
		r := &resolver{acc: a, book: book(), owners: fixedOwners{},
			sockets: func() ([]socket, error) { dumps++; return table, nil },
			find:    scenarioTables{&scenario{sockets: table}}.find,
			ofRecord: func(o sockOwner) *process {
				if procs[o.pid] == nil {
					procs[o.pid] = &process{pid: o.pid, name: o.name}
				}
				return procs[o.pid]
			},
		}
		r.pass()
		if dumps != c.dumps {
			t.Errorf("%s: %d reads of the tables; want %d", c.name, dumps, c.dumps)
		}
		for fl, pid := range map[flow]int{curl: 100, gone: 101, dns: 102} {
			if st := a.flows[fl]; st.owner == nil || st.owner.pid != pid {
				t.Errorf("%s: %v's owner %+v; want pid %d", c.name, fl, st.owner, pid)
			}
		}
		if st := a.flows[forwarded]; st != nil && st.owner != nil {
			t.Errorf("%s: the forwarded flow's owner %+v; want none", c.name, st.owner)
		}
	}
}
