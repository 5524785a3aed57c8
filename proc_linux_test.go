package main

// Privileged end-to-end tests of netuse proc: each builds two network
// namespaces joined by a veth pair, runs netuse inside one of them (so that
// no test captures the machine's own interfaces), moves traffic of known
// size between helper processes, and checks what netuse credits to which
// process against the interface counters. They need root; they skip
// without it, except under CI, where they must run.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// needRoot skips a privileged test outside CI and fails it inside.
func needRoot(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: privileged")
	}
	if os.Geteuid() != 0 {
		privSkip(t, "needs root")
	}
	needTool(t, "ip", "ip(8) from iproute2")
}

// needTool returns the path of a program that a privileged test runs, or
// skips the test outside CI and fails it inside; what names the program
// and where it comes from.
func needTool(t *testing.T, name, what string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		privSkip(t, "needs "+what)
	}
	return path
}

// privSkip skips a privileged test that cannot run here, except under CI
// (the environment variable CI set), where every privileged test must run:
// there a skip would hide that none did, so the test fails instead.
func privSkip(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("%s, and CI is set: privileged tests must run there", why)
	}
	t.Skip(why)
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

func newTestNet(t *testing.T) *testNet {
	t.Helper()
	needRoot(t)
	netSeq++
	n := &testNet{
		a: fmt.Sprintf("nu%d-%da", os.Getpid(), netSeq),
		b: fmt.Sprintf("nu%d-%db", os.Getpid(), netSeq),
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", n.a).Run()
		exec.Command("ip", "netns", "del", n.b).Run()
	})
	for _, cmd := range [][]string{
		{"ip", "netns", "add", n.a},
		{"ip", "netns", "add", n.b},
		{"ip", "-n", n.a, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", n.b},
		{"ip", "netns", "exec", n.a, "sysctl", "-qw", "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.veth-a.accept_ra=0"},
		{"ip", "netns", "exec", n.b, "sysctl", "-qw", "net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.veth-b.accept_ra=0"},
		{"ip", "-n", n.a, "addr", "add", "192.0.2.1/24", "dev", "veth-a"},
		{"ip", "-n", n.b, "addr", "add", "192.0.2.2/24", "dev", "veth-b"},
		{"ip", "-n", n.a, "addr", "add", "2001:db8::1/64", "dev", "veth-a", "nodad"},
		{"ip", "-n", n.b, "addr", "add", "2001:db8::2/64", "dev", "veth-b", "nodad"},
		{"ip", "-n", n.a, "link", "set", "lo", "up"},
		{"ip", "-n", n.b, "link", "set", "lo", "up"},
		{"ip", "-n", n.a, "link", "set", "veth-a", "up"},
		{"ip", "-n", n.b, "link", "set", "veth-b", "up"},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(cmd, " "), err, out)
		}
	}
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
func ifaceBytes(t *testing.T, ns, iface string) (rx, tx uint64) {
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

// helper is a child process that moves traffic (see TestHelperProcess).
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines *bufio.Scanner
}

