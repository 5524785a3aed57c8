package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// TestProcHostileName moves traffic from a process that named itself
// "\x1b[2J\nevil": NDJSON carries the name exactly, the table shows it as
// visible escapes and writes no control byte of it.
func TestProcHostileName(t *testing.T) {
	n := newTestNet(t)
	const evil = "\x1b[2J\nevil"
	p := startProc(t, n.a, "--iface", "veth-a")
	plain := inNS(n.a, netuseBinary(t), "proc", "--iface", "veth-a", "--interval", "300ms")
	plain.Stderr = os.Stderr
	stdout, err := plain.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := plain.Start(); err != nil {
		t.Fatal(err)
	}
	// tp is the table's netuse as waitCapturing knows it: done once its
	// stdout is closed.
	tp := &netuseRun{cmd: plain, done: make(chan struct{})}
	var table lockedBuffer
	go func() { table.fill(stdout); close(tp.done) }()
	t.Cleanup(func() { plain.Process.Kill(); <-tp.done; plain.Wait() })
	// The table says nothing of its capture before its first interval:
	// wait for its packet sockets, as for the other netuse, so that the
	// transfer below is not sent before it captures.
	waitCapturing(t, tp)

	remote := startHelper(t, n.b, "serve-recv", "tcp", "192.0.2.2:7101")
	remote.expect(t, "listening")
	t.Setenv("NETUSE_TEST_COMM", evil)
	local := startHelper(t, n.a, "send", "tcp", "192.0.2.2:7101", strconv.Itoa(1<<20))
	local.expect(t, "sent")
	remote.expect(t, fmt.Sprintf("got %d", 1<<20))
	p.finish(t)
	// The table reports on its own schedule: wait until it has shown the
	// sender (or 10 s), then end it; an interrupt ends it without the
	// interval under way.
	pid := strconv.Itoa(local.cmd.Process.Pid)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && tableRow(table.String(), pid) == ""; {
		select {
		case <-tp.done:
			t.Fatalf("netuse proc (table) ended early:\n%s", table.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	plain.Process.Signal(os.Interrupt)
	<-tp.done
	if err := plain.Wait(); err != nil {
		t.Fatalf("netuse proc (table): %v", err)
	}

	_, tx, name := p.credited(local.cmd.Process.Pid)
	if name != evil || tx < 1<<20 {
		t.Errorf("NDJSON: pid %d named %q with tx %d, want %q with at least %d", local.cmd.Process.Pid, name, tx, evil, 1<<20)
	}
	out := table.String()
	if i := strings.IndexFunc(out, func(r rune) bool { return r < 0x20 && r != '\n' }); i >= 0 {
		t.Errorf("table: control byte %#x at %d in %q", out[i], i, out)
	}
	if row := tableRow(out, pid); !strings.Contains(row, `\x1b[2J\nevil`) {
		t.Errorf("table: no row of pid %s shows the name escaped:\n%s", pid, out)
	}
}

// tableRow returns the last row of the process pid in netuse's table, or
// "" if there is none.
func tableRow(table, pid string) string {
	row := ""
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, pid+" ") {
			row = l
		}
	}
	return row
}

// lockedBuffer is a bytes.Buffer that one goroutine fills while another
// reads it; mu guards b.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// fill copies r into the buffer until r ends, a chunk at a time, so
// that String sees what came so far.
func (l *lockedBuffer) fill(r io.Reader) {
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		l.mu.Lock()
		l.b.Write(buf[:n])
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestProcIfaceComesAndGoes runs netuse proc --iface 'veth-*' while an
// interface that matches appears, carries traffic, and the first one is
// deleted: the new one is captured within two intervals, the deleted one
// is dropped, and netuse goes on without a word on stderr.
func TestProcIfaceComesAndGoes(t *testing.T) {
	n := newTestNet(t)
	p := startProc(t, n.a, "--iface", "veth-*")
	run(t, "ip", "-n", n.a, "link", "add", "veth-c", "type", "veth", "peer", "name", "veth-d", "netns", n.b)
	run(t, "ip", "-n", n.a, "addr", "add", "198.51.100.1/24", "dev", "veth-c")
	run(t, "ip", "-n", n.b, "addr", "add", "198.51.100.2/24", "dev", "veth-d")
	run(t, "ip", "-n", n.a, "link", "set", "veth-c", "up")
	run(t, "ip", "-n", n.b, "link", "set", "veth-d", "up")
	p.intervals(t, 2)
	if got := p.lastIfaces(); !slices.Equal(got, []string{"veth-a", "veth-c"}) {
		t.Fatalf("two intervals after veth-c came, netuse captures on %q, want veth-a and veth-c", got)
	}
	run(t, "ip", "-n", n.a, "link", "del", "veth-a")
	p.intervals(t, 2)
	if got := p.lastIfaces(); !slices.Equal(got, []string{"veth-c"}) {
		t.Fatalf("two intervals after veth-a went, netuse captures on %q, want veth-c", got)
	}
	mark := markIface(t, n.a, "veth-c")
	local, _ := upload(t, n.a, n.b, "198.51.100.2:7102", transfer)
	p.finish(t)
	mrx, mtx := mark.moved(t)
	rx, tx, _ := p.credited(local.cmd.Process.Pid)
	p.near(t, "rx+tx of the sender on the new interface", rx+tx, mrx+mtx, 0.99, 1.01)
}

// lastIfaces returns the interfaces of netuse's last capture record.
func (p *netuseRun) lastIfaces() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.capts) == 0 {
		return nil
	}
	return p.capts[len(p.capts)-1].Ifaces
}

