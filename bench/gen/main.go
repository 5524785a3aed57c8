//go:build linux

// Command gen is the traffic generator of bench/run.sh: TCP and UDP
// senders and receivers that count exactly the payload bytes they moved
// and print them, with their pid, as one JSON line on stdout when they end.
//
// Usage:
//
//	gen serve -listen ADDR [-size N]
//	gen tcp -addr ADDR [-conns N] [-dur D] [-dir up|down|both] [-stagger D]
//	gen udprecv -listen ADDR [-readers N]
//	gen udp -addr ADDR [-socks N] [-senders N] [-size N] [-rate PPS] [-dur D] [-from IP]
//
// serve is a TCP server for tcp and for HTTP clients. Each connection
// starts with a one-byte mode and, for 'u' and 'd', a duration (8 bytes,
// big-endian nanoseconds): 'u' reads and discards until the client's FIN,
// then closes; 'd' writes for the duration, then closes. A connection that
// starts with "GET" gets an HTTP/1.0 response with a body of -size bytes,
// and the server closes it first, as python3's http.server does.
//
// tcp opens -conns connections at once, then moves data on all of them for
// -dur: upload, download, or (both) alternately one and the other. With
// -stagger it sleeps up to that long before each dial, spreading the
// opening SYNs.
//
// udprecv counts the datagrams sent to one unconnected socket.
//
// udp sends -size-byte datagrams from -socks connected sockets (each its own
// source port, so its own flow) in -senders goroutines, at -rate datagrams
// per second in all (0: as fast as it can) for -dur.
//
// serve and udprecv run until SIGINT or SIGTERM. Each command prints
// "ready" on stderr once it listens (servers) or has opened its
// connections (clients), and its counts on stdout when it ends:
//
//	{"cmd":"tcp","pid":4242,"sent_bytes":...,"recv_bytes":...,"sent_pkts":0,"recv_pkts":0,"conns":50,"errors":0}
//
// Bytes are payload bytes (what write and read returned), not wire bytes.
// Linux only, like the network namespaces bench/run.sh runs it in.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/netuse/netuse/bench/internal/gencmd"
)

// counts is what a command prints when it ends.
type counts struct {
	gencmd.Counts
	SentPkts int64   `json:"sent_pkts"` // datagrams; 0 for TCP
	RecvPkts int64   `json:"recv_pkts"` // datagrams; 0 for TCP
	Conns    int64   `json:"conns"`     // connections or sockets
	Errors   int64   `json:"errors"`    // failed dials, sends, reads
	Seconds  float64 `json:"seconds"`   // time spent moving data
}

// meter is counts updated from many goroutines.
type meter struct {
	sentBytes, recvBytes, sentPkts, recvPkts, conns, errors atomic.Int64
}

func (m *meter) counts(d time.Duration) counts {
	return counts{
		Counts:   gencmd.Counts{SentBytes: m.sentBytes.Load(), RecvBytes: m.recvBytes.Load()},
		SentPkts: m.sentPkts.Load(), RecvPkts: m.recvPkts.Load(),
		Conns: m.conns.Load(), Errors: m.errors.Load(),
		Seconds: d.Seconds(),
	}
}

func main() {
	gencmd.Main("usage: gen serve|tcp|udprecv|udp [flags]", map[string]gencmd.Command[counts]{
		"serve":   serve,
		"tcp":     tcpClient,
		"udprecv": udpRecv,
		"udp":     udpSend,
	})
}

func serve(fs *flag.FlagSet, args []string) (counts, error) {
	size := fs.Int("size", 100000, "HTTP body size in bytes")
	ln, err := gencmd.ListenTCP(fs, args)
	if err != nil {
		return counts{}, err
	}
	var m meter
	start := time.Now()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				m.errors.Add(1)
				continue
			}
			m.conns.Add(1)
			go serveConn(c.(*net.TCPConn), &m, *size)
		}
	}()
	gencmd.ReadyUntilStopped()
	ln.Close()
	return m.counts(time.Since(start)), nil
}

