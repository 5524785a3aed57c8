package main

import (
	"encoding/binary"
	"errors"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// newcomer is a process that the quick finder saw for the first time in
// its last look.
type newcomer struct {
	pid   int
	uid   uint32
	netns uint64 // 0 if unknown
	start uint64 // clock ticks after boot
	stat  []byte
}

func (p *procfs) noteNewcomer(pid int, stat []byte) {
	var st unix.Stat_t
	// /proc/<pid> belongs to the process's effective user.
	base := p.root + "/" + strconv.Itoa(pid)
	if unix.Stat(base, &st) != nil {
		return
	}
	start, ok := parseStartTime(stat)
	if !ok {
		return
	}
	ns, _ := netnsOf(base + "/ns/net")
	p.newcomers = append(p.newcomers, newcomer{pid, st.Uid, ns, start, stat})
}

// keepExecs adds the execs the watch heard of to the history and drops
// those older than execAge.
func (p *procfs) keepExecs() {
	if p.execs == nil {
		return
	}
	now := p.now()
	p.execHist = slices.DeleteFunc(append(p.execHist, p.execs.take()...), func(e execEvent) bool { return now.Sub(e.at) > execAge })
}

// execWatch hears of every program started on the machine, from the
// kernel's process connector (PROC_EVENT_EXEC), and reads each one's
// stat, user and network namespace as it starts. A short-lived process,
// a curl, can be gone before the look after its connection opened; its
// exec event still says who it was. The connector only works in the
// machine's first network namespace: elsewhere (netuse in a container)
// there is no watch, and the look after the SYN is all there is.
type execWatch struct {
	root    string
	conn    *os.File       // the connector socket, in Go's poller so that close ends a read
	running sync.WaitGroup // run
	mu      sync.Mutex     // guards execs
	execs   []execEvent    // since the last take, oldest first; at most maxExecs
}

type execEvent struct {
	at    time.Time // when the watch heard of it
	pid   int
	uid   uint32
	netns uint64
	stat  []byte
}

// maxExecs bounds the events kept between two looks: on a machine that
// starts thousands of programs a second, the oldest are dropped; the look
// needs only the newest.
const maxExecs = 256

// Offsets in a process connector message: nlmsghdr (16 bytes), cn_msg
// (20), then struct proc_event: what, cpu, timestamp_ns, and for an exec
// process_pid and process_tgid (linux/cn_proc.h).
const (
	cnMsgOff        = 16
	procEventOff    = 16 + 20
	procEventExec   = 0x00000002
	execTgidOff     = procEventOff + 20
	cnIdxProc       = 1
	cnValProc       = 1
	procMcastListen = 1
)

// watchExecs subscribes to the process connector; nil if the kernel
// refuses (another network namespace, no CAP_NET_ADMIN, no connector).
func watchExecs(root string) *execWatch {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_CONNECTOR)
	if err != nil {
		return nil
	}
	if unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: cnIdxProc}) != nil {
		unix.Close(fd)
		return nil
	}
	req := make([]byte, procEventOff+4)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.NLMSG_DONE)
	ne.PutUint32(req[12:], uint32(os.Getpid()))
	ne.PutUint32(req[cnMsgOff:], cnIdxProc)
	ne.PutUint32(req[cnMsgOff+4:], cnValProc)
	ne.PutUint16(req[cnMsgOff+16:], 4) // payload length
	ne.PutUint32(req[procEventOff:], procMcastListen)
	if unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}) != nil {
		unix.Close(fd) // ECONNREFUSED outside the first network namespace
		return nil
	}
	w := &execWatch{root: root, conn: os.NewFile(uintptr(fd), "process connector")}
	w.running.Add(1)
	go w.run()
	return w
}

// close ends run, waits for it and closes the socket.
func (w *execWatch) close() {
	w.conn.Close()
	w.running.Wait()
}

// run reads exec events until the socket fails or is closed.
func (w *execWatch) run() {
	defer w.running.Done()
	ne := binary.NativeEndian
	buf := make([]byte, 4096)
	for {
		n, err := w.conn.Read(buf)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ENOBUFS) {
			continue // ENOBUFS: events were lost, the socket goes on
		}
		if err != nil {
			return
		}
		if n < execTgidOff+4 || ne.Uint32(buf[procEventOff:]) != procEventExec {
			continue
		}
		w.note(int(ne.Uint32(buf[execTgidOff:])))
	}
}

// note reads the process that just called exec, while it is there.
func (w *execWatch) note(pid int) {
	base := w.root + "/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(base + "/stat")
	if err != nil {
		return
	}
	var st unix.Stat_t
	if unix.Stat(base, &st) != nil {
		return
	}
	ns, _ := netnsOf(base + "/ns/net")
	w.mu.Lock()
	if len(w.execs) == maxExecs {
		w.execs = append(w.execs[:0], w.execs[1:]...)
	}
	w.execs = append(w.execs, execEvent{time.Now(), pid, st.Uid, ns, stat})
	w.mu.Unlock()
}

// take returns the events since the last take.
func (w *execWatch) take() []execEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	e := w.execs
	w.execs = nil
	return e
}
