package main

// Fuzz targets for the parsers of outside data that every platform builds:
// the frame decoder, the SYN filter that picks frames for it, and the
// --interval parser. The Linux parsers of /proc, sock_diag, conntrack and
// the capture ring are in fuzz_linux_test.go.
//
// The seeds are in testdata/fuzz/FuzzXxx, which plain go test replays. The
// named ones are written by
//
//	go test -fuzzseeds .
//
// from the frames and lines built below; those the fuzzer adds are named by
// their hash. Run one target for a while with, for example:
//
//	go test -run '^$' -fuzz '^FuzzDecode$' -fuzztime 5m -parallel 1 .

import (
	"encoding/binary"
	"flag"
	"fmt"
	"maps"
	"math"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/bpf"
)

// fuzzSeeds makes TestMain write the named seeds (writeSeeds) instead of
// running the tests.
var fuzzSeeds = flag.Bool("fuzzseeds", false, "rewrite the named seeds in testdata/fuzz, and run no test")

// FuzzDecode decodes a frame as the capture hands it over, Ethernet or raw
// IP, and checks that the packet keeps the frame's length and direction,
// that a packet without a flow has no flow fields, that a flow is TCP or UDP
// between two valid addresses of one family, that it finds a flow exactly
// when a second, plain reading of the frame (refDecode) does, and the same
// one, that a fragment after the first is marked unmatched exactly when
// that reading finds one, and that decoding a frame with a flow, or a
// fragment, allocates nothing.
//
// Each input gets a decoder of its own: the decoder remembers first
// fragments, so with one decoder for all a later fragment would take the
// flow of a first fragment from an earlier input, and a finding would not
// replay from its input alone. Matching fragments across frames is tested
// in sniff_frag_test.go.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, rawIP bool, proto uint16, length uint32, dir byte) {
		d := newDecoder()
		fr := frame{dir: direction(dir % 3), rawIP: rawIP, proto: proto, length: int(length), data: data}
		var p packet
		d.decode(&fr, &p)
		if p.length != fr.length || p.length < 0 || p.dir != fr.dir {
			t.Fatalf("decode kept length %d, dir %d of a frame of length %d, dir %d", p.length, p.dir, fr.length, fr.dir)
		}
		if !p.ok {
			if p.proto != 0 || p.src != (netip.AddrPort{}) || p.dst != (netip.AddrPort{}) {
				t.Fatalf("a packet without a flow has flow fields: %d %v %v", p.proto, p.src, p.dst)
			}
		} else {
			checkFlow(t, p.proto, p.src, p.dst)
		}

		verdict, want := refDecode(data, rawIP, proto)
		// A fresh decoder has seen no first fragment to match.
		if p.fragment != (verdict == refLater) && verdict != refUnsure {
			t.Fatalf("decoded fragment %v, ok %v; the reference says later fragment %v", p.fragment, p.ok, verdict == refLater)
		}
		// Both ways: a flow the decoder finds, the reference must find too,
		// and a flow the reference finds, the decoder must find; a decoder
		// that gave up on every frame would pass a one-way check. The
		// differences that are meant are not here but in refDecode, each
		// where it arises: a later fragment (refLater: no transport header
		// to read, sniff_frag.go matches it), an IPv4-mapped address on one
		// end only (refNone: no socket has such a flow), a jumbogram (the
		// length is in the hop-by-hop option, as ipv6Header reads it), and
		// frames that readers may take either way (refUnsure), which are
		// checked for nothing but the flow's shape above.
		switch {
		case verdict == refUnsure:
		case verdict == refFlow && !p.ok:
			t.Fatalf("decoded no flow from a frame that carries %d %v -> %v", want.proto, want.src, want.dst)
		case !p.ok:
		case verdict == refNone || verdict == refLater:
			t.Fatalf("decoded flow %d %v -> %v from a frame that has none", p.proto, p.src, p.dst)
		case p.proto != want.proto || p.src != want.src || p.dst != want.dst:
			t.Fatalf("decoded flow %d %v -> %v, want %d %v -> %v", p.proto, p.src, p.dst, want.proto, want.src, want.dst)
		}

		// The frame again: a first fragment it remembered, or a later one
		// it did not match, decodes as before.
		q := p
		if d.decode(&fr, &p); p != q {
			t.Fatalf("decoded %+v, then %+v from the same frame", q, p)
		}

		if p.ok || p.fragment {
			// AllocsPerRun averages with integer division: a stray allocation
			// by another goroutine does not count. The fragment table, made
			// once per decoder, was made by the decode above.
			if n := testing.AllocsPerRun(50, func() { d.decode(&fr, &p) }); n != 0 {
				t.Fatalf("decoding a frame with a flow, or a fragment, allocates %v times", n)
			}
		}
	})
}

