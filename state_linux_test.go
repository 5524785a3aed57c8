package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// stateNet is two network namespaces of TestStateCronVeth's own, a and b,
// joined by veth-a and veth-b: 10.99.0.1 in a, 10.99.0.2 in b, addresses
// that exist only inside the two namespaces and that no other test uses.
//
// The link is kept quiet between the test's transfers, so that what
// netuse reads is what the test reads just before it: the kernel's own
// traffic would cross at times of its choosing. IPv6 is off on both ends
// (no neighbour discovery, no MLD, no router solicitations), and each end
// knows the other's MAC address for good (no ARP, whose probes of a
// neighbour in the DELAY state come 5 s after it was last used).
type stateNet struct {
	a, b string // namespace names
}

func newStateNet(t *testing.T) *stateNet {
	t.Helper()
	ns := newNamespaces(t, "nus", "a", "b")
	n := &stateNet{a: ns[0], b: ns[1]}
	n.link(t)
	return n
}

// link makes the veth pair, quiet as stateNet says, and brings it up.
func (n *stateNet) link(t *testing.T) {
	t.Helper()
	run(t, "ip", "-n", n.a, "link", "add", "veth-a", "type", "veth", "peer", "name", "veth-b", "netns", n.b)
	if _, err := os.Stat("/proc/sys/net/ipv6"); err == nil {
		runAll(t, [][]string{
			{"ip", "netns", "exec", n.a, "sysctl", "-qw", "net.ipv6.conf.veth-a.disable_ipv6=1"},
			{"ip", "netns", "exec", n.b, "sysctl", "-qw", "net.ipv6.conf.veth-b.disable_ipv6=1"},
		}...)
	}
	runAll(t, [][]string{
		{"ip", "-n", n.a, "addr", "add", "10.99.0.1/24", "dev", "veth-a"},
		{"ip", "-n", n.b, "addr", "add", "10.99.0.2/24", "dev", "veth-b"},
		{"ip", "-n", n.a, "neigh", "replace", "10.99.0.2", "lladdr", n.mac(t, n.b, "veth-b"), "nud", "permanent", "dev", "veth-a"},
		{"ip", "-n", n.b, "neigh", "replace", "10.99.0.1", "lladdr", n.mac(t, n.a, "veth-a"), "nud", "permanent", "dev", "veth-b"},
		{"ip", "-n", n.a, "link", "set", "veth-a", "up"},
		{"ip", "-n", n.b, "link", "set", "veth-b", "up"},
	}...)
}

// sysNet reads /sys/class/net/IFACE/NAME inside namespace ns.
func (n *stateNet) sysNet(t *testing.T, ns, iface, name string) string {
	t.Helper()
	out, err := inNS(ns, "cat", "/sys/class/net/"+iface+"/"+name).Output()
	if err != nil {
		t.Fatalf("read %s of %s in %s: %v", name, iface, ns, err)
	}
	return strings.TrimSpace(string(out))
}

func (n *stateNet) mac(t *testing.T, ns, iface string) string {
	return n.sysNet(t, ns, iface, "address")
}

// counters reads veth-a's byte counters in a, as the kernel keeps them.
func (n *stateNet) counters(t *testing.T) [2]uint64 {
	t.Helper()
	rx, tx := ifaceBytes(t, n.a, "veth-a")
	return [2]uint64{rx, tx}
}

// send moves size bytes over UDP from a helper in namespace from to one
// in namespace to, listening on addr, and returns once it has them.
func (n *stateNet) send(t *testing.T, from, to, addr string, size int) {
	t.Helper()
	server := startHelper(t, to, "serve-recv", "udp", addr)
	server.expect(t, "listening")
	client := startHelper(t, from, "send", "udp", addr, strconv.Itoa(size))
	client.expect(t, "sent")
	server.expect(t, "got") // all of it has crossed, the end datagram last
}

