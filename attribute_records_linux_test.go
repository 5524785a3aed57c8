package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"golang.org/x/sys/unix"
)

// exitCodes walks every path of a program without loops and returns the
// index of each exit whose R0 is not the constant 1: a cgroup/sock_create
// program that returns anything else refuses the socket to the machine's
// processes. A call leaves R0 unknown.
func exitCodes(insns asm.Instructions) ([]int, error) { return exitsOtherThan(insns, 1) }

// exitsOtherThan is exitCodes for a program whose "allow" is allow.
func exitsOtherThan(insns asm.Instructions, allow int64) ([]int, error) {
	labels, err := insns.SymbolOffsets()
	if err != nil {
		return nil, err
	}
	type state struct {
		pc    int
		r0    int64
		known bool // r0 holds a constant
	}
	var bad []int
	seen := map[state]bool{}
	todo := []state{{pc: 0}}
	for len(todo) > 0 {
		s := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for !seen[s] {
			seen[s] = true
			if s.pc >= len(insns) {
				return nil, fmt.Errorf("path falls off the end at %d", s.pc)
			}
			ins := insns[s.pc]
			op := ins.OpCode
			switch class := op.Class(); {
			case class.IsJump() && op.JumpOp() == asm.Exit:
				if !s.known || s.r0 != allow {
					bad = append(bad, s.pc)
				}
				s.pc = -1
			case class.IsJump() && op.JumpOp() == asm.Call:
				s = state{pc: s.pc + 1}
			case class.IsJump():
				to, ok := labels[ins.Reference()]
				if !ok {
					return nil, fmt.Errorf("jump at %d to no label %q", s.pc, ins.Reference())
				}
				if to <= s.pc {
					return nil, fmt.Errorf("jump back at %d", s.pc)
				}
				if op.JumpOp() != asm.Ja {
					todo = append(todo, state{s.pc + 1, s.r0, s.known})
				}
				s.pc = to
			case (class.IsALU() || class.IsLoad()) && ins.Dst == asm.R0:
				next := state{pc: s.pc + 1}
				if class == asm.ALU64Class && op.ALUOp() == asm.Mov && op.Source() == asm.ImmSource {
					next.r0, next.known = ins.Constant, true
				}
				s = next
			default:
				s.pc++
			}
			if s.pc < 0 {
				break
			}
		}
	}
	return bad, nil
}

// TestOwnerProgramsAllow proves, without privileges, that both programs
// return "allow" on every path, and that the check would see a path that
// does not.
func TestOwnerProgramsAllow(t *testing.T) {
	off := kernelOffsets{groupLeader: 2000, startBoottime: 1800, comm: 3000, daddr: 0, v6Daddr: 56, v6Saddr: 72}
	for _, kind := range []uint8{evCreate, evRelease} {
		bad, err := exitCodes(ownerProgram(kind, off))
		if err != nil {
			t.Fatal(err)
		}
		if len(bad) > 0 {
			t.Errorf("program %d: exits at %v may return other than 1", kind, bad)
		}
	}
	// The check itself: a copy whose last "mov r0, 1" is a call.
	insns := ownerProgram(evCreate, off)
	for i := len(insns) - 1; i >= 0; i-- {
		if insns[i].Symbol() == "allow" {
			insns[i] = asm.FnKtimeGetNs.Call().WithSymbol("allow")
			break
		}
	}
	if bad, err := exitCodes(insns); err != nil || len(bad) == 0 {
		t.Errorf("a program that returns the time was passed: %v, %v", bad, err)
	}
}

