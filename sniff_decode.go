package main

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// snapLen is how much of each frame the capture keeps: enough for Ethernet,
// a VLAN tag, IPv6 with a few extension headers and a TCP header with all
// its options (14 + 4 + 40 + 64 + 60 = 182).
const snapLen = 192

// decoder turns frames into packets with gopacket's DecodingLayerParser
// over layers allocated once, so decoding allocates nothing per frame. It
// keeps state, the fragment table, so each goroutine needs its own.
type decoder struct {
	eth     layers.Ethernet
	vlan    layers.Dot1Q
	ip4     ipv4Layer
	ip6     ipv6Header
	ip6ext  layers.IPv6ExtensionSkipper
	ip6frag ipv6Fragment
	tcp     tcpHeader
	udp     layers.UDP
	fromEth *gopacket.DecodingLayerParser
	fromIP4 *gopacket.DecodingLayerParser
	fromIP6 *gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	frags   *fragTable       // datagrams whose first fragment was seen; nil until a fragment comes
	now     func() time.Time // read for fragments only (sniff_frag.go)
}

func newDecoder() *decoder {
	d := &decoder{decoded: make([]gopacket.LayerType, 0, 8), now: time.Now}
	// ip6frag after ip6ext, whose class holds the fragment header too:
	// the later layer decodes a type.
	all := []gopacket.DecodingLayer{&d.eth, &d.vlan, &d.ip4, &d.ip6, &d.ip6ext, &d.ip6frag, &d.tcp, &d.udp}
	for _, p := range []struct {
		parser **gopacket.DecodingLayerParser
		first  gopacket.LayerType
	}{
		{&d.fromEth, layers.LayerTypeEthernet},
		{&d.fromIP4, layers.LayerTypeIPv4},
		{&d.fromIP6, layers.LayerTypeIPv6},
	} {
		*p.parser = gopacket.NewDecodingLayerParser(p.first, all...)
		// Stop quietly at a layer with no decoder (payload, ICMP, fragment);
		// what was decoded up to there is in d.decoded.
		(*p.parser).IgnoreUnsupported = true
	}
	return d
}

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
	parser := d.fromEth
	if f.rawIP {
		switch layers.EthernetType(f.proto) {
		case layers.EthernetTypeIPv4:
			parser = d.fromIP4
		case layers.EthernetTypeIPv6:
			parser = d.fromIP6
		default:
			return
		}
	}
	d.decoded = d.decoded[:0]
	if err := parser.DecodeLayers(f.data, &d.decoded); err != nil && len(d.decoded) == 0 {
		return
	}
	var src, dst netip.Addr
	// fragOf is 4 or 6 when the last IP header has fragment fields: IPv4's
	// own, or an IPv6 fragment header's. Each layer overwrites d.ip4 and
	// d.ip6, so only the last IP header's fields are still there.
	fragOf := 0
	prev := gopacket.LayerTypeZero
	for _, t := range d.decoded {
		switch t {
		case layers.LayerTypeIPv6HopByHop, layers.LayerTypeIPv6Routing, layers.LayerTypeIPv6Destination, layers.LayerTypeIPv6Fragment:
			if prev == layers.LayerTypeIPv4 {
				return // IPv6's numbers in IPv4's protocol field: no such packet
			}
			if t == layers.LayerTypeIPv6Fragment {
				fragOf = 6
			}
		case layers.LayerTypeIPv4:
			src, dst = netip.AddrFrom4(d.ip4.src), netip.AddrFrom4(d.ip4.dst)
			fragOf = 0
			if d.ip4.more || d.ip4.offset != 0 {
				fragOf = 4
			}
		case layers.LayerTypeIPv6:
			src, dst = netip.AddrFrom16(d.ip6.src).Unmap(), netip.AddrFrom16(d.ip6.dst).Unmap()
			if src.Is4() != dst.Is4() {
				return // one IPv4-mapped address: no socket has such a flow (RFC 4291 2.5.5.2)
			}
			fragOf = 0
		case layers.LayerTypeTCP:
			p.ok, p.proto = src.IsValid() && dst.IsValid(), 6
			p.src = netip.AddrPortFrom(src, d.tcp.sport)
			p.dst = netip.AddrPortFrom(dst, d.tcp.dport)
		case layers.LayerTypeUDP:
			p.ok, p.proto = src.IsValid() && dst.IsValid(), 17
			p.src = netip.AddrPortFrom(src, uint16(d.udp.SrcPort))
			p.dst = netip.AddrPortFrom(dst, uint16(d.udp.DstPort))
		}
		prev = t
	}
	if fragOf != 0 {
		d.fragment(f, p, fragOf == 6, src, dst)
	}
}