// startHelper runs the test binary as a traffic helper inside ns. It lives
// until the test ends, so that netuse can find it while it reports.
func startHelper(t *testing.T, ns string, args ...string) *helper {
	t.Helper()
	cmd := inNS(ns, append([]string{os.Args[0], "-test.run=^TestHelperProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "NETUSE_TEST_HELPER=1")
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, lines: bufio.NewScanner(stdout)}
	t.Cleanup(func() {
		h.stdin.Close()
		done := make(chan struct{})
		go func() { h.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			h.cmd.Process.Kill()
			<-done
		}
	})
	return h
}

// expect waits for the helper's next line and checks its first word.
func (h *helper) expect(t *testing.T, word string) string {
	t.Helper()
	if !h.lines.Scan() {
		t.Fatalf("helper %v ended before saying %q", h.cmd.Args[5:], word)
	}
	line := h.lines.Text()
	if !strings.HasPrefix(line, word) {
		t.Fatalf("helper %v said %q, want %q", h.cmd.Args[5:], line, word)
	}
	return line
}

// procRun is a netuse proc --json running in a namespace.
type procRun struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	procs   []procRecord
	capts   []captureRecord
	summary []procRecord // the records of type "summary", at the end
	newCapt chan struct{}
	done    chan struct{}
	stderr  strings.Builder
}

// startProc runs netuse proc --json every 300 ms in ns and returns once it
// has reported its first interval.
func startProc(t *testing.T, ns string, args ...string) *procRun {
	t.Helper()
	p := launchProc(t, ns, append([]string{"--interval", "300ms"}, args...)...)
	p.intervals(t, 1) // capturing now
	return p
}

// launchProc starts netuse proc --json with args in ns and collects its
// records.
func launchProc(t *testing.T, ns string, args ...string) *procRun {
	t.Helper()
	return launchProcArgv(t, ns, []string{netuseBinary(t)}, args...)
}

// launchProcArgv is launchProc with the command that runs netuse given:
// the binary, after a wrapper such as setpriv if any.
func launchProcArgv(t *testing.T, ns string, argv []string, args ...string) *procRun {
	t.Helper()
	cmd := inNS(ns, append(append(argv, "proc", "--json"), args...)...)
	p := &procRun{cmd: cmd, newCapt: make(chan struct{}, 1), done: make(chan struct{})}
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
func (p *procRun) read(t *testing.T, stdout io.Reader) {
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
		switch head.Type {
		case "proc":
			var r procRecord
			json.Unmarshal(sc.Bytes(), &r)
			p.procs = append(p.procs, r)
		case "summary":
			var r procRecord
			json.Unmarshal(sc.Bytes(), &r)
			p.summary = append(p.summary, r)
		case "capture":
			var r captureRecord
			json.Unmarshal(sc.Bytes(), &r)
			p.capts = append(p.capts, r)
			select {
			case p.newCapt <- struct{}{}:
			default:
			}
		default:
			t.Errorf("unexpected record %q", sc.Text())
		}
		p.mu.Unlock()
	}
}

// startProcOnce runs netuse proc with arguments that end it by itself
// (--count); wait waits for that. It returns once netuse captures.
func startProcOnce(t *testing.T, ns string, args ...string) *procRun {
	t.Helper()
	p := launchProc(t, ns, args...)
	waitCapturing(t, p)
	return p
}

// waitCapturing waits until the netuse of p holds packet sockets of its
// namespace and every one is bound to an interface and running: its
// capture is open, and so (runProc starts them first) are the kernel's
// owner records. For a one-shot netuse, which writes nothing before its
// end.
func waitCapturing(t *testing.T, p *procRun) {
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
func (p *procRun) wait(t *testing.T) {
	t.Helper()
	<-p.done
	p.check(t)
}

// intervals waits until netuse has reported n more intervals than it has
// so far.
func (p *procRun) intervals(t *testing.T, n int) {
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
			t.Fatalf("netuse proc ended: %s", p.stderr.String())
		case <-time.After(10 * time.Second):
			t.Fatalf("netuse proc reported nothing for 10s: %s", p.stderr.String())
		}
	}
}

// stop ends netuse with SIGTERM and checks that it exited cleanly, that it
// warned of nothing, and that in every interval the rows add up to the
// bytes captured.
func (p *procRun) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	<-p.done
	p.check(t)
}

// check checks that netuse exited cleanly, that it warned of nothing, and
// that in every interval the rows add up to the bytes captured.
func (p *procRun) check(t *testing.T) {
	t.Helper()
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("netuse proc: %v: %s", err, p.stderr.String())
	}
	if p.stderr.Len() > 0 {
		t.Errorf("netuse proc wrote to stderr: %s", p.stderr.String())
	}
	p.addsUp(t)
	p.summaryAddsUp(t)
}