// checkFlow checks what every decoded flow must be: TCP or UDP between two
// valid addresses of one family, IPv4 never as IPv4-mapped IPv6, no zone.
func checkFlow(t *testing.T, proto uint8, src, dst netip.AddrPort) {
	t.Helper()
	if proto != 6 && proto != 17 {
		t.Fatalf("a flow of protocol %d, want 6 or 17", proto)
	}
	for _, a := range []netip.Addr{src.Addr(), dst.Addr()} {
		if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
			t.Fatalf("flow %v -> %v: address %v is invalid, IPv4-mapped or zoned", src, dst, a)
		}
	}
	if src.Addr().Is4() != dst.Addr().Is4() {
		t.Fatalf("flow %v -> %v mixes families", src, dst)
	}
}

// refVerdict is what refDecode makes of a frame.
type refVerdict int

const (
	refNone   refVerdict = iota // no TCP or UDP header can be read from it
	refFlow                     // it carries this flow
	refLater                    // a fragment after the first, of what may be TCP or UDP: no transport header
	refUnsure                   // malformed in a way that readers may take differently
)

// refDecode reads a frame the plain way, from the RFCs (894, 802.1Q, 791,
// 8200, 2675, 793, 768), with no code shared with gopacket: Ethernet and
// VLAN tags, IPv4, IPv6 with its extension headers, IP in IP, TCP and UDP.
// The first fragment of a datagram carries the transport header; a later
// one has none.
func refDecode(data []byte, rawIP bool, proto uint16) (refVerdict, packet) {
	et := proto
	if !rawIP {
		if len(data) < 14 {
			return refNone, packet{}
		}
		et, data = binary.BigEndian.Uint16(data[12:]), data[14:]
		for et == 0x8100 || et == 0x88a8 { // 802.1Q, 802.1ad
			if len(data) < 4 {
				return refNone, packet{}
			}
			et, data = binary.BigEndian.Uint16(data[2:]), data[4:]
		}
	}
	switch et {
	case 0x0800:
		return ref4(data, 0)
	case 0x86dd:
		return ref6(data, 0)
	}
	return refNone, packet{}
}

func ref4(b []byte, depth int) (refVerdict, packet) {
	if len(b) < 20 || depth > 8 {
		return refNone, packet{}
	}
	if b[0]>>4 != 4 {
		return refUnsure, packet{} // a version gopacket does not check
	}
	hl, total := int(b[0]&0xf)*4, int(binary.BigEndian.Uint16(b[2:]))
	if total == 0 {
		total = len(b) // TCP segmentation offload, and IPv4 BIG TCP, leave it 0
	}
	if hl < 20 || hl > total || hl > len(b) {
		return refNone, packet{}
	}
	if !options4(b[20:hl]) {
		return refUnsure, packet{}
	}
	if total < len(b) {
		b = b[:total]
	}
	if binary.BigEndian.Uint16(b[6:])&0x1fff != 0 { // an offset: not the first fragment
		if b[9] == 6 || b[9] == 17 {
			return refLater, packet{}
		}
		return refNone, packet{}
	}
	src, dst := netip.AddrFrom4([4]byte(b[12:16])), netip.AddrFrom4([4]byte(b[16:20]))
	return refNext(b[9], b[hl:], src, dst, depth)
}

