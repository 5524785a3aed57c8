//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/netuse/netuse/bench/internal/gencmd"
)

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// sizedFlags adds -count and -size: how many of unit to send, and the
// payload bytes of each.
func sizedFlags(fs *flag.FlagSet, count int, unit string) (n, size *int) {
	return fs.Int("count", count, unit+"s"), fs.Int("size", 1000, "payload bytes per "+unit)
}

// socket4 opens an IPv4 socket of typ and proto to send to addr, which
// must be an IPv4 address.
func socket4(addr string, typ, proto int) (int, *unix.SockaddrInet4, error) {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Is4() {
		return -1, nil, fmt.Errorf("-addr %q: want an IPv4 address", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, nil, fmt.Errorf("socket: %w", err)
	}
	return fd, &unix.SockaddrInet4{Addr: ip.As4()}, nil
}

func pingCmd(fs *flag.FlagSet, args []string) (counts, error) {
	addr := fs.String("addr", "", "IPv4 address to ping")
	count, size := sizedFlags(fs, 100, "echo request")
	raw := fs.Bool("raw", false, "a raw socket instead of a ping socket")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	typ := unix.SOCK_DGRAM
	if *raw {
		typ = unix.SOCK_RAW
	}
	fd, dst, err := socket4(*addr, typ, unix.IPPROTO_ICMP)
	if err != nil {
		return counts{}, err
	}
	defer unix.Close(fd)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	gencmd.Ready()
	id := uint16(os.Getpid())
	msg := make([]byte, 8+*size)
	in := make([]byte, 65536)
	var c counts
	for seq := 1; seq <= *count; seq++ {
		msg[0], msg[1] = 8, 0 // echo request
		binary.BigEndian.PutUint16(msg[2:], 0)
		binary.BigEndian.PutUint16(msg[4:], id)
		binary.BigEndian.PutUint16(msg[6:], uint16(seq))
		binary.BigEndian.PutUint16(msg[2:], checksum(msg))
		if err := unix.Sendto(fd, msg, 0, dst); err != nil {
			return c, fmt.Errorf("sendto: %w", err)
		}
		c.SentBytes += int64(len(msg))
		// The reply: a ping socket reads the ICMP message, a raw socket
		// the IP datagram; a raw socket also reads other ICMP, skipped.
		for {
			n, _, err := unix.Recvfrom(fd, in, 0)
			if err != nil {
				return c, fmt.Errorf("reply %d: %w", seq, err)
			}
			m := in[:n]
			if *raw && n > 20 {
				m = in[int(in[0]&0xf)*4 : n]
			}
			if len(m) >= 8 && m[0] == 0 && int(binary.BigEndian.Uint16(m[6:])) == seq {
				c.RecvBytes += int64(len(m))
				break
			}
		}
	}
	return c, nil
}

func rawIP(fs *flag.FlagSet, args []string) (counts, error) {
	addr := fs.String("addr", "", "IPv4 destination")
	proto := fs.Int("proto", 253, "IP protocol")
	count, size := sizedFlags(fs, 1000, "datagram")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	fd, dst, err := socket4(*addr, unix.SOCK_RAW, *proto)
	if err != nil {
		return counts{}, err
	}
	defer unix.Close(fd)
	gencmd.Ready()
	var c counts
	for i := 0; i < *count; i++ {
		if err := unix.Sendto(fd, buf[:*size], 0, dst); err != nil {
			return c, fmt.Errorf("sendto: %w", err)
		}
		c.SentBytes += int64(*size)
	}
	return c, nil
}

func afPacket(fs *flag.FlagSet, args []string) (counts, error) {
	iface := fs.String("iface", "", "interface to write on")
	dstMAC := fs.String("dstmac", "", "destination MAC address")
	src := fs.String("src", "", "IPv4 source")
	dst := fs.String("dst", "", "IPv4 destination")
	dport := fs.Int("dport", 5002, "UDP destination port")
	count, size := sizedFlags(fs, 1000, "frame")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	ifi, err := net.InterfaceByName(*iface)
	if err != nil {
		return counts{}, err
	}
	mac, err := net.ParseMAC(*dstMAC)
	if err != nil {
		return counts{}, err
	}
	s, err1 := netip.ParseAddr(*src)
	d, err2 := netip.ParseAddr(*dst)
	if err := errors.Join(err1, err2); err != nil || !s.Is4() || !d.Is4() {
		return counts{}, fmt.Errorf("-src %q -dst %q: want IPv4 addresses", *src, *dst)
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		return counts{}, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ll := &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_IP), Ifindex: ifi.Index, Halen: 6}
	copy(ll.Addr[:], mac)
	f := make([]byte, 14+20+8+*size)
	copy(f[0:6], mac)
	copy(f[6:12], ifi.HardwareAddr)
	binary.BigEndian.PutUint16(f[12:], unix.ETH_P_IP)
	ipb := f[14:34]
	ipb[0], ipb[8], ipb[9] = 0x45, 64, unix.IPPROTO_UDP
	binary.BigEndian.PutUint16(ipb[2:], uint16(20+8+*size))
	s4, d4 := s.As4(), d.As4()
	copy(ipb[12:16], s4[:])
	copy(ipb[16:20], d4[:])
	udp := f[34:42]
	binary.BigEndian.PutUint16(udp[0:], 40000)
	binary.BigEndian.PutUint16(udp[2:], uint16(*dport))
	binary.BigEndian.PutUint16(udp[4:], uint16(8+*size))
	gencmd.Ready()
	var c counts
	for i := 0; i < *count; i++ {
		binary.BigEndian.PutUint16(ipb[4:], uint16(i)) // IP id
		binary.BigEndian.PutUint16(ipb[10:], 0)
		binary.BigEndian.PutUint16(ipb[10:], checksum(ipb))
		if err := unix.Sendto(fd, f, 0, ll); err != nil {
			return c, fmt.Errorf("sendto: %w", err)
		}
		c.SentBytes += int64(len(f))
	}
	return c, nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
