package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"
)

// newLookup returns a socketLookup that asks the kernel for the one socket
// with a flow's endpoints, over a sock_diag socket kept open for it. It is
// for one goroutine.
func newLookup() socketLookup { return &diagLookup{} }

// diagLookup is a socketLookup on a sock_diag socket of its own, opened at
// the first lookup.
type diagLookup struct{ d *sockDiag }

func (l *diagLookup) lookup(fl flow) (socket, bool) {
	if l.d == nil {
		d, err := openSockDiag()
		if err != nil {
			return socket{}, false
		}
		l.d = d
	}
	return l.d.lookup(fl)
}

func (l *diagLookup) close() {
	if l.d != nil {
		l.d.close()
	}
}

// sockDiag is a NETLINK_SOCK_DIAG socket. netuse speaks the protocol
// itself rather than through github.com/vishvananda/netlink: that library
// asks for every TCP socket's tcp_info, which netuse does not need, and
// allocates a net.IP per address; its reads took 50 ms at 20,000 sockets.
type sockDiag struct {
	fd  int
	seq uint32
	buf []byte
}

func openSockDiag() (*sockDiag, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("open sock_diag socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("bind sock_diag socket: %w", err)
	}
	return &sockDiag{fd: fd, buf: make([]byte, 64<<10)}, nil
}

func (d *sockDiag) close() { unix.Close(d.fd) }

// Sizes and offsets of linux/inet_diag.h and linux/netlink.h.
const (
	nlmsgHdrLen     = 16
	inetDiagReqLen  = 56 // struct inet_diag_req_v2
	inetDiagMsgLen  = 72 // struct inet_diag_msg
	sockDiagByFam   = 20 // SOCK_DIAG_BY_FAMILY
	allTCPStates    = 0xfff
	diagNoCookie    = 0xffffffff
	nlmFDumpIntr    = 0x10
	diagMsgSportOff = 4 // in inet_diag_msg: id.idiag_sport
	diagMsgUIDOff   = 64
	diagMsgInodeOff = 68
	// idiag_cookie: two u32 halves, low first, in host order
	diagMsgCookieOff = diagMsgSportOff + 40
)

// dumpAll reads the TCP and UDP tables of both families. A dump that the
// kernel marks interrupted (the table changed under it) may miss sockets:
// it is run again, a few times, before netuse makes do with what came.
func (d *sockDiag) dumpAll(socks []socket) ([]socket, error) {
	for _, proto := range []uint8{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		for _, family := range []uint8{unix.AF_INET, unix.AF_INET6} {
			n := len(socks)
			for try := 1; ; try++ {
				socks = socks[:n]
				intr, err := d.query(family, proto, nil, func(m []byte) { socks = append(socks, parseDiagMsg(proto, m)) })
				if err != nil {
					return socks, fmt.Errorf("read socket table: %w", err)
				}
				if !intr || try == 4 {
					break
				}
			}
		}
	}
	return socks, nil
}

// lookup asks for the socket with fl's endpoints, without a dump.
func (d *sockDiag) lookup(fl flow) (socket, bool) {
	family := uint8(unix.AF_INET6)
	if fl.local.Addr().Is4() && fl.remote.Addr().Is4() {
		family = unix.AF_INET
	}
	var s socket
	found := false
	_, err := d.query(family, fl.proto, &fl, func(m []byte) { s, found = parseDiagMsg(fl.proto, m), true })
	return s, err == nil && found
}

