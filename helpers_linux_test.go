package main

// The harness of the privileged tests: two network namespaces joined by a
// veth pair (testNet), commands run in one (inNS), this test binary run as
// a traffic helper there (startHelper, trafficChild), and netuse run there
// with its NDJSON records read as they come (netuseRun), checked against
// the interfaces' counters (markIface); servers run there in the
// background (startBg, startServeNS).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testChildren are the children this test binary runs as (runTestChild).
var testChildren = map[string]func(args []string) int{
	"traffic":      trafficChild,   // moves traffic (startHelper)
	"netuse":       netuseChild,    // netuse itself, with the test's clock
	"stream":       streamChild,    // a paced TCP stream (startStream)
	"resolve":      resolveChild,   // reverse DNS in a namespace (TestResolveReal)
	"owner-bench":  ownerBenchMain, // socket cycles in a cgroup (BenchmarkOwnerPrograms)
	"hold-sockets": holderMain,     // sockets held open (the attribute benchmarks)
}

// histSpeed is how much faster than the real clock netuseChild's runs
// under NETUSE_TEST_HISTORY_CLOCK: serve's --interval 60s is 100 ms, and
// its flush (a minute) too.
const histSpeed = 600

// netuseChild is netuse, as main makes it, run in a test's namespace;
// with NETUSE_TEST_HISTORY_CLOCK (RFC 3339) set, on a clock from then
// histSpeed times as fast, its sleeps as short.
func netuseChild(args []string) int {
	clk := clock{now: time.Now, sleep: sleepCtx}
	if at := os.Getenv("NETUSE_TEST_HISTORY_CLOCK"); at != "" {
		start, err := time.Parse(time.RFC3339, at)
		if err != nil {
			fmt.Fprintln(os.Stderr, "netuse child:", err)
			return 1
		}
		real0 := time.Now()
		clk = clock{
			now:   func() time.Time { return start.Add(time.Since(real0) * histSpeed) },
			sleep: func(ctx context.Context, d time.Duration) error { return sleepCtx(ctx, d/histSpeed) },
		}
	}
	a := &app{stdout: os.Stdout, stderr: os.Stderr, clock: clk, counters: readCounters, termSize: terminalSize,
		proc: hostProc(), bootID: bootID, uptime: uptime, stateWait: stateWait, historyPath: defaultHistoryPath}
	return a.main(args)
}

// helperComm is the name the kernel gives a helper process (startHelper):
// its program's file name, cut to 15 bytes (TASK_COMM_LEN, 16 with the
// final NUL), "netuse.test" under go test.
func helperComm() string {
	name := filepath.Base(os.Args[0])
	return name[:min(len(name), 15)]
}

// testNet is two network namespaces, a and b, joined by veth-a and veth-b:
// 192.0.2.1 and 2001:db8::1 in a, 192.0.2.2 and 2001:db8::2 in b. These
// documentation addresses exist only inside the two namespaces.
type testNet struct {
	a, b string // namespace names
}

var netSeq int

