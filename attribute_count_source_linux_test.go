package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// TestProcSourceKernel runs netuse proc --source kernel on veth-a while a
// process in a uploads over TCP and another sends UDP datagrams: the
// programs, attached to the cgroup2 root by netuse (after
// TestCountProgramsAllow, TestCountProgramsRun and TestCountTraffic have
// run them on a cgroup of their own), credit each process with its bytes
// as the veth counts them (the UDP sender exactly: 100 datagrams of 1,000
// bytes and the 3-byte end, each with 28 bytes of IPv4 and UDP header and
// 14 of Ethernet), the rest of the veth's bytes go to "(no socket)", and
// every interval's rows add up to the veth's counters.
func TestProcSourceKernel(t *testing.T) {
	n := newTestNet(t)
	p := startProc(t, n.a, "--iface", "veth-a", "--source", "kernel")
	udpSrv := startHelper(t, n.b, "serve-recv", "udp", "192.0.2.2:7452")
	udpSrv.expect(t, "listening")
	udp := startHelper(t, n.a, "send", "udp", "192.0.2.2:7452", "100000")
	udp.expect(t, "sent") // all counted at egress, however many the receiver gets
	tcp, _ := upload(t, n.a, n.b, "192.0.2.2:7451", transfer)
	p.intervals(t, 3)
	p.stop(t) // the rows add up to the capture record in every interval, nothing on stderr
	ifRx, ifTx := p.ifaceTotal("veth-a")
	rowsAddUp(t, p, ifRx, ifTx, n.b)
	_, udpTx, _ := p.credited(udp.cmd.Process.Pid)
	if udpTx != 100*(1000+28+14)+(3+28+14) {
		t.Errorf("the UDP sender was credited with tx %d, want %d", udpTx, 100*(1000+28+14)+(3+28+14))
	}
	// The TCP sender: every byte of the veth's but the UDP sender's and
	// what no socket sent (an ARP request), which is little.
	_, tcpTx, _ := p.credited(tcp.cmd.Process.Pid)
	_, noneTx, _ := p.credited(0)
	if tcpTx < transfer || tcpTx != ifTx-udpTx-noneTx || noneTx > 1000 {
		t.Errorf("the TCP sender was credited with tx %d (it sent %d), the UDP sender %d, no socket %d, veth-a counted %d", tcpTx, transfer, udpTx, noneTx, ifTx)
	}
	for _, c := range p.capts {
		if c.Owners != "bpf" {
			t.Fatalf("interval %d: owner_source %q, want bpf", c.Seq, c.Owners)
		}
	}
	if tcx := tcxLinks(t, p.cmd.Process.Pid); len(tcx) != 0 {
		t.Errorf("without --packet-senders, netuse held tcx links (programs %v)", tcx)
	}
}

// TestProcSourceKernelGuest: netuse proc --source kernel in a, on
// veth-a, credits the sockets of b, a namespace of its own like a
// container's, whose end of the pair is veth-b: a UDP sender and a TCP
// uploader in b, each with what it sent (the UDP sender exactly, as
// veth-b sends and veth-a receives it), against servers in a, which are
// credited with what they received. What b's sockets sent is what veth-a
// received: together they are all of its receive side but what no socket
// sent (ARP, ND), which is little; and the rows of a's processes and the
// reasons add up to veth-a's counters.
func TestProcSourceKernelGuest(t *testing.T) {
	n := newTestNet(t)
	p := startProc(t, n.a, "--iface", "veth-a", "--source", "kernel")
	udpSrv := startHelper(t, n.a, "serve-recv", "udp", "192.0.2.1:7453")
	udpSrv.expect(t, "listening")
	udp := startHelper(t, n.b, "send", "udp", "192.0.2.1:7453", "100000")
	udp.expect(t, "sent")
	tcp, tcpSrv := upload(t, n.b, n.a, "192.0.2.1:7454", transfer)
	ifRx, _ := endAddsUp(t, p, n.b)
	const udpWant = 100*(1000+28+14) + (3 + 28 + 14)
	_, udpTx, _ := p.credited(udp.cmd.Process.Pid)
	udpSrvRx, _, _ := p.credited(udpSrv.cmd.Process.Pid)
	if udpTx != udpWant || udpSrvRx != udpWant {
		t.Errorf("the UDP sender in b was credited with tx %d, the receiver in a with rx %d, want both %d", udpTx, udpSrvRx, udpWant)
	}
	for _, r := range p.procs {
		if (r.Pid == udp.cmd.Process.Pid || r.Pid == tcp.cmd.Process.Pid) && r.Netns != netnsInode(t, n.b) {
			t.Errorf("pid %d's row says network namespace %d, want b's, %d", r.Pid, r.Netns, netnsInode(t, n.b))
		}
	}
	_, tcpTx, _ := p.credited(tcp.cmd.Process.Pid)
	tcpSrvRx, _, _ := p.credited(tcpSrv.cmd.Process.Pid)
	if tcpTx < transfer || tcpSrvRx < transfer || tcpTx+udpTx > ifRx || ifRx-tcpTx-udpTx > 1000 {
		t.Errorf("the TCP sender in b was credited with tx %d (it sent %d), the server in a with rx %d, the UDP sender %d; veth-a received %d", tcpTx, transfer, tcpSrvRx, udpTx, ifRx)
	}
}

