package main

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/net/bpf"
)

// ethFrame serializes layers behind an Ethernet header, as AF_PACKET
// delivers a frame of an Ethernet interface.
func ethFrame(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	switch l := ls[0].(type) {
	case *layers.IPv6:
		eth.EthernetType = layers.EthernetTypeIPv6
	case *layers.Dot1Q:
		eth.EthernetType = layers.EthernetTypeDot1Q
		_ = l
	}
	buf := gopacket.NewSerializeBuffer()
	for _, l := range ls {
		if nl, ok := l.(gopacket.NetworkLayer); ok {
			for _, m := range ls {
				switch x := m.(type) {
				case *layers.TCP:
					x.SetNetworkLayerForChecksum(nl)
				case *layers.UDP:
					x.SetNetworkLayerForChecksum(nl)
				}
			}
		}
	}
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, append([]gopacket.SerializableLayer{eth}, ls...)...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ip4(src, dst string, proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Protocol: proto,
		SrcIP: netip.MustParseAddr(src).AsSlice(), DstIP: netip.MustParseAddr(dst).AsSlice()}
}

func ip6(src, dst string, next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next,
		SrcIP: netip.MustParseAddr(src).AsSlice(), DstIP: netip.MustParseAddr(dst).AsSlice()}
}

func TestDecode(t *testing.T) {
	payload := gopacket.Payload(make([]byte, 100))
	frag := ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolUDP)
	frag.FragOffset = 100 // a later fragment: no UDP header
	tests := []struct {
		name string
		data []byte
		want string // "" for a packet without a flow
	}{
		{"tcp4", ethFrame(t, ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolTCP), &layers.TCP{SrcPort: 40000, DstPort: 443}, payload),
			"6 192.0.2.1:40000 192.0.2.2:443"},
		{"udp6", ethFrame(t, ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolUDP), &layers.UDP{SrcPort: 5353, DstPort: 53}, payload),
			"17 [2001:db8::1]:5353 [2001:db8::2]:53"},
		{"vlan", ethFrame(t, &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeIPv4}, ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2}, payload),
			"17 192.0.2.1:1 192.0.2.2:2"},
		{"ipv4 options", ethFrame(t, &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP,
			SrcIP: []byte{192, 0, 2, 1}, DstIP: []byte{192, 0, 2, 2},
			Options: []layers.IPv4Option{{OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}}}},
			&layers.TCP{SrcPort: 1000, DstPort: 2000}, payload),
			"6 192.0.2.1:1000 192.0.2.2:2000"},
		{"icmp", ethFrame(t, ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolICMPv4), &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)}, payload), ""},
		{"fragment", ethFrame(t, frag, payload), ""},
		{"arp", ethFrame(t, &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			SourceHwAddress: make([]byte, 6), SourceProtAddress: make([]byte, 4), DstHwAddress: make([]byte, 6), DstProtAddress: make([]byte, 4)}), ""},
		{"truncated ip header", ethFrame(t, ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 2})[:24], ""},
		{"truncated tcp header", ethFrame(t, ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 2})[:40], ""},
		{"empty", nil, ""},
	}
	d := newDecoder()
	for _, tt := range tests {
		f := frame{dir: dirOut, length: len(tt.data) + 1000, data: tt.data}
		var p packet
		d.decode(&f, &p)
		got := ""
		if p.ok {
			got = fmt.Sprintf("%d %v %v", p.proto, p.src, p.dst)
		}
		if got != tt.want || p.length != f.length || p.dir != dirOut {
			t.Errorf("%s: decoded %q, length %d, dir %d; want %q, %d, out", tt.name, got, p.length, p.dir, tt.want, f.length)
		}
	}
}

// BenchmarkHandle measures the per-packet path: decode an Ethernet frame
// and add it to its flow, a ring block's worth of frames at a time, over 1
// and over 10,000 flows that exist already.
func BenchmarkHandle(b *testing.B) {
	for _, nflows := range []int{1, 10000} {
		b.Run(fmt.Sprintf("%d_flows", nflows), func(b *testing.B) {
			frames := make([]frame, nflows)
			for i := range frames {
				data := ethFrame(b, ip4("192.0.2.1", "198.51.100.7", layers.IPProtocolTCP),
					&layers.TCP{SrcPort: layers.TCPPort(10000 + i), DstPort: 443, ACK: true}, gopacket.Payload(make([]byte, 140)))
				frames[i] = frame{dir: dirIn, length: 1514, data: data[:snapLen]}
			}
			a := newAccountant()
			s := newSniffer(a.add, nil)
			for i := range frames {
				s.frame(&frames[i])
				if len(s.block) == blockFrames {
					s.endBlock()
				}
			}
			s.endBlock()
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				s.frame(&frames[i%nflows])
				if len(s.block) == blockFrames {
					s.endBlock()
				}
			}
			s.endBlock()
			b.StopTimer()
		})
	}
}

func TestSynFilter(t *testing.T) {
	vm, err := bpf.NewVM(synFilter)
	if err != nil {
		t.Fatal(err)
	}
	frag := ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolTCP)
	frag.FragOffset = 100
	opts := ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolTCP)
	opts.Options = []layers.IPv4Option{{OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}}}
	tests := []struct {
		name string
		data []byte
		keep bool
	}{
		{"syn4", ethFrame(t, ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 2, SYN: true}), true},
		{"syn4 with ip options", ethFrame(t, opts, &layers.TCP{SrcPort: 1, DstPort: 2, SYN: true}), true},
		{"syn6", ethFrame(t, ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 2, SYN: true}), true},
		{"syn-ack4", ethFrame(t, ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 2, SYN: true, ACK: true}), false},
		{"syn-ack6", ethFrame(t, ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 2, SYN: true, ACK: true}), false},
		{"ack4", ethFrame(t, ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolTCP), &layers.TCP{SrcPort: 1, DstPort: 2, ACK: true}), false},
		{"udp4", ethFrame(t, ip4("192.0.2.1", "192.0.2.2", layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2}), false},
		{"udp6", ethFrame(t, ip6("2001:db8::1", "2001:db8::2", layers.IPProtocolUDP), &layers.UDP{SrcPort: 1, DstPort: 2}), false},
		{"fragment", ethFrame(t, frag, gopacket.Payload(make([]byte, 40))), false},
	}
	for _, tt := range tests {
		n, err := vm.Run(tt.data)
		if err != nil || (n > 0) != tt.keep {
			t.Errorf("%s: filter returned %d, %v; want keep %v", tt.name, n, err, tt.keep)
		}
	}
}
