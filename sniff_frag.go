package main

// IP fragments. Only the first fragment of a datagram carries the
// transport header, so the decoder remembers, for each datagram whose first
// fragment it saw, the flow that fragment had, and gives it to the later
// fragments, which would otherwise land in "(not TCP/UDP)": every UDP
// datagram larger than the path's MTU is sent as fragments.
//
// Known limits: a fragment that arrives before its first fragment is not
// matched (the table would have to hold fragments back, and netuse counts
// each frame as it comes); nor is one that arrives after the last fragment
// of its datagram, which ends the entry. A datagram fragmented outside a
// tunnel (IP in IP) is not remembered: its first fragment counts to the
// inner flow, the later ones, which hold no inner header, as unmatched.

import (
	"hash/maphash"
	"net/netip"
	"time"
)

const (
	// fragSlots is how many datagrams the table remembers at once; a new
	// first fragment pushes out the oldest.
	fragSlots = 1024
	// fragMaxAge is how long an entry stays good: the default of Linux's
	// net.ipv4.ipfrag_time and net.ipv6.ip6frag_time, after which the
	// kernel gives up reassembling a datagram.
	fragMaxAge = 30 * time.Second
)

// fragment handles a frame whose last IP header has fragment fields: the
// IPv4 header (v6 false) or the IPv6 fragment header after the last IPv6
// header (v6 true); src and dst are that header's addresses. It remembers a
// first fragment with its flow, or the lack of one, and gives a later
// fragment the flow of its first, or marks it as unmatched.
func (d *decoder) fragment(f *frame, p *packet, v6 bool, src, dst netip.Addr) {
	k := fragKey{ifindex: int32(f.ifindex), v6: v6}
	var offset uint16
	var more bool
	if v6 {
		k.src, k.dst, k.id, k.proto = d.ip6.src, d.ip6.dst, d.ip6frag.id, uint8(d.ip6frag.next)
		offset, more = d.ip6frag.offset, d.ip6frag.more
	} else {
		copy(k.src[:], d.ip4.src[:])
		copy(k.dst[:], d.ip4.dst[:])
		k.id, k.proto = uint32(d.ip4.id), uint8(d.ip4.proto)
		offset, more = d.ip4.offset, d.ip4.more
	}
	if offset == 0 && !more {
		return // an IPv6 atomic fragment: a whole datagram (RFC 6946)
	}
	// The clock is read here, for fragments only, not per frame: the
	// decoder sees one frame at a time and knows no batch, and the other
	// frames never touch the table. An owner with a clock of its batch may
	// set d.now to read that instead (a clock read is ~45 ns).
	now := d.now()
	if d.frags == nil {
		d.frags = &fragTable{seed: maphash.MakeSeed(), epoch: now} // once per decoder
	}
	t := d.frags
	age := now.Sub(t.epoch)
	if offset == 0 {
		// Remembered even without a flow (ICMP, a cut TCP header), so that
		// the later fragments count where the first did.
		e := fragEntry{key: k, seen: age}
		if p.ok {
			e.proto, e.sport, e.dport = p.proto, p.src.Port(), p.dst.Port()
		}
		t.add(e)
		return
	}
	s := t.find(k, age)
	if s < 0 {
		// Of a datagram that is not TCP or UDP (a big ping), the fragment
		// counts as its first would have: not TCP/UDP.
		p.fragment = mayCarryPorts(k.proto, v6)
		return
	}
	if e := &t.ents[t.index[s]-1]; e.proto != 0 {
		p.ok, p.proto = true, e.proto
		p.src, p.dst = netip.AddrPortFrom(src, e.sport), netip.AddrPortFrom(dst, e.dport)
	}
	if !more {
		t.clear(s)
	}
}

// mayCarryPorts says whether a datagram whose fragmentable part starts
// with header proto may be TCP or UDP: it is, or it is an IPv6 extension
// header that may come before them in that part (RFC 8200 4.1).
func mayCarryPorts(proto uint8, v6 bool) bool {
	switch proto {
	case 6, 17:
		return true
	case 43, 60: // routing, destination options
		return v6
	}
	return false
}