func ref6(b []byte, depth int) (refVerdict, packet) {
	if len(b) < 40 || depth > 8 {
		return refNone, packet{}
	}
	if b[0]>>4 != 6 {
		return refUnsure, packet{}
	}
	plen, next := int(binary.BigEndian.Uint16(b[4:])), b[6]
	src := netip.AddrFrom16([16]byte(b[8:24])).Unmap()
	dst := netip.AddrFrom16([16]byte(b[24:40])).Unmap()
	if src.Is4() != dst.Is4() {
		return refNone, packet{} // one IPv4-mapped address: no socket has such a flow
	}
	b = b[40:]
	if plen == 0 {
		// A jumbogram (RFC 2675): the length is in the hop-by-hop header's
		// jumbo option, and counts that header.
		if next != 0 {
			return refNone, packet{}
		}
		jumbo, ok := jumboLength(b)
		if !ok {
			return refUnsure, packet{}
		}
		plen = jumbo
	}
	if plen < len(b) {
		b = b[:plen]
	}
	for range 16 {
		switch next {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if len(b) < 2 || len(b) < (int(b[1])+1)*8 {
				return refNone, packet{}
			}
			next, b = b[0], b[(int(b[1])+1)*8:]
		case 44: // fragment: always 8 bytes
			if len(b) < 8 {
				return refNone, packet{}
			}
			if binary.BigEndian.Uint16(b[2:])>>3 != 0 {
				switch b[0] { // the first header of the datagram's fragmentable part
				case 6, 17, 43, 60:
					return refLater, packet{}
				}
				return refNone, packet{}
			}
			next, b = b[0], b[8:] // b[1] is reserved, ignored on receipt
		default:
			return refNext(next, b, src, dst, depth)
		}
	}
	return refUnsure, packet{}
}

// options4 says whether IPv4 options are well formed (RFC 791 3.1): End
// and No Operation of one byte, the others type, length (more than 2:
// readers differ on an option without data) and data, within the header.
func options4(b []byte) bool {
	for len(b) > 0 {
		switch b[0] {
		case 0:
			return true
		case 1:
			b = b[1:]
			continue
		}
		if len(b) < 2 || b[1] <= 2 || int(b[1]) > len(b) {
			return false
		}
		b = b[b[1]:]
	}
	return true
}

// jumboLength finds the jumbo payload length in a hop-by-hop header.
func jumboLength(hbh []byte) (int, bool) {
	if len(hbh) < 2 || len(hbh) < (int(hbh[1])+1)*8 {
		return 0, false
	}
	opts := hbh[2 : (int(hbh[1])+1)*8]
	for len(opts) > 0 {
		if opts[0] == 0 { // Pad1
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || len(opts) < 2+int(opts[1]) {
			return 0, false
		}
		if opts[0] == 0xc2 && opts[1] == 4 {
			n := binary.BigEndian.Uint32(opts[2:])
			return int(n), n > 65535
		}
		opts = opts[2+int(opts[1]):]
	}
	return 0, false
}

// refNext reads the transport header, or an IP header inside IP.
func refNext(proto uint8, b []byte, src, dst netip.Addr, depth int) (refVerdict, packet) {
	switch proto {
	case 6:
		if len(b) < 20 || b[12]>>4 < 5 || int(b[12]>>4)*4 > len(b) {
			return refNone, packet{}
		}
	case 17:
		if len(b) < 8 {
			return refNone, packet{}
		}
		// A length of 1 to 7 is shorter than the header itself: no UDP
		// datagram (RFC 768); Linux drops it (udp_rcv's short_packet) and
		// gopacket refuses it. 0 is read as "the rest" by gopacket and
		// here, as an IPv6 jumbogram needs (RFC 2675 4); over IPv4 Linux
		// drops it, but its bytes did cross the wire in that flow.
		if n := binary.BigEndian.Uint16(b[4:]); n > 0 && n < 8 {
			return refNone, packet{}
		}
	case 4:
		return ref4(b, depth+1)
	case 41:
		return ref6(b, depth+1)
	case 94: // IPIP, the older number: gopacket reads IPv4 in it
		return refUnsure, packet{}
	default:
		return refNone, packet{}
	}
	return refFlow, packet{proto: proto, ok: true,
		src: netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:])),
		dst: netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:]))}
}

// FuzzSynFilter runs the classic BPF program that picks connection
// openings and checks it against the decoder: a frame it keeps, if it
// decodes as TCP at all, is a SYN without ACK; a SYN without ACK in plain
// Ethernet + IPv4 or IPv6 + TCP is kept.
func FuzzSynFilter(f *testing.F) {
	vm, err := bpf.NewVM(synFilter)
	if err != nil {
		f.Fatal(err)
	}
	d := newDecoder()
	// plain: Ethernet, then IPv4 (not a later fragment) or IPv6, then TCP.
	plain := func(b []byte) bool {
		switch {
		case len(b) < 14:
			return false
		case b[12] == 0x08 && b[13] == 0x00:
			return len(b) >= 34 && b[14]>>4 == 4 && b[23] == 6 && b[20]&0x1f == 0 && b[21] == 0
		case b[12] == 0x86 && b[13] == 0xdd:
			return len(b) >= 54 && b[20] == 6
		}
		return false
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keep, err := vm.Run(data)
		if err != nil {
			t.Fatalf("filter: %v", err)
		}
		if keep != 0 && keep != snapLen {
			t.Fatalf("filter returned %d, want 0 or %d", keep, snapLen)
		}
		fr := frame{length: len(data), data: data}
		var p packet
		d.decode(&fr, &p)
		syn := p.ok && p.proto == 6 && d.tcpFlags&0x12 == 0x02 // SYN without ACK
		if keep > 0 && p.ok && !syn {
			t.Fatalf("filter keeps a frame that is not a connection opening: %d %v -> %v", p.proto, p.src, p.dst)
		}
		if keep == 0 && syn && plain(data) {
			t.Fatalf("filter drops the connection opening %v -> %v", p.src, p.dst)
		}
	})
}