// newNamespaces makes a network namespace for each suffix, named prefix,
// this process's pid, a sequence number and the suffix, with its loopback
// up; they are deleted when the test ends.
func newNamespaces(t testing.TB, prefix string, suffixes ...string) []string {
	t.Helper()
	needRoot(t)
	netSeq++
	var names []string
	for _, s := range suffixes {
		ns := fmt.Sprintf("%s%d-%d%s", prefix, os.Getpid(), netSeq, s)
		names = append(names, ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		runAll(t, []string{"ip", "netns", "add", ns}, []string{"ip", "-n", ns, "link", "set", "lo", "up"})
	}
	return names
}

// run runs a command, and fails the test if it fails.
func run(t testing.TB, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

// runAll runs commands, and fails the test at the first that fails.
func runAll(t testing.TB, cmds ...[]string) {
	t.Helper()
	for _, argv := range cmds {
		run(t, argv...)
	}
}

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	ns := newNamespaces(t, "nu", "a", "b")
	n := &testNet{a: ns[0], b: ns[1]}
	runAll(t,
		[]string{"ip", "-n", n.a, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", n.b},
		[]string{"ip", "netns", "exec", n.a, "sysctl", "-qw", "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.veth-a.accept_ra=0"},
		[]string{"ip", "netns", "exec", n.b, "sysctl", "-qw", "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.veth-b.accept_ra=0"},
		[]string{"ip", "-n", n.a, "addr", "add", "192.0.2.1/24", "dev", "veth-a"},
		[]string{"ip", "-n", n.b, "addr", "add", "192.0.2.2/24", "dev", "veth-b"},
		[]string{"ip", "-n", n.a, "addr", "add", "2001:db8::1/64", "dev", "veth-a", "nodad"},
		[]string{"ip", "-n", n.b, "addr", "add", "2001:db8::2/64", "dev", "veth-b", "nodad"},
		[]string{"ip", "-n", n.a, "link", "set", "veth-a", "up"},
		[]string{"ip", "-n", n.b, "link", "set", "veth-b", "up"},
	)
	return n
}

// inNS returns a command that runs argv inside network namespace ns, or in
// the test's own namespace if ns is "".
func inNS(ns string, argv ...string) *exec.Cmd {
	if ns != "" {
		argv = append([]string{"ip", "netns", "exec", ns}, argv...)
	}
	return exec.Command(argv[0], argv[1:]...)
}

// ifaceBytes reads an interface's rx and tx byte counters inside a namespace.
func ifaceBytes(t testing.TB, ns, iface string) (rx, tx uint64) {
	t.Helper()
	out, err := inNS(ns, "cat",
		"/sys/class/net/"+iface+"/statistics/rx_bytes", "/sys/class/net/"+iface+"/statistics/tx_bytes").Output()
	if err != nil {
		t.Fatalf("read counters of %s in %s: %v", iface, ns, err)
	}
	f := strings.Fields(string(out))
	rx, _ = strconv.ParseUint(f[0], 10, 64)
	tx, _ = strconv.ParseUint(f[1], 10, 64)
	return rx, tx
}

// bgProc is a server run in a namespace until the test ends; out is its
// stdout and stderr.
type bgProc struct {
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{} // closed once out has all the process wrote
}

// startBg starts argv in ns and calls line with each line it writes.
func startBg(t *testing.T, ns string, line func(string), argv ...string) *bgProc {
	t.Helper()
	p := &bgProc{cmd: inNS(ns, argv...), done: make(chan struct{})}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	err = p.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.out.mu.Lock()
			p.out.b.WriteString(sc.Text() + "\n")
			p.out.mu.Unlock()
			line(sc.Text())
		}
	}()
	// ip netns exec execs the program: the command's pid is its.
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done; p.cmd.Wait() })
	return p
}