// TestProcBlockedStdout stops reading netuse's stdout until the pipe is
// full, moves a transfer meanwhile, then reads again: the capture must
// have kept up (no drops), and the bytes must all be there, in the
// intervals written once stdout drained.
func TestProcBlockedStdout(t *testing.T) {
	n := newTestNet(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := unix.FcntlInt(r.Fd(), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatalf("shrink the pipe: %v", err)
	}
	mark := markIface(t, n.a, "veth-a")
	cmd := inNS(n.a, netuseBinary(t), "proc", "--json", "--iface", "veth-a", "--interval", "100ms")
	p := &netuseRun{cmd: cmd, newCapt: make(chan struct{}, 1), done: make(chan struct{}), sums: true}
	cmd.Stdout, cmd.Stderr = w, &p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { cmd.Process.Kill() })

	// At 100 ms a record or two of some 450 bytes: 4 kB fill in a second,
	// and then a thread of netuse waits in the kernel's pipe_write.
	blockedAt := waitBlockedWrite(t, cmd.Process.Pid, 10*time.Second)
	local, _ := upload(t, n.a, n.b, "192.0.2.2:7103", transfer)
	// Hold stdout a while longer after the transfer: a hold, not a wait
	// for a sign; the longest interval must then span it (checked below).
	time.Sleep(time.Second)
	held := time.Since(blockedAt)

	go p.read(t, r)
	// The pipe's backlog comes first, then the interval that spans the
	// time netuse was blocked.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		p.mu.Lock()
		_, tx, _ := p.credited(local.cmd.Process.Pid)
		p.mu.Unlock()
		if tx >= transfer {
			break
		}
		p.intervals(t, 1)
	}
	p.intervals(t, 3)
	p.stop(t) // also checks: no drops, rows add up, exit 0, nothing on stderr
	mrx, mtx := mark.moved(t)
	rx, tx, _ := p.credited(local.cmd.Process.Pid)
	p.near(t, "rx+tx of the sender while stdout was blocked", rx+tx, mrx+mtx, 0.99, 1.01)
	longest := 0.0
	for _, c := range p.capts {
		longest = max(longest, c.Interval)
	}
	if longest < held.Seconds() {
		t.Errorf("the longest interval lasted %.3fs: netuse was never blocked for the %.3f s the test held its stdout", longest, held.Seconds())
	}
}

// waitBlockedWrite waits until a thread of process pid sleeps in a write
// to a pipe (its wchan: pipe_write, anon_pipe_write on Linux 6.18), and
// returns when it saw that.
func waitBlockedWrite(t *testing.T, pid int, limit time.Duration) time.Time {
	t.Helper()
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		for _, task := range tasks {
			wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/wchan", pid, task.Name()))
			if strings.HasSuffix(string(wchan), "pipe_write") {
				return time.Now()
			}
		}
	}
	t.Fatalf("netuse (pid %d) was not blocked in a write to its stdout after %v", pid, limit)
	return time.Time{}
}

// TestProcNamespaceDeleted credits a server in a third namespace, c, then
// kills it and deletes c (and with it the veth into c) while netuse runs:
// netuse goes on capturing and crediting the traffic that is left, without
// a word on stderr.
func TestProcNamespaceDeleted(t *testing.T) {
	n := newTestNet(t)
	c := newNamespaces(t, "nu", "c")[0]
	runAll(t,
		[]string{"ip", "-n", n.a, "link", "add", "veth-c", "type", "veth", "peer", "name", "veth-d", "netns", c},
		[]string{"ip", "-n", n.a, "addr", "add", "198.51.100.1/24", "dev", "veth-c"},
		[]string{"ip", "-n", c, "addr", "add", "198.51.100.2/24", "dev", "veth-d"},
		[]string{"ip", "-n", n.a, "link", "set", "veth-c", "up"},
		[]string{"ip", "-n", c, "link", "set", "veth-d", "up"})
	server := startHelper(t, c, "serve-recv", "tcp", "198.51.100.2:7104")
	server.expect(t, "listening")
	p := startProc(t, n.a, "--iface", "veth-*")
	p.intervals(t, 7) // namespaces are listed every 2 s: c is known now
	client := startHelper(t, n.a, "send", "tcp", "198.51.100.2:7104", strconv.Itoa(1<<20))
	client.expect(t, "sent")
	server.expect(t, fmt.Sprintf("got %d", 1<<20))
	p.intervals(t, 2)
	server.cmd.Process.Kill()
	server.cmd.Wait()
	run(t, "ip", "netns", "del", c)
	p.intervals(t, 8) // past the next listing of namespaces, which finds c gone

	mark := markIface(t, n.a, "veth-a")
	local, _ := upload(t, n.a, n.b, "192.0.2.2:7105", transfer)
	p.finish(t)
	mrx, mtx := mark.moved(t)

	srx, _, name := p.credited(server.cmd.Process.Pid)
	if srx < 1<<20 {
		t.Errorf("the server in c (pid %d, %q) got %d bytes, want at least %d", server.cmd.Process.Pid, name, srx, 1<<20)
	}
	rx, tx, _ := p.credited(local.cmd.Process.Pid)
	p.near(t, "rx+tx of the sender after c was deleted", rx+tx, mrx+mtx, 0.99, 1.01)
}

