//go:build linux

package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/netuse/netuse/bench/internal/gencmd"
)

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
	gencmd.Ready()
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
	stopped := gencmd.Stopped()
	go func() {
		<-stopped
		once.Do(func() { close(stop) })
	}()
	gencmd.Ready()
	wg.Wait()
	return counts{Counts: gencmd.Counts{RecvBytes: recv.Load()}}, nil
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