func serveConn(c *net.TCPConn, m *meter, size int) {
	defer c.Close()
	r := bufio.NewReader(c)
	mode, err := r.ReadByte()
	if err != nil {
		m.errors.Add(1)
		return
	}
	m.recvBytes.Add(1)
	switch mode {
	case 'u', 'd':
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			m.errors.Add(1)
			return
		}
		m.recvBytes.Add(8)
		if mode == 'u' {
			n, err := io.Copy(io.Discard, r)
			m.recvBytes.Add(n)
			if err != nil {
				m.errors.Add(1)
			}
			return
		}
		end := time.Now().Add(time.Duration(binary.BigEndian.Uint64(hdr[:])))
		for time.Now().Before(end) {
			n, err := c.Write(gencmd.Buf)
			m.sentBytes.Add(int64(n))
			if err != nil {
				m.errors.Add(1)
				return
			}
		}
	case 'G':
		// The rest of an HTTP request: up to the blank line.
		n := int64(1)
		for {
			line, err := r.ReadString('\n')
			n += int64(len(line))
			if err != nil {
				m.recvBytes.Add(n)
				m.errors.Add(1)
				return
			}
			if strings.TrimRight(line, "\r\n") == "" {
				break
			}
		}
		m.recvBytes.Add(n - 1)
		w := bufio.NewWriterSize(c, 64<<10)
		hn, _ := fmt.Fprintf(w, "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", size)
		total := int64(hn)
		for left := size; left > 0; {
			k := min(left, len(gencmd.Buf))
			w.Write(gencmd.Buf[:k])
			left -= k
			total += int64(k)
		}
		if err := w.Flush(); err != nil {
			m.errors.Add(1)
			return
		}
		m.sentBytes.Add(total)
	default:
		m.errors.Add(1)
	}
}

func tcpClient(fs *flag.FlagSet, args []string) (counts, error) {
	addr := fs.String("addr", "", "server address")
	conns := fs.Int("conns", 1, "connections, all at once")
	dur := fs.Duration("dur", 10*time.Second, "how long to move data")
	dir := fs.String("dir", "up", "up, down or both (alternately)")
	stagger := fs.Duration("stagger", 0, "sleep up to this long before each dial")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	if *dir != "up" && *dir != "down" && *dir != "both" {
		return counts{}, fmt.Errorf("-dir %q: want up, down or both", *dir)
	}
	var m meter
	cs := make([]*net.TCPConn, 0, *conns)
	for i := range *conns {
		if *stagger > 0 {
			time.Sleep(time.Duration(int64(*stagger) * int64(i%7) / 7))
		}
		c, err := net.DialTimeout("tcp", *addr, 10*time.Second)
		if err != nil {
			m.errors.Add(1)
			continue
		}
		cs = append(cs, c.(*net.TCPConn))
	}
	if len(cs) == 0 {
		return counts{}, fmt.Errorf("no connection to %s", *addr)
	}
	m.conns.Store(int64(len(cs)))
	gencmd.Ready()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range cs {
		up := *dir == "up" || (*dir == "both" && i%2 == 0)
		wg.Go(func() { clientConn(c, up, *dur, &m) })
	}
	wg.Wait()
	return m.counts(time.Since(start)), nil
}

func clientConn(c *net.TCPConn, up bool, dur time.Duration, m *meter) {
	defer c.Close()
	var hdr [9]byte
	hdr[0] = 'd'
	if up {
		hdr[0] = 'u'
	}
	binary.BigEndian.PutUint64(hdr[1:], uint64(dur))
	n, err := c.Write(hdr[:])
	m.sentBytes.Add(int64(n))
	if err != nil {
		m.errors.Add(1)
		return
	}
	if up {
		c.SetWriteDeadline(time.Now().Add(dur))
		for {
			n, err := c.Write(gencmd.Buf)
			m.sentBytes.Add(int64(n))
			if err != nil {
				break // the deadline
			}
		}
		c.CloseWrite()
	}
	// Until the server's FIN: it closes after our FIN (up) or after the
	// duration (down).
	c.SetReadDeadline(time.Now().Add(dur + 30*time.Second))
	rb := make([]byte, 64<<10)
	for {
		n, err := c.Read(rb)
		m.recvBytes.Add(int64(n))
		if err == io.EOF {
			return
		}
		if err != nil {
			m.errors.Add(1)
			return
		}
	}
}

