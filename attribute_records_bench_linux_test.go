package main

// Benchmarks of the owner records (owners_bpf_linux.go, owners.go): what
// the two cgroup/sock programs add to each socket a process creates and
// closes, measured as the CPU time of a child process in a cgroup of the
// benchmark's own, with and without the programs; what the kernel holds
// for them; and what netuse's book costs per record, in time, allocations
// and heap.
//
//	go test -run '^$' -bench 'Owner' -benchmem -count 5 .    # as root for the programs
//
// The programs are attached to the benchmark's cgroup only, never to the
// root, and the child sends only to 127.0.0.1.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// ownerBenchRounds is how many times each child runs, with the programs
// and without, alternating which goes first: the machine's other load
// then falls on both alike.
const ownerBenchRounds = 4

// ownerBenchMain is the "owner-bench" child of BenchmarkOwnerPrograms: with
// args PROTO PORT N, it does N socket cycles to 127.0.0.1:PORT and prints
// "cpu_ns T", the CPU time (user+sys) the cycles took.
func ownerBenchMain(args []string) int {
	cpu, err := ownerBenchChild(strings.Join(args, " "))
	if err != nil {
		fmt.Fprintf(os.Stderr, "owner bench child %q: %v\n", args, err)
		return 1
	}
	fmt.Println("cpu_ns", cpu)
	return 0
}

func ownerBenchChild(spec string) (int64, error) {
	f := strings.Fields(spec)
	if len(f) != 3 {
		return 0, errors.New("want PROTO PORT N")
	}
	port, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, err
	}
	to := &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}
	cycle := tcpCycle
	if f[0] == "udp" {
		cycle = udpCycle
	}
	start, err := cpuTime()
	if err != nil {
		return 0, err
	}
	for range n {
		if err := cycle(to); err != nil {
			return 0, err
		}
	}
	end, err := cpuTime()
	return end - start, err
}

// tcpCycle connects a socket to the listener and closes it. SO_LINGER 0
// makes the close a reset, so that no TIME_WAIT is left behind to use up
// the ephemeral ports over a long run; it costs one setsockopt, with the
// programs and without.
func tcpCycle(to *unix.SockaddrInet4) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		return fmt.Errorf("set SO_LINGER: %w", err)
	}
	if err := unix.Connect(fd, to); err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	return nil
}

var udpPayload = []byte("netuse")

// udpCycle sends one datagram from a new socket and closes it.
func udpCycle(to *unix.SockaddrInet4) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, udpPayload, 0, to); err != nil {
		return fmt.Errorf("sendto: %w", err)
	}
	return nil
}

// cpuTime returns the process's CPU time so far, user and system, in ns.
func cpuTime() (int64, error) {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano(), nil
}

// BenchmarkOwnerPrograms measures what the programs add to a socket's life
// in the process that lives it, with their ring read as netuse reads it. A
// child in the benchmark's cgroup does b.N cycles with the programs
// attached to that cgroup and b.N without, in ownerBenchRounds (or more)
// alternating runs; the listener and the UDP receiver are the benchmark's
// own, outside the cgroup, so the cgroup's only sockets are the child's,
// one a cycle. Metrics:
//
//	attached-ns/op  the child's CPU time a cycle, with the programs
//	bare-ns/op      the same without them
//	cost-ns/op      the difference: two records, at creation and at release
//	progs-ns/op     the time spent inside the two programs a cycle, in one
//	                more attached run with the kernel's BPF statistics on
//	records/op      records netuse's reader put in the book per attached cycle
//	lost            records the kernel could not write, the ring being full
//	ring-B, kernel-B  memlock of the ring buffer; of both maps and both programs
//
// The built-in ns/op, which would be wall time with the children's start,
// is suppressed.
func BenchmarkOwnerPrograms(b *testing.B) {
	needRoot(b)
	for _, proto := range []string{"tcp", "udp"} {
		b.Run(proto, func(b *testing.B) { benchOwnerPrograms(b, proto) })
	}
}