// tail is the last lines of what p wrote.
func (p *bgProc) tail() string {
	lines := strings.Split(strings.TrimSuffix(p.out.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// startServeNS starts argv, a netuse serve with --listen 127.0.0.1:0, in
// ns, and waits for its line that says where it listens, which it
// returns, host:port.
func startServeNS(t *testing.T, ns string, argv ...string) (p *bgProc, addr string) {
	t.Helper()
	addrs := make(chan string, 1)
	p = startBg(t, ns, func(line string) {
		if a, ok := strings.CutPrefix(line, "netuse: serve: metrics on http://"); ok {
			select {
			case addrs <- strings.TrimSuffix(a, "/metrics"):
			default:
			}
		}
	}, argv...)
	select {
	case addr = <-addrs:
	case <-p.done:
		t.Fatalf("serve ended before it listened:\n%s", p.tail())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not say where it listens within 20 s:\n%s", p.tail())
	}
	return p, addr
}

// ifaceMark is an interface's byte counters in a namespace, read at a
// start, to say what the interface moved since.
type ifaceMark struct {
	ns, iface string
	rx, tx    uint64
}

// markIface reads the counters of iface in ns ("": the test's own).
func markIface(t testing.TB, ns, iface string) ifaceMark {
	t.Helper()
	rx, tx := ifaceBytes(t, ns, iface)
	return ifaceMark{ns, iface, rx, tx}
}

// moved returns the bytes the interface received and sent since m.
func (m ifaceMark) moved(t testing.TB) (rx, tx uint64) {
	t.Helper()
	rx, tx = ifaceBytes(t, m.ns, m.iface)
	return rx - m.rx, tx - m.tx
}

// helper is a child process that moves traffic (trafficChild).
type helper struct {
	cmd   *exec.Cmd
	args  []string // its words
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// startHelper runs the test binary as a traffic helper inside ns. It lives
// until the test ends, so that netuse can find it while it reports.
func startHelper(t *testing.T, ns string, args ...string) *helper {
	t.Helper()
	return startChild(t, nil, ns, args...)
}

// startChild is startHelper for a test or a benchmark, the helper inside
// cgroup cg from its first instruction on (CLONE_INTO_CGROUP) if cg is
// not nil.
func startChild(t testing.TB, cg *os.File, ns string, args ...string) *helper {
	t.Helper()
	cmd := inNS(ns, childArgv("traffic", args...)...)
	cmd.Stderr = os.Stderr
	if cg != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(cg.Fd())}
	}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, args: args, stdin: stdin, lines: bufio.NewScanner(stdout)}
	t.Cleanup(h.end)
	return h
}

// end closes the helper's standard input and waits for it to exit, 5 s
// at most before it is killed.
func (h *helper) end() {
	h.stdin.Close()
	done := make(chan struct{})
	go func() { h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		h.cmd.Process.Kill()
		<-done
	}
}

// expect waits for the helper's next line and checks its first word.
func (h *helper) expect(t testing.TB, word string) string {
	t.Helper()
	if !h.lines.Scan() {
		t.Fatalf("helper %v ended before saying %q", h.args, word)
	}
	line := h.lines.Text()
	if !strings.HasPrefix(line, word) {
		t.Fatalf("helper %v said %q, want %q", h.args, line, word)
	}
	return line
}

// netuseRun is netuse writing NDJSON in a namespace, its records read as
// they come, by type: the one harness of the tests that run netuse and
// check what it wrote against the interfaces' counters.
type netuseRun struct {
	cmd     *exec.Cmd
	mu      sync.Mutex // guards the records
	procs   []procRecord
	conns   []connRecord
	groups  []groupRecord
	capts   []captureRecord
	summary []procRecord // proc's records of type "summary", at the end
	newCapt chan struct{}
	done    chan struct{}
	stderr  strings.Builder
	warns   string // a warning stop expects, once, on stderr; "" for none
	// sums: the run is proc's without --by, whose summary check checks
	sums bool
}

// startProc runs netuse proc --json every 300 ms in ns and returns once it
// has reported its first interval.
func startProc(t *testing.T, ns string, args ...string) *netuseRun {
	t.Helper()
	p := launchProc(t, ns, append([]string{"--interval", "300ms"}, args...)...)
	p.intervals(t, 1) // capturing now
	return p
}

// startProcOnce runs netuse proc with arguments that end it by itself
// (--count); wait waits for that. It returns once netuse captures.
func startProcOnce(t *testing.T, ns string, args ...string) *netuseRun {
	t.Helper()
	p := launchProc(t, ns, args...)
	waitCapturing(t, p)
	return p
}

// startJSON runs netuse with args (a command and its flags, --json added)
// in ns and returns once it has reported its first interval: it captures.
func startJSON(t *testing.T, ns string, args ...string) *netuseRun {
	t.Helper()
	p := launchNetuse(t, ns, []string{netuseBinary(t)}, args...)
	p.intervals(t, 1)
	return p
}

// launchProc starts netuse proc --json with args in ns and collects its
// records.
func launchProc(t *testing.T, ns string, args ...string) *netuseRun {
	t.Helper()
	return launchProcArgv(t, ns, []string{netuseBinary(t)}, args...)
}

// launchProcArgv is launchProc with the command that runs netuse given:
// the binary, after a wrapper such as setpriv if any.
func launchProcArgv(t *testing.T, ns string, argv []string, args ...string) *netuseRun {
	t.Helper()
	p := launchNetuse(t, ns, argv, append([]string{"proc"}, args...)...)
	p.sums = !slices.Contains(args, "--by")
	return p
}

// launchNetuse starts argv (netuse, after a wrapper if any) with args (a
// command and its flags) and --json in ns, and collects its records until
// its stdout closes.
func launchNetuse(t *testing.T, ns string, argv []string, args ...string) *netuseRun {
	t.Helper()
	cmd := inNS(ns, append(append(slices.Clone(argv), args...), "--json")...)
	p := &netuseRun{cmd: cmd, newCapt: make(chan struct{}, 1), done: make(chan struct{})}
	cmd.Stderr = &p.stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
	go p.read(t, stdout)
	return p
}

// read collects netuse's records until its stdout closes.
func (p *netuseRun) read(t *testing.T, stdout io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var head recordHead
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			t.Errorf("netuse wrote a line that is not JSON: %q", sc.Text())
			continue
		}
		p.mu.Lock()
		var err error
		switch head.Type {
		case "proc":
			err = appendRecord(sc.Bytes(), &p.procs)
		case "conn":
			err = appendRecord(sc.Bytes(), &p.conns)
		case "group":
			err = appendRecord(sc.Bytes(), &p.groups)
		case "summary":
			if p.sums {
				err = appendRecord(sc.Bytes(), &p.summary)
			}
		case "capture":
			err = appendRecord(sc.Bytes(), &p.capts)
			select {
			case p.newCapt <- struct{}{}:
			default:
			}
		default:
			t.Errorf("unexpected record %q", sc.Text())
		}
		if err != nil {
			t.Errorf("%v: %q", err, sc.Text())
		}
		p.mu.Unlock()
	}
}