// FuzzParseInterval checks --interval: a value it takes is more than 0; it
// agrees with time.ParseDuration where that takes the value; an error
// quotes the input; and plain seconds are read to the nearest nanosecond,
// within what a float64 can hold.
func FuzzParseInterval(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseInterval(s)
		var iv interval
		if uerr := iv.UnmarshalText([]byte(s)); (uerr == nil) != (err == nil) || time.Duration(iv) != d {
			t.Fatalf("UnmarshalText(%q) = %v, %v; parseInterval = %v, %v", s, time.Duration(iv), uerr, d, err)
		}
		gd, gerr := time.ParseDuration(s)
		if err != nil {
			if d != 0 || !strings.Contains(err.Error(), strconv.Quote(s)) {
				t.Fatalf("parseInterval(%q) = %v, %q; want 0 and an error that quotes the input", s, d, err)
			}
			if gerr == nil && gd > 0 {
				t.Fatalf("parseInterval(%q) refuses the Go duration %v: %v", s, gd, err)
			}
			return
		}
		if d <= 0 {
			t.Fatalf("parseInterval(%q) = %v, want more than 0", s, d)
		}
		if gerr == nil {
			if gd != d {
				t.Fatalf("parseInterval(%q) = %v, time.ParseDuration says %v", s, d, gd)
			}
			return
		}
		// Plain seconds: compare with the exact value, where big.Rat reads it.
		r, ok := new(big.Rat).SetString(s)
		if !ok || strings.ContainsAny(s, "xXpP_") {
			return
		}
		exact, _ := new(big.Rat).Mul(r, big.NewRat(1e9, 1)).Float64()
		// A float64 holds 53 bits: beyond 2^52 ns, rounding of the
		// multiplication alone exceeds half a nanosecond.
		if tol := math.Max(0.5, exact*0x1p-51); math.Abs(float64(d)-exact) > tol {
			t.Fatalf("parseInterval(%q) = %v (%d ns), want %.3f ns to the nearest nanosecond", s, d, int64(d), exact)
		}
	})
}

// FuzzIntervalRoundTrip checks that a duration of more than 0 that netuse
// printed, or that a script wrote as seconds with nine decimals, reads
// back as the same duration.
func FuzzIntervalRoundTrip(f *testing.F) {
	f.Fuzz(func(t *testing.T, ns int64) {
		if ns <= 0 {
			return
		}
		d := time.Duration(ns)
		if got, err := parseInterval(d.String()); err != nil || got != d {
			t.Fatalf("parseInterval(%q) = %v, %v; want %v", d.String(), got, err, d)
		}
		if d >= 1<<50 { // about 13 days: beyond, a float64 of seconds is not exact to the nanosecond
			return
		}
		s := fmt.Sprintf("%d.%09d", d/time.Second, d%time.Second)
		if got, err := parseInterval(s); err != nil || got != d {
			t.Fatalf("parseInterval(%q) = %v (%d ns), %v; want %v (%d ns)", s, got, int64(got), err, d, ns)
		}
	})
}

// Seeds.

// Frame builders: headers written byte by byte, so that a seed can be as
// wrong as it needs to be. Checksums are left 0: the decoder ignores them.

func eth(etherType uint16, payload ...[]byte) []byte {
	b := []byte{2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, byte(etherType >> 8), byte(etherType)}
	return slices.Concat(append([][]byte{b}, payload...)...)
}

func vlanTag(id, etherType uint16) []byte {
	return []byte{byte(id >> 8), byte(id), byte(etherType >> 8), byte(etherType)}
}

