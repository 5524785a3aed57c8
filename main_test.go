package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// epoch is the fake clock's start: a fixed instant, so golden files are stable.
var epoch = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// fakeCounters replays testdata/counters/NAME.txt: blocks that start with
// "@ SECONDS" and hold one line per interface:
//
//	name kind rx_bytes rx_packets tx_bytes tx_packets rx_errors tx_errors rx_drops tx_drops
//
// kind is edge, virtual or loopback, followed by ",down" for an interface
// that is down. Each call returns the next block and
// sets the clock to its time; after the last block the counters stay put.
type fakeCounters struct {
	reads [][]counter
	at    []time.Duration
	i     int
	now   time.Time
}

func loadCounters(t testing.TB, name string) *fakeCounters {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "counters", name+".txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fc := &fakeCounters{now: epoch}
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fs := strings.Fields(sc.Text())
		switch {
		case len(fs) == 0 || strings.HasPrefix(fs[0], "#"):
		case fs[0] == "@":
			secs, err := strconv.ParseFloat(fs[1], 64)
			if err != nil {
				t.Fatalf("%s.txt:%d: %v", name, line, err)
			}
			fc.at = append(fc.at, time.Duration(secs*float64(time.Second)))
			fc.reads = append(fc.reads, []counter{})
		case len(fs) == 10 && len(fc.reads) > 0:
			var n [8]uint64
			for i := range n {
				if n[i], err = strconv.ParseUint(fs[2+i], 10, 64); err != nil {
					t.Fatalf("%s.txt:%d: %v", name, line, err)
				}
			}
			kind, state, _ := strings.Cut(fs[1], ",")
			c := counter{name: fs[0], loopback: kind == "loopback", virtual: kind != "edge", down: state == "down",
				traffic:  traffic{rxBytes: n[0], rxPackets: n[1], txBytes: n[2], txPackets: n[3]},
				rxErrors: n[4], txErrors: n[5], rxDrops: n[6], txDrops: n[7]}
			last := len(fc.reads) - 1
			fc.reads[last] = append(fc.reads[last], c)
		default:
			t.Fatalf("%s.txt:%d: cannot parse %q", name, line, sc.Text())
		}
	}
	return fc
}

func (fc *fakeCounters) counters() ([]counter, error) {
	i := min(fc.i, len(fc.reads)-1)
	fc.i++
	fc.now = epoch.Add(fc.at[i])
	return fc.reads[i], nil
}

// testApp returns an app that reads fc, writes to buffers and never sleeps.
func testApp(fc *fakeCounters, tty bool) (*app, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	a := &app{
		stdout:    &stdout,
		stderr:    &stderr,
		tty:       tty,
		clock:     clock{now: func() time.Time { return fc.now }, sleep: func(context.Context, time.Duration) error { return nil }},
		counters:  fc.counters,
		termSize:  func() (int, int, bool) { return 120, 24, true },
		bootID:    func() string { return "test-boot" },
		uptime:    func() (time.Duration, bool) { return time.Hour, true },
		stateWait: time.Second,
	}
	return a, &stdout, &stderr
}

// checkGolden compares got with testdata/golden/name.golden, or rewrites it
// with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (go test -update rewrites it):\n%s", path, lineDiff(string(want), string(got)))
	}
}