// appendRecord decodes line, an NDJSON record, onto recs.
func appendRecord[R any](line []byte, recs *[]R) error {
	var r R
	err := json.Unmarshal(line, &r)
	*recs = append(*recs, r)
	return err
}

// waitCapturing waits until the netuse of p holds packet sockets of its
// namespace and every one is bound to an interface and running: its
// capture is open, and so (runProc starts them first) are the kernel's
// owner records. For a one-shot netuse, which writes nothing before its
// end.
func waitCapturing(t *testing.T, p *netuseRun) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		// The netuse is the last of the command's chain (ip netns exec
		// execs it), so its pid is the command's.
		pid := p.cmd.Process.Pid
		inodes := map[string]bool{}
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			link, _ := os.Readlink(fd)
			if ino, ok := strings.CutPrefix(link, "socket:["); ok {
				inodes[strings.TrimSuffix(ino, "]")] = true
			}
		}
		// sk RefCnt Type Proto Iface R Rmem User Inode: a socket is in the
		// list from its creation, bound (Iface) and running (R) later,
		// after netuse has mapped its ring.
		packet, _ := os.ReadFile(fmt.Sprintf("/proc/%d/net/packet", pid))
		bound, unbound := 0, 0
		for _, line := range strings.Split(string(packet), "\n") {
			f := strings.Fields(line)
			if len(f) == 9 && inodes[f[8]] {
				if f[4] != "0" && f[5] == "1" {
					bound++
				} else {
					unbound++
				}
			}
		}
		if bound > 0 && unbound == 0 {
			return
		}
		select {
		case <-p.done:
			t.Fatalf("netuse ended before it captured: %s", p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("netuse did not open its capture within 10 s")
}

// wait waits for a netuse that ends by itself and checks it as stop does.
func (p *netuseRun) wait(t *testing.T) {
	t.Helper()
	<-p.done
	p.check(t)
}

// intervals waits until netuse has reported n more intervals than it has
// so far.
func (p *netuseRun) intervals(t *testing.T, n int) {
	t.Helper()
	p.mu.Lock()
	want := len(p.capts) + n
	p.mu.Unlock()
	for {
		p.mu.Lock()
		got := len(p.capts)
		p.mu.Unlock()
		if got >= want {
			return
		}
		select {
		case <-p.newCapt:
		case <-p.done:
			t.Fatalf("netuse ended: %s", p.stderr.String())
		case <-time.After(10 * time.Second):
			t.Fatalf("netuse reported nothing for 10s: %s", p.stderr.String())
		}
	}
}

// finish waits for three more intervals, which report the last packets
// moved, then stops netuse as stop does.
func (p *netuseRun) finish(t *testing.T) {
	t.Helper()
	p.intervals(t, 3)
	p.stop(t)
}

// stop ends netuse with SIGTERM and checks that it exited cleanly, that it
// warned of nothing, and that in every interval the rows add up to the
// bytes captured.
func (p *netuseRun) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	<-p.done
	p.check(t)
}