// ipv4Hdr is an IPv4 header; total 0 means "fill in", and options are
// padded to a multiple of 4 bytes.
func ipv4Hdr(proto uint8, src, dst string, fragField uint16, payloadLen int, opts ...byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 0)
	}
	b := make([]byte, 20, 20+len(opts))
	b[0] = 0x40 | byte(5+len(opts)/4)
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(opts)+payloadLen))
	binary.BigEndian.PutUint16(b[4:], 0x1234)
	binary.BigEndian.PutUint16(b[6:], fragField)
	b[8], b[9] = 64, proto
	copy(b[12:], netip.MustParseAddr(src).AsSlice())
	copy(b[16:], netip.MustParseAddr(dst).AsSlice())
	return append(b, opts...)
}

func ipv6Hdr(next uint8, src, dst string, payloadLen int) []byte {
	b := make([]byte, 40)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(payloadLen))
	b[6], b[7] = next, 64
	copy(b[8:], netip.MustParseAddr(src).AsSlice())
	copy(b[24:], netip.MustParseAddr(dst).AsSlice())
	return b
}

// ext6 is an IPv6 extension header of 8 bytes with options padding.
func ext6(next uint8) []byte { return []byte{next, 0, 1, 4, 0, 0, 0, 0} } // PadN of 4 bytes

// frag6 is an IPv6 fragment header.
func frag6(next uint8, offset uint16, more bool) []byte {
	b := []byte{next, 0, 0, 0, 0, 0, 0xab, 0xcd}
	f := offset << 3
	if more {
		f |= 1
	}
	binary.BigEndian.PutUint16(b[2:], f)
	return b
}

// Flags of tcpHdr.
const (
	tcpSYN = 0x02
	tcpACK = 0x10
)

// tcpHdr is a TCP header with optional options (padded with NOPs).
func tcpHdr(sport, dport uint16, flags byte, opts ...byte) []byte {
	for len(opts)%4 != 0 {
		opts = append(opts, 1)
	}
	b := make([]byte, 20, 20+len(opts))
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint32(b[4:], 1000)
	b[12] = byte(5+len(opts)/4) << 4
	b[13] = flags
	binary.BigEndian.PutUint16(b[14:], 64240)
	return append(b, opts...)
}

func udpHdr(sport, dport uint16, payloadLen int) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b[0:], sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+payloadLen))
	return b
}

func zeros(n int) []byte { return make([]byte, n) }

// synOpts are the TCP options of a Linux SYN: MSS, SACK permitted,
// timestamps, window scale.
var synOpts = []byte{2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7}

// tcp4 and the like are whole IP packets with a transport header and n
// bytes of payload.
func tcp4(src, dst string, sport, dport uint16, flags byte, n int) []byte {
	t := tcpHdr(sport, dport, flags)
	return slices.Concat(ipv4Hdr(6, src, dst, 0x4000, len(t)+n), t, zeros(n))
}

func udp4(src, dst string, sport, dport uint16, n int) []byte {
	return slices.Concat(ipv4Hdr(17, src, dst, 0x4000, 8+n), udpHdr(sport, dport, n), zeros(n))
}

func tcp6(src, dst string, sport, dport uint16, flags byte, n int) []byte {
	t := tcpHdr(sport, dport, flags)
	return slices.Concat(ipv6Hdr(6, src, dst, len(t)+n), t, zeros(n))
}

func udp6(src, dst string, sport, dport uint16, n int) []byte {
	return slices.Concat(ipv6Hdr(17, src, dst, 8+n), udpHdr(sport, dport, n), zeros(n))
}

// snap cuts a frame to the capture's snap length.
func snap(b []byte) []byte { return b[:min(len(b), snapLen)] }

