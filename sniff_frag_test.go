package main

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// frag6Layer serializes an IPv6 fragment header, which gopacket's
// IPv6Fragment cannot.
type frag6Layer struct {
	next   layers.IPProtocol
	offset uint16 // in 8-byte units
	more   bool
	id     uint32
}

func (l *frag6Layer) LayerType() gopacket.LayerType { return layers.LayerTypeIPv6Fragment }

func (l *frag6Layer) SerializeTo(b gopacket.SerializeBuffer, _ gopacket.SerializeOptions) error {
	h, err := b.PrependBytes(8)
	if err != nil {
		return err
	}
	h[0], h[1] = byte(l.next), 0
	f := l.offset << 3
	if l.more {
		f |= 1
	}
	binary.BigEndian.PutUint16(h[2:], f)
	binary.BigEndian.PutUint32(h[4:], l.id)
	return nil
}

// fragSpec is one fragment of a datagram: offset 0 carries the transport
// header (sport and dport; proto says which), a later one 8 * offset bytes
// of the datagram's data.
type fragSpec struct {
	v6           bool
	src, dst     string
	proto        layers.IPProtocol
	id           uint32
	offset       uint16 // in 8-byte units
	more         bool
	sport, dport uint16
	ifindex      int
}

// frame builds the Ethernet frame of the fragment with gopacket.
func (s fragSpec) frame(t testing.TB) frame {
	t.Helper()
	payload := gopacket.Payload(make([]byte, 96))
	var ls []gopacket.SerializableLayer
	if s.v6 {
		ls = append(ls, ip6(s.src, s.dst, layers.IPProtocolIPv6Fragment),
			&frag6Layer{next: s.proto, offset: s.offset, more: s.more, id: s.id})
	} else {
		ip := ip4(s.src, s.dst, s.proto)
		ip.Id, ip.FragOffset = uint16(s.id), s.offset
		if s.more {
			ip.Flags = layers.IPv4MoreFragments
		}
		ls = append(ls, ip)
	}
	if s.offset == 0 {
		switch s.proto {
		case layers.IPProtocolUDP:
			ls = append(ls, &layers.UDP{SrcPort: layers.UDPPort(s.sport), DstPort: layers.UDPPort(s.dport)})
		case layers.IPProtocolTCP:
			ls = append(ls, &layers.TCP{SrcPort: layers.TCPPort(s.sport), DstPort: layers.TCPPort(s.dport), ACK: true})
		case layers.IPProtocolICMPv4:
			ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)})
		case layers.IPProtocolIPv4:
			// An inner header gopacket refuses (header length 0) after it
			// has read its fields: a later fragment's.
			ls = append(ls, gopacket.Payload{0x40, 0, 0, 40, 0, 0, 0x20, 16, 64, 17, 0, 0, 192, 0, 2, 9, 192, 0, 2, 10})
		}
	}
	data := ethFrame(t, append(ls, payload)...)
	return frame{ifindex: s.ifindex, dir: dirIn, length: len(data), data: data}
}

// datagram returns the specs of the three fragments of a datagram from
// src:sport to dst:dport.
func datagram(v6 bool, src, dst string, proto layers.IPProtocol, id uint32, sport, dport uint16) []fragSpec {
	first := fragSpec{v6: v6, src: src, dst: dst, proto: proto, id: id, more: true, sport: sport, dport: dport}
	mid, last := first, first
	mid.offset = 185
	last.offset, last.more = 370, false
	return []fragSpec{first, mid, last}
}

// describe says what a decoded packet is, for got/want.
func describe(p *packet) string {
	switch {
	case p.ok && p.fragment:
		return fmt.Sprintf("both ok and fragment: %d %v %v", p.proto, p.src, p.dst)
	case p.ok:
		return fmt.Sprintf("%d %v %v", p.proto, p.src, p.dst)
	case p.fragment:
		return "fragment"
	}
	return "no flow"
}