// check checks that netuse exited cleanly, that it warned of nothing (or
// of warns alone, once), that in every interval the rows add up to the
// bytes captured, and that proc's summary adds up its intervals.
func (p *netuseRun) check(t *testing.T) {
	t.Helper()
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("netuse: %v: %s", err, p.stderr.String())
	}
	if want := p.warns; want != "" {
		if strings.Count(p.stderr.String(), "\n") != 1 || !strings.HasPrefix(p.stderr.String(), "netuse: warning: "+want) {
			t.Errorf("netuse wrote to stderr %q; want one warning %q", p.stderr.String(), want)
		}
	} else if p.stderr.Len() > 0 {
		t.Errorf("netuse wrote to stderr: %s", p.stderr.String())
	}
	p.addsUp(t)
	if p.sums {
		p.summaryAddsUp(t)
	}
}

// summaryAddsUp checks that the summary written at the end, if there is
// one (two intervals or more), has each row's bytes of all its intervals.
func (p *netuseRun) summaryAddsUp(t *testing.T) {
	t.Helper()
	if len(p.summary) == 0 {
		if len(p.capts) > 1 {
			t.Errorf("%d intervals and no summary", len(p.capts))
		}
		return
	}
	type key struct {
		pid           int
		start, reason string
	}
	sum := map[key][2]uint64{}
	for _, r := range p.procs {
		k := key{r.Pid, r.StartTime, r.Reason}
		s := sum[k]
		sum[k] = [2]uint64{s[0] + r.RxBytes, s[1] + r.TxBytes}
	}
	if len(p.summary) != len(sum) {
		t.Errorf("summary has %d rows, the intervals %d", len(p.summary), len(sum))
	}
	for _, r := range p.summary {
		if s := sum[key{r.Pid, r.StartTime, r.Reason}]; s != [2]uint64{r.RxBytes, r.TxBytes} {
			t.Errorf("summary of pid %d %q %s: rx %d tx %d, the intervals add up to rx %d tx %d", r.Pid, r.Name, r.Reason, r.RxBytes, r.TxBytes, s[0], s[1])
		}
	}
}

// addsUp checks that in every interval the rows add up to the bytes
// captured and the kernel dropped nothing.
func (p *netuseRun) addsUp(t *testing.T) {
	t.Helper()
	for _, c := range p.capts {
		var rx, tx uint64
		for _, r := range p.procs {
			if r.Seq == c.Seq {
				rx, tx = rx+r.RxBytes, tx+r.TxBytes
			}
		}
		for _, x := range p.conns {
			if x.Seq == c.Seq {
				rx, tx = rx+x.RxBytes, tx+x.TxBytes
			}
		}
		for _, g := range p.groups {
			if g.Seq == c.Seq {
				rx, tx = rx+g.RxBytes, tx+g.TxBytes
			}
		}
		if rx != c.RxBytes || tx != c.TxBytes {
			t.Errorf("interval %d: rows add up to rx %d tx %d, captured rx %d tx %d", c.Seq, rx, tx, c.RxBytes, c.TxBytes)
		}
		if c.Drops != 0 {
			t.Errorf("interval %d: the kernel dropped %d frames", c.Seq, c.Drops)
		}
	}
}

// credited sums the bytes netuse credited to pid.
func (p *netuseRun) credited(pid int) (rx, tx uint64, name string) {
	for _, r := range p.procs {
		if r.Pid == pid {
			rx += r.RxBytes
			tx += r.TxBytes
			name = r.Name
		}
	}
	return rx, tx, name
}

// ifaceTotal sums an interface's frames over netuse's capture records.
func (p *netuseRun) ifaceTotal(name string) (rx, tx uint64) {
	for _, c := range p.capts {
		rx += c.ByIface[name].RxBytes
		tx += c.ByIface[name].TxBytes
	}
	return rx, tx
}

// near is near (from lo to hi times want) for a count of p's, and shows
// p's records if it fails.
func (p *netuseRun) near(t *testing.T, what string, got, want uint64, lo, hi float64) {
	t.Helper()
	if near(t, what, got, want, lo, hi) {
		return
	}
	for _, r := range p.procs {
		t.Logf("seq %d pid %d %q %s: rx %d tx %d", r.Seq, r.Pid, r.Name, r.Reason, r.RxBytes, r.TxBytes)
	}
	for _, c := range p.capts {
		t.Logf("seq %d captured rx %d tx %d packets %d, by_iface %v, drops %d, flows %d, owners %s, records lost %d",
			c.Seq, c.RxBytes, c.TxBytes, c.RxPackets+c.TxPackets, c.ByIface, c.Drops, c.Flows, c.Owners, c.OwnersLost)
	}
	p.dump(t)
}