// ownerBench is one run of BenchmarkOwnerPrograms: where its children run
// and send, and what they add up to.
type ownerBench struct {
	dir     *os.File // the benchmark's cgroup
	proto   string   // "tcp" or "udp"
	port    int      // the sink's, on 127.0.0.1
	per     int      // cycles a child
	cpu     [2]int64 // the children's CPU time, ns: bare, attached
	records int      // records booked by netuse's reader, in all attached runs
	lost    uint64   // records the kernel could not write, in all attached runs
}

func benchOwnerPrograms(b *testing.B, proto string) {
	o := &ownerBench{dir: benchCgroup(b), proto: proto, port: loopbackSink(b, proto)}
	// A child's sockets must fit in the book's ring of closed sockets, or
	// the oldest would be evicted before withOwners counts them.
	rounds := max(ownerBenchRounds, (b.N+maxClosed-1)/maxClosed)
	o.per = max(1, (b.N+rounds-1)/rounds)
	b.ResetTimer()
	for r := range rounds {
		for i := range 2 {
			if err := o.child((i+r)%2 == 0); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	var progsNs time.Duration
	var ringB, kernelB int64
	err := o.withOwners(func(k *kernelOwners) error {
		var err error
		progsNs, err = ownerProgramsRuntime(k.progs, func() error {
			_, err := runOwnerChild(o.dir, o.proto, o.port, o.per)
			return err
		})
		if err == nil {
			ringB, kernelB, err = ownerMemlock(k.progs)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}

	cycles := float64(o.per * rounds)
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(o.cpu[1])/cycles, "attached-ns/op")
	b.ReportMetric(float64(o.cpu[0])/cycles, "bare-ns/op")
	b.ReportMetric(float64(o.cpu[1]-o.cpu[0])/cycles, "cost-ns/op")
	b.ReportMetric(float64(progsNs)/float64(o.per), "progs-ns/op")
	b.ReportMetric(float64(o.records)/(cycles+float64(o.per)), "records/op")
	b.ReportMetric(float64(o.lost), "lost")
	b.ReportMetric(float64(ringB), "ring-B")
	b.ReportMetric(float64(kernelB), "kernel-B")
}

// child runs one child of o.per cycles, with the programs at work or
// without, and adds up its CPU time.
func (o *ownerBench) child(attached bool) error {
	run := func() error {
		ns, err := runOwnerChild(o.dir, o.proto, o.port, o.per)
		o.cpu[boolIndex(attached)] += ns
		return err
	}
	if !attached {
		return run()
	}
	return o.withOwners(func(*kernelOwners) error { return run() })
}

func boolIndex(v bool) int {
	if v {
		return 1
	}
	return 0
}

// withOwners loads the programs, attaches them to o.dir and has netuse's
// own reader (kernelOwners.run) move their records into a book while fn
// runs a child. The child has exited when fn returns, so catchUp, as the
// resolver calls it, brings every record into the book; each socket left
// two (open ones, whose release is missing, one). The programs are
// loaded afresh for each run, since kernelOwners.close unloads them, and
// so each run's book and lost counter hold that run alone; they are
// detached and unloaded on every path.
func (o *ownerBench) withOwners(fn func(k *kernelOwners) error) error {
	k, err := startBenchOwners(o.dir)
	if err != nil {
		return err
	}
	defer k.close()
	if err := fn(k); err != nil {
		return err
	}
	k.catchUp()
	open, closed, _ := k.book.stats()
	o.records += 2*closed + open
	o.lost += k.lost()
	return nil
}

// startBenchOwners is startKernelOwners for the cgroup dir, which it
// cannot be given: the same kernelOwners, read by the same loop (woken
// by catchUp, or by the programs at ringWakeAt), but never attached to the
// cgroup2 root.
func startBenchOwners(dir *os.File) (*kernelOwners, error) {
	progs, err := loadOwnerPrograms()
	if err != nil {
		return nil, err
	}
	k := &kernelOwners{progs: progs, book: newOwnerBook(), drained: make(chan struct{}, 1)}
	k.reader, err = ringbuf.NewReader(progs.events)
	if err != nil {
		progs.close()
		return nil, err
	}
	k.links, err = progs.attach(dir)
	if err != nil {
		k.reader.Close()
		progs.close()
		return nil, err
	}
	k.done.Add(1)
	go k.run()
	return k, nil
}

// ownerProgramsRuntime runs run with the kernel's BPF statistics on and
// returns the time spent in both programs meanwhile, as the kernel
// measures it around each run: the programs' own share of cost-ns/op. The
// statistics go off again (kernel.bpf_stats_enabled as it was) when the fd
// EnableStats returns closes; they cost a clock read a run, so the
// comparison runs go without them.
func ownerProgramsRuntime(p *ownerPrograms, run func() error) (time.Duration, error) {
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if err != nil {
		return 0, fmt.Errorf("enable BPF run-time statistics: %w", err)
	}
	defer stats.Close()
	runtime := func() (time.Duration, error) {
		var d time.Duration
		for _, prog := range []*ebpf.Program{p.create, p.release} {
			s, err := prog.Stats()
			if err != nil {
				return 0, fmt.Errorf("read program statistics: %w", err)
			}
			d += s.Runtime
		}
		return d, nil
	}
	before, err := runtime()
	if err != nil {
		return 0, err
	}
	if err := run(); err != nil {
		return 0, err
	}
	after, err := runtime()
	return after - before, err
}

var benchCgroupSeq int

// benchCgroup makes a cgroup of the benchmark's own under the cgroup2
// root and opens it; it is removed when b ends (its children have been
// waited for by then, and withOwners has closed the links: a cgroup with
// a process in it cannot be removed).
func benchCgroup(b *testing.B) *os.File {
	b.Helper()
	root := testCgroup2Root(b)
	benchCgroupSeq++
	cg := filepath.Join(root, fmt.Sprintf("netuse-bench-%d-%d", os.Getpid(), benchCgroupSeq))
	if err := os.Mkdir(cg, 0o755); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := os.Remove(cg); err != nil {
			b.Errorf("remove the benchmark's cgroup: %v", err)
		}
	})
	dir, err := os.Open(cg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dir.Close() })
	return dir
}