// fragKey names a datagram as reassembly does (RFC 791, RFC 8200 4.5),
// and by interface too: a forwarded or bridged datagram passes two, each
// with its own last fragment.
type fragKey struct {
	src, dst [16]byte // IPv4 addresses in the first 4 bytes
	id       uint32   // IPv4's 16-bit identification, or IPv6's 32-bit one
	ifindex  int32
	proto    uint8 // IPv4's protocol, or the fragment header's next header
	v6       bool
}

// fragEntry is a datagram whose first fragment was seen.
type fragEntry struct {
	key          fragKey
	seen         time.Duration // when the first fragment came, since the table's epoch
	home         uint16        // the key's slot in index before probing
	live         bool          // false: a free ring slot
	proto        uint8         // 6 TCP, 17 UDP; 0: the first fragment had no flow
	sport, dport uint16
}

// fragTable is a fixed-size hash table: a ring of entries in the order
// their first fragments came, and an index into it with linear probing.
// Nothing in it grows, so it never allocates after it is made; a Go map
// under the same churn rehashes now and then, and allocates.
type fragTable struct {
	epoch time.Time             // first, so that the collector scans no further: the rest holds no pointer
	seed  maphash.Seed          // random, so that no one can aim fragments at one probe run
	next  int                   // the ring slot to fill next, the oldest
	index [2 * fragSlots]uint16 // a ring slot + 1, or 0: empty; never more than half full
	ents  [fragSlots]fragEntry
}

func (t *fragTable) home(k fragKey) int {
	return int(maphash.Comparable(t.seed, k) & uint64(len(t.index)-1))
}

// slot finds k, whose home slot is home, in the index: its slot and true,
// or the empty slot that ends its probe run and false.
func (t *fragTable) slot(k fragKey, home int) (int, bool) {
	const mask = len(t.index) - 1
	for s := home; ; s = (s + 1) & mask {
		switch i := t.index[s]; {
		case i == 0:
			return s, false
		case t.ents[i-1].key == k:
			return s, true
		}
	}
}

// add remembers e, in place of an entry of the same datagram (a first
// fragment sent again) and of the oldest entry.
func (t *fragTable) add(e fragEntry) {
	h := t.home(e.key)
	if s, ok := t.slot(e.key, h); ok {
		t.clear(s)
	}
	if old := &t.ents[t.next]; old.live {
		s, _ := t.slot(old.key, int(old.home))
		t.clear(s)
	}
	s, _ := t.slot(e.key, h) // again: clear may have moved the end of the run
	e.home, e.live = uint16(h), true
	t.ents[t.next] = e
	t.index[s] = uint16(t.next + 1)
	t.next = (t.next + 1) % fragSlots
}

// find returns the index slot of k's entry, or -1 if there is none
// younger than fragMaxAge at age now.
func (t *fragTable) find(k fragKey, now time.Duration) int {
	s, ok := t.slot(k, t.home(k))
	if !ok {
		return -1
	}
	if now-t.ents[t.index[s]-1].seen > fragMaxAge {
		t.clear(s)
		return -1
	}
	return s
}

// clear forgets the entry at index slot s. Deleting from linear probing
// leaves no marker: the entries after the hole in its probe run move back
// into it, where a lookup, which stops at an empty slot, still finds them.
func (t *fragTable) clear(s int) {
	const mask = len(t.index) - 1
	t.ents[t.index[s]-1].live = false
	t.index[s] = 0
	for j := (s + 1) & mask; t.index[j] != 0; j = (j + 1) & mask {
		// The entry at j may fill the hole at s unless its home lies
		// (cyclically) in (s, j]: then a lookup never passes s.
		h := int(t.ents[t.index[j]-1].home)
		if (j-h)&mask >= (j-s)&mask {
			t.index[s], t.index[j] = t.index[j], 0
			s = j
		}
	}
}