// TestProcSourceKernelFinalAddsUp: the last report, made as netuse stops
// while a sender in b still sends to a, adds up to veth-a as the others
// do: it has no next report to pay back what its sockets were credited
// beyond the interface's read before theirs.
func TestProcSourceKernelFinalAddsUp(t *testing.T) {
	n := newTestNet(t)
	srv := startHelper(t, n.a, "serve-recv", "udp", "192.0.2.1:7456")
	srv.expect(t, "listening")
	p := startProc(t, n.a, "--iface", "veth-a", "--source", "kernel")
	// 300 MB: seconds of datagrams, well past the stop below.
	startHelper(t, n.b, "send", "udp", "192.0.2.1:7456", strconv.Itoa(300<<20))
	for moving := false; !moving; {
		p.intervals(t, 1)
		p.mu.Lock()
		last := p.capts[len(p.capts)-1]
		p.mu.Unlock()
		moving = last.ByIface["veth-a"].RxBytes > 1<<20
	}
	endAddsUp(t, p, n.b)
}

// TestProcSourceKernelMTUChanged: veth-a's MTU lowered while netuse runs
// is the programs' from the next report on: 100 datagrams of 1,400
// bytes sent after it leave in two fragments each (1,408 bytes of UDP
// in (1280-20)&^7 = 1,256 a fragment), and the sender is credited as
// veth-a counts them, 20 bytes of IPv4 and 14 of Ethernet a fragment;
// with the MTU netuse started with (1,500) it would be one packet each.
func TestProcSourceKernelMTUChanged(t *testing.T) {
	n := newTestNet(t)
	p := startProc(t, n.a, "--iface", "veth-a", "--source", "kernel")
	p.intervals(t, 1)
	run(t, "ip", "-n", n.a, "link", "set", "veth-a", "mtu", "1280")
	// The report after the change ends with a look at the interfaces
	// (rescan), which sets the new MTU: the second one after is past it.
	p.intervals(t, 2)
	const datagrams, size = 100, 1400
	_, udp := datagramsTo(t, p, n.b, n.a, "192.0.2.2:7457", size, datagrams)
	want := uint64(datagrams * (8 + size + 2*(20+14)))
	if _, tx, _ := p.credited(udp.cmd.Process.Pid); tx != want {
		t.Errorf("the sender of %d datagrams of %d bytes was credited with tx %d, want %d (two fragments each at MTU 1280)", datagrams, size, tx, want)
	}
	ifRx, ifTx := p.ifaceTotal("veth-a")
	rowsAddUp(t, p, ifRx, ifTx, n.b)
}