func udpRecv(fs *flag.FlagSet, args []string) (counts, error) {
	listen := fs.String("listen", "", "address to listen on")
	readers := fs.Int("readers", 2, "goroutines reading the socket")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	pc, err := net.ListenPacket("udp", *listen)
	if err != nil {
		return counts{}, err
	}
	uc := pc.(*net.UDPConn)
	// A large buffer, beyond net.core.rmem_max (we run as root), so that
	// bursts are not lost to a slow reader; a loss here is not a tool's.
	if rc, err := uc.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 32<<20)
		})
	}
	var m meter
	m.conns.Store(1)
	start := time.Now()
	for range *readers {
		go func() {
			rb := make([]byte, 65536)
			for {
				n, _, err := uc.ReadFrom(rb)
				if err != nil {
					return
				}
				m.recvPkts.Add(1)
				m.recvBytes.Add(int64(n))
			}
		}()
	}
	gencmd.ReadyUntilStopped()
	uc.Close()
	return m.counts(time.Since(start)), nil
}

func udpSend(fs *flag.FlagSet, args []string) (counts, error) {
	addr := fs.String("addr", "", "receiver address")
	socks := fs.Int("socks", 1, "connected sockets, each its own flow")
	senders := fs.Int("senders", 1, "goroutines sending")
	size := fs.Int("size", 64, "payload bytes per datagram")
	rate := fs.Float64("rate", 0, "datagrams per second in all; 0 as fast as possible")
	dur := fs.Duration("dur", 10*time.Second, "how long to send")
	from := fs.String("from", "", "local address to send from (each socket has a port of its own there: about 28,000 at most an address)")
	if err := fs.Parse(args); err != nil {
		return counts{}, err
	}
	var laddr *net.UDPAddr
	if *from != "" {
		if laddr = (&net.UDPAddr{IP: net.ParseIP(*from)}); laddr.IP == nil {
			return counts{}, fmt.Errorf("-from: %q is not an IP address", *from)
		}
	}
	raddr, err := net.ResolveUDPAddr("udp", *addr)
	if err != nil {
		return counts{}, err
	}
	if *senders < 1 || *socks < *senders {
		return counts{}, fmt.Errorf("want 1 <= -senders <= -socks")
	}
	var m meter
	cs := make([]*net.UDPConn, *socks)
	for i := range cs {
		c, err := net.DialUDP("udp", laddr, raddr)
		if err != nil {
			return counts{}, fmt.Errorf("socket %d: %w", i, err)
		}
		cs[i] = c
		defer cs[i].Close()
	}
	m.conns.Store(int64(len(cs)))
	gencmd.Ready()
	start := time.Now()
	end := start.Add(*dur)
	var wg sync.WaitGroup
	for s := range *senders {
		var mine []*net.UDPConn
		for i := s; i < len(cs); i += *senders {
			mine = append(mine, cs[i])
		}
		wg.Go(func() { sendLoop(mine, *size, *rate/float64(*senders), start, end, &m) })
	}
	wg.Wait()
	return m.counts(time.Since(start)), nil
}

// sendLoop sends round robin over cs at rate datagrams per second (0: no
// limit) until end. It sends what is due in a burst and then sleeps, since
// a sleep is far longer than a send.
func sendLoop(cs []*net.UDPConn, size int, rate float64, start, end time.Time, m *meter) {
	b := make([]byte, size)
	var sent, errs, k int64
	defer func() {
		m.sentPkts.Add(sent)
		m.sentBytes.Add(sent * int64(size))
		m.errors.Add(errs)
	}()
	for {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		due := int64(256)
		if rate > 0 {
			due = int64(now.Sub(start).Seconds()*rate) - sent - errs
			if due <= 0 {
				time.Sleep(200 * time.Microsecond)
				continue
			}
			due = min(due, 4096)
		}
		for range due {
			if _, err := cs[k%int64(len(cs))].Write(b); err != nil {
				errs++ // ECONNREFUSED from an earlier ICMP, ENOBUFS
			} else {
				sent++
			}
			k++
		}
	}
}