// creditNear checks that the bytes netuse credited to helper h, rx+tx,
// are from lo to hi times want.
func (p *netuseRun) creditNear(t *testing.T, what string, h *helper, want uint64, lo, hi float64) {
	t.Helper()
	rx, tx, _ := p.credited(h.cmd.Process.Pid)
	p.near(t, what, rx+tx, want, lo, hi)
}

// connection sums the rows of one connection end over the run: its
// bytes, the pids it was credited to, and its last record.
func (p *netuseRun) connection(proto string, local, remote netip.AddrPort) (rx, tx uint64, pids map[int]bool, last connRecord) {
	p.mu.Lock()
	defer p.mu.Unlock()
	pids = map[int]bool{}
	for _, c := range p.conns {
		if c.Proto == proto && c.LocalAddr == local.Addr().String() && c.LocalPort == local.Port() &&
			c.RemoteAddr == remote.Addr().String() && c.RemotePort == remote.Port() {
			rx, tx = rx+c.RxBytes, tx+c.TxBytes
			pids[c.Pid] = true
			last = c
		}
	}
	return rx, tx, pids, last
}

// dump logs every proc and conn row, for a failure.
func (p *netuseRun) dump(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.procs {
		t.Logf("seq %d pid %d %q %s netns %d: rx %d tx %d", r.Seq, r.Pid, r.Name, r.Reason, r.Netns, r.RxBytes, r.TxBytes)
	}
	for _, c := range p.conns {
		t.Logf("seq %d %s %s:%d -> %s:%d %s pid %d %q %s: rx %d tx %d", c.Seq, c.Proto, c.LocalAddr, c.LocalPort,
			c.RemoteAddr, c.RemotePort, c.State, c.Pid, c.Name, c.Reason, c.RxBytes, c.TxBytes)
	}
}

// pidsOf returns the pids in out, a loop's words, as a set.
func pidsOf(out []byte) map[int]bool {
	pids := map[int]bool{}
	for _, f := range strings.Fields(string(out)) {
		pid, _ := strconv.Atoi(f)
		pids[pid] = true
	}
	return pids
}

// trafficChild is the traffic helper that the tests run in their
// namespaces (startHelper). Its words:
//
//	serve-recv tcp|udp ADDR   listen; read until the sender is done; say "got N"
//	serve-send ADDR N         listen; send N bytes to the first client; say "sent N"
//	send tcp|udp ADDR N       connect and send N bytes; say "sent N"
//	recv ADDR                 connect and read until EOF; say "got N"
//	flood IFACE MAC N         write N UDP frames of distinct flows to MAC; say "sent N"
//
// With NETUSE_TEST_COMM set, it first takes that as its process name.
// It then waits for its standard input to close, with its sockets open, so
// that netuse can find them however long it takes: finding the owners of
// short-lived sockets is tested on its own.
func trafficChild(args []string) int {
	if comm := os.Getenv("NETUSE_TEST_COMM"); comm != "" {
		// /proc/self is the process's main thread, whose name ps and
		// netuse show.
		if err := os.WriteFile("/proc/self/comm", []byte(comm), 0); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			return 1
		}
	}
	if err := runHelper(args); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 1
	}
	io.Copy(io.Discard, os.Stdin)
	return 0
}

// udpEnd is the payload of the datagram that ends a UDP transfer.
const udpEnd = "end"