// TestProcSourceKernelGuestFragments: a container's datagrams past its
// device's MTU leave in fragments, and its row says so as veth-a counts
// them: 100 datagrams of 3,000 bytes from b, each 3,008 bytes of UDP in
// three fragments at veth-b's MTU of 1,500 (1,480, 1,480 and 48 bytes),
// with 20 bytes of IPv4 and 14 of Ethernet each. Were b's devices
// unknown to the programs, each would count as one packet, 68 bytes
// short.
func TestProcSourceKernelGuestFragments(t *testing.T) {
	n := newTestNet(t)
	p := startProc(t, n.a, "--iface", "veth-a", "--source", "kernel")
	const datagrams, size = 100, 3000
	srv, udp := datagramsTo(t, p, n.a, n.b, "192.0.2.1:7458", size, datagrams)
	want := uint64(datagrams * (8 + size + 3*(20+14)))
	if _, tx, _ := p.credited(udp.cmd.Process.Pid); tx != want {
		t.Errorf("the sender in b of %d datagrams of %d bytes was credited with tx %d, want %d (three fragments each at MTU 1500)", datagrams, size, tx, want)
	}
	if rx, _, _ := p.credited(srv.cmd.Process.Pid); rx != want {
		t.Errorf("the receiver in a was credited with rx %d, want %d", rx, want)
	}
}

// datagramsTo has a receiver bound to addr in srvNS and a sender in
// sendNS send it n datagrams of size bytes, then stops p two reports
// later.
func datagramsTo(t *testing.T, p *netuseRun, srvNS, sendNS, addr string, size, n int) (srv, udp *helper) {
	t.Helper()
	srv = startHelper(t, srvNS, "count-bind", "udp", addr)
	srv.expect(t, "listening")
	udp = startHelper(t, sendNS, "count-udp-send", addr, strconv.Itoa(size), strconv.Itoa(n))
	udp.expect(t, "cookie")
	udp.expect(t, "done")
	p.intervals(t, 2)
	p.stop(t)
	return srv, udp
}

// TestProcSourceKernelInjected: with --packet-senders, frames written on
// an AF_PACKET socket in netuse's namespace to a container's UDP socket
// are the writer's transmit, to the byte (whole frames, as veth-a counts
// them), under its pid and name though it has exited by the report (its
// tcx entry names it), and the container's socket's receipt; a TCP
// upload beside them goes on as before, its sender credited; the rows of
// netuse's namespace and the reasons add up to the interface.
func TestProcSourceKernelInjected(t *testing.T) {
	n := newTestNet(t)
	p := startProc(t, n.a, "--iface", "veth-a", "--source", "kernel", "--packet-senders")
	tcp, _ := upload(t, n.a, n.b, "192.0.2.2:7451", transfer)
	srv := startHelper(t, n.b, "serve-recv", "udp", "192.0.2.2:7455")
	srv.expect(t, "listening")
	mac, err := inNS(n.b, "cat", "/sys/class/net/veth-b/address").Output()
	if err != nil {
		t.Fatal(err)
	}
	const frames, frameBytes = 1000, 14 + 20 + 8 + 18
	inject := startHelper(t, n.a, "flood", "veth-a", strings.TrimSpace(string(mac)), strconv.Itoa(frames), "192.0.2.1", "192.0.2.2", "7455")
	inject.expect(t, "sent")
	inject.end()
	endAddsUp(t, p, n.b)
	rx, _, _ := p.credited(srv.cmd.Process.Pid)
	injRx, injTx, name := p.credited(inject.cmd.Process.Pid)
	if rx != frames*frameBytes || injRx != 0 || injTx != frames*frameBytes || name != helperComm() {
		t.Errorf("the receiver in b was credited with rx %d, the writer (%q) with rx %d tx %d; want %d, %q, 0 and %d",
			rx, name, injRx, injTx, frames*frameBytes, helperComm(), frames*frameBytes)
	}
	if _, tcpTx, _ := p.credited(tcp.cmd.Process.Pid); tcpTx < transfer {
		t.Errorf("the TCP sender was credited with tx %d, want at least the %d it sent", tcpTx, transfer)
	}
}