// ipv6Header decodes the fixed IPv6 header alone and leaves every
// extension header to the skipper. gopacket's IPv6 layer decodes a
// hop-by-hop header itself, allocating for each option (every MLD report
// has one), and does not skip it when it holds a jumbo payload option, so
// that the ports came from the option's bytes (FuzzDecode found both).
type ipv6Header struct {
	src, dst [16]byte
	next     layers.IPProtocol
	payload  []byte
}

var (
	errIPv6Short   = errors.New("IPv6 header cut short")
	errIPv6Version = errors.New("not IP version 6")
	errIPv6Length  = errors.New("IPv6 payload length 0 without a hop-by-hop header")
)

func (h *ipv6Header) CanDecode() gopacket.LayerClass { return layers.LayerTypeIPv6 }

func (h *ipv6Header) NextLayerType() gopacket.LayerType { return h.next.LayerType() }

func (h *ipv6Header) LayerPayload() []byte { return h.payload }

func (h *ipv6Header) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 40 {
		df.SetTruncated()
		return errIPv6Short
	}
	if data[0]>>4 != 6 {
		return errIPv6Version
	}
	// A payload length of 0 is a jumbogram's (RFC 2675), whose length is in
	// a hop-by-hop option; a frame may also be cut by the snap length.
	// Either way the rest is the payload.
	n, next := int(binary.BigEndian.Uint16(data[4:6])), layers.IPProtocol(data[6])
	if n == 0 && next != layers.IPProtocolIPv6HopByHop {
		return errIPv6Length
	}
	// Fields are written only now: a header inside another that fails
	// leaves the outer one's.
	copy(h.src[:], data[8:24])
	copy(h.dst[:], data[24:40])
	h.next, h.payload = next, data[40:]
	if n != 0 && n < len(h.payload) {
		h.payload = h.payload[:n]
	}
	return nil
}

// tcpHeader decodes a TCP header's ports and nothing else. gopacket's TCP
// layer also parses the options and refuses a segment with a malformed
// one (an option length of 0: FuzzDecode found it), which Linux accepts
// all the same (tcp_parse_options stops at it): its bytes belong to the
// connection, and netuse counted them as not TCP.
type tcpHeader struct {
	sport, dport uint16
	flags        uint8 // CWR ECE URG ACK PSH RST SYN FIN, high bit first
}

var (
	errTCPShort  = errors.New("TCP header cut short")
	errTCPOffset = errors.New("TCP data offset out of range")
)

func (h *tcpHeader) CanDecode() gopacket.LayerClass    { return layers.LayerTypeTCP }
func (h *tcpHeader) NextLayerType() gopacket.LayerType { return gopacket.LayerTypeZero }
func (h *tcpHeader) LayerPayload() []byte              { return nil }

func (h *tcpHeader) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 20 {
		df.SetTruncated()
		return errTCPShort
	}
	// The data offset counts 32-bit words: at least the 5 of the fixed
	// header, and within what was captured (RFC 9293 3.1).
	if off := int(data[12]>>4) * 4; off < 20 || off > len(data) {
		return errTCPOffset
	}
	h.sport, h.dport, h.flags = binary.BigEndian.Uint16(data[0:]), binary.BigEndian.Uint16(data[2:]), data[13]
	return nil
}
