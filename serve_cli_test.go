package main

// Tests of serve's command line: refused flags, --iface, the
// environment, counters that fail.

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// TestServeUsageErrors: serve's flags, and those of the other commands it
// has no use for, refused as every bad flag is: exit 2, one line.
func TestServeUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"serve", "--json"}, `--json "true": serve writes no rows, only /metrics; drop it`},
		{[]string{"serve", "--count", "1"}, `--count "1": serve writes no rows, only /metrics; drop it`},
		{[]string{"-c", "1", "serve"}, `--count "1": serve writes no rows, only /metrics; drop it`},
		{[]string{"serve", "--format", "prometheus"}, `--format "prometheus": serve writes no rows, only /metrics; drop it`},
		{[]string{"serve", "--textfile", "/tmp/netuse.prom"}, `--textfile "/tmp/netuse.prom": serve writes no rows, only /metrics; drop it`},
		{[]string{"serve", "--by", "remote"}, `--by "remote": no key "remote" for serve; want program, user, container, netns or pid, or several joined by commas`},
		{[]string{"serve", "--by", "program,program"}, `--by "program,program": "program" twice; want each key once`},
		{[]string{"serve", "--by", "program,"}, `--by "program,": no key "" for serve`},
		{[]string{"serve", "--by", ""}, `--by "": empty; want KEYS (an unset shell variable?)`},
		{[]string{"serve", "--listen", "nonsense"}, `--listen "nonsense": want HOST:PORT, such as 127.0.0.1:9957 or :9957`},
		{[]string{"serve", "--listen", ""}, `--listen "": empty; want ADDR (an unset shell variable?)`},
		{[]string{"serve", "--web-config", ""}, `--web-config "": empty; want FILE (an unset shell variable?)`},
		{[]string{"serve", "--web-config", "--by", "user"}, `--web-config "--by": a flag, not a value; want FILE before it`},
		{[]string{"serve", "--max-flows", "8"}, `--max-flows "8": want 16 or more`},
		{[]string{"serve", "--owners", "nobody"}, `--owners "nobody": want auto, bpf or proc`},
		{[]string{"serve", "--source", "wire"}, `--source "wire": want capture, kernel or auto`},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			ifs := newFakeIfaces(ifc("eth0", 2, 1000, 2000, 10, 20))
			a, stdout, stderr := serveApp(ifs, noCapture())
			code := mainWithin(t, a, tt.args...)
			msg := stderr.String()
			if code != 2 || !strings.HasPrefix(msg, "netuse: ") || !strings.Contains(msg, tt.want) || !strings.HasSuffix(msg, "; see 'netuse --help'\n") || strings.Count(msg, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and one line netuse: ...%s...; see 'netuse --help'", code, msg, tt.want)
			}
			if stdout.String() != "" {
				t.Errorf("stdout = %q; want nothing", stdout)
			}
		})
	}
}

// TestServeListenBadPort: a port that is no port (out of range, or a
// service name that does not exist) is bad usage, as --listen nonsense
// is: exit 2, one line, before serve reads anything.
//
// Checking only that --listen splits into host and port would leave the
// port to net.Listen, whose refusal is a failure at run time, exit 1.
func TestServeListenBadPort(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:99999", "127.0.0.1:-1", "127.0.0.1:nosuchservice"} {
		t.Run(listen, func(t *testing.T) {
			a, stdout, stderr := serveApp(newFakeIfaces(ifc("eth0", 2, 1000, 2000, 10, 20)), noCapture())
			code := mainWithin(t, a, "serve", "--listen", listen)
			msg := stderr.String()
			prefix := fmt.Sprintf("netuse: --listen %q: ", listen)
			if code != 2 || !strings.HasPrefix(msg, prefix) || !strings.HasSuffix(msg, "; see 'netuse --help'\n") || strings.Count(msg, "\n") != 1 {
				t.Errorf("exit %d, stderr %q; want 2 and one line %s...; see 'netuse --help'", code, msg, prefix)
			}
			if stdout.String() != "" {
				t.Errorf("stdout = %q; want nothing", stdout)
			}
		})
	}
}