func runHelper(args []string) error {
	switch args[0] {
	case "serve-recv":
		if args[1] == "udp" {
			c, err := net.ListenPacket("udp", args[2])
			if err != nil {
				return err
			}
			fmt.Println("listening", c.LocalAddr())
			buf := make([]byte, 65536)
			got := 0
			for {
				n, _, err := c.ReadFrom(buf)
				if err != nil {
					return err
				}
				if string(buf[:n]) == udpEnd {
					break
				}
				got += n
			}
			fmt.Println("got", got)
			return nil
		}
		_, c, err := acceptOne(args[2])
		if err != nil {
			return err
		}
		return recvAll(c)
	case "serve-send":
		_, c, err := acceptOne(args[1])
		if err != nil {
			return err
		}
		n, _ := strconv.Atoi(args[2])
		return sendAll(c, n)
	case "send":
		n, _ := strconv.Atoi(args[3])
		c, err := net.Dial(args[1], args[2])
		if err != nil {
			return err
		}
		if args[1] == "udp" {
			return sendDatagrams(c, n)
		}
		return sendAll(c, n)
	case "serve-http":
		n, _ := strconv.Atoi(args[2])
		ln, err := listenTCP(args[1])
		if err != nil {
			return err
		}
		body := make([]byte, n)
		return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }))
	case "flood":
		// flood IFACE DSTMAC N [SRC DST DPORT]: N UDP datagrams from
		// 192.0.2.2 (SRC) to 192.0.2.1:9 (DST:DPORT), each from another
		// source port and address low byte (another flow), written
		// straight to IFACE as frames.
		src, dst, dport := "192.0.2.2", "192.0.2.1", "9"
		if len(args) == 7 {
			src, dst, dport = args[4], args[5], args[6]
		}
		return flood(args[1], args[2], args[3], src, dst, dport)
	case "sockets":
		return socketsHelper()
	case "udp-churn":
		// Each line of stdin, a number N: open and close N UDP sockets,
		// each bound to a port of its own, then say "made N".
		in := bufio.NewScanner(os.Stdin)
		for in.Scan() {
			n, err := strconv.Atoi(in.Text())
			if err != nil {
				return err
			}
			for range n {
				c, err := net.ListenPacket("udp4", "127.0.0.1:0")
				if err != nil {
					return err
				}
				c.Close()
			}
			fmt.Printf("made %d\n", n)
		}
		return in.Err()
	case "recv":
		c, err := net.Dial("tcp", args[1])
		if err != nil {
			return err
		}
		return recvAll(c)
	}
	if ok, err := ownerHelper(args); ok {
		return err
	}
	if ok, err := connHelper(args); ok {
		return err
	}
	if ok, err := countHelper(args); ok {
		return err
	}
	return fmt.Errorf("unknown helper %q", args)
}

// listenTCP listens on addr and says "listening ADDR", the word a test
// waits for before it connects.
func listenTCP(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	fmt.Println("listening", ln.Addr())
	return ln, nil
}

// acceptOne is listenTCP, then the listener's first connection.
func acceptOne(addr string) (net.Listener, net.Conn, error) {
	ln, err := listenTCP(addr)
	if err != nil {
		return nil, nil, err
	}
	c, err := ln.Accept()
	return ln, c, err
}

// tcpPair connects to ln, which listens on this host, and returns both
// ends of the connection.
func tcpPair(ln net.Listener) (c, s net.Conn, err error) {
	if c, err = net.Dial(ln.Addr().Network(), ln.Addr().String()); err != nil {
		return nil, nil, err
	}
	if s, err = ln.Accept(); err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, s, nil
}

// recvAll reads c until EOF, says "got N", and keeps the connection until
// standard input closes.
func recvAll(c net.Conn) error {
	got, err := io.Copy(io.Discard, c)
	fmt.Println("got", got)
	io.Copy(io.Discard, os.Stdin)
	return err
}

// sendDatagrams sends n bytes over UDP in 1,000-byte datagrams, paced so
// that none is lost on the way, then the datagram that ends the transfer;
// it says "sent N" and waits for standard input to close.
func sendDatagrams(c net.Conn, n int) error {
	buf := make([]byte, 1000)
	for sent := 0; sent < n; sent += len(buf) {
		if _, err := c.Write(buf); err != nil {
			return err
		}
		if sent%(100*len(buf)) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond)
	c.Write([]byte(udpEnd))
	fmt.Println("sent", n)
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// sendAll writes n bytes to a TCP connection, closes its sending side,
// says "sent N", and keeps the connection until standard input closes.
func sendAll(c net.Conn, n int) error {
	if _, err := c.Write(make([]byte, n)); err != nil {
		return err
	}
	c.(*net.TCPConn).CloseWrite()
	fmt.Println("sent", n)
	io.Copy(io.Discard, os.Stdin)
	return nil
}
