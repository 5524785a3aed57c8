//go:build linux

// Command gen is the traffic generator of bench/scorecard.sh: one binary
// that bench/scorecard.sh links under a new name for each scenario, so
// that each scenario's processes have a name of their own (the kernel
// names a process after the file it executed: /proc/PID/comm).
//
// Usage (the first argument is the command):
//
//	gen tcpserve -listen ADDR [-conns N]
//	gen tcp -addr ADDR -dir up|down -bytes N [-conns N] [-rate B/s] [-io write|sendfile|splice|uring] [-hold]
//	gen udpsink -listen ADDR[,ADDR...] [-idle D] [-mmsg]
//	gen udp -addr ADDR -bytes N [-size N] [-rate PPS] [-mmsg]
//	gen ping -addr IPV4 -count N -size N [-raw]
//	gen rawip -addr IPV4 -proto P -count N -size N
//	gen afpacket -iface IF -dstmac MAC -src IPV4 -dst IPV4 -dport P -count N -size N
//	gen fork -addr ADDR -bytes N
//	gen thread -addr ADDR -bytes N -name NAME
//	gen exitfast -addr ADDR -udp ADDR -bytes N
//	gen sctp
//
// tcpserve serves tcp: each connection starts with a 17-byte header, a mode
// byte ('u' or 'd'), the byte count and a rate in bytes per second (0: as
// fast as it goes), both big-endian uint64. For 'u' it reads until the
// client's FIN, then closes; for 'd' it writes the count at the rate, then
// closes. With -conns it exits after serving that many connections,
// otherwise at SIGINT or SIGTERM.
//
// tcp opens -conns connections one after the other (1 by default), and on
// each uploads or downloads -bytes bytes; with -hold it waits for SIGUSR1
// between connecting and moving data. -io says which system call moves
// the data: write/read; sendfile (up, from a memfd); splice (down, socket to
// pipe to /dev/null); uring (io_uring SEND or RECV, one at a time).
//
// udpsink counts the datagrams sent to its sockets; with -idle it exits
// once nothing arrived for that long after the first datagram. udp sends
// -bytes bytes in -size-byte datagrams from one connected socket, -mmsg
// with sendmmsg (udpsink: recvmmsg), 32 datagrams a call.
//
// ping sends ICMP echo requests of -size bytes of payload from a ping
// socket (SOCK_DGRAM, IPPROTO_ICMP) or, with -raw, a raw socket, waiting for
// each reply. rawip sends -count datagrams of IP protocol -proto from a raw
// socket. afpacket writes whole Ethernet frames (IPv4, UDP to -dport) on a
// packet socket bound to -iface.
//
// fork opens a TCP connection, then starts itself again (the same file, so
// the same name) with the connection as its fd 3; the child uploads on it
// and exits, and the parent waits for it. thread uploads from an OS thread
// that it renames to -name (prctl PR_SET_NAME), so the thread's name is not
// the process's. exitfast sends 100 1,000-byte UDP datagrams, then writes
// -bytes on a TCP connection and exits at once, without closing it: the
// kernel sends what is left after the process is gone. sctp tries to open
// an SCTP socket and says whether the kernel has SCTP.
//
// Each command prints "ready" on stderr once it listens or is connected,
// and its payload counts on stdout when it ends:
//
//	{"cmd":"tcp","pid":4242,"sent_bytes":...,"recv_bytes":...}
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// counts is what a command prints when it ends: payload bytes, as the
// system calls returned them.
type counts struct {
	Cmd       string `json:"cmd"`
	Pid       int    `json:"pid"`
	SentBytes int64  `json:"sent_bytes"`
	RecvBytes int64  `json:"recv_bytes"`
	Conns     int64  `json:"conns,omitempty"`
}

type command func(fs *flag.FlagSet, args []string) (counts, error)

var commands = map[string]command{
	"tcpserve":  tcpServe,
	"tcp":       tcpClient,
	"udpsink":   udpSink,
	"udp":       udpSend,
	"ping":      pingCmd,
	"rawip":     rawIP,
	"afpacket":  afPacket,
	"fork":      forkCmd,
	"forkchild": forkChild,
	"thread":    threadCmd,
	"exitfast":  exitFast,
	"sctp":      sctpCheck,
}