// TestProcSourceKernelICMPRaw: --source kernel credits what no capture
// can (issue 20: 0 bytes of these credited on the capture's path): echo
// requests and their replies on a raw ICMP socket, and raw IP of protocol
// 253, each to the process that held the socket, exactly as the veth
// counts them (20 bytes of IPv4 header and 14 of Ethernet a packet).
// Protocol 253 has a raw socket in b too, so b's kernel sends no
// "protocol unreachable" back, which the raw ICMP socket would also read.
func TestProcSourceKernelICMPRaw(t *testing.T) {
	n := newTestNet(t)
	p := startProc(t, n.a, "--iface", "veth-a", "--source", "kernel")
	recv := startHelper(t, n.b, "count-bind", "raw253", "192.0.2.2")
	recv.expect(t, "listening")
	const raws, rawSize, echoes = 50, 200, 20
	raw := startHelper(t, n.a, "count-raw253", "192.0.2.2", strconv.Itoa(rawSize), strconv.Itoa(raws))
	raw.expect(t, "cookie")
	raw.expect(t, "done")
	ping := startHelper(t, n.a, "count-ping", "raw", "192.0.2.2", strconv.Itoa(echoes))
	ping.expect(t, "cookie")
	ping.expect(t, "done") // every echo answered
	p.intervals(t, 3)
	p.stop(t)
	rawRx, rawTx, _ := p.credited(raw.cmd.Process.Pid)
	if want := uint64(raws * (rawSize + 20 + 14)); rawRx != 0 || rawTx != want {
		t.Errorf("the protocol-253 sender was credited with rx %d tx %d, want 0 and %d", rawRx, rawTx, want)
	}
	pingRx, pingTx, _ := p.credited(ping.cmd.Process.Pid)
	if want := uint64(echoes * (8 + 56 + 20 + 14)); pingRx != want || pingTx != want {
		t.Errorf("the pinger was credited with rx %d tx %d, want %d each way", pingRx, pingTx, want)
	}
	ifRx, ifTx := p.ifaceTotal("veth-a")
	rowsAddUp(t, p, ifRx, ifTx, n.b)
}

// TestServeSourceKernel: netuse serve --source kernel serves the kernel
// source's bytes: a UDP sender named nukern-udp, 100 datagrams of 1,000
// bytes and the 3-byte end, is netuse_process_transmit_bytes_total
// {groupname="nukern-udp"} of exactly what veth-a counts of them.
func TestServeSourceKernel(t *testing.T) {
	n := newTestNet(t)
	addrs := make(chan string, 1)
	serve := startBg(t, n.a, func(line string) {
		if a, ok := strings.CutPrefix(line, "netuse: serve: metrics on http://"); ok {
			select {
			case addrs <- strings.TrimSuffix(a, "/metrics"):
			default:
			}
		}
	}, netuseBinary(t), "serve", "--listen", "127.0.0.1:0", "--iface", "veth-a", "--source", "kernel", "--db", "off")
	var addr string
	select {
	case addr = <-addrs:
	case <-serve.done:
		t.Fatalf("serve ended before it listened: %s", serve.out.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not say where it listens within 20 s: %s", serve.out.String())
	}
	// The kernel counts, not a capture: serve holds links of the
	// counting programs (cgroup ingress 0 and egress 1) to the root.
	if at := linkAttachTypes(t, serve.cmd.Process.Pid); !slices.Contains(at, 0) || !slices.Contains(at, 1) {
		t.Fatalf("serve's cgroup links attach as %v; want ingress (0) and egress (1) among them", at)
	}
	udpSrv := startHelper(t, n.b, "serve-recv", "udp", "192.0.2.2:7453")
	udpSrv.expect(t, "listening")
	t.Setenv("NETUSE_TEST_COMM", "nukern-udp")
	udp := startHelper(t, n.a, "send", "udp", "192.0.2.2:7453", "100000")
	udp.expect(t, "sent")
	const want = 100*(1000+28+14) + (3 + 28 + 14)
	series := `netuse_process_transmit_bytes_total{groupname="nukern-udp"} `
	got := "no such series"
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) { // polling serve for the sign
		out, err := inNS(n.a, "curl", "-sS", "--max-time", "10", "http://"+addr+"/metrics").Output()
		if err != nil {
			t.Fatalf("curl %s/metrics: %v", addr, err)
		}
		for line := range strings.Lines(string(out)) {
			if v, ok := strings.CutPrefix(line, series); ok {
				got = strings.TrimSpace(v)
			}
		}
		if got == strconv.Itoa(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 20 s serve says %s%s; want %d (veth-a's bytes of the datagrams)\n%s", series, got, want, serve.tail())
		}
	}
}

// linkAttachTypes returns the attach types of the cgroup links process pid
// holds, from its fds' fdinfo.
func linkAttachTypes(t *testing.T, pid int) []int {
	return linkFields(t, pid, "cgroup", "attach_type")
}

// tcxLinks returns the programs of the tcx links process pid holds.
func tcxLinks(t *testing.T, pid int) []ebpf.ProgramID {
	var ids []ebpf.ProgramID
	for _, id := range linkFields(t, pid, "tcx", "prog_id") {
		ids = append(ids, ebpf.ProgramID(id))
	}
	return ids
}

// linkFields returns the number field of each link of type linkType that
// process pid holds, from its fds' fdinfo.
func linkFields(t *testing.T, pid int, linkType, field string) []int {
	t.Helper()
	var values []int
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", pid))
	for _, fd := range fds {
		b, _ := os.ReadFile(fd)
		if !strings.Contains(string(b), "link_type:\t"+linkType+"\n") {
			continue
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, field+":"); ok {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					t.Fatalf("%s: %q", fd, line)
				}
				values = append(values, n)
			}
		}
	}
	return values
}