func TestDecodeFragments(t *testing.T) {
	const (
		a4, b4, c4 = "192.0.2.1", "198.51.100.7", "203.0.113.9"
		a6, b6, c6 = "2001:db8::1", "2001:db8:1::7", "2001:db8:2::9"
	)
	udp, tcp := layers.IPProtocolUDP, layers.IPProtocolTCP
	d4 := datagram(false, a4, b4, udp, 0x1234, 5353, 53)
	d6 := datagram(true, a6, b6, udp, 0xabcd1234, 5353, 53)
	flow4, flow6 := "17 192.0.2.1:5353 198.51.100.7:53", "17 [2001:db8::1]:5353 [2001:db8:1::7]:53"
	e4 := datagram(false, a4, b4, udp, 0x1235, 4000, 4001) // the same ends, the next id
	e6 := datagram(true, a6, b6, udp, 0xabcd1235, 4000, 4001)
	eflow4, eflow6 := "17 192.0.2.1:4000 198.51.100.7:4001", "17 [2001:db8::1]:4000 [2001:db8:1::7]:4001"

	// with changes a fragment spec.
	with := func(s fragSpec, f func(*fragSpec)) fragSpec { f(&s); return s }
	tests := []struct {
		name   string
		frames []fragSpec
		want   []string
	}{
		{"ipv4 three fragments", []fragSpec{d4[0], d4[1], d4[2]}, []string{flow4, flow4, flow4}},
		{"ipv6 three fragments", []fragSpec{d6[0], d6[1], d6[2]}, []string{flow6, flow6, flow6}},
		{"ipv4 after the last", []fragSpec{d4[0], d4[2], d4[1]}, []string{flow4, flow4, "fragment"}},
		{"ipv6 after the last", []fragSpec{d6[0], d6[2], d6[1]}, []string{flow6, flow6, "fragment"}},
		{"ipv4 later alone", []fragSpec{d4[1], d4[2]}, []string{"fragment", "fragment"}},
		{"ipv6 later alone", []fragSpec{d6[1], d6[2]}, []string{"fragment", "fragment"}},
		{"ipv4 before the first", []fragSpec{d4[1], d4[0], d4[2]}, []string{"fragment", flow4, flow4}},
		{"ipv4 interleaved", []fragSpec{d4[0], e4[0], e4[1], d4[1], d4[2], e4[2]},
			[]string{flow4, eflow4, eflow4, flow4, flow4, eflow4}},
		{"ipv6 interleaved", []fragSpec{d6[0], e6[0], e6[1], d6[1], d6[2], e6[2]},
			[]string{flow6, eflow6, eflow6, flow6, flow6, eflow6}},
		{"ipv4 same id, other ends", []fragSpec{d4[0],
			with(d4[1], func(s *fragSpec) { s.dst = c4 }),
			with(d4[1], func(s *fragSpec) { s.src = c4 }),
			with(d4[1], func(s *fragSpec) { s.src, s.dst = b4, a4 }),
			with(d4[1], func(s *fragSpec) { s.proto = tcp }),
			with(d4[1], func(s *fragSpec) { s.ifindex = 2 }),
			d4[1]},
			[]string{flow4, "fragment", "fragment", "fragment", "fragment", "fragment", flow4}},
		{"ipv6 same id, other ends", []fragSpec{d6[0],
			with(d6[1], func(s *fragSpec) { s.dst = c6 }),
			with(d6[1], func(s *fragSpec) { s.src = c6 }),
			with(d6[1], func(s *fragSpec) { s.proto = tcp }),
			with(d6[1], func(s *fragSpec) { s.id = 0x1234 }),
			d6[1]},
			[]string{flow6, "fragment", "fragment", "fragment", "fragment", flow6}},
		// IPv4-mapped IPv6 addresses decode as IPv4 ones, but it is another datagram.
		{"ipv4 and ipv6 same id", []fragSpec{datagram(false, a4, b4, udp, 7, 1, 2)[0], datagram(true, "::ffff:"+a4, "::ffff:"+b4, udp, 7, 1, 2)[1]},
			[]string{"17 192.0.2.1:1 198.51.100.7:2", "fragment"}},
		{"ipv4 tcp", datagram(false, a4, b4, tcp, 9, 40000, 443),
			[]string{"6 192.0.2.1:40000 198.51.100.7:443", "6 192.0.2.1:40000 198.51.100.7:443", "6 192.0.2.1:40000 198.51.100.7:443"}},
		{"ipv6 tcp", datagram(true, a6, b6, tcp, 9, 40000, 443),
			[]string{"6 [2001:db8::1]:40000 [2001:db8:1::7]:443", "6 [2001:db8::1]:40000 [2001:db8:1::7]:443", "6 [2001:db8::1]:40000 [2001:db8:1::7]:443"}},
		// The later fragments of a big ping count where its first does.
		{"ipv4 icmp", datagram(false, a4, b4, layers.IPProtocolICMPv4, 11, 0, 0), []string{"no flow", "no flow", "no flow"}},
		{"ipv4 icmp later alone", datagram(false, a4, b4, layers.IPProtocolICMPv4, 11, 0, 0)[1:], []string{"no flow", "no flow"}},
		{"ipv6 icmp later alone", datagram(true, a6, b6, layers.IPProtocolICMPv6, 11, 0, 0)[1:], []string{"no flow", "no flow"}},
		{"ipv6 destination options later alone", datagram(true, a6, b6, layers.IPProtocolIPv6Destination, 11, 0, 0)[1:], []string{"fragment", "fragment"}},
		// FuzzDecode found the inner header's fields taken for the outer's.
		{"ipv4 bad header inside", datagram(false, a4, b4, layers.IPProtocolIPv4, 12, 0, 0), []string{"no flow", "no flow", "no flow"}},
		// An atomic fragment is a whole datagram: nothing to remember.
		{"ipv6 atomic", []fragSpec{with(d6[0], func(s *fragSpec) { s.more = false }), d6[1]}, []string{flow6, "fragment"}},
		{"first sent again", []fragSpec{d4[0], with(d4[0], func(s *fragSpec) { s.sport = 6000 }), d4[1]},
			[]string{flow4, "17 192.0.2.1:6000 198.51.100.7:53", "17 192.0.2.1:6000 198.51.100.7:53"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newDecoder()
			for i, s := range tt.frames {
				f := s.frame(t)
				var p packet
				d.decode(&f, &p)
				if got := describe(&p); got != tt.want[i] || p.length != f.length {
					t.Errorf("frame %d (offset %d, more %v): got %q, length %d; want %q, %d", i, s.offset, s.more, got, p.length, tt.want[i], f.length)
				}
			}
		})
	}
}

