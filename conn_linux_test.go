package main

// Privileged end-to-end tests of netuse conn: known connections (TCP and
// UDP, IPv4 and IPv6, loopback, a server in another namespace) must be
// rows with their tuples, owners and bytes, and --by's groups must add up
// to the rows they replace, to the byte.

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// localAddr parses the address a helper said it listens on, or the
// address a client reports after "local".
func addrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatalf("helper said %q: %v", s, err)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// TestConnEndToEnd runs netuse conn in namespace a, and beside it netuse
// proc --by remote and conn --by user,program, while four connections
// move known traffic one after the other: TCP over IPv4 to a server in b,
// TCP over IPv6 from a client in b, UDP over IPv4 to b, and TCP over
// loopback in a. Each connection end must be a row with its tuple, its
// process and, between the interface counters taken around it, the
// interface's bytes to 0.1%; the server in b is a row of its own. The
// groups of the other two runs must add up to conn's rows to the byte.
func TestConnEndToEnd(t *testing.T) {
	n := newTestNet(t)
	// Intervals of 500 ms: a connection's end in b, whose namespace had no
	// process when netuse last listed them, is found by a pass that lists
	// them again (nsTables.rescan), at most every 200 ms, before a report
	// carries its bytes no longer.
	c := startJSON(t, n.a, "conn", "--iface", "veth-a,lo", "--interval", "500ms")
	byRemote := startJSON(t, n.a, "proc", "--iface", "veth-a,lo", "--interval", "500ms", "--by", "remote")
	byUser := startJSON(t, n.a, "conn", "--iface", "veth-a,lo", "--interval", "450ms", "--by", "user,program")
	const size = 4 << 20
	type end struct {
		h             *helper
		local, remote netip.AddrPort
		sends         bool // the end sends the payload; else it receives it
	}
	// sendTo is a case whose client in a sends size bytes (UDP: 1 MiB)
	// to a server in srvNS listening on addr.
	sendTo := func(srvNS, proto, addr string) func(t *testing.T) []end {
		return func(t *testing.T) []end {
			send, got := size, fmt.Sprintf("got %d", size)
			if proto == "udp" {
				send, got = 1<<20, "got"
			}
			srv := startHelper(t, srvNS, "serve-recv", proto, addr)
			srv.expect(t, "listening")
			cli := startHelper(t, n.a, "send-local", proto, addr, strconv.Itoa(send))
			local := addrPort(t, strings.Fields(cli.expect(t, "local"))[1])
			cli.expect(t, "sent")
			srv.expect(t, got)
			remote := netip.MustParseAddrPort(addr)
			return []end{{cli, local, remote, true}, {srv, remote, local, false}}
		}
	}
	for _, tc := range []struct {
		name   string
		iface  string
		proto  string
		ends   func(t *testing.T) []end
		mirror bool // both ends are sockets of this machine: each is a row
	}{
		{"tcp4 to b", "veth-a", "tcp", sendTo(n.b, "tcp", "192.0.2.2:7201"), true},
		{"tcp6 from b", "veth-a", "tcp", func(t *testing.T) []end {
			srv := startHelper(t, n.a, "serve-send", "[2001:db8::1]:7202", strconv.Itoa(size))
			srv.expect(t, "listening")
			cli := startHelper(t, n.b, "recv-local", "[2001:db8::1]:7202")
			local := addrPort(t, strings.Fields(cli.expect(t, "local"))[1])
			cli.expect(t, fmt.Sprintf("got %d", size))
			srv.expect(t, "sent")
			server := netip.MustParseAddrPort("[2001:db8::1]:7202")
			return []end{{srv, server, local, true}, {cli, local, server, false}}
		}, true},
		{"udp4 to b", "veth-a", "udp", sendTo(n.b, "udp", "192.0.2.2:7203"), true},
		{"tcp loopback", "lo", "tcp", sendTo(n.a, "tcp", "127.0.0.1:7204"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rx0, tx0 := ifaceBytes(t, n.a, tc.iface)
			ends := tc.ends(t)
			c.intervals(t, 3) // the last packets, reported
			rx1, tx1 := ifaceBytes(t, n.a, tc.iface)
			for i, e := range ends {
				rx, tx, pids, last := c.connection(tc.proto, e.local, e.remote)
				pid := e.h.cmd.Process.Pid
				if len(pids) != 1 || !pids[pid] || last.Name != helperComm() {
					t.Errorf("%s %v -> %v: credited to pids %v (last %q); want only %d, %q", tc.proto, e.local, e.remote, pids, last.Name, pid, helperComm())
				}
				payload, moved := tx, "sent"
				if !e.sends {
					payload, moved = rx, "received"
				}
				if payload < size/4 { // UDP moves 1 MiB
					t.Errorf("%v -> %v %s %d bytes; want the payload and more", e.local, e.remote, moved, payload)
				}
				if tc.proto == "tcp" && last.State == "" {
					t.Errorf("%v -> %v: no TCP state", e.local, e.remote)
				}
				what := fmt.Sprintf("end %d (%v -> %v) rx+tx", i, e.local, e.remote)
				want := rx1 - rx0 + tx1 - tx0
				if tc.iface == "lo" {
					// lo counts each packet as sent and received; an end
					// sends or receives it.
					want = tx1 - tx0
				}
				c.near(t, what, rx+tx, want, 0.999, 1.001)
			}
		})
	}
	c.intervals(t, 2)
	byRemote.intervals(t, 2)
	byUser.intervals(t, 2)
	c.stop(t)
	byRemote.stop(t)
	byUser.stop(t)
	// Groups against the rows they replace: by remote address, and by user
	// and program, over the whole run. Each run saw every byte of the
	// connections: they began after all three captured, and were idle
	// before any stopped.
	rows := map[string][2]uint64{}
	users := map[string][2]uint64{}
	for _, x := range c.conns {
		if x.Proto != "" {
			s := rows[x.RemoteAddr]
			rows[x.RemoteAddr] = [2]uint64{s[0] + x.RxBytes, s[1] + x.TxBytes}
		}
		if x.Pid != 0 {
			k := x.User + "/" + x.Name
			s := users[k]
			users[k] = [2]uint64{s[0] + x.RxBytes, s[1] + x.TxBytes}
		}
	}
	groups := map[string][2]uint64{}
	for _, g := range byRemote.groups {
		if g.Remote != nil && *g.Remote != "" {
			s := groups[*g.Remote]
			groups[*g.Remote] = [2]uint64{s[0] + g.RxBytes, s[1] + g.TxBytes}
		}
	}
	for _, remote := range []string{"192.0.2.2", "192.0.2.1", "2001:db8::1", "2001:db8::2", "127.0.0.1"} {
		if rows[remote] == ([2]uint64{}) || groups[remote] != rows[remote] {
			t.Errorf("remote %s: proc --by remote has rx, tx %v; conn's rows %v", remote, groups[remote], rows[remote])
		}
	}
	byName := map[string][2]uint64{}
	for _, g := range byUser.groups {
		if g.User != nil && g.Program != nil && *g.User != "" {
			k := *g.User + "/" + *g.Program
			s := byName[k]
			byName[k] = [2]uint64{s[0] + g.RxBytes, s[1] + g.TxBytes}
		}
	}
	k := "root/" + helperComm()
	if users[k] == ([2]uint64{}) || byName[k] != users[k] {
		t.Errorf("%s: conn --by user,program has rx, tx %v; conn's rows %v", k, byName[k], users[k])
	}
}