// decodeSeeds are frames as the capture hands them over: realistic ones,
// and every way the brief and the RFCs suggest one may be wrong.
func decodeSeeds() map[string][]any {
	ethSeed := func(b []byte) []any { return []any{snap(b), false, uint16(0), uint32(len(b)), byte(dirIn)} }
	rawSeed := func(proto uint16, b []byte) []any {
		return []any{snap(b), true, proto, uint32(len(b)), byte(dirOut)}
	}
	a4, b4 := "192.0.2.1", "198.51.100.7"
	a6, b6 := "2001:db8::1", "2001:db8:1::7"

	optTCP := tcpHdr(40000, 443, tcpSYN, synOpts...)
	rr := []byte{7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0} // record route, room for 2 addresses
	ipOpts := slices.Concat(ipv4Hdr(6, a4, b4, 0x4000, len(optTCP), rr...), optTCP)
	badIHL := tcp4(a4, b4, 1, 2, tcpACK, 0)
	badIHL[0] = 0x44 // IHL 4: shorter than the fixed header
	bigIHL := tcp4(a4, b4, 1, 2, tcpACK, 0)
	bigIHL[0] = 0x4f // IHL 15, 60 bytes, in a packet of 40
	tso := tcp4(a4, b4, 40000, 443, tcpACK, 1400)
	tso[2], tso[3] = 0, 0 // total length 0: TSO, IPv4 BIG TCP
	shortTotal := tcp4(a4, b4, 40000, 443, tcpACK, 100)
	binary.BigEndian.PutUint16(shortTotal[2:], 30) // total length ends inside the TCP header
	badOffset := tcp4(a4, b4, 40000, 443, tcpACK, 0)
	badOffset[20+12] = 4 << 4 // data offset 4
	bigOffset := tcp4(a4, b4, 40000, 443, tcpACK, 8)
	bigOffset[20+12] = 15 << 4 // data offset beyond the packet
	// A timestamps option of length 0: RFC 9293 3.1 (MUST-7) asks a
	// receiver to cope; Linux's tcp_parse_options stops reading options
	// and takes the segment, so its bytes go to the connection.
	badOptTCP := tcpHdr(40000, 443, tcpACK, 8, 0)
	badOpt := slices.Concat(ipv4Hdr(6, a4, b4, 0x4000, len(badOptTCP)+100), badOptTCP, zeros(100))
	// A UDP length of 7, less than the header: Linux drops the datagram.
	shortUDP := udp4(a4, b4, 5353, 53, 40)
	binary.BigEndian.PutUint16(shortUDP[20+4:], 7)
	loopback := eth(0x0800, tcp4("127.0.0.1", "127.0.0.1", 40000, 8080, tcpACK, 10))
	copy(loopback, zeros(12)) // lo: zero MAC addresses

	dest := ext6(6)
	routing := []byte{60, 2, 0, 0, 0, 0, 0, 0} // type 0, no segments left: 24 bytes with one address
	routing = append(routing, netip.MustParseAddr("2001:db8::99").AsSlice()...)
	t6 := tcpHdr(40000, 443, tcpACK)
	extChain := slices.Concat(ipv6Hdr(43, a6, b6, len(routing)+len(dest)+len(t6)), routing, dest, t6)
	firstFrag6 := slices.Concat(ipv6Hdr(44, a6, b6, 8+8+1232), frag6(17, 0, true), udpHdr(5353, 53, 1400), zeros(1232))
	atomicFrag6 := slices.Concat(ipv6Hdr(44, a6, b6, 8+20), frag6(6, 0, false), tcpHdr(40000, 443, tcpACK))
	reservedFrag6 := slices.Clone(firstFrag6)
	reservedFrag6[40+1] = 3 // the reserved byte, which gopacket's skipper took for a length

	return map[string][]any{
		"tcp4-syn":               ethSeed(eth(0x0800, ipv4Hdr(6, a4, b4, 0x4000, len(optTCP)), optTCP)),
		"tcp4-ack-full":          ethSeed(eth(0x0800, tcp4(a4, b4, 40000, 443, tcpACK, 1460))),
		"udp4-dns":               ethSeed(eth(0x0800, udp4(a4, "198.51.100.53", 5353, 53, 40))),
		"tcp6":                   ethSeed(eth(0x86dd, tcp6(a6, b6, 40000, 443, tcpACK, 1200))),
		"udp6":                   ethSeed(eth(0x86dd, udp6(a6, b6, 546, 547, 60))),
		"udp6-v4mapped":          ethSeed(eth(0x86dd, udp6("::ffff:192.0.2.1", "::ffff:198.51.100.7", 1, 2, 0))),
		"vlan-udp4":              ethSeed(eth(0x8100, vlanTag(7, 0x0800), udp4(a4, b4, 1, 2, 100))),
		"qinq-tcp4":              ethSeed(eth(0x88a8, vlanTag(100, 0x8100), vlanTag(7, 0x0800), tcp4(a4, b4, 3, 4, tcpACK, 100))),
		"vlan-truncated":         ethSeed(eth(0x8100, []byte{0, 7})),
		"ipv4-options":           ethSeed(eth(0x0800, ipOpts)),
		"ipv4-ihl-4":             ethSeed(eth(0x0800, badIHL)),
		"ipv4-ihl-15":            ethSeed(eth(0x0800, bigIHL)),
		"ipv4-total-0-tso":       ethSeed(eth(0x0800, tso)),
		"ipv4-total-short":       ethSeed(eth(0x0800, shortTotal)),
		"ipv4-snap-truncated":    ethSeed(eth(0x0800, tcp4(a4, b4, 40000, 443, tcpACK, 65000))),
		"ipv4-first-fragment":    ethSeed(eth(0x0800, slices.Concat(ipv4Hdr(17, a4, b4, 0x2000, 1480), udpHdr(4500, 4500, 3000), zeros(1472)))),
		"ipv4-later-fragment":    ethSeed(eth(0x0800, slices.Concat(ipv4Hdr(17, a4, b4, 185, 1000), udpHdr(1, 2, 0), zeros(992)))),
		"ipv4-in-ipv4":           ethSeed(eth(0x0800, ipv4Hdr(4, "203.0.113.1", "203.0.113.2", 0, 40), tcp4(a4, b4, 5, 6, tcpACK, 0))),
		"ipv6-in-ipv4":           ethSeed(eth(0x0800, ipv4Hdr(41, "203.0.113.1", "203.0.113.2", 0, 48), udp6(a6, b6, 7, 8, 0))),
		"ipv4-in-ipv6":           ethSeed(eth(0x86dd, ipv6Hdr(4, a6, b6, 40), udp4(a4, b4, 9, 10, 12))),
		"ipv6-ext-chain":         ethSeed(eth(0x86dd, extChain)),
		"ipv6-first-fragment":    ethSeed(eth(0x86dd, firstFrag6)),
		"ipv6-atomic-fragment":   ethSeed(eth(0x86dd, atomicFrag6)),
		"ipv6-fragment-reserved": ethSeed(eth(0x86dd, reservedFrag6)),
		"ipv6-length-0":          ethSeed(eth(0x86dd, append(ipv6Hdr(6, a6, b6, 0), tcpHdr(1, 2, tcpACK)...))),
		"ipv6-ext-truncated":     ethSeed(eth(0x86dd, ipv6Hdr(60, a6, b6, 8), []byte{6, 3})),
		"icmp4":                  ethSeed(eth(0x0800, ipv4Hdr(1, a4, b4, 0, 8), []byte{8, 0, 0, 0, 0, 1, 0, 1})),
		"icmp6-ns":               ethSeed(eth(0x86dd, ipv6Hdr(58, a6, "ff02::1:ff00:7", 24), []byte{135, 0, 0, 0}, zeros(20))),
		"arp":                    ethSeed(eth(0x0806, []byte{0, 1, 8, 0, 6, 4, 0, 1}, zeros(20))),
		"llc":                    ethSeed(eth(0x0026, []byte{0x42, 0x42, 0x03}, zeros(35))),
		"tcp-data-offset-4":      ethSeed(eth(0x0800, badOffset)),
		"tcp-data-offset-large":  ethSeed(eth(0x0800, bigOffset)),
		"tcp-option-length-0":    ethSeed(eth(0x0800, badOpt)),
		"udp-length-7":           ethSeed(eth(0x0800, shortUDP)),
		"truncated-eth":          ethSeed(eth(0x0800)[:13]),
		"truncated-ip4":          ethSeed(eth(0x0800, tcp4(a4, b4, 1, 2, tcpACK, 0))[:14+19]),
		"truncated-tcp":          ethSeed(eth(0x0800, tcp4(a4, b4, 1, 2, tcpACK, 0))[:14+20+19]),
		"truncated-udp":          ethSeed(eth(0x0800, udp4(a4, b4, 1, 2, 0))[:14+20+7]),
		"truncated-ip6":          ethSeed(eth(0x86dd, tcp6(a6, b6, 1, 2, tcpACK, 0))[:14+39]),
		"empty":                  ethSeed(nil),
		"loopback":               ethSeed(loopback),
		"raw-tcp4":               rawSeed(0x0800, tcp4("10.8.0.2", b4, 51820, 443, tcpACK, 500)),
		"raw-udp6":               rawSeed(0x86dd, udp6(a6, b6, 51820, 51820, 148)),
		"raw-arp-proto":          rawSeed(0x0806, tcp4(a4, b4, 1, 2, tcpACK, 0)),
		"raw-version-mismatch":   rawSeed(0x0800, tcp6(a6, b6, 1, 2, tcpACK, 0)),
	}
}