// summaryAddsUp checks that the summary written at the end, if there is
// one (two intervals or more), has each row's bytes of all its intervals.
func (p *procRun) summaryAddsUp(t *testing.T) {
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
func (p *procRun) addsUp(t *testing.T) {
	t.Helper()
	for _, c := range p.capts {
		var rx, tx uint64
		for _, r := range p.procs {
			if r.Seq == c.Seq {
				rx += r.RxBytes
				tx += r.TxBytes
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
func (p *procRun) credited(pid int) (rx, tx uint64, name string) {
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
func (p *procRun) ifaceTotal(name string) (rx, tx uint64) {
	for _, c := range p.capts {
		rx += c.ByIface[name].RxBytes
		tx += c.ByIface[name].TxBytes
	}
	return rx, tx
}

// within1 checks that got is within 1% of want, and shows p's rows if not.
func (p *procRun) within1(t *testing.T, what string, got, want uint64) {
	t.Helper()
	if want == 0 || math.Abs(float64(got)-float64(want)) > 0.01*float64(want) {
		t.Errorf("%s: netuse credited %d bytes, the interface counted %d (%.2f%%)", what, got, want, 100*float64(got)/float64(want))
		for _, r := range p.procs {
			t.Logf("seq %d pid %d %q %s: rx %d tx %d", r.Seq, r.Pid, r.Name, r.Reason, r.RxBytes, r.TxBytes)
		}
		for _, c := range p.capts {
			t.Logf("seq %d captured rx %d tx %d packets %d drops %d", c.Seq, c.RxBytes, c.TxBytes, c.RxPackets+c.TxPackets, c.Drops)
		}
	} else {
		t.Logf("%s: netuse credited %d bytes, the interface counted %d (%.3f%%)", what, got, want, 100*float64(got)/float64(want))
	}
}

const transfer = 8 << 20 // bytes each test moves

func TestProcTCPUpload(t *testing.T)   { testProcTCP(t, "192.0.2.2:7001", false) }
func TestProcTCPDownload(t *testing.T) { testProcTCP(t, "192.0.2.1:7002", true) }
func TestProcTCPIPv6(t *testing.T)     { testProcTCP(t, "[2001:db8::2]:7003", false) }

// testProcTCP moves a TCP transfer over the veth and checks that the
// process in namespace a that moved it is credited with the interface's
// bytes. download: the server is in a and sends; else the client in a sends.
func testProcTCP(t *testing.T, addr string, download bool) {
	n := newTestNet(t)
	rx0, tx0 := ifaceBytes(t, n.a, "veth-a")
	p := startProc(t, n.a, "--iface", "veth-a")
	var local *helper
	if download {
		local = startHelper(t, n.a, "serve-send", addr, strconv.Itoa(transfer))
		local.expect(t, "listening")
		remote := startHelper(t, n.b, "recv", addr)
		remote.expect(t, fmt.Sprintf("got %d", transfer))
		local.expect(t, "sent")
	} else {
		local, _ = upload(t, n.a, n.b, addr, transfer)
	}
	p.intervals(t, 3) // the last packets, reported
	p.stop(t)
	rx1, tx1 := ifaceBytes(t, n.a, "veth-a")
	rx, tx, name := p.credited(local.cmd.Process.Pid)
	if name != helperComm() {
		t.Errorf("pid %d is named %q, want the test binary's name %q", local.cmd.Process.Pid, name, helperComm())
	}
	p.within1(t, "rx+tx of the process", rx+tx, rx1-rx0+tx1-tx0)
	// Together: one direction is acknowledgements only, a few kB, where a
	// neighbour discovery packet before netuse opened its capture is 3%.
	irx, itx := p.ifaceTotal("veth-a")
	p.within1(t, "by_iface veth-a rx+tx", irx+itx, rx1-rx0+tx1-tx0)
	if download {
		p.within1(t, "tx of the server", tx, tx1-tx0)
	} else {
		p.within1(t, "tx of the client", tx, tx1-tx0)
	}
}

// upload moves n bytes over TCP from a helper in fromNS to a server in
// toNS at addr, and returns both once the server has them all.
func upload(t *testing.T, fromNS, toNS, addr string, n int) (client, server *helper) {
	t.Helper()
	server = startHelper(t, toNS, "serve-recv", "tcp", addr)
	server.expect(t, "listening")
	client = startHelper(t, fromNS, "send", "tcp", addr, strconv.Itoa(n))
	client.expect(t, "sent")
	server.expect(t, fmt.Sprintf("got %d", n))
	return client, server
}

// TestProcUDPUnconnected sends datagrams from b to an unconnected UDP socket
// bound to the wildcard address in a.
func TestProcUDPUnconnected(t *testing.T) {
	n := newTestNet(t)
	rx0, _ := ifaceBytes(t, n.a, "veth-a")
	p := startProc(t, n.a, "--iface", "veth-a")
	server := startHelper(t, n.a, "serve-recv", "udp", "0.0.0.0:7004")
	server.expect(t, "listening")
	client := startHelper(t, n.b, "send", "udp", "192.0.2.1:7004", strconv.Itoa(2<<20))
	client.expect(t, "sent")
	server.expect(t, "got")
	p.intervals(t, 3)
	p.stop(t)
	rx1, _ := ifaceBytes(t, n.a, "veth-a")
	rx, _, _ := p.credited(server.cmd.Process.Pid)
	p.within1(t, "rx of the UDP server", rx, rx1-rx0)
}

// TestProcLoopback moves a TCP transfer between two processes over
// loopback in a: the sender gets the upload, the receiver the download.
func TestProcLoopback(t *testing.T) {
	n := newTestNet(t)
	rx0, tx0 := ifaceBytes(t, n.a, "lo")
	p := startProc(t, n.a, "--iface", "lo")
	server := startHelper(t, n.a, "serve-recv", "tcp", "127.0.0.1:7005")
	server.expect(t, "listening")
	client := startHelper(t, n.a, "send", "tcp", "127.0.0.1:7005", strconv.Itoa(transfer))
	client.expect(t, "sent")
	server.expect(t, fmt.Sprintf("got %d", transfer))
	p.intervals(t, 3)
	p.stop(t)
	rx1, tx1 := ifaceBytes(t, n.a, "lo")
	_, ctx, _ := p.credited(client.cmd.Process.Pid)
	srx, _, _ := p.credited(server.cmd.Process.Pid)
	// Nearly all of lo's bytes flow from client to server: the data, and
	// the acknowledgements the other way are small.
	crx, _, _ := p.credited(client.cmd.Process.Pid)
	_, stx, _ := p.credited(server.cmd.Process.Pid)
	p.within1(t, "client tx + server tx", ctx+stx, tx1-tx0)
	irx, itx := p.ifaceTotal("lo")
	p.within1(t, "by_iface lo rx", irx, rx1-rx0)
	p.within1(t, "by_iface lo tx", itx, tx1-tx0)
	p.within1(t, "server rx + client rx", srx+crx, rx1-rx0)
	if ctx < transfer || srx < transfer {
		t.Errorf("client sent %d, server received %d; both should be at least %d", ctx, srx, transfer)
	}
}

// TestProcShortLived runs 200 curl processes one after the other in a,
// each fetching 100 kB from a server in b, and checks that the curl rows
// get at least 95% of the bytes, each row with the pid of a curl that ran:
// once with netuse reporting every 300 ms, once as a one-shot --count 1.
func TestProcShortLived(t *testing.T) {
	for _, mode := range []string{"continuous", "oneshot"} {
		t.Run(mode, func(t *testing.T) {
			n := newTestNet(t)
			// The target: 99.5%, which the kernel's owner
			// records reach in a namespace as on the host.
			testShortLived(t, mode, n.a, "veth-a", n.b, "192.0.2.2:7010", 0.995)
		})
	}
}

// TestProcShortLivedHost is TestProcShortLived with netuse and the curls in
// the test's own namespace, the machine's first where the tests run as
// root, on the host end of a veth into the server's namespace.
func TestProcShortLivedHost(t *testing.T) {
	for _, mode := range []string{"continuous", "oneshot"} {
		t.Run(mode, func(t *testing.T) {
			ns, host := hostVeth(t)
			// The target: 99.5%.
			testShortLived(t, mode, "", host, ns, "198.51.100.2:7011", 0.995)
		})
	}
}

// hostVeth makes a network namespace joined to the test's own by a veth
// pair: 198.51.100.1 on the host end, 198.51.100.2 on veth-b inside. It
// stops if the machine already routes 198.51.100.0/24, so that nothing
// goes anywhere else.
func hostVeth(t *testing.T) (ns, host string) {
	t.Helper()
	needRoot(t)
	if out, _ := exec.Command("ip", "route", "show", "match", "198.51.100.2").Output(); strings.Contains(string(out), "198.51.100.") {
		t.Fatalf("198.51.100.0/24 is routed here already (%s): the test will not add its own", strings.TrimSpace(string(out)))
	}
	netSeq++
	ns = fmt.Sprintf("nu%d-%ds", os.Getpid(), netSeq)
	host = fmt.Sprintf("nu%d-%dh", os.Getpid(), netSeq)
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", host).Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	for _, cmd := range [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "link", "add", host, "type", "veth", "peer", "name", "veth-b", "netns", ns},
		{"ip", "addr", "add", "198.51.100.1/24", "dev", host},
		{"ip", "-n", ns, "addr", "add", "198.51.100.2/24", "dev", "veth-b"},
		{"ip", "link", "set", host, "up"},
		{"ip", "-n", ns, "link", "set", "veth-b", "up"},
		{"ip", "-n", ns, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(cmd, " "), err, out)
		}
	}
	return ns, host
}

// testShortLived runs 200 curls one after the other in ns (""; the test's
// own), each fetching 100 kB from a server at addr in srvNS, with netuse
// in ns on iface, continuous or one-shot, and checks the share of iface's
// bytes in the curl rows against floor.
func testShortLived(t *testing.T, mode, ns, iface, srvNS, addr string, floor float64) {
	curl := needTool(t, "curl", "curl(1)")
	server := startHelper(t, srvNS, "serve-http", addr, "100000")
	server.expect(t, "listening")
	rx0, tx0 := ifaceBytes(t, ns, iface)
	var p *procRun
	if mode == "oneshot" {
		p = startProcOnce(t, ns, "--iface", iface, "--count", "1", "--interval", "8s")
	} else {
		p = startProc(t, ns, "--iface", iface)
	}
	// The loop ends after 200 curls, or early once the file stop
	// exists: a one-shot netuse reports 8 s, and on a busy machine
	// 200 curls take longer; the bytes of those after its end are
	// no part of what it reported.
	stop := filepath.Join(t.TempDir(), "stop")
	loop := inNS(ns, "sh", "-c",
		`for i in $(seq 200); do [ -e "$1" ] && break; "$0" -sf -o /dev/null "$2" & echo $!; wait $! || exit 1; done`, curl, stop, "http://"+addr+"/")
	var out strings.Builder
	loop.Stdout = &out
	if err := loop.Start(); err != nil {
		t.Fatal(err)
	}
	var rx1, tx1 uint64
	if mode == "oneshot" {
		<-p.done
		rx1, tx1 = ifaceBytes(t, ns, iface)
		os.WriteFile(stop, nil, 0o644)
	}
	if err := loop.Wait(); err != nil {
		t.Fatalf("curl loop: %v", err)
	}
	pids := map[int]bool{}
	for _, f := range strings.Fields(out.String()) {
		pid, _ := strconv.Atoi(f)
		pids[pid] = true
	}
	if mode == "oneshot" {
		p.wait(t)
	} else {
		p.intervals(t, 3)
		p.stop(t)
		rx1, tx1 = ifaceBytes(t, ns, iface)
	}
	if len(pids) < 50 {
		t.Fatalf("only %d curls ran while netuse ran", len(pids))
	}
	var credited uint64
	rows := 0
	for _, r := range p.procs {
		if r.Name == "curl" {
			rows++
			credited += r.RxBytes + r.TxBytes
			if !pids[r.Pid] {
				t.Errorf("a curl row has pid %d, which was no curl of the loop", r.Pid)
			}
		}
	}
	if mode == "continuous" {
		// Each curl its own bytes: a curl that reuses the port of one
		// before it is a new connection, not the old curl's.
		got := map[int]uint64{}
		for _, r := range p.procs {
			if r.Name == "curl" {
				got[r.Pid] += r.RxBytes
			}
		}
		for pid := range pids {
			if got[pid] < 100000 {
				t.Errorf("curl %d was credited with rx %d, it fetched 100000", pid, got[pid])
			}
		}
	}
	all := rx1 - rx0 + tx1 - tx0
	share := float64(credited) / float64(all)
	var inferred uint64
	for _, c := range p.capts {
		inferred += c.InferredBytes
	}
	t.Logf("%s: %d curls, %d curl rows with %d bytes of %d on %s: %.2f%%, %.2f%% by inference", mode, len(pids), rows, credited, all, iface,
		100*share, 100*float64(inferred)/float64(all))
	if share < floor {
		t.Errorf("curl rows got %.2f%% of the bytes, want at least %.1f%%", 100*share, 100*floor)
		for _, r := range p.procs {
			if r.Name != "curl" {
				t.Logf("seq %d pid %d %q %s: rx %d tx %d", r.Seq, r.Pid, r.Name, r.Reason, r.RxBytes, r.TxBytes)
			}
		}
		for _, c := range p.capts {
			t.Logf("seq %d: captured rx %d tx %d, by_iface %v, drops %d, flows %d, owners %s, records lost %d", c.Seq, c.RxBytes, c.TxBytes, c.ByIface, c.Drops, c.Flows, c.Owners, c.OwnersLost)
		}
	}
}

// TestProcOtherNamespace runs a server in a network namespace of its own,
// joined to the test's namespace by a veth pair, and a client in the test's
// namespace; netuse runs in the test's namespace on its end of the veth
// only. The server's socket is not in that namespace's table: netuse must
// read the other namespace's, credit the server with its bytes and say
// where it lives; the client is credited too, as both ends are processes
// of this machine. hostVeth uses 198.51.100.0/24 in the test's own
// namespace only after checking the machine does not route it.
func TestProcOtherNamespace(t *testing.T) {
	ns, host := hostVeth(t)
	rx0, tx0 := ifaceBytes(t, "", host)
	p := startProc(t, "", "--iface", host)

	server := startHelper(t, ns, "serve-send", "198.51.100.2:7020", strconv.Itoa(transfer))
	server.expect(t, "listening")
	client := startHelper(t, "", "recv", "198.51.100.2:7020")
	client.expect(t, fmt.Sprintf("got %d", transfer))
	server.expect(t, "sent")
	p.intervals(t, 3)
	p.stop(t)
	rx1, tx1 := ifaceBytes(t, "", host)

	srvRx, srvTx, srvName := p.credited(server.cmd.Process.Pid)
	cliRx, _, _ := p.credited(client.cmd.Process.Pid)
	p.within1(t, "server: rx+tx against the host end's rx+tx", srvRx+srvTx, rx1-rx0+tx1-tx0)
	p.within1(t, "client: rx against the host end's rx", cliRx, rx1-rx0)
	if srvName != helperComm() {
		t.Errorf("server named %q, want the test binary's name %q", srvName, helperComm())
	}
	want, _ := netnsOf(fmt.Sprintf("/proc/%d/ns/net", server.cmd.Process.Pid))
	for _, r := range p.procs {
		if r.Pid == server.cmd.Process.Pid && (r.Netns != want || want == 0) {
			t.Errorf("server row says netns %d, the server is in %d", r.Netns, want)
			break
		}
	}
}

// TestProcNAT puts the server in a "container" namespace behind a bridge in
// a "host" namespace, published on the host's uplink address by DNAT (and
// masquerade), and a client in a third namespace. netuse runs in the host
// namespace on its default interfaces, the uplink and the bridge, so it
// sees each packet twice: with the host's address on the uplink, with the
// container's on the bridge. Each end must be credited once, and nothing
// left to pid 0.
func TestProcNAT(t *testing.T) {
	needRoot(t)
	needTool(t, "nft", "nft(8) from nftables")
	id := fmt.Sprintf("nu%d", os.Getpid())
	host, ctr, cli := id+"-host", id+"-ctr", id+"-cli"
	t.Cleanup(func() {
		for _, ns := range []string{host, ctr, cli} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	for _, cmd := range [][]string{
		{"ip", "netns", "add", host},
		{"ip", "netns", "add", ctr},
		{"ip", "netns", "add", cli},
		// the uplink: host 198.51.100.1, client 198.51.100.2
		{"ip", "-n", host, "link", "add", "up-h", "type", "veth", "peer", "name", "up-c", "netns", cli},
		{"ip", "-n", host, "addr", "add", "198.51.100.1/24", "dev", "up-h"},
		{"ip", "-n", cli, "addr", "add", "198.51.100.2/24", "dev", "up-c"},
		// the bridge: host 203.0.113.1, container 203.0.113.2
		{"ip", "-n", host, "link", "add", "br0", "type", "bridge"},
		{"ip", "-n", host, "addr", "add", "203.0.113.1/24", "dev", "br0"},
		{"ip", "-n", host, "link", "add", "port0", "type", "veth", "peer", "name", "eth0", "netns", ctr},
		{"ip", "-n", host, "link", "set", "port0", "master", "br0"},
		{"ip", "-n", ctr, "addr", "add", "203.0.113.2/24", "dev", "eth0"},
		{"ip", "-n", host, "link", "set", "up-h", "up"},
		{"ip", "-n", host, "link", "set", "br0", "up"},
		{"ip", "-n", host, "link", "set", "port0", "up"},
		{"ip", "-n", host, "link", "set", "lo", "up"},
		{"ip", "-n", cli, "link", "set", "up-c", "up"},
		{"ip", "-n", ctr, "link", "set", "eth0", "up"},
		{"ip", "-n", ctr, "link", "set", "lo", "up"},
		{"ip", "-n", ctr, "route", "add", "default", "via", "203.0.113.1"},
		{"ip", "netns", "exec", host, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "netns", "exec", host, "nft", "add table ip nat; " +
			"add chain ip nat pre { type nat hook prerouting priority -100; }; " +
			"add rule ip nat pre iifname up-h tcp dport 8080 dnat to 203.0.113.2:7030; " +
			"add chain ip nat post { type nat hook postrouting priority 100; }; " +
			"add rule ip nat post oifname up-h masquerade"},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(cmd, " "), err, out)
		}
	}
	uprx0, uptx0 := ifaceBytes(t, host, "up-h")
	p := startProc(t, host)
	server := startHelper(t, ctr, "serve-send", "203.0.113.2:7030", strconv.Itoa(transfer))
	server.expect(t, "listening")
	client := startHelper(t, cli, "recv", "198.51.100.1:8080")
	client.expect(t, fmt.Sprintf("got %d", transfer))
	server.expect(t, "sent")
	p.intervals(t, 3)
	p.stop(t)
	uprx1, uptx1 := ifaceBytes(t, host, "up-h")
	up := uprx1 - uprx0 + uptx1 - uptx0 // the uplink's bytes; the bridge's are as many, give or take headers

	srvRx, srvTx, _ := p.credited(server.cmd.Process.Pid)
	cliRx, cliTx, _ := p.credited(client.cmd.Process.Pid)
	p.within1(t, "server, once", srvRx+srvTx, up)
	p.within1(t, "client, once", cliRx+cliTx, up)
	var nobody uint64
	for _, r := range p.procs {
		if r.Pid == 0 {
			nobody += r.RxBytes + r.TxBytes
		}
	}
	if nobody > up/100 {
		t.Errorf("%d bytes went to pid 0 rows, more than 1%% of the %d the uplink moved", nobody, up)
		for _, r := range p.procs {
			t.Logf("seq %d pid %d %q %s: rx %d tx %d", r.Seq, r.Pid, r.Name, r.Reason, r.RxBytes, r.TxBytes)
		}
	}
}

// TestProcWithoutCapNetRaw runs netuse proc as an unprivileged user: it must
// fail at once with one line naming the capability and the ways out.
func TestProcWithoutCapNetRaw(t *testing.T) {
	needRoot(t)
	setpriv := needTool(t, "setpriv", "setpriv(1) from util-linux")
	bin := netuseBinary(t)
	// The binary's directory must be open to the unprivileged user.
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, command := range []string{"proc", "conn"} {
		cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", bin, command, "-c", "1")
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 1 {
			t.Errorf("%s: exit status %d, want 1", command, code)
		}
		msg := stderr.String()
		if stdout.Len() > 0 || strings.Count(msg, "\n") != 1 || !strings.HasPrefix(msg, "netuse: "+command+": ") ||
			!strings.Contains(msg, "CAP_NET_RAW") || !strings.Contains(msg, "sudo") || !strings.Contains(msg, "setcap cap_net_raw") {
			t.Errorf("%s: stdout %q, stderr %q; want nothing, and one line of %s naming CAP_NET_RAW, sudo and setcap", command, stdout.String(), msg, command)
		}
	}
}

// TestHelperProcess is not a test: it is the traffic helper that the tests
// above run in their namespaces. Its words:
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
func TestHelperProcess(t *testing.T) {
	if os.Getenv("NETUSE_TEST_HELPER") == "" {
		return
	}
	if comm := os.Getenv("NETUSE_TEST_COMM"); comm != "" {
		// /proc/self is the process's main thread, whose name ps and
		// netuse show.
		if err := os.WriteFile("/proc/self/comm", []byte(comm), 0); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
	}
	args := os.Args
	for len(args) > 0 && args[0] != "--" {
		args = args[1:]
	}
	if err := runHelper(args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
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
		ln, err := net.Listen("tcp", args[2])
		if err != nil {
			return err
		}
		fmt.Println("listening", ln.Addr())
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		got, err := io.Copy(io.Discard, c)
		fmt.Println("got", got)
		io.Copy(io.Discard, os.Stdin)
		return err
	case "serve-send":
		ln, err := net.Listen("tcp", args[1])
		if err != nil {
			return err
		}
		fmt.Println("listening", ln.Addr())
		c, err := ln.Accept()
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
		ln, err := net.Listen("tcp", args[1])
		if err != nil {
			return err
		}
		fmt.Println("listening", ln.Addr())
		body := make([]byte, n)
		return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(body) }))
	case "flood":
		// flood IFACE DSTMAC N: N UDP datagrams from 192.0.2.2 to
		// 192.0.2.1:9, each from another source port and address low
		// byte (another flow), written straight to IFACE as frames.
		return flood(args[1], args[2], args[3])
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
		got, err := io.Copy(io.Discard, c)
		fmt.Println("got", got)
		io.Copy(io.Discard, os.Stdin)
		return err
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