// TestServeIfaceGlobs: --iface picks the interfaces that have series; a
// glob that matches none ends serve at start, exit 1, one line, and
// nothing listens after.
func TestServeIfaceGlobs(t *testing.T) {
	ifs := newFakeIfaces(ifc("eth0", 2, 1000, 1000, 10, 10), ifc("eth1", 3, 0, 0, 0, 0), ifc("wlan0", 4, 0, 0, 0, 0), ifc("lo", 1, 0, 0, 0, 0))
	a, _, stderr := serveApp(ifs, noCapture())
	s := startServe(t, a, stderr, "serve", "--listen", "127.0.0.1:0", "--iface", "eth*", "--iface", "lo")
	ifs.set(ifc("eth0", 2, 3000, 1000, 30, 10), ifc("eth1", 3, 0, 0, 0, 0), ifc("wlan0", 4, 700, 0, 7, 0), ifc("lo", 1, 0, 0, 0, 0))
	want := map[string]float64{}
	four(want, "netuse_interface", `device="eth0"`, traffic{rxBytes: 2000, rxPackets: 20})
	four(want, "netuse_interface", `device="eth1"`, traffic{})
	four(want, "netuse_interface", `device="lo"`, traffic{})
	if d := seriesDiff(want, scrapeSeries(t, s.addr, "netuse_interface_")); d != "" {
		t.Errorf("--iface eth* --iface lo: the interface series differ:\n%s", d)
	}
	if err := s.stop(); err != nil {
		t.Errorf("serve ended with %v; want nil", err)
	}

	addr := freePort(t)
	a, stdout, stderr := serveApp(newFakeIfaces(ifc("eth0", 2, 0, 0, 0, 0), ifc("lo", 1, 0, 0, 0, 0)), noCapture())
	code := mainWithin(t, a, "serve", "--listen", addr, "--iface", "wlan*")
	const want1 = "netuse: --iface \"wlan*\" matches no interface; there are: eth0, lo\n"
	if code != 1 || stderr.String() != want1 || stdout.String() != "" {
		t.Errorf("--iface wlan*: exit %d, stdout %q, stderr %q; want 1, nothing and %q", code, stdout, stderr, want1)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s after serve failed", addr)
	}
}

// TestServeCountersFail: counters that can no longer be read end serve at
// its ticker's next report: exit 1, the cause in one line, and nothing
// listens after.
//
// The way it can hang: runServe takes the ticker goroutine's error, then
// waits for the ticker again after the server's shutdown, for a value
// that never comes.
func TestServeCountersFail(t *testing.T) {
	ifs := newFakeIfaces(ifc("eth0", 2, 1000, 2000, 10, 20))
	a, stdout, stderr := serveApp(ifs, noCapture())
	a.clock = clock{now: time.Now, sleep: sleepCtx}
	code := make(chan int, 1)
	go func() { code <- a.main([]string{"serve", "--listen", "127.0.0.1:0", "--interval", "10ms"}) }()
	text, ok := stderr.waitFor(func(s string) bool { return metricsLine.MatchString(s) }, nil)
	if !ok {
		t.Fatalf("no line netuse: serve: metrics on ADDR/metrics; stderr %q", text)
	}
	addr := metricsLine.FindStringSubmatch(text)[2]
	ifs.setFail(errors.New("read interface counters: no /proc/net/dev"))
	select {
	case c := <-code:
		lines := stderr.lines()
		if last := lines[len(lines)-1]; c != 1 || last != "netuse: read interface counters: no /proc/net/dev" || len(lines) != 3 {
			t.Errorf("exit %d, stderr %q; want 1, and after the warning and where the metrics are, one line: netuse: read interface counters: no /proc/net/dev", c, stderr)
		}
	case <-time.After(serveWait):
		t.Fatalf("serve still runs %v after its counters failed", serveWait)
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q; want nothing", stdout)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("something listens on %s after serve failed", addr)
	}
}

// TestServeEnvironment: serve's flags come from NETUSE_ variables too
// (NETUSE_LISTEN, NETUSE_BY), and
// a variable of the flags serve refuses, meant for the other commands
// (NETUSE_COUNT, NETUSE_JSON), is let be.
func TestServeEnvironment(t *testing.T) {
	t.Setenv("NETUSE_LISTEN", "127.0.0.1:0")
	t.Setenv("NETUSE_BY", "pid")
	t.Setenv("NETUSE_COUNT", "1")
	t.Setenv("NETUSE_JSON", "true")
	t.Setenv("NETUSE_FORMAT", "table")
	ifs := newFakeIfaces(ifc("eth0", 2, 1000, 2000, 10, 20))
	a, stdout, stderr := serveApp(ifs, noCapture())
	s := startServe(t, a, stderr, "serve")
	if got := scrapeSeries(t, s.addr, "netuse_interface_receive_bytes_total"); len(got) != 1 {
		t.Errorf("the interface series: %v; want eth0's", got)
	}
	if !strings.Contains(stderr.String(), "netuse: warning: serve --by pid: ") {
		t.Errorf("stderr = %q; want the warning of --by pid, from NETUSE_BY=pid", stderr)
	}
	if err := s.stop(); err != nil {
		t.Errorf("serve ended with %v; want nil", err)
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q; want nothing", stdout)
	}
}