// lineDiff shows the lines that differ, "-" for want and "+" for got.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			fmt.Fprintf(&b, "line %d:\n-%q\n+%q\n", i+1, wl, gl)
		}
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name     string // golden file
		counters string // testdata/counters file
		tty      bool
		args     string
	}{
		{"iface_json", "basic", false, "iface --json -c 2"},
		{"iface_plain", "basic", false, "iface -c 2"},
		{"iface_live", "basic", true, "iface -c 2"},
		{"iface_noclear", "basic", true, "iface -c 2 --no-clear"},
		{"iface_bits_si", "basic", false, "iface -c 2 --units bits --si"},
		{"iface_bits", "basic", false, "iface -c 2 --units bits"}, // SI, as links are sold
		{"iface_bits_iec", "basic", false, "iface -c 2 --units bits --si=false"},
		{"total_json", "basic", false, "--json -c 2"},
		{"total_live", "basic", true, "total -c 2"},
		{"total_plain", "basic", false, "total -c 2"},
		{"reset_json", "reset", false, "iface --json -c 3"},
		{"appear_json", "appear", false, "iface --json -c 4"},
		{"appear_total_json", "appear", false, "total --json -c 4"},
		{"host_total_json", "host", false, "total --json -c 1"},
		{"host_total_glob_json", "host", false, "total --json -c 1 --iface veth* --iface br0"},
		{"container_total_json", "container", false, "total --json -c 1"},
		{"many_sort_rx_top3", "many", false, "iface -c 1 --sort rx --top 3"},
		{"many_sort_rx_top1", "many", false, "iface -c 1 --sort rx --top 1"}, // (all) is every interface's
		{"many_sort_total", "many", false, "iface -c 1 --sort total"},
		{"many_sort_name_json", "many", false, "iface -c 1 --json --iface veth-* --iface eth*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, stdout, stderr := testApp(loadCounters(t, tt.counters), tt.tty)
			if code := a.main(strings.Fields(tt.args)); code != 0 {
				t.Fatalf("netuse %s: exit %d, stderr %q", tt.args, code, stderr)
			}
			if stderr.Len() > 0 {
				t.Errorf("netuse %s wrote to stderr: %q", tt.args, stderr)
			}
			if !tt.tty && bytes.Contains(stdout.Bytes(), []byte("\x1b")) {
				t.Errorf("netuse %s wrote an escape sequence off a terminal", tt.args)
			}
			checkGolden(t, tt.name, stdout.Bytes())
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args string
		code int
		want string // in stderr
	}{
		// Every bad value: one line in netuse's words, naming the flag,
		// quoting the value and saying what is wanted.
		{"--interval 0", 2, `--interval "0": want 10ms or more`},
		{"--interval=-1s", 2, `--interval "-1s": want 10ms or more`},
		{"-i -1", 2, `--interval "-1": want 10ms or more`},
		{"--interval abc", 2, `--interval "abc": want a duration like 500ms or 2s, or seconds like 0.5`},
		{"-c 1 -i", 2, `--interval "": empty; want a value such as 1s (an unset shell variable?)`},
		{"--units foo", 2, `--units "foo": want bytes or bits`},
		{"--sort bogus", 2, `--sort "bogus": want rx, tx, total or name; see`},
		{"proc --sort bogus", 2, `--sort "bogus": want rx, tx, total, name or pid; see`},
		{"iface --sort pid", 2, `--sort "pid": iface has no pid column; want rx, tx, total or name`},
		{"--bogus", 2, "unknown flag --bogus"},
		{"--count=-1", 2, `--count "-1": want 0 (run until interrupted) or more`},
		{"-c -1", 2, `--count "-1": want 0 (run until interrupted) or more`},
		{"-c many", 2, `--count "many": want 0 (run until interrupted) or more`},
		{"--top=-3 -c 1", 2, `--top "-3": want 0 (all rows) or more`},
		{"--top x -c 1", 2, `--top "x": want 0 (all rows) or more`},
		{"--json=maybe -c 1", 2, `--json "maybe": want true or false`},
		{"proc --max-flows 8", 2, `--max-flows "8": want 16 or more`},
		{"proc --owners nobody -c 1", 2, `--owners "nobody": want auto, bpf or proc`},
		{"conn --owners nobody -c 1", 2, `--owners "nobody": want auto, bpf or proc`},
		{"proc --by bogus", 2, `--by "bogus": no key "bogus"; want program, user, container, netns or remote`},
		{"conn --by user,user", 2, `--by "user,user": "user" twice; want each key once`},
		{"proc --by user, -c 1", 2, `--by "user,": no key ""`},
		{"proc --by user --sort pid", 2, `--sort "pid": rows grouped with --by have no pid column`},
		{"conn --remote 10.0.0.0/33", 2, `--remote "10.0.0.0/33": want a network like 10.0.0.0/8 or 2001:db8::/32, or an address`},
		{"conn --remote 10.0.0.0/8,example.com", 2, `--remote "10.0.0.0/8,example.com": "example.com": want a network`},
		{"proc --resolve", 2, `--resolve "true": names remote addresses, which only conn and --by remote show; add --by remote, or use netuse conn`},
		{"proc --by user --resolve", 2, `--resolve "true": names remote addresses`},
		{"conn --resolve=maybe", 2, `--resolve "maybe": want true or false`},
		{"conn --port 0", 2, `--port "0": want port numbers, 1 to 65535`},
		{"conn --port 22,ssh", 2, `--port "22,ssh": "ssh": want port numbers`},
		{"proc --pid -5", 2, `--pid "-5": want process ids, 0 or more`},
		{"proc --program [", 2, `--program "[": want shell globs`},
		{"iface --by user", 2, `--by is a flag of netuse proc, conn and serve, not of netuse iface`},
		{"--port 22 conn", 2, `--port is a flag of netuse proc and conn: write it after the command`},
		{"serve --pid 3", 2, `--pid is a flag of netuse proc and conn, not of netuse serve`},
		{"history --source kernel", 2, `--source is a flag of netuse proc, conn and serve, not of netuse history`},
		{"conn --sort bogus", 2, `--sort "bogus": want rx, tx, total, name or pid; see`},
		{"conn --by remote --sort bogus", 2, `--sort "bogus": want rx, tx, total or name; see`},
		{"total --state f -c 3", 2, `--count "3": --state reports once, the traffic since the previous run: drop --count, or give 1`},
		{"iface --json --format table", 2, `--format "table": --json asks for NDJSON; give one of them`},
		{"--textfile /proc/netuse.prom -c 1", 1, `--textfile "/proc/netuse.prom": cannot write in "/proc" (it takes no new file:`},
		{"proc --by remote --format prometheus", 2, `--by "remote": remote has no metrics`},
		{"conn --by user,remote --textfile x.prom", 2, `--by "user,remote": remote has no metrics`},
		{"proc --state f", 2, `--state is a flag of netuse total and iface, not of netuse proc`},
		{"--state f proc", 2, `--state is a flag of netuse total and iface: write it after the command`},
		{"--format xml -c 1", 2, `--format "xml": want table, json or prometheus`},
		{"--json --format prometheus -c 1", 2, `--format "prometheus": --json asks for NDJSON; give one of them`},
		{"--textfile /tmp/netuse.txt -c 1", 2, `--textfile "/tmp/netuse.txt": node_exporter reads only files whose name ends in .prom; want PATH.prom`},
		{"--textfile /nonexistent-netuse-dir/netuse.prom -c 1", 1, `--textfile "/nonexistent-netuse-dir/netuse.prom": cannot write in "/nonexistent-netuse-dir" (no such directory); want a file in a writable directory`},
		{"--textfile /etc/hostname/netuse.prom -c 1", 1, `--textfile "/etc/hostname/netuse.prom": cannot write in "/etc/hostname" (not a directory)`},
		{"--iface -c 1", 2, `--iface "-c": a flag, not a value; want GLOB before it`}, // as getopt: -c is the glob
		{"-c 1 --iface", 2, `--iface "": empty; want GLOB (an unset shell variable?)`},
		{"--iface [ -c 1", 2, `--iface "[": not a glob (syntax error in pattern); want a shell glob like eth* or wl?0`},
		{"frobnicate", 2, `unexpected argument frobnicate`},
		// Bounds of --interval: faster than 10ms netuse only burns CPU;
		// slower than a day a rate says little.
		{"-i 1ns -c 1", 2, `--interval "1ns": netuse cannot sample faster than every 10ms; want 10ms or more`},
		{"--interval=9.999ms -c 1", 2, `--interval "9.999ms": netuse cannot sample faster than every 10ms`},
		{"-i 0.001 -c 1", 2, `--interval "0.001": netuse cannot sample faster than every 10ms`},
		{"-i 1e12", 2, `--interval "1e12": netuse cannot sample slower than every 24h; want 24h or less`},
		{"-i 24h0m1s -c 1", 2, `--interval "24h0m1s": netuse cannot sample slower than every 24h`},
		{"iface --iface wlan*", 1, `--iface "wlan*" matches no interface; there are: eth0, lo`},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
			code := a.main(strings.Fields(tt.args))
			if code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
			if stdout.Len() > 0 {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			msg := stderr.String()
			if !strings.HasPrefix(msg, "netuse: ") || !strings.Contains(msg, tt.want) || strings.Count(msg, "\n") != 1 {
				t.Errorf("stderr = %q, want one line netuse: ...%s...", msg, tt.want)
			}
			// kong's own words, which name its parser's types and tokens.
			for _, kong := range []string{"expected", "perhaps try", `""`, "must be one of"} {
				if strings.Contains(msg, kong) && !strings.Contains(tt.want, kong) {
					t.Errorf("stderr = %q: %q is kong's, not netuse's", msg, kong)
				}
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	t.Setenv("NETUSE_JSON", "true")
	t.Setenv("NETUSE_COUNT", "1")
	t.Setenv("NETUSE_IFACE", "lo,eth*")
	a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
	if code := a.main([]string{"iface"}); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := strings.Count(stdout.String(), `"type":"iface"`)
	if got != 2 {
		t.Errorf("NETUSE_JSON, NETUSE_COUNT=1, NETUSE_IFACE=lo,eth*: %d iface records, want 2:\n%s", got, stdout)
	}

	// A flag on the command line wins over the environment, even over a bad value there.
	t.Setenv("NETUSE_INTERVAL", "zero")
	a, stdout, stderr = testApp(loadCounters(t, "basic"), false)
	if code := a.main([]string{"iface", "-i", "2s"}); code != 0 || stderr.Len() > 0 {
		t.Errorf("NETUSE_INTERVAL=zero netuse iface -i 2s: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
}

// TestEnvironmentErrors checks that a bad value from the environment is
// named by its variable, not by the flag the user did not type.
func TestEnvironmentErrors(t *testing.T) {
	tests := []struct {
		env, val string
		args     string
		want     string // the whole of stderr
	}{
		{"NETUSE_INTERVAL", "zero", "iface", `netuse: NETUSE_INTERVAL="zero": want a duration like 500ms or 2s, or seconds like 0.5; see 'netuse --help'`},
		{"NETUSE_INTERVAL", "5ms", "iface", `netuse: NETUSE_INTERVAL="5ms": netuse cannot sample faster than every 10ms; want 10ms or more; see 'netuse --help'`},
		{"NETUSE_SORT", "pid", "iface", `netuse: NETUSE_SORT="pid": iface has no pid column; want rx, tx, total or name; see 'netuse --help'`},
		{"NETUSE_COUNT", "x", "iface", `netuse: NETUSE_COUNT="x": want 0 (run until interrupted) or more; see 'netuse --help'`},
		{"NETUSE_JSON", "maybe", "iface", `netuse: NETUSE_JSON="maybe": want true or false; see 'netuse --help'`},
		{"NETUSE_UNITS", "nibbles", "iface", `netuse: NETUSE_UNITS="nibbles": want bytes or bits; see 'netuse --help'`},
		{"NETUSE_IFACE", "eth0,[", "iface", `netuse: NETUSE_IFACE="eth0,[": "[" is not a glob (syntax error in pattern); want shell globs like eth*,wl?0; see 'netuse --help'`},
		{"NETUSE_MAX_FLOWS", "8", "proc", `netuse: NETUSE_MAX_FLOWS="8": want 16 or more; see 'netuse --help'`},
	}
	for _, tt := range tests {
		t.Run(tt.env+"="+tt.val, func(t *testing.T) {
			t.Setenv("NETUSE_COUNT", "1") // so that a value taken by mistake ends the run
			t.Setenv(tt.env, tt.val)
			a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
			code := a.main(strings.Fields(tt.args))
			if got := strings.TrimSuffix(stderr.String(), "\n"); code != 2 || stdout.Len() > 0 || got != tt.want {
				t.Errorf("%s=%s netuse %s: exit %d, stdout %q, stderr\n%s\nwant 2, nothing, and\n%s", tt.env, tt.val, tt.args, code, stdout, got, tt.want)
			}
		})
	}
}

// TestVersionAndHelp checks what -V and --help print, exactly enough that
// one cannot pass for the other: the version is one line, kong's "version"
// variable; help is a usage line and the flags.
func TestVersionAndHelp(t *testing.T) {
	for _, args := range [][]string{{"-V"}, {"--version"}} {
		a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
		// "netuse dev (no version stamped: ...)" for a test binary, which
		// has no module version or commit.
		want := versionText() + "\n"
		if code := a.main(args); code != 0 || stderr.Len() > 0 || stdout.String() != want {
			t.Errorf("netuse %s: exit %d, stdout %q, stderr %q; want 0, %q, nothing", strings.Join(args, " "), code, stdout, stderr, want)
		}
	}
	for _, tt := range []struct {
		args  []string
		usage string // the first line
	}{
		// total is the default: the usage line says so.
		{[]string{"--help"}, "Usage: netuse [total|iface|proc|conn|serve|history] [flags]"},
		{[]string{"-h"}, "Usage: netuse [total|iface|proc|conn|serve|history] [flags]"},
		{[]string{"iface", "--help"}, "Usage: netuse iface [flags]"},
		{[]string{"proc", "--help"}, "Usage: netuse proc [flags]"},
	} {
		a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
		code := a.main(tt.args)
		out := stdout.String()
		first, _, _ := strings.Cut(out, "\n")
		if code != 0 || stderr.Len() > 0 || first != tt.usage {
			t.Errorf("netuse %s: exit %d, first line %q, stderr %q; want 0, %q, nothing", strings.Join(tt.args, " "), code, first, stderr, tt.usage)
		}
		for _, flag := range []string{"\nFlags:\n", "-i, --interval=", "-c, --count=", "--json", "-V, --version"} {
			if !strings.Contains(out, flag) {
				t.Errorf("netuse %s: no %q in the help:\n%s", strings.Join(tt.args, " "), flag, out)
			}
		}
		if strings.Contains(out, versionLine()+"\n") {
			t.Errorf("netuse %s printed the version line:\n%s", strings.Join(tt.args, " "), out)
		}
	}
}

func TestParseInterval(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration // 0: an error
	}{
		{"1s", time.Second},
		{"500ms", 500 * time.Millisecond},
		{"2", 2 * time.Second},
		{"0.5", 500 * time.Millisecond},
		{"1m30s", 90 * time.Second},
		{"0", 0},
		{"0s", 0},
		{"-1", 0},
		{"abc", 0},
		{"", 0},
		{"NaN", 0},
		{"1e300", 0},
		{"0.0000000001", 0}, // below a nanosecond
	}
	for _, tt := range tests {
		got, err := parseInterval(tt.in)
		if tt.want == 0 && err == nil {
			t.Errorf("parseInterval(%q) = %v, want an error", tt.in, got)
		}
		if tt.want != 0 && (err != nil || got != tt.want) {
			t.Errorf("parseInterval(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// TestTick checks the schedule: count steps, due at start+k*interval,
// re-anchored after a long stall, and a cancelled context ends it quietly.
func TestTick(t *testing.T) {
	now := epoch
	var slept []time.Duration
	clk := clock{
		now: func() time.Time { return now },
		sleep: func(ctx context.Context, d time.Duration) error {
			slept = append(slept, d)
			now = now.Add(d)
			return ctx.Err()
		},
	}
	var steps []int
	step := func(seq int) error {
		steps = append(steps, seq)
		now = now.Add(100 * time.Millisecond) // each step takes 100ms
		if seq == 2 {
			now = now.Add(5 * time.Second) // a stall (suspend)
		}
		return nil
	}
	err := tick(context.Background(), clk, options{interval: time.Second, count: 4}, step)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(steps) != "[1 2 3 4]" {
		t.Errorf("steps %v, want [1 2 3 4]", steps)
	}
	// The stall ends at 7.1s: the slots of 3s to 7s are skipped.
	want := []time.Duration{time.Second, 900 * time.Millisecond, 900 * time.Millisecond, 900 * time.Millisecond}
	if fmt.Sprint(slept) != fmt.Sprint(want) {
		t.Errorf("slept %v, want %v", slept, want)
	}

	// A stall in the sleep (SIGSTOP, suspend) makes one long interval, and
	// the next is at least half an interval, not a burst.
	sleep := clk.sleep
	for _, stall := range []time.Duration{3050 * time.Millisecond, 3500 * time.Millisecond, 3950 * time.Millisecond} {
		now = epoch
		var at []time.Time
		sleeps := 0
		clk.sleep = func(ctx context.Context, d time.Duration) error {
			if sleeps++; sleeps == 2 {
				d += stall
			}
			now = now.Add(d)
			return nil
		}
		if err := tick(context.Background(), clk, options{interval: time.Second, count: 5}, func(int) error {
			at = append(at, now)
			return nil
		}); err != nil {
			t.Fatalf("stall %v: %v", stall, err)
		}
		// Without all five steps the gaps below say nothing.
		if len(at) != 5 {
			t.Fatalf("stall %v: %d steps, want 5", stall, len(at))
		}
		if gap := at[1].Sub(at[0]); gap < stall {
			t.Errorf("stall %v: the interval with the stall lasted %v, want at least the stall", stall, gap)
		}
		for i := 1; i < len(at); i++ {
			if gap := at[i].Sub(at[i-1]); gap < 500*time.Millisecond {
				t.Errorf("stall %v: interval %d lasted %v, want at least half an interval (steps at %v)", stall, i+1, gap, at)
			}
		}
	}
	clk.sleep = sleep

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	steps = nil
	if err := tick(ctx, clk, options{interval: time.Second}, step); err != nil || len(steps) != 0 {
		t.Errorf("cancelled: err %v, steps %v; want nil and none", err, steps)
	}

	boom := errors.New("boom")
	if err := tick(context.Background(), clk, options{interval: time.Second}, func(int) error { return boom }); err != boom {
		t.Errorf("a failing step: err %v, want %v", err, boom)
	}
}

func TestClosedPipeIsQuiet(t *testing.T) {
	a, _, stderr := testApp(loadCounters(t, "basic"), false)
	a.stdout = errWriter{fmt.Errorf("write /dev/stdout: %w", syscall.EPIPE)}
	if code := a.main([]string{"--json"}); code != 0 || stderr.Len() > 0 {
		t.Errorf("closed stdout: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	// The help too: netuse --help | head -1.
	a, _, stderr = testApp(loadCounters(t, "basic"), false)
	a.stdout = errWriter{fmt.Errorf("write /dev/stdout: %w", syscall.EPIPE)}
	if code := a.main([]string{"--help"}); code != 0 || stderr.Len() > 0 {
		t.Errorf("closed stdout, --help: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	a, _, stderr = testApp(loadCounters(t, "basic"), false)
	a.stdout = errWriter{errors.New("disk full")}
	if code := a.main([]string{"--json"}); code != 1 || !strings.Contains(stderr.String(), "disk full") {
		t.Errorf("failing stdout: exit %d, stderr %q; want 1 and the cause", code, stderr)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// TestIntervalBounds checks that the bounds themselves are taken.
func TestIntervalBounds(t *testing.T) {
	for _, args := range []string{"-i 10ms -c 1", "-i 0.01 -c 1", "-i 24h -c 1", "-i 86400 -c 1"} {
		a, _, stderr := testApp(loadCounters(t, "basic"), false)
		if code := a.main(strings.Fields(args)); code != 0 {
			t.Errorf("netuse %s: exit %d, stderr %q; want 0", args, code, stderr)
		}
	}
}

// TestProcFlags checks that --owners and --max-flows are proc's alone:
// listed only by proc's help, refused elsewhere with a word on where they
// belong, and not read from the environment by the other commands.
func TestProcFlags(t *testing.T) {
	procOnly := []string{"--owners", "--max-flows"}
	for _, args := range []string{"--help", "total --help", "iface --help", "proc --help"} {
		a, stdout, _ := testApp(loadCounters(t, "basic"), false)
		if code := a.main(strings.Fields(args)); code != 0 {
			t.Fatalf("netuse %s: exit %d", args, code)
		}
		for _, f := range procOnly {
			if got, want := strings.Contains(stdout.String(), f+"="), args == "proc --help"; got != want {
				t.Errorf("netuse %s lists %s: %v, want %v", args, f, got, want)
			}
		}
	}
	for _, tt := range []struct{ args, want string }{
		{"iface --max-flows 100 -c 1", "netuse: --max-flows is a flag of netuse proc, conn and serve, not of netuse iface; see 'netuse --help'\n"},
		{"total --owners bpf -c 1", "netuse: --owners is a flag of netuse proc, conn and serve, not of netuse total; see 'netuse --help'\n"},
		{"--max-flows 100 proc", "netuse: --max-flows is a flag of netuse proc, conn and serve: write it after the command; see 'netuse --help'\n"},
		// Flags of proc after it, and shared flags before it, are read:
		// the value reaches Validate.
		{"proc --max-flows 8", `netuse: --max-flows "8": want 16 or more; see 'netuse --help'` + "\n"},
		{"--interval 2s proc --max-flows 8", `netuse: --max-flows "8": want 16 or more; see 'netuse --help'` + "\n"},
	} {
		a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
		if code := a.main(strings.Fields(tt.args)); code != 2 || stdout.Len() > 0 || stderr.String() != tt.want {
			t.Errorf("netuse %s: exit %d, stdout %q, stderr %q; want 2, nothing, %q", tt.args, code, stdout, stderr, tt.want)
		}
	}
	t.Setenv("NETUSE_MAX_FLOWS", "8")
	t.Setenv("NETUSE_OWNERS", "nobody")
	a, _, stderr := testApp(loadCounters(t, "basic"), false)
	if code := a.main([]string{"iface", "-c", "1"}); code != 0 || stderr.Len() > 0 {
		t.Errorf("NETUSE_MAX_FLOWS=8 NETUSE_OWNERS=nobody netuse iface -c 1: exit %d, stderr %q; want 0, nothing", code, stderr)
	}
}

// TestHelpAndVersionCommands checks netuse help [command] and netuse
// version: the same output as --help and -V.
func TestHelpAndVersionCommands(t *testing.T) {
	run := func(args string) (int, string, string) {
		a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
		code := a.main(strings.Fields(args))
		return code, stdout.String(), stderr.String()
	}
	for _, tt := range []struct{ cmd, same string }{
		{"help", "--help"},
		{"help total", "total --help"},
		{"help iface", "iface --help"},
		{"help proc", "proc --help"},
		{"help serve", "serve --help"},
		{"version", "-V"},
	} {
		code, out, errs := run(tt.cmd)
		wcode, want, _ := run(tt.same)
		if code != 0 || wcode != 0 || errs != "" || out != want || out == "" {
			t.Errorf("netuse %s: exit %d, stderr %q, stdout\n%s\nwant 0, nothing, and what netuse %s prints:\n%s", tt.cmd, code, errs, out, tt.same, want)
		}
	}
	code, out, errs := run("help bogus")
	if want := "netuse: help \"bogus\": no such command; want total, iface, proc, conn, serve, history, help, version, man or completion; see 'netuse --help'\n"; code != 2 || out != "" || errs != want {
		t.Errorf("netuse help bogus: exit %d, stdout %q, stderr %q; want 2, nothing, %q", code, out, errs, want)
	}
}

// TestVersionString checks the choice of the version string: -ldflags
// first, then the module's version, then the commit, else "dev".
func TestVersionString(t *testing.T) {
	info := func(mainVersion string, settings ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{Main: debug.Module{Path: "github.com/netuse/netuse", Version: mainVersion}}
		for i := 0; i+1 < len(settings); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
		}
		return bi
	}
	const rev = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name    string
		ldflags string
		info    *debug.BuildInfo // nil: no build info
		want    string
	}{
		{"ldflags win", "v1.2.3", info("v1.0.0", "vcs.revision", rev), "v1.2.3"},
		{"go install module@version", "", info("v1.0.0"), "v1.0.0"},
		{"go build stamps a pseudo-version", "", info("v0.0.0-20261201160000-0123456789ab+dirty", "vcs.revision", rev, "vcs.modified", "true"), "v0.0.0-20261201160000-0123456789ab+dirty"},
		{"devel: the commit", "", info("(devel)", "vcs.revision", rev, "vcs.modified", "false"), "0123456789ab"},
		{"devel: the commit, modified", "", info("(devel)", "vcs.revision", rev, "vcs.modified", "true"), "0123456789ab+dirty"},
		{"empty version: the commit", "", info("", "vcs.revision", rev), "0123456789ab"},
		{"short revision kept whole", "", info("(devel)", "vcs.revision", "abc123"), "abc123"},
		{"devel, no vcs", "", info("(devel)"), "dev"},
		{"no build info", "", nil, "dev"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionOf(tt.ldflags, tt.info); got != tt.want {
				t.Errorf("versionOf(%q, ...) = %q, want %q", tt.ldflags, got, tt.want)
			}
		})
	}
	// What -V says of each: the version, and where to read how to stamp
	// one when there is none.
	for _, tt := range []struct{ v, want string }{
		{"v1.2.3", "netuse v1.2.3"},
		{"0123456789ab+dirty", "netuse 0123456789ab+dirty"},
		{"dev", "netuse dev (no version stamped: see the README's Install)"},
	} {
		if got := versionSaid(tt.v); got != tt.want {
			t.Errorf("versionSaid(%q) = %q, want %q", tt.v, got, tt.want)
		}
	}
	// The README has that section, and it stamps with -ldflags.
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "\n## Install\n") || !strings.Contains(string(readme), `-ldflags "-X main.version=`) {
		t.Errorf("README.md: no section \"## Install\" with a go build -ldflags \"-X main.version=...\" line, which netuse dev's version line points to")
	}
	// netuse_build_info's label stays one word: "dev", a version or a commit.
	if v := strings.TrimPrefix(versionLine(), "netuse "); strings.ContainsAny(v, " ()") {
		t.Errorf("versionLine() = %q: the metrics' version label would be %q", versionLine(), v)
	}
}

// TestCommandHelp checks that each command's help says what it does, with
// examples, and for proc what privileges it needs.
func TestCommandHelp(t *testing.T) {
	tests := []struct {
		cmd  string
		want []string
	}{
		{"total", []string{"edge interfaces", "the default", "Examples:", "\n    netuse\n", "\n    netuse total "}},
		{"iface", []string{"/proc/net/dev", "Examples:", "\n    netuse iface "}},
		{"proc", []string{"Linux only", "Examples:", "\n    sudo netuse proc", "root", "sudo setcap " + setcapCaps + "+ep "}},
	}
	for _, tt := range tests {
		a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
		if code := a.main([]string{tt.cmd, "--help"}); code != 0 {
			t.Fatalf("netuse %s --help: exit %d, stderr %q", tt.cmd, code, stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("netuse %s --help: no %q in\n%s", tt.cmd, w, stdout)
			}
		}
	}
}
