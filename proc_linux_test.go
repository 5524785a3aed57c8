package main

// Privileged end-to-end tests of netuse proc: each builds two network
// namespaces joined by a veth pair, runs netuse inside one of them (so that
// no test captures the machine's own interfaces), moves traffic of known
// size between helper processes, and checks what netuse credits to which
// process against the interface counters. They need root; they skip
// without it, except under CI, where they must run.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const transfer = 8 << 20 // bytes each test moves

func TestProcTCPUpload(t *testing.T)   { testProcTCP(t, "192.0.2.2:7001", false) }
func TestProcTCPDownload(t *testing.T) { testProcTCP(t, "192.0.2.1:7002", true) }
func TestProcTCPIPv6(t *testing.T)     { testProcTCP(t, "[2001:db8::2]:7003", false) }

// testProcTCP moves a TCP transfer over the veth and checks that the
// process in namespace a that moved it is credited with the interface's
// bytes. download: the server is in a and sends; else the client in a sends.
func testProcTCP(t *testing.T, addr string, download bool) {
	n := newTestNet(t)
	mark := markIface(t, n.a, "veth-a")
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
	p.finish(t)
	mrx, mtx := mark.moved(t)
	rx, tx, name := p.credited(local.cmd.Process.Pid)
	if name != helperComm() {
		t.Errorf("pid %d is named %q, want the test binary's name %q", local.cmd.Process.Pid, name, helperComm())
	}
	p.near(t, "rx+tx of the process", rx+tx, mrx+mtx, 0.99, 1.01)
	// Together: one direction is acknowledgements only, a few kB, where a
	// neighbour discovery packet before netuse opened its capture is 3%.
	irx, itx := p.ifaceTotal("veth-a")
	p.near(t, "by_iface veth-a rx+tx", irx+itx, mrx+mtx, 0.99, 1.01)
	if download {
		p.near(t, "tx of the server", tx, mtx, 0.99, 1.01)
	} else {
		p.near(t, "tx of the client", tx, mtx, 0.99, 1.01)
	}
}

// upload moves n bytes over TCP from a helper in fromNS to a server in
// toNS at addr, and returns both once the server has them all.
func upload(t *testing.T, fromNS, toNS, addr string, n int) (client, server *helper) {
	t.Helper()
	return uploadAs(t, fromNS, toNS, addr, n, "", "")
}

// uploadAs is upload with the helpers named clientComm and serverComm
// (NETUSE_TEST_COMM, left set to clientComm); "" leaves the name as the
// environment has it.
func uploadAs(t *testing.T, fromNS, toNS, addr string, n int, clientComm, serverComm string) (client, server *helper) {
	t.Helper()
	named := func(comm string) {
		if comm != "" {
			t.Setenv("NETUSE_TEST_COMM", comm)
		}
	}
	named(serverComm)
	server = startHelper(t, toNS, "serve-recv", "tcp", addr)
	server.expect(t, "listening")
	named(clientComm)
	client = startHelper(t, fromNS, "send", "tcp", addr, strconv.Itoa(n))
	client.expect(t, "sent")
	server.expect(t, fmt.Sprintf("got %d", n))
	return client, server
}

// TestProcUDPUnconnected sends datagrams from b to an unconnected UDP socket
// bound to the wildcard address in a.
func TestProcUDPUnconnected(t *testing.T) {
	n := newTestNet(t)
	mark := markIface(t, n.a, "veth-a")
	p := startProc(t, n.a, "--iface", "veth-a")
	server := startHelper(t, n.a, "serve-recv", "udp", "0.0.0.0:7004")
	server.expect(t, "listening")
	client := startHelper(t, n.b, "send", "udp", "192.0.2.1:7004", strconv.Itoa(2<<20))
	client.expect(t, "sent")
	server.expect(t, "got")
	p.finish(t)
	mrx, _ := mark.moved(t)
	rx, _, _ := p.credited(server.cmd.Process.Pid)
	p.near(t, "rx of the UDP server", rx, mrx, 0.99, 1.01)
}

