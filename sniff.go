package main

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"time"

	"golang.org/x/net/bpf"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// direction is where a captured frame went, as the kernel's packet type says.
type direction uint8

const (
	dirIn    direction = iota // addressed to this host (unicast, broadcast or multicast)
	dirOut                    // sent by this host
	dirOther                  // for another host, seen because the interface is promiscuous
)

// frame is one captured frame as the capture hands it over. data is only
// valid until the next frame: the decoder copies what it keeps.
type frame struct {
	ifindex  int
	dir      direction
	loopback bool   // captured on a loopback interface
	rawIP    bool   // data starts at the network header (tun, cooked captures)
	proto    uint16 // EtherType of the network header, for rawIP frames
	length   int    // the frame's length on the wire, however much was captured
	at       int64  // when the kernel captured it, Unix ns; 0 if not known
	data     []byte // the captured bytes, at most the snap length
}

// packet is what netuse keeps of a frame: its size, direction and flow.
type packet struct {
	length int
	dir    direction
	// ok: the frame is TCP or UDP over IPv4 or IPv6 and src and dst are its
	// endpoints; otherwise only length and direction are known.
	ok    bool
	proto uint8 // IP protocol number: 6 TCP, 17 UDP
	// fragment: an IP fragment after the first whose first fragment was
	// not seen, of a datagram that may be TCP or UDP; its flow is not
	// known (ok is false).
	fragment bool
	src, dst netip.AddrPort
}

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
	tcp     layers.TCP
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

// decode reads f into p. A frame that is not TCP or UDP over IP, or that
// cannot be decoded, still has its length and direction. A later fragment
// of a datagram gets the flow of its first fragment (sniff_frag.go).
func (d *decoder) decode(f *frame, p *packet) {
	*p = packet{length: f.length, dir: f.dir}
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
			p.src = netip.AddrPortFrom(src, uint16(d.tcp.SrcPort))
			p.dst = netip.AddrPortFrom(dst, uint16(d.tcp.DstPort))
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

func (h *ipv6Header) CanDecode() gopacket.LayerClass    { return layers.LayerTypeIPv6 }
func (h *ipv6Header) NextLayerType() gopacket.LayerType { return h.next.LayerType() }
func (h *ipv6Header) LayerPayload() []byte              { return h.payload }

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

// synFilter is a classic BPF program that keeps the TCP segments that open
// a connection (SYN without ACK) in Ethernet frames: IPv4 (not a later
// fragment) or IPv6 with TCP as its first next header. netuse reads them on
// a socket of their own, without the ring's batching delay, to find a new
// connection's process while its socket is still open.
var synFilter = []bpf.Instruction{
	/* 0 */ bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
	/* 1 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0800, SkipFalse: 8}, // not IPv4: 10
	/* 2 */ bpf.LoadAbsolute{Off: 14 + 9, Size: 1}, // IPv4 protocol
	/* 3 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6, SkipTrue: 13},
	/* 4 */ bpf.LoadAbsolute{Off: 14 + 6, Size: 2}, // flags and fragment offset
	/* 5 */ bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 11},
	/* 6 */ bpf.LoadMemShift{Off: 14}, // X = IPv4 header length
	/* 7 */ bpf.LoadIndirect{Off: 14 + 13, Size: 1}, // TCP flags
	/* 8 */ bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x12}, // SYN and ACK
	/* 9 */ bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x02, SkipTrue: 6, SkipFalse: 7},
	/* 10 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x86dd, SkipTrue: 6}, // not IPv6
	/* 11 */ bpf.LoadAbsolute{Off: 14 + 6, Size: 1}, // IPv6 next header
	/* 12 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 6, SkipTrue: 4},
	/* 13 */ bpf.LoadAbsolute{Off: 14 + 40 + 13, Size: 1}, // TCP flags
	/* 14 */ bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x12},
	/* 15 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0x02, SkipTrue: 1},
	/* 16 */ bpf.RetConstant{Val: snapLen}, // keep it
	/* 17 */ bpf.RetConstant{Val: 0}, // drop it
}