// connHelper runs the helpers that say their connection's local address
// first ("local ADDR"): send-local PROTO ADDR N, as send; recv-local ADDR,
// as recv. It reports whether args named one of them.
func connHelper(args []string) (bool, error) {
	switch args[0] {
	case "send-local":
		c, err := net.Dial(args[1], args[2])
		if err != nil {
			return true, err
		}
		fmt.Println("local", c.LocalAddr())
		n, _ := strconv.Atoi(args[3])
		if args[1] == "udp" {
			return true, sendDatagrams(c, n)
		}
		return true, sendAll(c, n)
	case "send-hold":
		// send-hold tcp ADDR N: send-local's connection, held open until
		// stdin closes; N bytes more at each line of stdin
		c, err := net.Dial(args[1], args[2])
		if err != nil {
			return true, err
		}
		defer c.Close()
		fmt.Println("local", c.LocalAddr())
		n, _ := strconv.Atoi(args[3])
		for in := bufio.NewScanner(os.Stdin); ; {
			if _, err := c.Write(make([]byte, n)); err != nil {
				return true, err
			}
			fmt.Println("sent")
			if !in.Scan() {
				return true, nil
			}
		}
	case "recv-local":
		c, err := net.Dial("tcp", args[1])
		if err != nil {
			return true, err
		}
		fmt.Println("local", c.LocalAddr())
		return true, recvAll(c)
	}
	return false, nil
}