// TestProcLoopback moves a TCP transfer between two processes over
// loopback in a: the sender gets the upload, the receiver the download.
func TestProcLoopback(t *testing.T) {
	n := newTestNet(t)
	mark := markIface(t, n.a, "lo")
	p := startProc(t, n.a, "--iface", "lo")
	client, server := upload(t, n.a, n.a, "127.0.0.1:7005", transfer)
	p.finish(t)
	mrx, mtx := mark.moved(t)
	// Nearly all of lo's bytes flow from client to server: the data, and
	// the acknowledgements the other way are small.
	crx, ctx, _ := p.credited(client.cmd.Process.Pid)
	srx, stx, _ := p.credited(server.cmd.Process.Pid)
	p.near(t, "client tx + server tx", ctx+stx, mtx, 0.99, 1.01)
	irx, itx := p.ifaceTotal("lo")
	p.near(t, "by_iface lo rx", irx, mrx, 0.99, 1.01)
	p.near(t, "by_iface lo tx", itx, mtx, 0.99, 1.01)
	p.near(t, "server rx + client rx", srx+crx, mrx, 0.99, 1.01)
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
	ns = newNamespaces(t, "nu", "s")[0]
	host = fmt.Sprintf("nu%d-%dh", os.Getpid(), netSeq) // the veth's end in the test's own namespace
	t.Cleanup(func() { exec.Command("ip", "link", "del", host).Run() })
	runAll(t,
		[]string{"ip", "link", "add", host, "type", "veth", "peer", "name", "veth-b", "netns", ns},
		[]string{"ip", "addr", "add", "198.51.100.1/24", "dev", host},
		[]string{"ip", "-n", ns, "addr", "add", "198.51.100.2/24", "dev", "veth-b"},
		[]string{"ip", "link", "set", host, "up"},
		[]string{"ip", "-n", ns, "link", "set", "veth-b", "up"})
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
	var p *netuseRun
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
	pids := pidsOf([]byte(out.String()))
	if mode == "oneshot" {
		p.wait(t)
	} else {
		p.finish(t)
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
	var inferred uint64
	for _, c := range p.capts {
		inferred += c.InferredBytes
	}
	t.Logf("%s: %d curls, %d curl rows; %.2f%% of %s's bytes credited by inference", mode, len(pids), rows, 100*float64(inferred)/float64(all), iface)
	// netuse captured between the two reads of the counters: the rows
	// cannot have more than the interface moved.
	p.near(t, "the curl rows' rx+tx against "+iface+"'s", credited, all, floor, 1.001)
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
	mark := markIface(t, "", host)
	p := startProc(t, "", "--iface", host)

	server := startHelper(t, ns, "serve-send", "198.51.100.2:7020", strconv.Itoa(transfer))
	server.expect(t, "listening")
	client := startHelper(t, "", "recv", "198.51.100.2:7020")
	client.expect(t, fmt.Sprintf("got %d", transfer))
	server.expect(t, "sent")
	p.finish(t)
	mrx, mtx := mark.moved(t)

	srvRx, srvTx, srvName := p.credited(server.cmd.Process.Pid)
	cliRx, _, _ := p.credited(client.cmd.Process.Pid)
	p.near(t, "server: rx+tx against the host end's rx+tx", srvRx+srvTx, mrx+mtx, 0.99, 1.01)
	p.near(t, "client: rx against the host end's rx", cliRx, mrx, 0.99, 1.01)
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
	ns := newNamespaces(t, "nu", "host", "ctr", "cli")
	host, ctr, cli := ns[0], ns[1], ns[2]
	runAll(t, [][]string{
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
		{"ip", "-n", cli, "link", "set", "up-c", "up"},
		{"ip", "-n", ctr, "link", "set", "eth0", "up"},
		{"ip", "-n", ctr, "route", "add", "default", "via", "203.0.113.1"},
		{"ip", "netns", "exec", host, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		{"ip", "netns", "exec", host, "nft", "add table ip nat; " +
			"add chain ip nat pre { type nat hook prerouting priority -100; }; " +
			"add rule ip nat pre iifname up-h tcp dport 8080 dnat to 203.0.113.2:7030; " +
			"add chain ip nat post { type nat hook postrouting priority 100; }; " +
			"add rule ip nat post oifname up-h masquerade"},
	}...)
	uprx0, uptx0 := ifaceBytes(t, host, "up-h")
	p := startProc(t, host)
	server := startHelper(t, ctr, "serve-send", "203.0.113.2:7030", strconv.Itoa(transfer))
	server.expect(t, "listening")
	client := startHelper(t, cli, "recv", "198.51.100.1:8080")
	client.expect(t, fmt.Sprintf("got %d", transfer))
	server.expect(t, "sent")
	p.finish(t)
	uprx1, uptx1 := ifaceBytes(t, host, "up-h")
	up := uprx1 - uprx0 + uptx1 - uptx0 // the uplink's bytes; the bridge's are as many, give or take headers

	srvRx, srvTx, _ := p.credited(server.cmd.Process.Pid)
	cliRx, cliTx, _ := p.credited(client.cmd.Process.Pid)
	p.near(t, "server, once", srvRx+srvTx, up, 0.99, 1.01)
	p.near(t, "client, once", cliRx+cliTx, up, 0.99, 1.01)
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
	bin := capsBin(t, "")
	for _, command := range []string{"proc", "conn"} {
		cmd := asNobody("", bin, command, "-c", "1")
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