func synSeeds() map[string][]any {
	a4, b4, a6, b6 := "192.0.2.1", "198.51.100.7", "2001:db8::1", "2001:db8:1::7"
	synTCP := tcpHdr(40000, 443, tcpSYN, synOpts...)
	rr := []byte{7, 7, 4, 0, 0, 0, 0}
	seed := func(b []byte) []any { return []any{snap(b)} }
	frag := slices.Concat(ipv4Hdr(6, a4, b4, 0x2000, len(synTCP)), synTCP)
	return map[string][]any{
		"syn4":            seed(eth(0x0800, ipv4Hdr(6, a4, b4, 0x4000, len(synTCP)), synTCP)),
		"syn4-ip-options": seed(eth(0x0800, ipv4Hdr(6, a4, b4, 0x4000, len(synTCP), rr...), synTCP)),
		"syn6":            seed(eth(0x86dd, ipv6Hdr(6, a6, b6, len(synTCP)), synTCP)),
		"syn-ack4":        seed(eth(0x0800, tcp4(a4, b4, 443, 40000, tcpSYN|tcpACK, 0))),
		"syn-ack6":        seed(eth(0x86dd, tcp6(a6, b6, 443, 40000, tcpSYN|tcpACK, 0))),
		"ack4":            seed(eth(0x0800, tcp4(a4, b4, 1, 2, tcpACK, 100))),
		"udp4":            seed(eth(0x0800, udp4(a4, b4, 1, 2, 100))),
		"syn4-vlan":       seed(eth(0x8100, vlanTag(7, 0x0800), tcp4(a4, b4, 1, 2, tcpSYN, 0))),
		"syn4-first-frag": seed(eth(0x0800, frag)),
		"syn6-dest-opts":  seed(eth(0x86dd, ipv6Hdr(60, a6, b6, 8+20), ext6(6), tcpHdr(1, 2, tcpSYN))),
		"syn4-truncated":  seed(eth(0x0800, tcp4(a4, b4, 1, 2, tcpSYN, 0))[:14+20+12]),
	}
}

