package main

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// snapLen is how much of each frame the capture keeps: enough for Ethernet,
// a VLAN tag, IPv6 with a few extension headers and a TCP header with all
// its options (14 + 4 + 40 + 64 + 60 = 182).
const snapLen = 192

// decoder turns frames into packets, reading in place the headers netuse
// needs and no others: Ethernet and its VLAN tags, IPv4 and IPv6 (their
// extension headers, fragments, and IP inside IP), and the ports of TCP
// and UDP. It allocates nothing per frame. It keeps state, the fragment
// table, so each goroutine needs its own.
//
// It is written by hand rather than with gopacket's layers, whose package
// initialisation fills 65,536-entry tables that every netuse process
// would carry (about 9.6 MiB of resident memory, with nothing decoded
// yet); the tests check it against gopacket and a plain reading
// (FuzzDecode).
type decoder struct {
	// The fields of the last header of each kind read whole in the
	// current frame, for sniff_frag.go; a header cut short leaves them.
	ip4      ipv4Fields
	ip6      ipv6Fields
	ip6frag  ipv6FragFields
	tcpFlags uint8            // CWR ECE URG ACK PSH RST SYN FIN, high bit first
	frags    *fragTable       // datagrams whose first fragment was seen; nil until a fragment comes
	now      func() time.Time // read for fragments only (sniff_frag.go)
}

type ipv4Fields struct {
	src, dst [4]byte
	proto    uint8
	id       uint16
	offset   uint16 // in 8-byte units; 0: the first fragment, or none
	more     bool   // the MF flag: more fragments follow
}

type ipv6Fields struct{ src, dst [16]byte }

// ipv6FragFields is the IPv6 fragment header (RFC 8200 4.5).
type ipv6FragFields struct {
	next   uint8
	offset uint16 // in 8-byte units; 0: the first fragment
	more   bool   // the M flag: more fragments follow
	id     uint32
}

// EtherTypes and IP protocol numbers the decoder reads.
const (
	etherIPv4 = 0x0800
	etherIPv6 = 0x86dd
	etherVLAN = 0x8100 // 802.1Q
	etherQinQ = 0x88a8 // 802.1ad

	ipHopByHop = 0
	ipInIPv4   = 4
	ipTCP      = 6
	ipUDP      = 17
	ipInIPv6   = 41
	ipRouting  = 43
	ipFragment = 44
	ipDestOpts = 60
)

func newDecoder() *decoder { return &decoder{now: time.Now} }

// decode reads f into p, the one place a packet record is filled. A frame
// that is not TCP or UDP over IP, or that cannot be decoded, still has its
// length and direction. A later fragment of a datagram gets the flow of
// its first fragment (sniff_frag.go).
func (d *decoder) decode(f *frame, p *packet) {
	*p = packet{ifindex: f.ifindex, loopback: f.loopback, at: f.at, length: f.length, dir: f.dir}
	if f.loopback && !f.rawIP && p.length >= 14 {
		// lo counts a packet's length without its 14-byte Ethernet header
		// (loopback_xmit pulls it before counting); so does netuse, so that
		// proc matches iface.
		p.length -= 14
	}
	et, b := f.proto, f.data
	if !f.rawIP {
		if len(b) < 14 {
			return
		}
		et, b = binary.BigEndian.Uint16(b[12:]), b[14:]
		for et == etherVLAN || et == etherQinQ {
			if len(b) < 4 {
				return
			}
			et, b = binary.BigEndian.Uint16(b[2:]), b[4:]
		}
	}
	switch et {
	case etherIPv4:
		d.ip(f, p, ipInIPv4, b)
	case etherIPv6:
		d.ip(f, p, ipInIPv6, b)
	}
}