// query sends one request, a dump if fl is nil, and calls fn with each
// inet_diag_msg of the answer. It reports whether a dump was interrupted.
func (d *sockDiag) query(family, proto uint8, fl *flow, fn func([]byte)) (interrupted bool, err error) {
	d.seq++
	req := make([]byte, nlmsgHdrLen+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], sockDiagByFam)
	flags := uint16(unix.NLM_F_REQUEST)
	if fl == nil {
		flags |= unix.NLM_F_DUMP
	}
	ne.PutUint16(req[6:], flags)
	ne.PutUint32(req[8:], d.seq)
	r := req[nlmsgHdrLen:]
	r[0], r[1] = family, proto
	ne.PutUint32(r[4:], allTCPStates)
	if fl != nil {
		// inet_diag_sockid: ports and addresses in network byte order.
		// TCP's lookup takes the source as the socket's end; UDP's, as a
		// datagram's source, the far end (udp_dump_one, "swapped for
		// historical reasons"): local first, it found no UDP socket.
		near, far := fl.local, fl.remote
		if proto == unix.IPPROTO_UDP {
			near, far = far, near
		}
		binary.BigEndian.PutUint16(r[8:], near.Port())
		binary.BigEndian.PutUint16(r[10:], far.Port())
		putDiagAddr(r[12:28], near.Addr(), family)
		putDiagAddr(r[28:44], far.Addr(), family)
		ne.PutUint32(r[48:], diagNoCookie)
		ne.PutUint32(r[52:], diagNoCookie)
	}
	if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return false, err
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			return interrupted, err
		}
		for b := d.buf[:n]; len(b) >= nlmsgHdrLen; {
			l := int(ne.Uint32(b[0:]))
			if l < nlmsgHdrLen || l > len(b) {
				return interrupted, errors.New("malformed netlink message")
			}
			typ, mflags, seq := ne.Uint16(b[4:]), ne.Uint16(b[6:]), ne.Uint32(b[8:])
			body := b[nlmsgHdrLen:l]
			b = b[min((l+3)&^3, len(b)):]
			if seq != d.seq {
				continue
			}
			interrupted = interrupted || mflags&nlmFDumpIntr != 0
			switch typ {
			case unix.NLMSG_DONE:
				return interrupted, nil
			case unix.NLMSG_ERROR:
				if len(body) >= 4 {
					if errno := -int32(ne.Uint32(body)); errno != 0 {
						return interrupted, unix.Errno(errno)
					}
				}
				return interrupted, nil
			case sockDiagByFam:
				if len(body) >= inetDiagMsgLen {
					fn(body)
				}
				if fl != nil {
					return false, nil // an exact request has one answer
				}
			}
		}
	}
}

// putDiagAddr writes a into a 16-byte inet_diag address field.
func putDiagAddr(dst []byte, a netip.Addr, family uint8) {
	if family == unix.AF_INET {
		b := a.As4()
		copy(dst, b[:])
		return
	}
	b := a.As16() // an IPv4 address becomes IPv4-mapped
	copy(dst, b[:])
}

// parseDiagMsg reads an inet_diag_msg. IPv4-mapped IPv6 addresses become
// IPv4, as packets carry them, and :: stays ::.
func parseDiagMsg(proto uint8, m []byte) socket {
	family := m[0]
	id := m[diagMsgSportOff:]
	addr := func(b []byte) netip.Addr {
		if family == unix.AF_INET {
			return netip.AddrFrom4([4]byte(b[:4]))
		}
		a := netip.AddrFrom16([16]byte(b[:16]))
		if a.Is4In6() {
			return a.Unmap()
		}
		return a
	}
	ne := binary.NativeEndian
	return socket{
		proto:  proto,
		local:  netip.AddrPortFrom(addr(id[4:20]), binary.BigEndian.Uint16(id[0:])),
		remote: netip.AddrPortFrom(addr(id[20:36]), binary.BigEndian.Uint16(id[2:])),
		uid:    ne.Uint32(m[diagMsgUIDOff:]),
		inode:  uint64(ne.Uint32(m[diagMsgInodeOff:])),
		cookie: uint64(ne.Uint32(m[diagMsgCookieOff:])) | uint64(ne.Uint32(m[diagMsgCookieOff+4:]))<<32,
		state:  tcpState(m[1]), // idiag_state
	}
}
