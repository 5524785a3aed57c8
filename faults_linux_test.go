package main

import (
	"bytes"
	"fmt"
	"os"
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
