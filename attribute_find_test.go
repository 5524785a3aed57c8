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
// results.
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

// TestLoopRetries: a flow the first pass left without an owner is tried
// again retryGap later with nothing else to wake the loop (its timer runs
// only while such a flow waits); the second try finds the socket, which
// has come since.
func TestLoopRetries(t *testing.T) {
	fl := flow{6, netip.MustParseAddrPort("10.0.0.1:40000"), netip.MustParseAddrPort("10.0.0.2:80")}
	server := &process{pid: 300, name: "late"}
	a := newAccountant()
	a.flows[fl] = &flowState{near: true, first: time.Now().UnixNano()}
	a.pending = append(a.pending, fl)
	reads := make(chan int, 16)
	n := 0
	r := &resolver{acc: a, owners: fixedOwners{55: server}, minGap: time.Millisecond, kick: make(chan struct{}, 1),
		sockets: func() ([]socket, error) {
			n++
			reads <- n
			if n == 1 {
				return nil, nil // not there yet
			}
			return []socket{{proto: 6, local: fl.local, remote: fl.remote, inode: 55}}, nil
		}}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() { r.loop(done); close(ended) }()
	defer func() { close(done); <-ended }()
	a.wake <- struct{}{}
	start := time.Now()
	for want := 1; want <= 2; want++ {
		select {
		case got := <-reads:
			if got != want {
				t.Fatalf("read %d; want %d", got, want)
			}
		case <-time.After(10 * retryGap):
			t.Fatalf("no read %d within %v: the loop did not try the flow again", want, 10*retryGap)
		}
	}
	if d := time.Since(start); d < retryGap {
		t.Errorf("tried again after %v; want retryGap, %v", d, retryGap)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		a.mu.Lock()
		owner := a.flows[fl].owner
		a.mu.Unlock()
		if owner == server {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the flow's owner %+v; want %+v", owner, server)
		}
	}
}