// TestConnResolve runs netuse conn --resolve in namespace a, whose
// resolv.conf (ip netns exec mounts /etc/netns/<a>/resolv.conf) names a
// DNS server the test runs inside a: never the machine's resolver. UDP
// exchanges with b, over IPv4 and IPv6, go on until their rows carry b's
// names; each address is asked for once, the cache answering after.
func TestConnResolve(t *testing.T) {
	n := newTestNet(t)
	v4, v6 := netip.MustParseAddr("192.0.2.2"), netip.MustParseAddr("2001:db8::2")
	dns := startDNS(t, n.a, map[netip.Addr]string{v4: "peer-b.test", v6: "peer-b6.test"})
	for _, addr := range []string{"192.0.2.2:7301", "[2001:db8::2]:7302"} {
		srv := startHelper(t, n.b, "udp-answer", addr, "500")
		srv.expect(t, "listening")
		defer srv.cmd.Process.Kill() // it answers until killed
	}
	c := startJSON(t, n.a, "conn", "--iface", "veth-a", "--interval", "300ms", "--resolve")
	named := func(remote netip.Addr, name string) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, r := range c.conns {
			if r.RemoteAddr == remote.String() && r.RemoteName == name {
				return true
			}
		}
		return false
	}
	deadline := time.Now().Add(15 * time.Second)
	for !named(v4, "peer-b.test") || !named(v6, "peer-b6.test") {
		if time.Now().After(deadline) {
			c.dump(t)
			t.Fatalf("no rows named peer-b.test and peer-b6.test within 15 s; the server saw %d queries", dns.queries())
		}
		for _, addr := range []string{"192.0.2.2:7301", "[2001:db8::2]:7302"} {
			q := startHelper(t, n.a, "udp-query", addr, "100", "500")
			q.cmd.Wait() // it exits once answered
		}
		c.intervals(t, 1)
	}
	c.stop(t)
	for _, a := range []netip.Addr{v4, v6} {
		if got := dns.queriesFor(a); got != 1 {
			t.Errorf("%v was asked for %d times; want once, the cache answering after", a, got)
		}
	}
	// Before its name was known a row showed the address alone, and never
	// another name.
	for _, r := range c.conns {
		if r.RemoteName != "" && r.RemoteName != map[string]string{"192.0.2.2": "peer-b.test", "2001:db8::2": "peer-b6.test"}[r.RemoteAddr] {
			t.Errorf("row to %s named %q", r.RemoteAddr, r.RemoteName)
		}
	}
}

// TestConnResolveNoAnswer runs netuse conn --resolve against a DNS
// server that never answers: every report comes on time (a report that
// waited for a lookup would take netuse's 2 s timeout), no row has a name,
// netuse says once on stderr that no DNS server answered, and it ends at
// once after its count.
func TestConnResolveNoAnswer(t *testing.T) {
	n := newTestNet(t)
	dns := startDNS(t, n.a, nil) // for its resolv.conf
	dns.conn.Close()
	<-dns.done
	silent, err := listenInNS(n.a, "127.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	asked := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, _, err := silent.ReadFrom(buf); err != nil {
				return
			}
			select {
			case asked <- struct{}{}:
			default:
			}
		}
	}()
	srv := startHelper(t, n.b, "udp-answer", "192.0.2.2:7303", "500")
	srv.expect(t, "listening")
	defer srv.cmd.Process.Kill()
	c := startJSON(t, n.a, "conn", "--iface", "veth-a", "--interval", "200ms", "--count", "8", "--resolve")
	c.warns = "--resolve: no DNS server answered"
	for range 3 {
		q := startHelper(t, n.a, "udp-query", "192.0.2.2:7303", "100", "500")
		q.cmd.Wait()
		c.intervals(t, 1)
	}
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Fatal("netuse asked the silent server nothing")
	}
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		t.Fatal("netuse did not end after --count 8")
	}
	c.stop(t)
	if len(c.capts) != 8 {
		t.Errorf("%d intervals; want 8", len(c.capts))
	}
	for _, x := range c.capts {
		if x.Interval > 1 {
			t.Errorf("interval %d lasted %.3f s of 0.2: a report waited", x.Seq, x.Interval)
		}
	}
	rows := 0
	for _, r := range c.conns {
		if r.RemoteAddr == "192.0.2.2" {
			rows++
		}
		if r.RemoteName != "" {
			t.Errorf("row to %s named %q with no answer", r.RemoteAddr, r.RemoteName)
		}
	}
	if rows == 0 {
		t.Error("no row to 192.0.2.2")
	}
}