// ip reads the IP headers from b, whose first is next (ipInIPv4 or
// ipInIPv6), down to TCP's or UDP's ports. Every header read takes at
// least 8 bytes of b, so the walk ends.
func (d *decoder) ip(f *frame, p *packet, next uint8, b []byte) {
	var src, dst netip.Addr
	// fragOf is 4 or 6 when the last IP header has fragment fields: IPv4's
	// own, or an IPv6 fragment header's.
	fragOf := 0
	afterIPv4 := false
walk:
	for {
		switch next {
		case ipInIPv4:
			rest, ok := d.ipv4(b)
			if !ok {
				break walk
			}
			src, dst = netip.AddrFrom4(d.ip4.src), netip.AddrFrom4(d.ip4.dst)
			fragOf = 0
			if d.ip4.more || d.ip4.offset != 0 {
				fragOf = 4
			}
			if d.ip4.offset != 0 {
				break walk // no transport header in a later fragment
			}
			next, b, afterIPv4 = d.ip4.proto, rest, true
			continue
		case ipInIPv6:
			n, rest, ok := d.ipv6(b)
			if !ok {
				break walk
			}
			src, dst = netip.AddrFrom16(d.ip6.src).Unmap(), netip.AddrFrom16(d.ip6.dst).Unmap()
			if src.Is4() != dst.Is4() {
				return // one IPv4-mapped address: no socket has such a flow (RFC 4291 2.5.5.2)
			}
			fragOf = 0
			next, b = n, rest
		case ipHopByHop, ipRouting, ipDestOpts:
			if afterIPv4 {
				return // IPv6's numbers in IPv4's protocol field: no such packet
			}
			if len(b) < 2 || len(b) < (int(b[1])+1)*8 {
				break walk
			}
			next, b = b[0], b[(int(b[1])+1)*8:]
		case ipFragment:
			if afterIPv4 {
				return
			}
			if len(b) < 8 {
				break walk
			}
			// b[1] is reserved: ignored on receipt (RFC 8200 4.5).
			h := &d.ip6frag
			h.next, h.offset, h.more = b[0], binary.BigEndian.Uint16(b[2:4])>>3, b[3]&1 != 0
			h.id = binary.BigEndian.Uint32(b[4:8])
			fragOf = 6
			if h.offset != 0 {
				break walk // no transport header in a later fragment
			}
			next, b = h.next, b[8:]
		case ipTCP:
			// The data offset counts 32-bit words: at least the 5 of the
			// fixed header, and within what was captured (RFC 9293 3.1).
			// The options are not read: Linux takes a segment with a
			// malformed one (tcp_parse_options stops at it), and so its
			// bytes are the connection's.
			if len(b) < 20 || int(b[12]>>4)*4 < 20 || int(b[12]>>4)*4 > len(b) {
				break walk
			}
			d.tcpFlags = b[13]
			setPorts(p, ipTCP, b, src, dst)
			break walk
		case ipUDP:
			// A length of 1 to 7 is shorter than the header itself: no
			// UDP datagram (RFC 768), dropped by Linux (udp_rcv's
			// short_packet). 0 is an IPv6 jumbogram's (RFC 2675 4).
			if len(b) < 8 {
				break walk
			}
			if n := binary.BigEndian.Uint16(b[4:]); n > 0 && n < 8 {
				break walk
			}
			setPorts(p, ipUDP, b, src, dst)
			break walk
		default:
			break walk
		}
		afterIPv4 = false
	}
	if fragOf != 0 {
		d.fragment(f, p, fragOf == 6, src, dst)
	}
}

// setPorts makes p a flow of proto between src and dst, with the ports
// at the start of b, TCP's or UDP's header.
func setPorts(p *packet, proto uint8, b []byte, src, dst netip.Addr) {
	p.ok, p.proto = true, proto
	p.src = netip.AddrPortFrom(src, binary.BigEndian.Uint16(b[0:]))
	p.dst = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(b[2:]))
}

// ipv4 reads an IPv4 header into d.ip4 and returns its payload, within
// the datagram's total length (an Ethernet frame pads a short one). A
// total length of 0 is a segmentation offload's (TSO, BIG TCP): the rest
// is the payload. Options are skipped unread.
func (d *decoder) ipv4(b []byte) ([]byte, bool) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return nil, false
	}
	hl, total := int(b[0]&0xf)*4, int(binary.BigEndian.Uint16(b[2:]))
	if total == 0 {
		total = len(b)
	}
	if hl < 20 || hl > total || hl > len(b) {
		return nil, false
	}
	if total < len(b) {
		b = b[:total]
	}
	h := &d.ip4
	h.src, h.dst, h.proto = [4]byte(b[12:16]), [4]byte(b[16:20]), b[9]
	h.id = binary.BigEndian.Uint16(b[4:])
	h.offset, h.more = binary.BigEndian.Uint16(b[6:])&0x1fff, b[6]&0x20 != 0
	return b[hl:], true
}

// ipv6 reads the fixed IPv6 header into d.ip6 and returns its next
// header and its payload, within the payload length. A payload
// length of 0 is a jumbogram's (RFC 2675), whose length is in a
// hop-by-hop option, or a frame cut by the snap length: the rest is the
// payload.
func (d *decoder) ipv6(b []byte) (next uint8, payload []byte, ok bool) {
	if len(b) < 40 || b[0]>>4 != 6 {
		return 0, nil, false
	}
	n, next := int(binary.BigEndian.Uint16(b[4:6])), b[6]
	if n == 0 && next != ipHopByHop {
		return 0, nil, false
	}
	d.ip6.src, d.ip6.dst = [16]byte(b[8:24]), [16]byte(b[24:40])
	if n != 0 && 40+n < len(b) {
		b = b[:40+n]
	}
	return next, b[40:], true
}