// rowsAddUp checks that the rows of p add up to the interface's counters
// over the run, rx and tx, but for those of processes in the namespace
// peer (the other end of the veth): a packet between a socket of each
// side crossed the interface once and is credited to both.
func rowsAddUp(t *testing.T, p *netuseRun, ifRx, ifTx uint64, peer string) {
	t.Helper()
	other := netnsInode(t, peer)
	var rowsRx, rowsTx uint64
	for _, r := range p.procs {
		if r.Netns != other {
			rowsRx += r.RxBytes
			rowsTx += r.TxBytes
		}
	}
	if rowsRx != ifRx || rowsTx != ifTx {
		t.Errorf("the rows add up to rx %d tx %d, the interface counted rx %d tx %d", rowsRx, rowsTx, ifRx, ifTx)
	}
}

// endAddsUp lets p report 3 intervals and stops it, checks that its rows
// add up to veth-a's counters (rowsAddUp, peer's rows left out), and
// returns those; p's rows are logged if the test has failed by its end.
func endAddsUp(t *testing.T, p *netuseRun, peer string) (ifRx, ifTx uint64) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			p.dump(t)
		}
	})
	p.intervals(t, 3)
	p.stop(t)
	ifRx, ifTx = p.ifaceTotal("veth-a")
	rowsAddUp(t, p, ifRx, ifTx, peer)
	return ifRx, ifTx
}