// loopbackSink opens, on 127.0.0.1, a TCP listener that accepts and closes
// every connection, or a UDP socket that reads and drops every datagram,
// and returns its port. Both are closed, and their goroutine waited for,
// when b ends.
func loopbackSink(b *testing.B, proto string) int {
	b.Helper()
	done := make(chan struct{})
	if proto == "udp" {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close(); <-done })
		go func() {
			defer close(done)
			buf := make([]byte, 64)
			for {
				if _, _, err := c.ReadFrom(buf); errors.Is(err, net.ErrClosed) {
					return
				}
			}
		}()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	// Plain TCP: Go listens with MPTCP by default, whose subflow would
	// add work in the child's softirqs that netuse does not cause.
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err == nil {
				c.Close()
			}
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

// runOwnerChild runs the test binary as the owner-bench child in the cgroup
// dir, for n cycles, and returns the CPU time it reports.
func runOwnerChild(dir *os.File, proto string, port, n int) (int64, error) {
	argv := childArgv("owner-bench", proto, strconv.Itoa(port), strconv.Itoa(n))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd()), Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("child in the cgroup: %w: %q", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "cpu_ns "); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("child printed no cpu_ns: %q", out)
}

// ownerMemlock returns the memory the kernel charges for the ring buffer
// and for all four objects, as /proc/self/fdinfo says ("memlock:").
func ownerMemlock(p *ownerPrograms) (ring, all int64, err error) {
	fds := []int{p.events.FD(), p.lost.FD(), p.create.FD(), p.release.FD()}
	for i, fd := range fds {
		info, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
		if err != nil {
			return 0, 0, err
		}
		n, ok := int64(0), false
		for line := range strings.Lines(string(info)) {
			if v, found := strings.CutPrefix(line, "memlock:"); found {
				n, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				ok = err == nil
			}
		}
		if !ok {
			return 0, 0, fmt.Errorf("fdinfo of fd %d has no memlock: %q", fd, info)
		}
		if i == 0 {
			ring = n
		}
		all += n
	}
	return ring, all, nil
}