// TestFragmentBound fills the table past its size: the oldest datagram is
// forgotten, the rest are still matched.
func TestFragmentBound(t *testing.T) {
	d := newDecoder()
	var p packet
	n := fragSlots + 1
	for id := range n {
		f := datagram(false, "192.0.2.1", "198.51.100.7", layers.IPProtocolUDP, uint32(id), 1, 2)[0].frame(t)
		d.decode(&f, &p)
	}
	for _, tt := range []struct {
		id   int
		want string
	}{
		{0, "fragment"},
		{1, "17 192.0.2.1:1 198.51.100.7:2"},
		{n / 2, "17 192.0.2.1:1 198.51.100.7:2"},
		{n - 1, "17 192.0.2.1:1 198.51.100.7:2"},
	} {
		f := datagram(false, "192.0.2.1", "198.51.100.7", layers.IPProtocolUDP, uint32(tt.id), 1, 2)[1].frame(t)
		d.decode(&f, &p)
		if got := describe(&p); got != tt.want {
			t.Errorf("later fragment of datagram %d of %d: got %q, want %q", tt.id, n, got, tt.want)
		}
	}
}

// TestFragmentAge checks that an entry is good for fragMaxAge after its
// first fragment, and no longer.
func TestFragmentAge(t *testing.T) {
	d := newDecoder()
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	d.now = func() time.Time { return now }
	dg := datagram(true, "2001:db8::1", "2001:db8:1::7", layers.IPProtocolUDP, 1, 1, 2)
	for _, tt := range []struct {
		after time.Duration // since the first fragment
		spec  fragSpec
		want  string
	}{
		{0, dg[0], "17 [2001:db8::1]:1 [2001:db8:1::7]:2"},
		{fragMaxAge, dg[1], "17 [2001:db8::1]:1 [2001:db8:1::7]:2"},
		{fragMaxAge + time.Second, dg[1], "fragment"},
	} {
		now = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).Add(tt.after)
		f := tt.spec.frame(t)
		var p packet
		d.decode(&f, &p)
		if got := describe(&p); got != tt.want {
			t.Errorf("%v after the first fragment: got %q, want %q", tt.after, got, tt.want)
		}
	}
}