// netnsInode returns the inode number of the named network namespace, as
// netuse's records give it.
func netnsInode(t *testing.T, name string) uint64 {
	t.Helper()
	st, err := os.Stat("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// TestProcSourceKernelGoneAfterKill: netuse proc --source kernel attaches
// its three counting programs to the cgroup2 root (besides the owner
// programs) and its packet senders' program to veth-a's tcx egress, and
// SIGKILL detaches them all, and the last is gone from the kernel:
// links, never pinned.
func TestProcSourceKernelGoneAfterKill(t *testing.T) {
	n := newTestNet(t)
	root, err := os.Open(testCgroup2Root(t))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	attached := func() map[ebpf.ProgramID]bool {
		ids := map[ebpf.ProgramID]bool{}
		for _, at := range []ebpf.AttachType{ebpf.AttachCGroupInetEgress, ebpf.AttachCGroupInetIngress, ebpf.AttachCgroupInetSockRelease} {
			res, err := link.QueryPrograms(link.QueryOptions{Target: int(root.Fd()), Attach: at})
			if err != nil {
				t.Fatalf("query %s: %v", at, err)
			}
			for _, p := range res.Programs {
				ids[p.ID] = true
			}
		}
		return ids
	}
	p := startProc(t, n.a, "--iface", "veth-a", "--source", "kernel", "--packet-senders")
	// netuse's programs are those of its own fds (other netuse processes
	// on this machine attach theirs to the same root): a link's fdinfo
	// names its program.
	var ours []ebpf.ProgramID
	now := attached()
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fdinfo/*", p.cmd.Process.Pid))
	for _, fd := range fds {
		b, _ := os.ReadFile(fd)
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "prog_id:"); ok {
				id, _ := strconv.Atoi(strings.TrimSpace(v))
				if now[ebpf.ProgramID(id)] && !slices.Contains(ours, ebpf.ProgramID(id)) {
					ours = append(ours, ebpf.ProgramID(id))
				}
			}
		}
	}
	if len(ours) != 4 { // egress, ingress, and two releases: the owners' and the counting's
		t.Fatalf("netuse attached %d programs (%v), want 4", len(ours), ours)
	}
	tcx := tcxLinks(t, p.cmd.Process.Pid)
	if len(tcx) != 1 { // veth-a's
		t.Fatalf("netuse holds %d tcx links (programs %v), want 1", len(tcx), tcx)
	}
	p.cmd.Process.Kill()
	<-p.done
	p.cmd.Wait()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		now, left := attached(), 0
		for _, id := range ours {
			if now[id] {
				left++
			}
		}
		if pr, err := ebpf.NewProgramFromID(tcx[0]); err == nil {
			pr.Close()
			left++
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after SIGKILL, %d of netuse's programs are still attached", left)
		}
	}
}

// TestConnSourceKernel runs netuse conn --source kernel in a while
// servers that were running before netuse (so without an owner record
// of their sockets, which are accepted besides) take two uploads each:
// over IPv4 from b across veth-a, and over IPv6 loopback in a. Each
// accepted socket is a row of its own, credited to its server (found by
// the socket tables and /proc), with at least the bytes its client sent;
// the clients in a are rows with their
// tuples; every interval's rows but those of b's processes (see rowsAddUp)
// add up to the interfaces' counters, and
// a TCP row's state is the socket's.
func TestConnSourceKernel(t *testing.T) {
	n := newTestNet(t)
	const size = 200 << 10
	srv4 := startHelper(t, n.a, "count-serve-many", "192.0.2.1:7461", "3")
	addr4 := addrPort(t, strings.Fields(srv4.expect(t, "listening"))[1])
	srv6 := startHelper(t, n.a, "count-serve-many", "[::1]:7462", "2")
	addr6 := addrPort(t, strings.Fields(srv6.expect(t, "listening"))[1])
	r := startJSON(t, n.a, "conn", "--iface", "veth-a,lo", "--source", "kernel")
	var clients4, clients6 []netip.AddrPort
	for range 2 {
		c := startHelper(t, n.b, "send-local", "tcp", addr4.String(), strconv.Itoa(size))
		clients4 = append(clients4, addrPort(t, strings.Fields(c.expect(t, "local"))[1]))
		c.expect(t, "sent")
		srv4.expect(t, fmt.Sprintf("got %d", size))
		c = startHelper(t, n.a, "send-local", "tcp", addr6.String(), strconv.Itoa(size))
		clients6 = append(clients6, addrPort(t, strings.Fields(c.expect(t, "local"))[1]))
		c.expect(t, "sent")
		srv6.expect(t, fmt.Sprintf("got %d", size))
	}
	// A third, held open over reports, that sends again two reports
	// later: both its ends are live each time it moves bytes.
	hold := startHelper(t, n.b, "send-hold", "tcp", addr4.String(), strconv.Itoa(size))
	hold.expect(t, "local")
	hold.expect(t, "sent")
	r.intervals(t, 2)
	fmt.Fprintln(hold.stdin)
	hold.expect(t, "sent")
	r.intervals(t, 2)
	hold.end()
	srv4.expect(t, fmt.Sprintf("got %d", 2*size))
	r.stop(t)
	r.dumpIfFailed(t)
	for i, c := range clients4 {
		last := r.creditedEnd(t, fmt.Sprintf("IPv4 connection %d, accepted by a server older than netuse", i+1), addr4, c, true, size, srv4.cmd.Process.Pid)
		if last.State == "" || last.State == "LISTEN" {
			t.Errorf("IPv4 connection %d: state %q, want a connection's", i+1, last.State)
		}
	}
	for i, c := range clients6 {
		r.creditedEnd(t, fmt.Sprintf("IPv6 loopback connection %d, accepted by a server older than netuse", i+1), addr6, c, true, size, srv6.cmd.Process.Pid)
		if _, tx, pids, _ := r.connection("tcp", c, addr6); tx < size || len(pids) != 1 || pids[srv6.cmd.Process.Pid] || pids[0] {
			t.Errorf("IPv6 loopback client %d: tx %d (it sent %d), credited to %v", i+1, tx, size, pids)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	bySeq := map[int]traffic{}
	other := netnsInode(t, n.b)
	// A client's end (namespace b's socket, a guest's) has its endpoints
	// and state from b's tables: not CLOSE while its server's end is
	// established.
	type end struct {
		seq           int
		local, remote string
		port          uint16
	}
	established := map[end]bool{}
	for _, c := range r.conns {
		if c.Netns != other && c.State == "ESTABLISHED" {
			established[end{c.Seq, c.LocalAddr, c.RemoteAddr, c.RemotePort}] = true
		}
	}
	for _, c := range r.conns {
		if c.Netns != other || c.Pid == 0 {
			continue
		}
		if c.Proto != "tcp" || c.LocalPort == 0 || c.RemotePort == 0 {
			t.Errorf("interval %d: a client's end (pid %d) without its endpoints: %q %s:%d -> %s:%d", c.Seq, c.Pid, c.Proto, c.LocalAddr, c.LocalPort, c.RemoteAddr, c.RemotePort)
		}
		if c.State == "CLOSE" && established[end{c.Seq, c.RemoteAddr, c.LocalAddr, c.LocalPort}] {
			t.Errorf("interval %d: the client's end %s:%d is CLOSE, its server's end ESTABLISHED", c.Seq, c.LocalAddr, c.LocalPort)
		}
	}
	for _, c := range r.conns {
		if c.Netns == other {
			continue // the veth's other end: see rowsAddUp
		}
		s := bySeq[c.Seq]
		s.add(traffic{rxBytes: c.RxBytes, txBytes: c.TxBytes})
		bySeq[c.Seq] = s
	}
	for _, c := range r.capts {
		var ifRx, ifTx uint64
		for _, i := range c.ByIface {
			ifRx, ifTx = ifRx+i.RxBytes, ifTx+i.TxBytes
		}
		if got := bySeq[c.Seq]; got.rxBytes != ifRx || got.txBytes != ifTx {
			t.Errorf("interval %d: the conn rows add up to rx %d tx %d, the interfaces counted rx %d tx %d", c.Seq, got.rxBytes, got.txBytes, ifRx, ifTx)
		}
	}
}

// TestSourceAuto: --source auto counts in the kernel where it can (netuse
// holds the counting programs' links), and where it cannot (no owner
// records, here turned off by --owners proc) it captures and says why in
// one line on stderr.
func TestSourceAuto(t *testing.T) {
	n := newTestNet(t)
	p := startProc(t, n.a, "--iface", "veth-a", "--source", "auto")
	if at := linkAttachTypes(t, p.cmd.Process.Pid); !slices.Contains(at, 0) || !slices.Contains(at, 1) {
		t.Errorf("proc --source auto's cgroup links attach as %v; want ingress (0) and egress (1) among them", at)
	}
	srv := startHelper(t, n.b, "serve-recv", "udp", "192.0.2.2:7454")
	srv.expect(t, "listening")
	udp := startHelper(t, n.a, "send", "udp", "192.0.2.2:7454", "10000")
	udp.expect(t, "sent")
	p.intervals(t, 2)
	p.stop(t) // the rows add up, and the summary adds up the intervals
	if _, tx, _ := p.credited(udp.cmd.Process.Pid); tx < 10000 {
		t.Errorf("the UDP sender was credited with tx %d, it sent 10000 bytes of payload", tx)
	}
	cmd := inNS(n.a, netuseBinary(t), "proc", "--iface", "veth-a", "--source", "auto", "--owners", "proc", "--count", "1", "--interval", "100ms", "--json")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("proc --source auto --owners proc: %v: %s", err, stderr.String())
	}
	const want = "netuse: warning: --source auto: counting from the capture: the kernel's counts need its owner records (--owners proc turns them off)\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	if !strings.Contains(string(out), `"type":"capture"`) {
		t.Errorf("no capture record on stdout: %q", out)
	}
}

// TestOlderServer: a server that was running before netuse started, and
// exits after its last connection, is credited with both of its
// connections' ends, in proc and in conn (issue 20 found the second
// connection's end lost to "(no owner)" in most runs): over IPv4 across
// namespaces (the server in b, netuse on a's veth) and over IPv6
// loopback, from the capture; and from the kernel's counts where they
// reach (sockets of netuse's namespace: over loopback, and a server in a
// for clients in b).
func TestOlderServer(t *testing.T) {
	n := newTestNet(t)
	const size = 300 << 10
	for i, c := range []struct {
		name, source, iface string
		srvNS, cliNS, addr  string
	}{
		{"ipv4 across namespaces, capture", "capture", "veth-a", n.b, n.a, "192.0.2.2:%d"},
		{"ipv6 loopback, capture", "capture", "lo", n.a, n.a, "[::1]:%d"},
		{"ipv4 from b, kernel", "kernel", "veth-a", n.a, n.b, "192.0.2.1:%d"},
		{"ipv6 loopback, kernel", "kernel", "lo", n.a, n.a, "[::1]:%d"},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := startHelper(t, c.srvNS, "count-serve-many", fmt.Sprintf(c.addr, 7471+i), "2")
			addr := addrPort(t, strings.Fields(srv.expect(t, "listening"))[1])
			conn := startJSON(t, n.a, "conn", "--iface", c.iface, "--source", c.source)
			proc := startProc(t, n.a, "--iface", c.iface, "--source", c.source)
			var clients []*helper
			var ends []netip.AddrPort
			for range 2 {
				cli := startHelper(t, c.cliNS, "send-local", "tcp", addr.String(), strconv.Itoa(size))
				ends = append(ends, addrPort(t, strings.Fields(cli.expect(t, "local"))[1]))
				cli.expect(t, "sent")
				srv.expect(t, fmt.Sprintf("got %d", size))
				clients = append(clients, cli)
			}
			srv.stdin.Close() // it exits after its last connection: its stdout ends
			for srv.lines.Scan() {
			}
			conn.intervals(t, 3)
			proc.intervals(t, 1)
			conn.stop(t)
			proc.stop(t)
			conn.dumpIfFailed(t)
			for k, end := range ends {
				conn.creditedEnd(t, fmt.Sprintf("conn: the server's end of connection %d", k+1), addr, end, true, size, srv.cmd.Process.Pid)
				if c.cliNS == n.a { // else the client's end is in b: not of netuse's namespace
					conn.creditedEnd(t, fmt.Sprintf("conn: the client's end of connection %d", k+1), end, addr, false, size, clients[k].cmd.Process.Pid)
				}
			}
			if rx, _, _ := proc.credited(srv.cmd.Process.Pid); rx < 2*size {
				t.Errorf("proc: the server was credited with rx %d, its clients sent %d", rx, 2*size)
			}
		})
	}
}

// creditedEnd checks that the TCP connection end local-remote moved at
// least size bytes in (rx) or out, all credited to pid, and returns its
// last record.
func (r *netuseRun) creditedEnd(t *testing.T, what string, local, remote netip.AddrPort, rx bool, size uint64, pid int) connRecord {
	t.Helper()
	in, out, pids, last := r.connection("tcp", local, remote)
	got, dir := in, "rx"
	if !rx {
		got, dir = out, "tx"
	}
	if got < size || len(pids) != 1 || !pids[pid] {
		t.Errorf("%s: %s %d (%d sent), credited to %v, want only pid %d", what, dir, got, size, pids, pid)
	}
	return last
}

// dumpIfFailed logs every conn row at the end of a test that failed.
func (r *netuseRun) dumpIfFailed(t *testing.T) {
	t.Cleanup(func() {
		if t.Failed() {
			r.dump(t)
		}
	})
}