func intervalSeeds() map[string][]any {
	m := map[string][]any{}
	for i, s := range []string{"1s", "500ms", "2", "0.5", "1m30s", "1h", "0", "0s", "-1", "-1s", "abc", "",
		"NaN", "Inf", "-Inf", "1e300", "1e-10", "0.000000001", "1.5e3", "0x1p-2", "4611686018", "4611686019",
		"9223372036s", "+2", " 1s", "1µs", "1us"} {
		m[fmt.Sprintf("%02d", i)] = []any{s}
	}
	return m
}

func intervalRoundTripSeeds() map[string][]any {
	m := map[string][]any{}
	for i, d := range []time.Duration{1, time.Microsecond, 500 * time.Millisecond, time.Second, 90 * time.Second,
		time.Hour, 1<<63 - 1} {
		m[fmt.Sprintf("%02d", i)] = []any{int64(d)}
	}
	return m
}

// fuzzSeedsOf are the named seeds of the portable targets, by target,
// and those of this platform's (platformSeeds).
func fuzzSeedsOf() map[string]map[string][]any {
	targets := map[string]map[string][]any{
		"FuzzDecode":            decodeSeeds(),
		"FuzzSynFilter":         synSeeds(),
		"FuzzParseInterval":     intervalSeeds(),
		"FuzzIntervalRoundTrip": intervalRoundTripSeeds(),
	}
	maps.Copy(targets, platformSeeds())
	return targets
}

// writeSeeds writes each target's seeds to testdata/fuzz/<target>/<name>
// in the corpus format of go test fuzz v1: what go test -fuzzseeds does.
func writeSeeds(targets map[string]map[string][]any) error {
	for target, seeds := range targets {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		for name, args := range seeds {
			if err := os.WriteFile(filepath.Join(dir, name), marshalSeed(args), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// marshalSeed writes args as internal/fuzz does.
func marshalSeed(args []any) []byte {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			fmt.Fprintf(&b, "[]byte(%q)\n", v)
		case string:
			fmt.Fprintf(&b, "string(%q)\n", v)
		case byte:
			fmt.Fprintf(&b, "byte(%q)\n", v)
		case bool, int, int64, uint16, uint32, uint64:
			fmt.Fprintf(&b, "%T(%v)\n", v, v)
		default:
			panic(fmt.Sprintf("no seed format for %T", a))
		}
	}
	return []byte(b.String())
}
