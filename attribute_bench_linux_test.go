package main

// Benchmarks of the socket-table side of attribution: reading the kernel's
// socket table, indexing it, and finding the sockets' processes in /proc,
// against gopsutil's Connections, on thousands of real loopback sockets
// held by child processes.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	psnet "github.com/shirou/gopsutil/v3/net"
)

// holderMain is the "hold-sockets" child: with args N, it opens N
// sockets on 127.0.0.1, prints "ready" and holds them until its stdin
// ends.
func holderMain(args []string) int {
	n, err := strconv.Atoi(strings.Join(args, ""))
	if err == nil {
		err = holdSockets(n)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "socket holder %d: %v\n", os.Getpid(), err)
		return 1
	}
	return 0
}

// holdSockets opens n sockets on 127.0.0.1: half of them the two ends of
// TCP connections to a listener of its own, the rest bound UDP sockets.
// It says "ready" on stdout and holds them until stdin ends.
func holdSockets(n int) error {
	if err := raiseNoFile(uint64(n) + 64); err != nil {
		return err
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	held := []io.Closer{ln} // the listener is one more than n
	for range n / 4 {
		c, s, err := tcpPair(ln)
		if err != nil {
			return err
		}
		// Reset on exit rather than close: a closed connection leaves one
		// end in TIME_WAIT for a minute, in the table of the next run.
		c.(*net.TCPConn).SetLinger(0)
		s.(*net.TCPConn).SetLinger(0)
		held = append(held, c, s)
	}
	for len(held)-1 < n {
		u, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			return err
		}
		held = append(held, u)
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin)
	runtime.KeepAlive(held)
	return nil
}

// raiseNoFile makes room for need descriptors; raising the hard limit
// takes root (CAP_SYS_RESOURCE).
func raiseNoFile(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("read RLIMIT_NOFILE: %w", err)
	}
	if lim.Cur >= need {
		return nil
	}
	lim.Cur = need
	lim.Max = max(lim.Max, need)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raise RLIMIT_NOFILE to %d: %w (raise the hard limit with ulimit -Hn, or run as root)", need, err)
	}
	return nil
}

// unavailable ends a benchmark whose setup is impossible on this machine:
// a skip on a developer's machine, a failure in CI, where a skip would
// quietly lose the benchmark.
func unavailable(b *testing.B, err error) {
	b.Helper()
	privSkip(b, fmt.Sprintf("socket table benchmark setup impossible here: %v", err))
}

// startHolders starts procs children that hold n sockets between them, and
// waits until all are ready. They are killed when b ends, also on failure.
func startHolders(b *testing.B, n, procs int) error {
	per := n / procs
	if err := raiseNoFile(uint64(2*procs) + 64); err != nil { // two pipes a child
		return err
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil &&
		lim.Max < uint64(per)+64 && os.Geteuid() != 0 {
		return fmt.Errorf("each child needs %d descriptors, over the RLIMIT_NOFILE hard limit %d: raise it with ulimit -Hn, or run as root", per+64, lim.Max)
	}
	var cmds []*exec.Cmd
	b.Cleanup(func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	})
	ready := make(chan error, procs)
	for range procs {
		argv := childArgv("hold-sockets", strconv.Itoa(per))
		c := exec.Command(argv[0], argv[1:]...)
		c.Stderr = os.Stderr
		// Die with the benchmark, even if it dies before its cleanup.
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if _, err := c.StdinPipe(); err != nil { // held open: EOF tells the child to exit
			return err
		}
		out, err := c.StdoutPipe()
		if err != nil {
			return err
		}
		if err := c.Start(); err != nil {
			return fmt.Errorf("start socket holder: %w", err)
		}
		cmds = append(cmds, c)
		go func() {
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || line != "ready\n" {
				err = fmt.Errorf("socket holder %d ended before it was ready (its stderr is above): %q, %v", c.Process.Pid, line, err)
			}
			ready <- err
		}()
	}
	timeout := time.After(time.Minute)
	for range procs {
		select {
		case err := <-ready:
			if err != nil {
				return err
			}
		case <-timeout:
			return errors.New("socket holders not ready after a minute")
		}
	}
	return nil
}