func main() {
	if len(os.Args) < 2 || commands[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: gen tcpserve|tcp|udpsink|udp|ping|rawip|afpacket|fork|thread|exitfast|sctp [flags]")
		os.Exit(2)
	}
	cmd := os.Args[1]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	c, err := commands[cmd](fs, os.Args[2:])
	if err != nil {
		fmt.Fprintf(os.Stderr, "gen %s: %v\n", cmd, err)
		os.Exit(1)
	}
	c.Cmd, c.Pid = cmd, os.Getpid()
	if err := json.NewEncoder(os.Stdout).Encode(c); err != nil {
		os.Exit(1)
	}
}

func ready() { fmt.Fprintln(os.Stderr, "ready") }

// buf is the data written, 64 KiB as iperf3 writes by default.
var buf = make([]byte, 64<<10)

// pacer sleeps so that n bytes (or datagrams) so far keep to rate per
// second; a rate of 0 never sleeps.
type pacer struct {
	rate  float64
	start time.Time
}

func newPacer(rate int64) pacer { return pacer{rate: float64(rate), start: time.Now()} }

func (p pacer) wait(n int64) {
	if p.rate <= 0 {
		return
	}
	due := p.start.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	if d := time.Until(due); d > 0 {
		time.Sleep(d)
	}
}

// --- TCP -----------------------------------------------------------------

const hdrLen = 17 // mode, count, rate

func tcpServe(fs *flag.FlagSet, args []string) (counts, error) {
	listen := fs.String("listen", "", "address to listen on")
	conns := fs.Int("conns", 0, "exit after serving this many connections; 0: at SIGINT or SIGTERM")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return counts{}, err
	}
	var sent, recv, served atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		<-ch
		close(done)
	}()
	go func() {
		for n := 0; *conns == 0 || n < *conns; n++ {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, r, err := serveConn(c.(*net.TCPConn))
				sent.Add(s)
				recv.Add(r)
				if err != nil {
					fmt.Fprintf(os.Stderr, "gen tcpserve: %v\n", err)
				}
				if served.Add(1) == int64(*conns) {
					close(done)
				}
			}()
		}
	}()
	ready()
	<-done
	ln.Close()
	wg.Wait()
	return counts{SentBytes: sent.Load(), RecvBytes: recv.Load(), Conns: served.Load()}, nil
}

func serveConn(c *net.TCPConn) (sent, recv int64, err error) {
	defer c.Close()
	var hdr [hdrLen]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return 0, 0, err
	}
	recv = hdrLen
	n := int64(binary.BigEndian.Uint64(hdr[1:9]))
	p := newPacer(int64(binary.BigEndian.Uint64(hdr[9:17])))
	switch hdr[0] {
	case 'u':
		m, err := io.Copy(io.Discard, c)
		return 0, recv + m, err
	case 'd':
		for sent < n {
			p.wait(sent)
			w, err := c.Write(buf[:min(int64(len(buf)), n-sent)])
			sent += int64(w)
			if err != nil {
				return sent, recv, err
			}
		}
		return sent, recv, nil
	}
	return 0, recv, fmt.Errorf("unknown mode %q", hdr[0])
}

func header(dir string, n, rate int64) []byte {
	h := make([]byte, hdrLen)
	h[0] = dir[0]
	binary.BigEndian.PutUint64(h[1:9], uint64(n))
	binary.BigEndian.PutUint64(h[9:17], uint64(rate))
	return h
}

func tcpClient(fs *flag.FlagSet, args []string) (counts, error) {
	addr := fs.String("addr", "", "server address")
	dir := fs.String("dir", "up", "up or down")
	n := fs.Int64("bytes", 1<<20, "payload bytes per connection")
	conns := fs.Int("conns", 1, "connections, one after the other")
	rate := fs.Int64("rate", 0, "bytes per second; 0: as fast as it goes")
	how := fs.String("io", "write", "write, sendfile, splice or uring")
	hold := fs.Bool("hold", false, "once connected, wait for SIGUSR1 before moving data (one connection)")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	var usr1 chan os.Signal
	if *hold {
		usr1 = make(chan os.Signal, 1)
		signal.Notify(usr1, syscall.SIGUSR1)
	}
	if *dir != "up" && *dir != "down" {
		return counts{}, fmt.Errorf("-dir %q: want up or down", *dir)
	}
	var c counts
	for i := 0; i < *conns; i++ {
		fd, err := dialFd("tcp", *addr)
		if err != nil {
			return c, err
		}
		if i == 0 {
			ready()
		}
		if *hold {
			<-usr1
		}
		s, r, err := transfer(fd, *dir, *n, *rate, *how)
		unix.Close(fd)
		c.SentBytes += s
		c.RecvBytes += r
		c.Conns++
		if err != nil {
			return c, err
		}
	}
	return c, nil
}