// TestStateCronVeth runs netuse iface --state --json --textfile as cron
// would, one-shot after one-shot, inside a namespace of its own, with
// known traffic on its veth between the runs, the veth once deleted and
// made again (another index, counters from zero). Each run's bytes must
// be the veth's counters' difference since the run before (since the veth
// was made, for the run after), read from the kernel just before it; each
// run's totals, and the last --textfile's counters, their sum.
func TestStateCronVeth(t *testing.T) {
	n := newStateNet(t)
	bin := netuseBinary(t)
	dir := t.TempDir()
	state, prom := filepath.Join(dir, "veth.state"), filepath.Join(dir, "netuse.prom")
	index := n.sysNet(t, n.a, "veth-a", "ifindex")

	// run runs netuse once, and returns veth-a's record and the kernel's
	// counters as netuse read them: unchanged from just before to just
	// after the run.
	run := func(what string) (record, [2]uint64, bool) {
		t.Helper()
		before := n.counters(t)
		cmd := inNS(n.a, bin, "iface", "--state", state, "--iface", "veth-a", "--json", "--textfile", prom)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if after := n.counters(t); after != before {
			t.Fatalf("%s: veth-a's counters moved while netuse ran, from %v to %v: traffic nobody sent", what, before, after)
		}
		if err != nil {
			t.Fatalf("%s: netuse: %v: %s", what, err, stderr.String())
		}
		if len(out) == 0 {
			if !strings.Contains(stderr.String(), "took the baseline") {
				t.Fatalf("%s: no output, stderr %q", what, stderr.String())
			}
			return record{}, before, false
		}
		var r record
		if err := json.Unmarshal(out, &r); err != nil || r.Iface != "veth-a" || strings.Count(string(out), "\n") != 1 {
			t.Fatalf("%s: stdout %q (%v); want one record of veth-a", what, out, err)
		}
		if stderr.Len() > 0 {
			t.Errorf("%s: stderr %q", what, stderr.String())
		}
		return r, before, true
	}

	_, last, reported := run("the baseline")
	if reported {
		t.Fatal("the first run reported; want the baseline alone")
	}
	steps := []struct {
		what     string
		traffic  func()
		recreate bool
	}{
		{"nothing since the baseline", func() {}, false},
		{"300 kB from b to a", func() { n.send(t, n.b, n.a, "10.99.0.1:7101", 300_000) }, false},
		{"200 kB from a to b", func() { n.send(t, n.a, n.b, "10.99.0.2:7102", 200_000) }, false},
		{"both ways", func() {
			n.send(t, n.b, n.a, "10.99.0.1:7103", 50_000)
			n.send(t, n.a, n.b, "10.99.0.2:7104", 70_000)
		}, false},
		{"nothing", func() {}, false},
		{"veth made again, 100 kB from b to a", func() { n.send(t, n.b, n.a, "10.99.0.1:7105", 100_000) }, true},
		{"40 kB from a to b", func() { n.send(t, n.a, n.b, "10.99.0.2:7106", 40_000) }, false},
	}
	var sum [2]uint64
	for _, st := range steps {
		if st.recreate {
			runAll(t, []string{"ip", "-n", n.a, "link", "del", "veth-a"})
			n.link(t)
			if again := n.sysNet(t, n.a, "veth-a", "ifindex"); again == index {
				t.Fatalf("veth-a made again has the same index, %s: the test wants another", index)
			}
			last = [2]uint64{} // a new interface counts from zero
		}
		st.traffic()
		r, now, _ := run(st.what)
		want := [2]uint64{now[0] - last[0], now[1] - last[1]}
		sum[0] += want[0]
		sum[1] += want[1]
		if r.RxBytes != want[0] || r.TxBytes != want[1] {
			t.Errorf("%s: rx_bytes %d, tx_bytes %d; want %d and %d, veth-a's counters since the run before", st.what, r.RxBytes, r.TxBytes, want[0], want[1])
		}
		if r.RxTotal != sum[0] || r.TxTotal != sum[1] {
			t.Errorf("%s: rx_total %d, tx_total %d; want %d and %d, every run's bytes added up", st.what, r.RxTotal, r.TxTotal, sum[0], sum[1])
		}
		t.Logf("%s: veth-a's counters %v; rx_bytes %d, tx_bytes %d; rx_total %d, tx_total %d", st.what, now, r.RxBytes, r.TxBytes, r.RxTotal, r.TxTotal)
		last = now
	}
	text, err := os.ReadFile(prom)
	if err != nil {
		t.Fatal(err)
	}
	got := parseMetrics(t, text)
	rx, tx := got["netuse_interface_receive_bytes_total"]["veth-a"], got["netuse_interface_transmit_bytes_total"]["veth-a"]
	if rx != float64(sum[0]) || tx != float64(sum[1]) {
		t.Errorf("the last textfile: veth-a rx %v, tx %v; want %d and %d, every run's bytes added up\n%s", rx, tx, sum[0], sum[1], text)
	}
	if sum[0] < 450_000 || sum[1] < 310_000 {
		t.Errorf("veth-a moved rx %d, tx %d bytes in all; want at least the payloads, 450,000 and 310,000", sum[0], sum[1])
	}
}