// BenchmarkSocketTable measures, for n sockets held by child processes,
// each step from the kernel's socket table to the sockets' processes, and
// gopsutil's Connections, which does all of them at once.
//
//	go test -run '^$' -bench SocketTable -benchtime 20x .
func BenchmarkSocketTable(b *testing.B) {
	for _, size := range []struct{ socks, procs int }{{1000, 50}, {5000, 50}, {20000, 200}} {
		b.Run(fmt.Sprintf("%d_sockets_%d_procs", size.socks, size.procs), func(b *testing.B) {
			if err := startHolders(b, size.socks, size.procs); err != nil {
				unavailable(b, err)
			}
			socks, err := readSockets()
			if err != nil {
				unavailable(b, err)
			}
			if len(socks) < size.socks {
				b.Fatalf("socket table has %d sockets, the children hold %d", len(socks), size.socks)
			}
			benchSockets(b, size.socks, socks)
			benchOwners(b, size.socks, socks)
			b.Run("gopsutil", func(b *testing.B) {
				var conns []psnet.ConnectionStat
				b.ReportAllocs()
				for b.Loop() {
					if conns, err = psnet.Connections("all"); err != nil {
						b.Fatal(err)
					}
				}
				if len(conns) < size.socks {
					b.Fatalf("gopsutil found %d connections, the children hold %d sockets", len(conns), size.socks)
				}
				b.ReportMetric(float64(len(conns)), "sockets/op")
			})
		})
	}
}

// benchSockets measures reading the socket table over sock_diag and
// indexing it. sockets/op counts the whole table, everyone's sockets.
func benchSockets(b *testing.B, held int, socks []socket) {
	b.Run("sockdiag", func(b *testing.B) {
		// As netuse reads it: one sock_diag socket, the last read's array
		// reused.
		d, err := openSockDiag()
		if err != nil {
			b.Fatal(err)
		}
		defer d.close()
		var got []socket
		b.ReportAllocs()
		for b.Loop() {
			if got, err = d.dumpAll(got[:0]); err != nil {
				b.Fatal(err)
			}
			if len(got) < held {
				b.Fatalf("socket table has %d sockets, the children hold %d", len(got), held)
			}
		}
		b.ReportMetric(float64(len(got)), "sockets/op")
	})
	b.Run("index", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			newSockIndex(socks, nil)
		}
		b.ReportMetric(float64(len(socks)), "sockets/op")
	})
}

// benchOwners measures finding the processes of every socket on 127.0.0.1
// that has a file (the children's, and any other process's): cold, with a
// new procfs that scans all of /proc, and warm, from the cache of the last
// scan. sockets/op counts the inodes looked for.
//
// Each iteration first sets want's values back to nil, as the resolver
// builds want afresh in every pass; that is one pass over want.
func benchOwners(b *testing.B, held int, socks []socket) {
	loopback := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	want := map[uint64]*process{}
	for _, s := range socks {
		if s.local.Addr() == loopback && s.inode != 0 {
			want[s.inode] = nil
		}
	}
	if len(want) < held {
		b.Fatalf("%d sockets with a file on 127.0.0.1, the children hold %d", len(want), held)
	}
	reset := func() {
		for ino := range want {
			want[ino] = nil
		}
	}
	check := func(b *testing.B) {
		found := 0
		for _, p := range want {
			if p != nil {
				found++
			}
		}
		if found*100 < len(want)*95 {
			b.Fatalf("found the processes of %d of %d sockets, want at least 95%%", found, len(want))
		}
		b.ReportMetric(float64(len(want)), "sockets/op")
	}
	b.Run("owners_cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			reset()
			newProcfs(newRegistry(), false).find(want)
		}
		check(b)
	})
	b.Run("owners_warm", func(b *testing.B) {
		// Warm the cache with one scan; want must be reset first, or what
		// owners_cold left in it would let find return without scanning.
		p := newProcfs(newRegistry(), false)
		reset()
		p.find(want)
		b.ReportAllocs()
		for b.Loop() {
			reset()
			p.find(want)
		}
		check(b)
	})
}

// readSockets reads the TCP and UDP sockets of the test's own namespace.
func readSockets() ([]socket, error) {
	d, err := openSockDiag()
	if err != nil {
		return nil, err
	}
	defer d.close()
	return d.dumpAll(nil)
}