// dialFd connects a blocking socket of network ("tcp" or "udp") to addr,
// outside Go's poller, so that sendfile, splice and io_uring can use it
// as they would in any program.
func dialFd(network, addr string) (int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return -1, err
	}
	typ := unix.SOCK_STREAM
	if network == "udp" {
		typ = unix.SOCK_DGRAM
	}
	family, sa := sockaddr(ap)
	fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect %s: %w", addr, err)
	}
	return fd, nil
}

func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	if ap.Addr().Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return unix.AF_INET6, &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

// transfer sends the header, then moves n bytes up or down, and for up
// shuts its side and waits for the server to close, so that everything
// was delivered when it returns.
func transfer(fd int, dir string, n, rate int64, how string) (sent, recv int64, err error) {
	if err := writeAll(fd, header(dir, n, rate)); err != nil {
		return 0, 0, err
	}
	sent = hdrLen
	p := newPacer(rate)
	if dir == "up" {
		var m int64
		switch how {
		case "write":
			for m < n && err == nil {
				p.wait(m)
				err = writeAll(fd, buf[:min(int64(len(buf)), n-m)])
				if err == nil {
					m += min(int64(len(buf)), n-m)
				}
			}
		case "sendfile":
			m, err = sendfileUp(fd, n)
		case "uring":
			m, err = uringTransfer(fd, n, true)
		default:
			err = fmt.Errorf("-io %s cannot upload", how)
		}
		sent += m
		if err != nil {
			return sent, 0, err
		}
		unix.Shutdown(fd, unix.SHUT_WR)
		recv, err = drain(fd)
		return sent, recv, err
	}
	switch how {
	case "write":
		recv, err = drain(fd)
	case "splice":
		recv, err = spliceDown(fd)
	case "uring":
		recv, err = uringTransfer(fd, n, false)
	default:
		err = fmt.Errorf("-io %s cannot download", how)
	}
	if err == nil && recv != n {
		err = fmt.Errorf("downloaded %d bytes, want %d", recv, n)
	}
	return sent, recv, err
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// drain reads until EOF.
func drain(fd int) (int64, error) {
	var m int64
	for {
		n, err := unix.Read(fd, buf)
		if n > 0 {
			m += int64(n)
		}
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			return m, err
		}
	}
}