// TestFragTableChurn adds and removes datagrams at random, with the table
// full, so that probe runs are long and removals move entries, and checks
// after each step that the index and the ring agree: every live entry is
// found where the index says, nothing else is in the index, and what was
// just added is there and what was just removed is not.
func TestFragTableChurn(t *testing.T) {
	tb := &fragTable{}
	r := rand.New(rand.NewPCG(1, 2))
	for step := range 20000 {
		k := fragKey{id: r.Uint32N(3 * fragSlots), proto: 17}
		if r.IntN(3) == 0 {
			if s := tb.find(k, 0); s >= 0 {
				tb.clear(s)
			}
			if s := tb.find(k, 0); s >= 0 {
				t.Fatalf("step %d: removed %d, find gives index slot %d, want -1", step, k.id, s)
			}
		} else {
			tb.add(fragEntry{key: k, proto: 17})
			if s := tb.find(k, 0); s < 0 || tb.ents[tb.index[s]-1].key != k {
				t.Fatalf("step %d: added %d, find gives index slot %d, want its slot", step, k.id, s)
			}
		}
		live := 0
		for i := range tb.ents {
			if !tb.ents[i].live {
				continue
			}
			live++
			if s := tb.find(tb.ents[i].key, 0); s < 0 || int(tb.index[s])-1 != i {
				t.Fatalf("step %d: entry %d at ring slot %d: find gives index slot %d", step, tb.ents[i].key.id, i, s)
			}
		}
		used := 0
		for _, x := range tb.index {
			if x != 0 {
				used++
			}
		}
		if used != live {
			t.Fatalf("step %d: %d index slots used, %d live entries", step, used, live)
		}
	}
}

// TestDecodeFragmentAllocs checks that fragments, first, later or
// unmatched, are decoded without allocating, after the table is made.
func TestDecodeFragmentAllocs(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		src, dst := "192.0.2.1", "198.51.100.7"
		if v6 {
			src, dst = "2001:db8::1", "2001:db8:1::7"
		}
		dg := datagram(v6, src, dst, layers.IPProtocolUDP, 1, 1, 2)
		first, mid, last := dg[0].frame(t), dg[1].frame(t), dg[2].frame(t)
		other := datagram(v6, src, dst, layers.IPProtocolUDP, 2, 1, 2)[1].frame(t)
		d := newDecoder()
		var p packet
		d.decode(&first, &p) // makes the table
		for _, tt := range []struct {
			name string
			f    func()
		}{
			{"first", func() { d.decode(&first, &p) }},
			{"later", func() { d.decode(&mid, &p) }},
			{"unmatched", func() { d.decode(&other, &p) }},
			{"datagram", func() { d.decode(&first, &p); d.decode(&mid, &p); d.decode(&last, &p) }},
		} {
			if n := testing.AllocsPerRun(100, tt.f); n != 0 {
				t.Errorf("ipv6 %v, %s: got %v allocations, want 0", v6, tt.name, n)
			}
		}
	}
}

// BenchmarkDecode measures decoding an unfragmented UDP frame, and the
// fragments of a UDP datagram: the first (remembered), a later one
// (matched), and one whose first was not seen.
func BenchmarkDecode(b *testing.B) {
	for _, v6 := range []bool{false, true} {
		src, dst, name := "192.0.2.1", "198.51.100.7", "ipv4"
		plain := ethFrame(b, ip4(src, dst, layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload(make([]byte, 96)))
		if v6 {
			src, dst, name = "2001:db8::1", "2001:db8:1::7", "ipv6"
			plain = ethFrame(b, ip6(src, dst, layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2}, gopacket.Payload(make([]byte, 96)))
		}
		dg := datagram(v6, src, dst, layers.IPProtocolUDP, 1, 1, 2)
		frames := []struct {
			name string
			f    frame
		}{
			{"plain", frame{length: len(plain), data: plain}},
			{"first", dg[0].frame(b)},
			{"later", dg[1].frame(b)},
			{"unmatched", datagram(v6, src, dst, layers.IPProtocolUDP, 2, 1, 2)[1].frame(b)},
		}
		d := newDecoder()
		var p packet
		d.decode(&frames[1].f, &p) // the first fragment, for "later"
		for _, fr := range frames {
			b.Run(name+"_"+fr.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					d.decode(&fr.f, &p)
				}
			})
		}
	}
}