// The book's side. Socket i of these benchmarks is a TCP connection from
// 127.0.0.1 to a remote address of its own, open for 500 ns; its records
// are as the kernel writes them, so that parseOwnerEvent reads them.

var benchOwnerName = "curl"

// benchOwnerEvent returns the record of socket i's creation or release,
// parsed, with a name shared by all (parseOwnerEvent would allocate one).
func benchOwnerEvent(i int, release bool) ownerEvent {
	local, remote := benchOwnerFlow(i)
	ev := ownerEvent{release: release, cookie: uint64(i) + 1, inode: uint64(i) + 1e6, netns: 4026531840,
		at: benchOwnerTime(i), pid: 1000 + i%5000, start: 12345, uid: 1000, name: benchOwnerName, proto: unix.IPPROTO_TCP}
	if release {
		ev.at += 500
		ev.local, ev.remote = local, remote
	}
	return ev
}

// benchOwnerFlow is socket i's endpoints: distinct for the last 16
// million sockets, far more than the book keeps.
func benchOwnerFlow(i int) (local, remote netip.AddrPort) {
	local = netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(1024+i%60000))
	remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 443)
	return local, remote
}

func benchOwnerTime(i int) int64 { return 1.8e18 + int64(i)*1000 }

// encodeOwnerEvent writes ev into rec (evSize bytes) as the programs do,
// for an IPv4 socket.
func encodeOwnerEvent(rec []byte, ev ownerEvent, clk *monoClock) {
	clear(rec)
	ne := binary.NativeEndian
	ne.PutUint64(rec[evCookie:], ev.cookie)
	ne.PutUint64(rec[evNetns:], ev.netns)
	ne.PutUint64(rec[evTime:], uint64(ev.at-clk.offset))
	ne.PutUint64(rec[evStart:], ev.start*(1e9/ticksPerSecond))
	ne.PutUint32(rec[evTgid:], uint32(ev.pid))
	ne.PutUint32(rec[evUID:], ev.uid)
	copy(rec[evComm:evComm+16], ev.name)
	rec[evKind] = evCreate
	ne.PutUint16(rec[evFamily:], unix.AF_INET)
	ne.PutUint32(rec[evProto:], uint32(ev.proto))
	ne.PutUint64(rec[evInode:], ev.inode)
	if ev.release {
		rec[evKind] = evRelease
		a := rec[evAddrs:]
		r4, l4 := ev.remote.Addr().As4(), ev.local.Addr().As4()
		copy(a[0:4], r4[:])
		copy(a[4:8], l4[:])
		binary.BigEndian.PutUint16(a[12:], ev.remote.Port())
		ne.PutUint16(a[14:], ev.local.Port())
	}
}

// fillOwnerBook adds maxClosed sockets created and released, then maxOpen
// created, from records parsed as netuse's reader parses them: a book as
// full as it gets.
func fillOwnerBook() *ownerBook {
	bk := newOwnerBook()
	clk := &monoClock{} // fixed: the times are made up
	rec := make([]byte, evSize)
	add := func(ev ownerEvent) {
		encodeOwnerEvent(rec, ev, clk)
		if ev, ok := parseOwnerEvent(rec, clk); ok {
			bk.add(ev)
		}
	}
	for i := range maxClosed {
		add(benchOwnerEvent(i, false))
		add(benchOwnerEvent(i, true))
	}
	for i := maxClosed; i < maxClosed+maxOpen; i++ {
		add(benchOwnerEvent(i, false))
	}
	return bk
}