func sendfileUp(fd int, n int64) (int64, error) {
	mfd, err := unix.MemfdCreate("scorecard", 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(mfd)
	if err := unix.Ftruncate(mfd, n); err != nil {
		return 0, err
	}
	var off int64
	for off < n {
		if _, err := unix.Sendfile(fd, mfd, &off, int(min(n-off, 1<<20))); err != nil {
			return off, err
		}
	}
	return off, nil
}

func spliceDown(fd int) (int64, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, err
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	null, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(null)
	var m int64
	for {
		n, err := unix.Splice(fd, nil, p[1], nil, 64<<10, unix.SPLICE_F_MOVE)
		if err != nil || n == 0 {
			return m, err
		}
		m += n
		for n > 0 {
			k, err := unix.Splice(p[0], nil, null, nil, int(n), unix.SPLICE_F_MOVE)
			if err != nil {
				return m, err
			}
			n -= k
		}
	}
}

// --- io_uring --------------------------------------------------------------

// The layout of struct io_uring_params, io_uring_sqe and io_uring_cqe and
// the mmap offsets, from include/uapi/linux/io_uring.h.
const (
	ioringOpSend       = 26
	ioringOpRecv       = 27
	ioringEnterGetEvts = 1
	ioringOffSQRing    = 0
	ioringOffCQRing    = 0x8000000
	ioringOffSQEs      = 0x10000000
	sqeSize            = 64
	cqeSize            = 16
)

type uringParams struct {
	SQEntries, CQEntries, Flags, SQThreadCPU, SQThreadIdle, Features, WQFd uint32
	_                                                                      [3]uint32
	SQOff                                                                  struct {
		Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, _ uint32
		_                                                           uint64
	}
	CQOff struct {
		Head, Tail, RingMask, RingEntries, Overflow, CQEs, Flags, _ uint32
		_                                                           uint64
	}
}

// uring is a ring of one entry, used one request at a time.
type uring struct {
	fd            int
	p             uringParams
	sq, cq, sqes  []byte
	sqTail, cqHdr uint32
}

func newUring() (*uring, error) {
	u := &uring{}
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, 1, uintptr(unsafe.Pointer(&u.p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("io_uring_setup: %w", errno)
	}
	u.fd = int(fd)
	var err error
	if u.sq, err = unix.Mmap(u.fd, ioringOffSQRing, int(u.p.SQOff.Array+u.p.SQEntries*4), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, err
	}
	if u.cq, err = unix.Mmap(u.fd, ioringOffCQRing, int(u.p.CQOff.CQEs+u.p.CQEntries*cqeSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, err
	}
	if u.sqes, err = unix.Mmap(u.fd, ioringOffSQEs, int(u.p.SQEntries*sqeSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *uring) close() {
	unix.Munmap(u.sq)
	unix.Munmap(u.cq)
	unix.Munmap(u.sqes)
	unix.Close(u.fd)
}

func word(b []byte, off uint32) *uint32 { return (*uint32)(unsafe.Pointer(&b[off])) }

// do submits one SEND or RECV of b on fd and waits for its result.
func (u *uring) do(op uint8, fd int, b []byte) (int, error) {
	idx := u.sqTail & *word(u.sq, u.p.SQOff.RingMask)
	sqe := u.sqes[idx*sqeSize : (idx+1)*sqeSize]
	clear(sqe)
	sqe[0] = op
	binary.LittleEndian.PutUint32(sqe[4:], uint32(fd))
	binary.LittleEndian.PutUint64(sqe[16:], uint64(uintptr(unsafe.Pointer(&b[0]))))
	binary.LittleEndian.PutUint32(sqe[24:], uint32(len(b)))
	*word(u.sq, u.p.SQOff.Array+idx*4) = idx
	u.sqTail++
	atomic.StoreUint32(word(u.sq, u.p.SQOff.Tail), u.sqTail)
	for {
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(u.fd), 1, 1, ioringEnterGetEvts, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return 0, fmt.Errorf("io_uring_enter: %w", errno)
		}
		break
	}
	runtime.KeepAlive(b)
	for atomic.LoadUint32(word(u.cq, u.p.CQOff.Tail)) == u.cqHdr {
		runtime.Gosched()
	}
	cqe := u.cq[u.p.CQOff.CQEs+(u.cqHdr&*word(u.cq, u.p.CQOff.RingMask))*cqeSize:]
	res := int32(binary.LittleEndian.Uint32(cqe[8:]))
	u.cqHdr++
	atomic.StoreUint32(word(u.cq, u.p.CQOff.Head), u.cqHdr)
	if res < 0 {
		return 0, syscall.Errno(-res)
	}
	return int(res), nil
}

// uringTransfer sends n bytes (up) or receives until EOF through io_uring.
func uringTransfer(fd int, n int64, up bool) (int64, error) {
	u, err := newUring()
	if err != nil {
		return 0, err
	}
	defer u.close()
	var m int64
	for !up || m < n {
		var k int
		if up {
			k, err = u.do(ioringOpSend, fd, buf[:min(int64(len(buf)), n-m)])
		} else {
			k, err = u.do(ioringOpRecv, fd, buf)
		}
		if err != nil {
			return m, err
		}
		if k == 0 && !up {
			return m, nil
		}
		m += int64(k)
	}
	return m, nil
}

// --- UDP -----------------------------------------------------------------

// mmsghdr is struct mmsghdr, which x/sys/unix does not define.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

const batch = 32 // datagrams per sendmmsg or recvmmsg

func udpSend(fs *flag.FlagSet, args []string) (counts, error) {
	addr := fs.String("addr", "", "receiver address")
	n := fs.Int64("bytes", 1<<20, "payload bytes in all")
	size := fs.Int("size", 1000, "payload bytes per datagram")
	rate := fs.Int64("rate", 0, "datagrams per second; 0: as fast as it goes")
	mmsg := fs.Bool("mmsg", false, "send with sendmmsg")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	if *size <= 0 || *size > len(buf) {
		return counts{}, fmt.Errorf("-size %d: want 1 to %d", *size, len(buf))
	}
	fd, err := dialFd("udp", *addr)
	if err != nil {
		return counts{}, err
	}
	defer unix.Close(fd)
	ready()
	p := newPacer(*rate)
	total := (*n + int64(*size) - 1) / int64(*size)
	var c counts
	if *mmsg {
		iov := make([]unix.Iovec, batch)
		msgs := make([]mmsghdr, batch)
		for i := range msgs {
			iov[i].Base = &buf[0]
			iov[i].SetLen(*size)
			msgs[i].hdr.Iov = &iov[i]
			msgs[i].hdr.Iovlen = 1
		}
		for sent := int64(0); sent < total; {
			p.wait(sent)
			k := min(int64(batch), total-sent)
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), uintptr(k), 0, 0, 0)
			if errno != 0 {
				return c, fmt.Errorf("sendmmsg: %w", errno)
			}
			sent += int64(r)
			c.SentBytes += int64(r) * int64(*size)
		}
		return c, nil
	}
	for i := int64(0); i < total; i++ {
		p.wait(i)
		k, err := unix.Write(fd, buf[:*size])
		if err != nil {
			return c, err
		}
		c.SentBytes += int64(k)
	}
	return c, nil
}

func udpSink(fs *flag.FlagSet, args []string) (counts, error) {
	listen := fs.String("listen", "", "addresses to listen on, comma-separated")
	idle := fs.Duration("idle", 0, "exit when nothing arrived for this long after the first datagram; 0: at SIGINT or SIGTERM")
	mmsg := fs.Bool("mmsg", false, "receive with recvmmsg")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	var fds []int
	for _, a := range strings.Split(*listen, ",") {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			return counts{}, err
		}
		family, sa := sockaddr(ap)
		fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return counts{}, err
		}
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
		// 200 ms: how often a reader looks at the clock for -idle.
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200000})
		if err := unix.Bind(fd, sa); err != nil {
			return counts{}, fmt.Errorf("bind %s: %w", a, err)
		}
		fds = append(fds, fd)
	}
	var recv, last atomic.Int64
	stop := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	for _, fd := range fds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := make([]byte, 65536)
			for {
				select {
				case <-stop:
					return
				default:
				}
				k, err := recvSome(fd, b, *mmsg)
				if k > 0 {
					recv.Add(k)
					last.Store(time.Now().UnixNano())
				}
				if err != nil && err != unix.EAGAIN && err != unix.EINTR {
					fmt.Fprintf(os.Stderr, "gen udpsink: %v\n", err)
					return
				}
				if l := last.Load(); *idle > 0 && l != 0 && time.Since(time.Unix(0, l)) > *idle {
					once.Do(func() { close(stop) })
					return
				}
			}
		}()
	}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
		<-ch
		once.Do(func() { close(stop) })
	}()
	ready()
	wg.Wait()
	return counts{RecvBytes: recv.Load()}, nil
}