// flood writes n UDP frames to dst:dport, each of another flow from src
// (its last byte and the source port vary), on iface to dstMAC.
func flood(iface, dstMAC, count, src, dst, dport string) error {
	n, _ := strconv.Atoi(count)
	port, _ := strconv.Atoi(dport)
	srcIP, dstIP := net.ParseIP(src).To4(), net.ParseIP(dst).To4()
	if srcIP == nil || dstIP == nil {
		return fmt.Errorf("flood: %q or %q is not an IPv4 address", src, dst)
	}
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return err
	}
	mac, err := net.ParseMAC(dstMAC)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	to := &unix.SockaddrLinklayer{Ifindex: ifi.Index, Halen: 6}
	copy(to.Addr[:], mac)
	buf := gopacket.NewSerializeBuffer()
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: slices.Clone(srcIP), DstIP: dstIP}
	udp := &layers.UDP{DstPort: layers.UDPPort(port)}
	udp.SetNetworkLayerForChecksum(ip)
	eth := &layers.Ethernet{SrcMAC: ifi.HardwareAddr, DstMAC: mac, EthernetType: layers.EthernetTypeIPv4}
	for i := range n {
		udp.SrcPort = layers.UDPPort(1024 + i%60000)
		ip.SrcIP[3] = srcIP[3] + byte(i/60000%200) // past 60,000 ports, other source addresses
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, udp, gopacket.Payload(make([]byte, 18))); err != nil {
			return err
		}
		for {
			err := unix.Sendto(fd, buf.Bytes(), 0, to)
			if err == nil {
				break
			}
			if !errors.Is(err, unix.ENOBUFS) && !errors.Is(err, unix.EAGAIN) {
				return err
			}
			time.Sleep(time.Millisecond)
		}
	}
	fmt.Println("sent", n)
	return nil
}

// TestProcFlood sends 100,000 UDP datagrams of distinct flows (as a scan
// or a flood with random ports does) to a netuse with --max-flows 4096:
// the flow table stays within it, the flows it could not keep are shown
// as (flow table full) and the evicted ones counted, every interval's rows
// still add up to the capture, and netuse keeps reporting. Its peak
// memory is logged (NETUSE_FLOOD sets the number of datagrams).
func TestProcFlood(t *testing.T) {
	n := newTestNet(t)
	count := 100_000
	if v, err := strconv.Atoi(os.Getenv("NETUSE_FLOOD")); err == nil {
		count = v
	}
	mac, err := inNS(n.a, "cat", "/sys/class/net/veth-a/address").Output()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--iface", "veth-a"}
	if os.Getenv("NETUSE_FLOOD") == "" {
		args = append(args, "--max-flows", "4096")
	}
	p := startProc(t, n.a, args...)
	mark := markIface(t, n.a, "veth-a")
	sender := startHelper(t, n.b, "flood", "veth-b", strings.TrimSpace(string(mac)), strconv.Itoa(count))
	sender.expect(t, "sent")
	p.intervals(t, 3)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	p.stop(t) // rows add up, no drops, exit 0, nothing on stderr
	mrx, _ := mark.moved(t)
	for _, l := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(l, "VmHWM") || strings.HasPrefix(l, "VmRSS") {
			t.Logf("netuse after %d flows: %s", count, strings.Join(strings.Fields(l), " "))
		}
	}
	var full, rx, evicted uint64
	most := 0
	for _, r := range p.procs {
		if r.Reason == "flow_table_full" {
			full += r.RxBytes
		}
	}
	for _, c := range p.capts {
		rx += c.RxBytes
		evicted += c.EvictedFlows
		most = max(most, c.Flows)
	}
	t.Logf("captured rx %d of the interface's %d; flow_table_full %d bytes; evicted %d flows; at most %d flows held", rx, mrx, full, evicted, most)
	if os.Getenv("NETUSE_FLOOD") != "" {
		return
	}
	if most > 4096 || full == 0 || evicted == 0 {
		t.Errorf("at most %d flows held, %d bytes as flow_table_full, %d evicted; want at most 4096, and both more than 0", most, full, evicted)
	}
	p.near(t, "rx captured", rx, mrx, 0.99, 1.01)
}