func TestCgroup2Root(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"35 24 0:30 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup"},
		{"30 25 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", "/sys/fs/cgroup/unified"},
		{"30 25 0:26 /sub /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", ""}, // a bind mount of a subtree: not the root
		{"30 25 0:26 / /mnt/my\\040cg rw - cgroup2 none rw\n", "/mnt/my cg"},
		{"31 25 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", ""},
	} {
		got, ok := cgroup2Root([]byte(c.in))
		if got != c.want || ok != (c.want != "") {
			t.Errorf("cgroup2Root(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

// TestOwnerPrograms loads both programs through the kernel's verifier and
// runs them for real on a cgroup of the test's own, with one child process
// in it, before anything is attached where the machine's processes are:
// the child's sockets must all be allowed, and recorded with its pid,
// start time, name and endpoints. (BPF_PROG_TEST_RUN does not run
// cgroup/sock programs: the kernel answers "not supported".)
func TestOwnerPrograms(t *testing.T) {
	needRoot(t)
	progs, err := loadOwnerPrograms()
	if err != nil {
		t.Fatal(err)
	}
	defer progs.close()
	cg := filepath.Join(testCgroup2Root(t), fmt.Sprintf("netuse-test-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(cg)
	reader, err := ringbuf.NewReader(progs.events)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	dir, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	links, err := progs.attach(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range links {
			l.Close()
		}
	}()

	// The child, started in the cgroup, opens a TCP listener and a
	// connection to it, and a UDP socket that sends one datagram, closes
	// them and says what their endpoints were.
	argv := childArgv("traffic", "sockets")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NETUSE_TEST_COMM=nu-sockets")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	cmd.Stdin = strings.NewReader("")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child in the cgroup: %v (a socket refused?): %s", err, out)
	}
	pid := cmd.Process.Pid
	want := map[flow]bool{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 4 && f[0] == "closed" {
			proto := map[string]uint8{"tcp": 6, "udp": 17}[f[1]]
			want[flow{proto, netip.MustParseAddrPort(f[2]), netip.MustParseAddrPort(f[3])}] = true
		}
	}
	if len(want) != 3 {
		t.Fatalf("child said %q; want three closed sockets", out)
	}

	// The programs do not wake the reader (BPF_RB_NO_WAKEUP): a flush
	// hands over what they wrote.
	clk := newMonoClock()
	created, released := 0, map[flow]ownerEvent{}
	if err := reader.Flush(); err != nil {
		t.Fatal(err)
	}
	for {
		rec, err := reader.Read()
		if errors.Is(err, ringbuf.ErrFlushed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ev, ok := parseOwnerEvent(rec.RawSample, clk)
		if !ok || ev.pid != pid {
			continue
		}
		if ev.name != "nu-sockets" {
			t.Errorf("record of pid %d names %q, want nu-sockets", pid, ev.name)
		}
		if ev.at < time.Now().Add(-time.Minute).UnixNano() || ev.at > time.Now().UnixNano() {
			t.Errorf("record's time %v is not now", time.Unix(0, ev.at))
		}
		if !ev.release {
			created++
			continue
		}
		fl := flow{ev.proto, ev.local, ev.remote}
		if want[fl] {
			released[fl] = ev
		}
	}
	// The listener, the client and the UDP socket were created by the
	// child (and Go's probes of the IPv6 stack, maybe); the accepted
	// socket was not created by any process.
	if created < 3 {
		t.Errorf("%d sockets recorded created, want at least 3", created)
	}
	for fl := range want {
		if _, ok := released[fl]; !ok {
			t.Errorf("no release recorded for %v %v -> %v", fl.proto, fl.local, fl.remote)
		}
	}
	start := childStart(t, out)
	for fl, ev := range released {
		if ev.start != start {
			t.Errorf("release of %v: start time %d, the child's %d", fl.local, ev.start, start)
		}
	}
}

// TestOwnerRecordsWake: the reader of the owner records sleeps while the
// ring holds less than ringWakeAt (an idle netuse is not woken a hundred
// times a second), catchUp hands over what waits, and the programs wake
// the reader once the ring holds ringWakeAt, without a catchUp. On a
// cgroup of the test's own, with a child in it that opens and closes UDP
// sockets on request.
func TestOwnerRecordsWake(t *testing.T) {
	needRoot(t)
	cg := filepath.Join(testCgroup2Root(t), fmt.Sprintf("netuse-test-wake-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(cg)
	dir, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	k, err := startBenchOwners(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer k.close()

	argv := childArgv("traffic", "udp-churn")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NETUSE_TEST_COMM=nu-churn")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	lines := bufio.NewScanner(stdout)
	churn := func(n int) {
		t.Helper()
		fmt.Fprintln(stdin, n)
		if !lines.Scan() || lines.Text() != fmt.Sprintf("made %d", n) {
			t.Fatalf("the child in the cgroup said %q, %v; want \"made %d\"", lines.Text(), lines.Err(), n)
		}
	}
	const record = evSize + 8            // and the ring's header
	below := ringWakeAt / record / 2 / 2 // sockets whose two records fill half of ringWakeAt
	churn(below)
	if open, closed, _ := k.book.stats(); open+closed != 0 {
		t.Errorf("the book has %d open and %d closed sockets before catchUp, with the ring under ringWakeAt; want none (the reader woken)", open, closed)
	}
	k.catchUp()
	if _, closed, lost := k.book.stats(); closed < below || lost != 0 {
		t.Fatalf("after catchUp the book has %d closed sockets, %d records lost; want %d, none lost", closed, lost, below)
	}
	// Past ringWakeAt: the programs wake the reader; nobody calls catchUp.
	above := 2 * ringWakeAt / record / 2 // twice ringWakeAt, well under the ring
	churn(above)
	for deadline := time.Now().Add(10 * time.Second); ; {
		_, closed, lost := k.book.stats()
		if lost != 0 {
			t.Fatalf("%d records lost", lost)
		}
		if closed >= below+ringWakeAt/record/4 { // half of what the ring held at the wakeup, at least
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the book has %d closed sockets 10 s after %d more closed; want at least %d: the programs did not wake the reader", closed, above, below+ringWakeAt/record/4)
		}
		time.Sleep(time.Millisecond) // polling the book for the sign
	}
}

// childStart reads the start time the sockets helper printed.
func childStart(t *testing.T, out []byte) uint64 {
	t.Helper()
	for line := range strings.Lines(string(out)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "start "); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("the helper printed no start time: %q", out)
	return 0
}

// socketsHelper is the "sockets" helper of TestOwnerPrograms: it prints
// its start time, then "closed PROTO LOCAL REMOTE" for each socket it
// closes.
func socketsHelper() error {
	stat, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return err
	}
	start, _ := parseStartTime(stat)
	fmt.Println("start", start)
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c, s, err := tcpPair(ln)
	if err != nil {
		return err
	}
	if _, err := c.Write([]byte("hello")); err != nil {
		return err
	}
	if _, err := bufio.NewReader(s).ReadByte(); err != nil {
		return err
	}
	fmt.Println("closed tcp", c.LocalAddr(), c.RemoteAddr())
	fmt.Println("closed tcp", s.LocalAddr(), s.RemoteAddr())
	c.Close()
	s.Close()
	ln.Close()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	if err := unix.Sendto(fd, []byte("x"), 0, &unix.SockaddrInet4{Port: 9, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return err
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return err
	}
	fmt.Printf("closed udp 0.0.0.0:%d 0.0.0.0:0\n", sa.(*unix.SockaddrInet4).Port)
	return unix.Close(fd)
}

// testCgroup2Root returns where the test's mount namespace has the
// cgroup2 hierarchy.
func testCgroup2Root(tb testing.TB) string {
	tb.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		tb.Fatal(err)
	}
	path, ok := cgroup2Root(mi)
	if !ok {
		tb.Fatal("no cgroup2 hierarchy mounted")
	}
	return path
}

// ownerHooks are where the owner programs attach: socket creation and
// release.
var ownerHooks = []ebpf.AttachType{ebpf.AttachCGroupInetSockCreate, ebpf.AttachCgroupInetSockRelease}

// attachedPrograms returns the ids of the programs attached to the cgroup2
// root at the hooks given.
func attachedPrograms(t *testing.T, hooks ...ebpf.AttachType) map[ebpf.ProgramID]bool {
	t.Helper()
	path := testCgroup2Root(t)
	root, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ids := map[ebpf.ProgramID]bool{}
	for _, at := range hooks {
		res, err := link.QueryPrograms(link.QueryOptions{Target: int(root.Fd()), Attach: at})
		if err != nil {
			t.Fatalf("query the programs of %s: %v", path, err)
		}
		for _, p := range res.Programs {
			ids[p.ID] = true
		}
	}
	return ids
}

// TestOwnerProgramsGoneAfterKill runs netuse proc, finds its two programs
// attached to the cgroup2 root, kills netuse with SIGKILL, and checks that
// both are detached: the links die with their last fd, nothing is pinned.
func TestOwnerProgramsGoneAfterKill(t *testing.T) {
	n := newTestNet(t)
	before := attachedPrograms(t, ownerHooks...)
	p := startProc(t, n.a, "--iface", "veth-a")
	var ours []ebpf.ProgramID
	for id := range attachedPrograms(t, ownerHooks...) {
		if !before[id] {
			ours = append(ours, id)
		}
	}
	if len(ours) != 2 {
		t.Fatalf("netuse attached %d programs to the cgroup2 root (%v), want 2", len(ours), ours)
	}
	p.cmd.Process.Kill()
	<-p.done
	p.cmd.Wait()
	// The kernel frees a link's attachment from a work queue: look until
	// they are gone.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		now := attachedPrograms(t, ownerHooks...)
		if !now[ours[0]] && !now[ours[1]] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after SIGKILL, programs %v are still attached", ours)
		}
	}
}

// TestProcOwnersProc: --owners proc attaches nothing, says so in every
// capture record, and still credits a transfer.
func TestProcOwnersProc(t *testing.T) {
	n := newTestNet(t)
	before := attachedPrograms(t, ownerHooks...)
	p := startProc(t, n.a, "--iface", "veth-a", "--owners", "proc")
	for id := range attachedPrograms(t, ownerHooks...) {
		if !before[id] {
			t.Errorf("netuse --owners proc attached program %d", id)
		}
	}
	local, _ := upload(t, n.a, n.b, "192.0.2.2:7035", transfer)
	p.finish(t)
	if _, tx, _ := p.credited(local.cmd.Process.Pid); tx < transfer {
		t.Errorf("the sender was credited with tx %d, it sent %d", tx, transfer)
	}
	for _, c := range p.capts {
		if c.Owners != "proc" {
			t.Fatalf("interval %d: owner_source %q, want proc", c.Seq, c.Owners)
		}
	}
}

// FuzzParseOwnerEvent: any bytes from the ring are read without a panic,
// and what is kept is a socket of IPv4 or IPv6 (any protocol, MPTCP read
// as TCP) with endpoints of one family.
func FuzzParseOwnerEvent(f *testing.F) {
	rec := make([]byte, evSize)
	binary.NativeEndian.PutUint32(rec[evProto:], unix.IPPROTO_MPTCP)
	binary.NativeEndian.PutUint16(rec[evFamily:], unix.AF_INET6)
	rec[evKind] = evRelease
	f.Add(rec)
	f.Add(rec[:evSize-1])
	clk := &monoClock{}
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, ok := parseOwnerEvent(b, clk)
		if !ok {
			return
		}
		if len(b) < evSize {
			t.Fatalf("kept a record of %d bytes", len(b))
		}
		family, proto := binary.NativeEndian.Uint16(b[evFamily:]), binary.NativeEndian.Uint32(b[evProto:])
		want := uint8(proto)
		if proto == unix.IPPROTO_MPTCP {
			want = unix.IPPROTO_TCP
		}
		if (family != unix.AF_INET && family != unix.AF_INET6) || ev.proto != want {
			t.Fatalf("kept a record of family %d, protocol %d as protocol %d", family, proto, ev.proto)
		}
		if ev.local.IsValid() && ev.local.Addr().Is4() != ev.remote.Addr().Is4() {
			t.Fatalf("endpoints of two families: %v %v", ev.local, ev.remote)
		}
	})
}

// TestMonoClockTake feeds monoClock's taking clock reads as a busy machine
// gives them: the first pair preempted before its wall-clock read, the
// others not. The offset must be the true one, not the preempted pair's
// (300 us late: later than a one-shot client's socket is old at its first
// datagram, so that no socket's life would hold it), and a step of
// the wall clock must be followed once monoRetake has passed.
func TestMonoClockTake(t *testing.T) {
	const offset = int64(1.7e18)
	step := int64(0)
	now := int64(1e9) // the fake monotonic clock
	pairs := 0
	c := &monoClock{read: func() (int64, int64, int64) {
		pairs++
		m1 := now
		late := int64(500)
		if pairs == 1 {
			late = 300e3 // preempted between the first two reads
		}
		w := m1 + late + offset + step
		now += late + 500
		return m1, w, now
	}}
	c.take()
	if c.offset != offset || c.width != 1e3 {
		t.Fatalf("offset %d (width %d) after a preempted pair; want %d (width 1000)", c.offset-offset, c.width, int64(0))
	}
	taken := pairs
	step = 5e9
	if got := c.wall(uint64(now + monoRetake/2)); got != now+monoRetake/2+offset {
		t.Errorf("wall clock before the retake: off by %d ns; want the offset taken", got-(now+monoRetake/2+offset))
	}
	if pairs != taken {
		t.Errorf("taken again %d pairs within monoRetake", pairs-taken)
	}
	now += 2 * monoRetake
	if m := now; c.wall(uint64(m)) != m+offset+step {
		t.Errorf("a wall-clock step of %d ns, %d ns later: off by %d ns; want it followed", step, 2*int64(monoRetake), c.wall(uint64(m))-(m+offset+step))
	}

	// No pair narrow enough: the best is kept, and taken again at the
	// next record.
	wide := &monoClock{read: func() (int64, int64, int64) {
		pairs++
		now += 200e3
		return now - 200e3, now - 100e3 + offset, now
	}}
	wide.take()
	if wide.width != 200e3 || wide.offset != offset {
		t.Fatalf("all pairs 200 us wide: offset off by %d, width %d", wide.offset-offset, wide.width)
	}
	before := pairs
	wide.wall(uint64(now))
	if pairs == before {
		t.Error("a wide taking was not taken again at the next record")
	}
}

// TestMonoClockReal checks the taking against the machine's clocks: a
// monotonic time read between two wall-clock reads must turn into a wall
// time between them, give or take half the taking's width.
func TestMonoClockReal(t *testing.T) {
	c := newMonoClock()
	var m unix.Timespec
	for range 100 {
		before := time.Now().UnixNano()
		unix.ClockGettime(unix.CLOCK_MONOTONIC, &m)
		after := time.Now().UnixNano()
		if w := c.wall(uint64(m.Nano())); w < before-c.width/2-1 || w > after+c.width/2+1 {
			t.Fatalf("monotonic %d is wall %d, outside [%d, %d] (width %d)", m.Nano(), w, before, after, c.width)
		}
	}
	t.Logf("taken from a pair %d ns wide", c.width)
}