// recvSome reads one datagram, or with mmsg up to a batch of them, into b
// (datagrams of up to len(b)/batch bytes when batched).
func recvSome(fd int, b []byte, mmsg bool) (int64, error) {
	if !mmsg {
		n, _, err := unix.Recvfrom(fd, b, 0)
		return int64(max(n, 0)), err
	}
	var iov [batch]unix.Iovec
	var msgs [batch]mmsghdr
	per := len(b) / batch
	for i := range msgs {
		iov[i].Base = &b[i*per]
		iov[i].SetLen(per)
		msgs[i].hdr.Iov = &iov[i]
		msgs[i].hdr.Iovlen = 1
	}
	r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&msgs[0])), batch, 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	var m int64
	for i := 0; i < int(r); i++ {
		m += int64(msgs[i].len)
	}
	return m, nil
}

// --- ICMP, raw IP, AF_PACKET ----------------------------------------------

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

func pingCmd(fs *flag.FlagSet, args []string) (counts, error) {
	addr := fs.String("addr", "", "IPv4 address to ping")
	count := fs.Int("count", 100, "echo requests")
	size := fs.Int("size", 1000, "payload bytes per request")
	raw := fs.Bool("raw", false, "a raw socket instead of a ping socket")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	ip, err := netip.ParseAddr(*addr)
	if err != nil || !ip.Is4() {
		return counts{}, fmt.Errorf("-addr %q: want an IPv4 address", *addr)
	}
	typ := unix.SOCK_DGRAM
	if *raw {
		typ = unix.SOCK_RAW
	}
	fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return counts{}, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
	dst := &unix.SockaddrInet4{Addr: ip.As4()}
	ready()
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
	count := fs.Int("count", 1000, "datagrams")
	size := fs.Int("size", 1000, "payload bytes per datagram")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	ip, err := netip.ParseAddr(*addr)
	if err != nil || !ip.Is4() {
		return counts{}, fmt.Errorf("-addr %q: want an IPv4 address", *addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, *proto)
	if err != nil {
		return counts{}, fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ready()
	var c counts
	dst := &unix.SockaddrInet4{Addr: ip.As4()}
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
	count := fs.Int("count", 1000, "frames")
	size := fs.Int("size", 1000, "UDP payload bytes per frame")
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
	ready()
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

// --- processes and threads -------------------------------------------------

func forkCmd(fs *flag.FlagSet, args []string) (counts, error) {
	addr := fs.String("addr", "", "server address")
	n := fs.Int64("bytes", 1<<20, "payload bytes")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	fd, err := dialFd("tcp", *addr)
	if err != nil {
		return counts{}, err
	}
	self, err := os.Executable()
	if err != nil {
		return counts{}, err
	}
	f := os.NewFile(uintptr(fd), "conn")
	child := exec.Command(self, "forkchild", "-bytes", fmt.Sprint(*n))
	child.ExtraFiles = []*os.File{f}
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	if err := child.Start(); err != nil {
		return counts{}, err
	}
	f.Close() // the child's copy is the connection's last
	ready()
	return counts{}, child.Wait()
}

func forkChild(fs *flag.FlagSet, args []string) (counts, error) {
	n := fs.Int64("bytes", 1<<20, "payload bytes")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	s, r, err := transfer(3, "up", *n, 0, "write")
	unix.Close(3)
	return counts{SentBytes: s, RecvBytes: r}, err
}

func threadCmd(fs *flag.FlagSet, args []string) (counts, error) {
	addr := fs.String("addr", "", "server address")
	n := fs.Int64("bytes", 1<<20, "payload bytes")
	name := fs.String("name", "xfer-thread", "the sending thread's name")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	type result struct {
		c   counts
		err error
	}
	ch := make(chan result)
	go func() {
		// Locked and never unlocked: the thread ends with the goroutine,
		// and no other goroutine runs on it under its new name.
		runtime.LockOSThread()
		b := append([]byte(*name), 0)
		if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0); err != nil {
			ch <- result{err: err}
			return
		}
		fd, err := dialFd("tcp", *addr)
		if err != nil {
			ch <- result{err: err}
			return
		}
		ready()
		s, r, err := transfer(fd, "up", *n, 0, "write")
		unix.Close(fd)
		ch <- result{counts{SentBytes: s, RecvBytes: r}, err}
	}()
	r := <-ch
	return r.c, r.err
}

func exitFast(fs *flag.FlagSet, args []string) (counts, error) {
	addr := fs.String("addr", "", "TCP server address")
	udpAddr := fs.String("udp", "", "UDP receiver address")
	n := fs.Int64("bytes", 1<<20, "TCP payload bytes")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	u, err := dialFd("udp", *udpAddr)
	if err != nil {
		return counts{}, err
	}
	for i := 0; i < 100; i++ {
		if _, err := unix.Write(u, buf[:1000]); err != nil {
			return counts{}, err
		}
	}
	fd, err := dialFd("tcp", *addr)
	if err != nil {
		return counts{}, err
	}
	ready()
	if err := writeAll(fd, header("up", *n, 0)); err != nil {
		return counts{}, err
	}
	for m := int64(0); m < *n; m += int64(len(buf)) {
		if err := writeAll(fd, buf[:min(int64(len(buf)), *n-m)]); err != nil {
			return counts{}, err
		}
	}
	// Gone with the data still queued: the kernel closes the socket
	// at exit and sends the rest, and the FIN, for no process.
	os.Exit(0)
	return counts{}, nil
}

func sctpCheck(fs *flag.FlagSet, args []string) (counts, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_SCTP)
	if err != nil {
		return counts{}, fmt.Errorf("no SCTP in this kernel: socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP): %w", err)
	}
	unix.Close(fd)
	return counts{}, nil
}
