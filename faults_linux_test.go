package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestProcHostileName moves traffic from a process that named itself
// "\x1b[2J\nevil": NDJSON carries the name exactly, the table shows it as
// visible escapes and writes no control byte of it.
func TestProcHostileName(t *testing.T) {
	n := newTestNet(t)
	const evil = "\x1b[2J\nevil"
	p := startProc(t, n.a, "--iface", "veth-a")
	var table bytes.Buffer
	plain := inNS(n.a, netuseBin, "proc", "--iface", "veth-a", "--interval", "300ms")
	plain.Stdout, plain.Stderr = &table, os.Stderr
	if err := plain.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Process.Kill(); plain.Wait() })

	remote := startHelper(t, n.b, "serve-recv", "tcp", "192.0.2.2:7101")
	remote.expect(t, "listening")
	t.Setenv("NETUSE_TEST_COMM", evil)
	local := startHelper(t, n.a, "send", "tcp", "192.0.2.2:7101", strconv.Itoa(1<<20))
	local.expect(t, "sent")
	remote.expect(t, fmt.Sprintf("got %d", 1<<20))
	p.intervals(t, 3)
	p.stop(t)
	plain.Process.Signal(os.Interrupt)
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
	row := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, strconv.Itoa(local.cmd.Process.Pid)+" ") {
			row = l
		}
	}
	if !strings.Contains(row, `\x1b[2J\nevil`) {
		t.Errorf("table: no row of pid %d shows the name escaped:\n%s", local.cmd.Process.Pid, out)
	}
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
	rx0, tx0 := ifaceBytes(t, n.a, "veth-c")
	remote := startHelper(t, n.b, "serve-recv", "tcp", "198.51.100.2:7102")
	remote.expect(t, "listening")
	local := startHelper(t, n.a, "send", "tcp", "198.51.100.2:7102", strconv.Itoa(transfer))
	local.expect(t, "sent")
	remote.expect(t, fmt.Sprintf("got %d", transfer))
	p.intervals(t, 3)
	p.stop(t)
	rx1, tx1 := ifaceBytes(t, n.a, "veth-c")
	rx, tx, _ := p.credited(local.cmd.Process.Pid)
	p.within1(t, "rx+tx of the sender on the new interface", rx+tx, rx1-rx0+tx1-tx0)
}

// run runs a command and fails the test if it fails.
func run(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
}

// lastIfaces returns the interfaces of netuse's last capture record.
func (p *procRun) lastIfaces() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.capts) == 0 {
		return nil
	}
	return p.capts[len(p.capts)-1].Ifaces
}