// BenchmarkOwnerBook measures the book: a socket's two records taken
// (add_pair: the records parsed already; parse_add_pair: from the ring's
// bytes, as netuse's reader does), the look-ups the resolver makes, and
// filling a book to its bounds, with the heap that book holds (heap-MiB,
// and B/record over its maxClosed closed and maxOpen open sockets).
func BenchmarkOwnerBook(b *testing.B) {
	b.Run("add_pair", func(b *testing.B) {
		// From a book whose ring of closed sockets is full: each pair
		// then evicts the oldest, as in a long run.
		bk := newOwnerBook()
		for i := range maxClosed {
			bk.add(benchOwnerEvent(i, false))
			bk.add(benchOwnerEvent(i, true))
		}
		i := maxClosed
		b.ReportAllocs()
		for b.Loop() {
			bk.add(benchOwnerEvent(i, false))
			bk.add(benchOwnerEvent(i, true))
			i++
		}
		if open, closed, _ := bk.stats(); open != 0 || closed != maxClosed {
			b.Fatalf("book holds %d open, %d closed; want 0, %d", open, closed, maxClosed)
		}
	})
	b.Run("parse_add_pair", func(b *testing.B) {
		bk := newOwnerBook()
		clk := &monoClock{}
		create, release := make([]byte, evSize), make([]byte, evSize)
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			encodeOwnerEvent(create, benchOwnerEvent(i, false), clk)
			encodeOwnerEvent(release, benchOwnerEvent(i, true), clk)
			for _, rec := range [][]byte{create, release} {
				ev, ok := parseOwnerEvent(rec, clk)
				if !ok {
					b.Fatal("record not parsed")
				}
				bk.add(ev)
			}
			i++
		}
	})
	full := fillOwnerBook()
	b.Run("closed_hit", func(b *testing.B) {
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			j := i * 7919 % maxClosed // not in the order they were added
			local, remote := benchOwnerFlow(j)
			if o, ok := full.closedOwner(flow{unix.IPPROTO_TCP, local, remote}, benchOwnerTime(j)+100); !ok || o.opened != benchOwnerTime(j) {
				b.Fatalf("socket %d not found: %+v", j, o)
			}
			i++
		}
	})
	b.Run("closed_miss", func(b *testing.B) {
		// The worst case: all four keys looked up, none there.
		fl := flow{unix.IPPROTO_TCP, netip.MustParseAddrPort("127.0.0.1:1023"), netip.MustParseAddrPort("192.0.2.1:443")}
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := full.closedOwner(fl, benchOwnerTime(0)); ok {
				b.Fatal("found a socket never recorded")
			}
		}
	})
	b.Run("open_cookie", func(b *testing.B) {
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			j := maxClosed + i*7919%maxOpen
			if _, ok := full.openOwner(uint64(j)+1, uint64(j)+1e6); !ok {
				b.Fatalf("open socket %d not found", j)
			}
			i++
		}
	})
	b.Run("open_inode", func(b *testing.B) {
		// An MPTCP subflow: its cookie is not in the book, its inode is.
		i := 0
		b.ReportAllocs()
		for b.Loop() {
			j := maxClosed + i*7919%maxOpen
			if _, ok := full.openOwner(1<<40+uint64(j), uint64(j)+1e6); !ok {
				b.Fatalf("open socket %d not found by inode", j)
			}
			i++
		}
	})
	full = nil
	b.Run("fill", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fillOwnerBook()
		}
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		bk := fillOwnerBook()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if open, closed, _ := bk.stats(); open != maxOpen || closed != maxClosed {
			b.Fatalf("book holds %d open, %d closed; want %d, %d", open, closed, maxOpen, maxClosed)
		}
		runtime.KeepAlive(bk)
		held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		b.ReportMetric(held/(1<<20), "heap-MiB")
		b.ReportMetric(held/(maxOpen+maxClosed), "B/record")
	})
}
