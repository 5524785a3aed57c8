//go:build linux

package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/netuse/netuse/bench/internal/gencmd"
)

const hdrLen = 17 // mode, count, rate

func tcpServe(fs *flag.FlagSet, args []string) (counts, error) {
	conns := fs.Int("conns", 0, "exit after serving this many connections; 0: at SIGINT or SIGTERM")
	ln, err := gencmd.ListenTCP(fs, args)
	if err != nil {
		return counts{}, err
	}
	var sent, recv, served atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	stop := gencmd.Stopped()
	go func() {
		<-stop
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
	gencmd.Ready()
	<-done
	ln.Close()
	wg.Wait()
	return counts{Counts: gencmd.Counts{SentBytes: sent.Load(), RecvBytes: recv.Load()}, Conns: served.Load()}, nil
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
			gencmd.Ready()
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
