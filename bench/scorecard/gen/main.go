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
	"time"

	"github.com/netuse/netuse/bench/internal/gencmd"
)

// counts is what a command prints when it ends.
type counts struct {
	gencmd.Counts
	Conns int64 `json:"conns,omitempty"`
}

func main() {
	gencmd.Main("usage: gen tcpserve|tcp|udpsink|udp|ping|rawip|afpacket|fork|thread|exitfast|sctp [flags]", map[string]gencmd.Command[counts]{
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
	})
}

// buf is the data written.
var buf = gencmd.Buf

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
