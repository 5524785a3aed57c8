package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// stateRig is an app whose counters, clock and boot id a test sets, with
// a state file in a directory of its own.
type stateRig struct {
	t      *testing.T
	path   string
	cs     []counter
	now    time.Time
	boot   string
	uptime time.Duration
}

func newStateRig(t *testing.T) *stateRig {
	return &stateRig{t: t, path: filepath.Join(t.TempDir(), "netuse.state"), now: epoch, boot: "boot-1", uptime: 24 * time.Hour}
}

// run runs netuse with args and --state, and returns its exit status,
// stdout and stderr.
func (s *stateRig) run(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	a := &app{
		stdout:    &stdout,
		stderr:    &stderr,
		clock:     clock{now: func() time.Time { return s.now }, sleep: func(context.Context, time.Duration) error { return nil }},
		counters:  func() ([]counter, error) { return s.cs, nil },
		termSize:  func() (int, int, bool) { return 120, 24, true },
		bootID:    func() string { return s.boot },
		uptime:    func() (time.Duration, bool) { return s.uptime, true },
		stateWait: 200 * time.Millisecond,
	}
	code := a.main(append(args, "--state", s.path))
	return code, stdout.String(), stderr.String()
}

// iface is a counter of an edge interface.
func iface(name string, index int, rx, tx uint64) counter {
	return counter{name: name, index: index, traffic: traffic{rxBytes: rx, txBytes: tx, rxPackets: rx / 100, txPackets: tx / 100}}
}

// ifaceRows reads iface records: bytes by interface, and each interval.
func ifaceRows(t *testing.T, ndjson string) (map[string][2]uint64, []float64) {
	t.Helper()
	rows := map[string][2]uint64{}
	var intervals []float64
	for _, line := range strings.Split(strings.TrimSpace(ndjson), "\n") {
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Type != "iface" {
			t.Fatalf("not an iface record: %q (%v)", line, err)
		}
		rows[r.Iface] = [2]uint64{r.RxBytes, r.TxBytes}
		intervals = append(intervals, r.Interval)
	}
	return rows, intervals
}

// TestStateSinceLastRun runs iface --state as cron would: the first run
// takes the baseline and says so; each next one reports exactly the
// traffic since the last, however the counters moved between: a counter
// reset, an interface made again (another index), a new interface, one
// gone, a reboot.
func TestStateSinceLastRun(t *testing.T) {
	s := newStateRig(t)
	s.cs = []counter{iface("eth0", 2, 1000, 500), iface("wlan0", 3, 70, 7)}
	code, out, errs := s.run("iface", "--json")
	if code != 0 || out != "" || !strings.Contains(errs, "no earlier run: took the baseline") || strings.Count(errs, "\n") != 1 {
		t.Fatalf("first run: exit %d, stdout %q, stderr %q; want 0, nothing, one line about the baseline", code, out, errs)
	}
	steps := []struct {
		what  string
		after time.Duration
		cs    []counter
		boot  string
		want  map[string][2]uint64
		note  string // in stderr
	}{
		{"traffic", 5 * time.Minute, []counter{iface("eth0", 2, 4000, 900), iface("wlan0", 3, 70, 7)},
			"boot-1", map[string][2]uint64{"eth0": {3000, 400}, "wlan0": {0, 0}}, ""},
		{"eth0's counters reset, wlan0 made again, usb0 new", 5 * time.Minute,
			[]counter{iface("eth0", 2, 100, 50), iface("wlan0", 9, 100, 9), iface("usb0", 10, 12, 1)},
			"boot-1", map[string][2]uint64{"eth0": {100, 50}, "wlan0": {100, 9}, "usb0": {12, 1}}, ""},
		{"usb0 gone", time.Hour, []counter{iface("eth0", 2, 300, 60), iface("wlan0", 9, 100, 9)},
			"boot-1", map[string][2]uint64{"eth0": {200, 10}, "wlan0": {0, 0}}, ""},
		{"a reboot", 2 * time.Hour, []counter{iface("eth0", 2, 5000, 6000), iface("wlan0", 3, 30, 3)},
			"boot-2", map[string][2]uint64{"eth0": {5000, 6000}, "wlan0": {30, 3}}, "booted since the last run"},
	}
	for _, st := range steps {
		s.now, s.cs, s.boot = s.now.Add(st.after), st.cs, st.boot
		code, out, errs := s.run("iface", "--json")
		if code != 0 || (st.note == "" && errs != "") || !strings.Contains(errs, st.note) {
			t.Fatalf("%s: exit %d, stderr %q", st.what, code, errs)
		}
		rows, intervals := ifaceRows(t, out)
		if len(rows) != len(st.want) {
			t.Errorf("%s: rows %v; want %v", st.what, rows, st.want)
		}
		for name, w := range st.want {
			if rows[name] != w {
				t.Errorf("%s: %s rx, tx %v; want %v", st.what, name, rows[name], w)
			}
		}
		wantInterval := st.after.Seconds()
		if st.note != "" {
			wantInterval = min(wantInterval, s.uptime.Seconds())
		}
		for _, iv := range intervals {
			if iv != wantInterval {
				t.Errorf("%s: interval %v; want %v, since the last run", st.what, iv, wantInterval)
			}
		}
	}
}

// TestStateTotal: total --state sums the edge interfaces since the last run.
func TestStateTotal(t *testing.T) {
	s := newStateRig(t)
	lo := counter{name: "lo", index: 1, loopback: true, traffic: traffic{rxBytes: 9999, txBytes: 9999}}
	s.cs = []counter{lo, iface("eth0", 2, 1000, 500), iface("eth1", 3, 10, 10)}
	if code, _, errs := s.run("total"); code != 0 {
		t.Fatalf("baseline: exit %d: %s", code, errs)
	}
	lo.rxBytes, lo.txBytes = 99999, 99999
	s.cs, s.now = []counter{lo, iface("eth0", 2, 3000, 600), iface("eth1", 3, 20, 30)}, s.now.Add(time.Minute)
	code, out, errs := s.run("total", "--json")
	var r record
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.RxBytes != 2010 || r.TxBytes != 120 || r.Interval != 60 {
		t.Errorf("exit %d, stdout %q, stderr %q; want a total of rx 2010, tx 120 over 60 s", code, out, errs)
	}
}

// TestStateRefusesBadFiles: a file that is not a netuse state file, of a
// later version, or empty is an error naming the file, never zero counters;
// the file is left as it was.
func TestStateRefusesBadFiles(t *testing.T) {
	for _, tc := range []struct{ name, content, want string }{
		{"garbage", "\x00\x01 not json", "is no netuse state file"},
		{"foreign JSON", `{"hello": "world"}`, `is no netuse state file (no format "netuse-state")`},
		{"later version", `{"format":"netuse-state","version":2,"taken":"2026-01-01T00:00:00Z","ifaces":{}}`, "is of version 2, which this netuse (version 1) does not read"},
		{"no counters", `{"format":"netuse-state","version":1}`, "has no counters"},
		{"cut short", `{"format":"netuse-state","version":1,"taken":"2026-01-`, "is no netuse state file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStateRig(t)
			s.cs = []counter{iface("eth0", 2, 1000, 500)}
			if err := os.WriteFile(s.path, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
			code, out, errs := s.run("iface")
			if code != 1 || out != "" || !strings.HasPrefix(errs, "netuse: --state \""+s.path+"\" ") || !strings.Contains(errs, tc.want) ||
				!strings.Contains(errs, "remove it to start again") || strings.Count(errs, "\n") != 1 {
				t.Errorf("exit %d, stdout %q, stderr %q; want 1, nothing, one line with %q", code, out, errs, tc.want)
			}
			if b, _ := os.ReadFile(s.path); string(b) != tc.content {
				t.Errorf("the file was changed to %q", b)
			}
			if _, err := os.Stat(s.path + ".lock"); err == nil {
				t.Errorf("a refused file left its lock %s.lock behind", s.path)
			}
		})
	}
}

// TestStateLocked: a run finds the file's lock held by another run (cron's
// runs overlapping), waits stateWait and gives up with a message of its
// own; once the lock is let go, a run goes through.
func TestStateLocked(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("runs of one --state file are not locked on " + runtime.GOOS)
	}
	s := newStateRig(t)
	s.cs = []counter{iface("eth0", 2, 1000, 500)}
	unlock, err := lockState(s.path+".lock", 0)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs := s.run("iface")
	if code != 1 || out != "" || !strings.Contains(errs, "another netuse run holds it") || !strings.Contains(errs, "did not finish within 200ms") {
		t.Errorf("locked: exit %d, stdout %q, stderr %q; want 1 and the lock named", code, out, errs)
	}
	if _, err := os.Stat(s.path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a run that did not get the lock wrote the file: %v", err)
	}
	unlock()
	if code, _, errs := s.run("iface"); code != 0 {
		t.Errorf("after the lock was let go: exit %d, %s", code, errs)
	}
}

// TestStateKeptWhenOutputFails: a run whose report cannot be written
// leaves the file as it was, so that the next run reports that traffic.
func TestStateKeptWhenOutputFails(t *testing.T) {
	s := newStateRig(t)
	s.cs = []counter{iface("eth0", 2, 1000, 500)}
	if code, _, errs := s.run("iface"); code != 0 {
		t.Fatalf("baseline: %s", errs)
	}
	before, _ := os.ReadFile(s.path)
	s.cs, s.now = []counter{iface("eth0", 2, 5000, 900)}, s.now.Add(time.Minute)
	a := &app{stdout: failWriter{}, stderr: &bytes.Buffer{}, clock: clock{now: func() time.Time { return s.now }},
		counters: func() ([]counter, error) { return s.cs, nil }, bootID: func() string { return s.boot },
		uptime: func() (time.Duration, bool) { return s.uptime, true }, stateWait: time.Second}
	if code := a.main([]string{"iface", "--state", s.path}); code != 1 {
		t.Errorf("exit %d with stdout failing; want 1", code)
	}
	if after, _ := os.ReadFile(s.path); !bytes.Equal(after, before) {
		t.Errorf("the file moved on though the report was not written")
	}
	code, out, _ := s.run("iface", "--json")
	if rows, _ := ifaceRows(t, out); code != 0 || rows["eth0"] != [2]uint64{4000, 400} {
		t.Errorf("next run: %v; want eth0's 4000 and 400 bytes since the baseline", rows)
	}
	// Written whole: nothing but the file and its lock in the directory.
	ents, _ := os.ReadDir(filepath.Dir(s.path))
	if len(ents) != 2 {
		t.Errorf("the directory holds %v; want the file and its lock", ents)
	}
}

// failWriter fails every write, as a stdout whose disk is full.
type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// stateSeries is a series of a metrics file: its name and device label.
type stateSeries struct{ metric, device string }

// ifaceMetrics are iface's counters, and how each reads a traffic.
var ifaceMetrics = map[string]func(traffic) uint64{
	"netuse_interface_receive_bytes_total":    func(t traffic) uint64 { return t.rxBytes },
	"netuse_interface_transmit_bytes_total":   func(t traffic) uint64 { return t.txBytes },
	"netuse_interface_receive_packets_total":  func(t traffic) uint64 { return t.rxPackets },
	"netuse_interface_transmit_packets_total": func(t traffic) uint64 { return t.txPackets },
}

// TestStateCumulative runs iface --state --json --textfile as cron would,
// through all that sets the kernel's counters back: a counter reset, an
// interface made again (another index), a reboot. Each row's total, in
// NDJSON and in the textfile, is the sum of all its intervals since the
// baseline, and no counter of the textfile goes down from one run to the
// next. An interface gone takes its totals with it (its series leave the
// file), and one that comes back counts from zero.
func TestStateCumulative(t *testing.T) {
	s := newStateRig(t)
	prom := filepath.Join(t.TempDir(), "netuse.prom")
	steps := []struct {
		what string
		boot string
		cs   []counter
	}{
		{"the baseline", "boot-1", []counter{iface("eth0", 2, 1000, 500), iface("wlan0", 3, 70, 7)}},
		{"traffic", "boot-1", []counter{iface("eth0", 2, 4000, 900), iface("wlan0", 3, 170, 17)}},
		{"eth0's counters reset", "boot-1", []counter{iface("eth0", 2, 100, 50), iface("wlan0", 3, 200, 20)}},
		{"wlan0 made again", "boot-1", []counter{iface("eth0", 2, 300, 80), iface("wlan0", 9, 40, 4)}},
		{"a reboot", "boot-2", []counter{iface("eth0", 2, 50, 5), iface("wlan0", 3, 10, 1)}},
		{"usb0 new", "boot-2", []counter{iface("eth0", 2, 60, 6), iface("wlan0", 3, 10, 1), iface("usb0", 10, 1200, 100)}},
		{"usb0 gone", "boot-2", []counter{iface("eth0", 2, 70, 7), iface("wlan0", 3, 10, 1)}},
		{"usb0 back", "boot-2", []counter{iface("eth0", 2, 80, 8), iface("wlan0", 3, 10, 1), iface("usb0", 11, 500, 300)}},
	}
	sums := map[string]traffic{}      // each interface's intervals, added up
	last := map[stateSeries]float64{} // the textfile's counters after the previous run
	for i, st := range steps {
		s.now, s.cs, s.boot = s.now.Add(5*time.Minute), st.cs, st.boot
		code, out, errs := s.run("iface", "--json", "--textfile", prom)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", st.what, code, errs)
		}
		if i == 0 {
			// The baseline: nothing on stdout, and every interface's
			// series at zero, so that they begin before the next window.
			text, err := os.ReadFile(prom)
			if err != nil {
				t.Fatalf("the baseline wrote no textfile: %v", err)
			}
			got := parseMetrics(t, text)
			for _, dev := range []string{"eth0", "wlan0"} {
				if v, ok := got["netuse_interface_receive_bytes_total"][dev]; !ok || v != 0 || out != "" {
					t.Errorf("the baseline: %s's netuse_interface_receive_bytes_total %v (there: %v), stdout %q; want 0 and nothing", dev, v, ok, out)
				}
			}
			continue
		}
		seen := map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var r record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("%s: %q: %v", st.what, line, err)
			}
			seen[r.Iface] = true
			sum := sums[r.Iface]
			sum.add(traffic{rxBytes: r.RxBytes, txBytes: r.TxBytes, rxPackets: r.RxPackets, txPackets: r.TxPackets})
			sums[r.Iface] = sum
			if r.RxTotal != sum.rxBytes || r.TxTotal != sum.txBytes {
				t.Errorf("%s: %s rx_total %d, tx_total %d; want %d and %d, the sums of its rx_bytes and tx_bytes", st.what, r.Iface, r.RxTotal, r.TxTotal, sum.rxBytes, sum.txBytes)
			}
		}
		for name := range sums {
			if !seen[name] {
				delete(sums, name) // gone: from zero if it comes back
			}
		}
		text, err := os.ReadFile(prom)
		if err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		got := parseMetrics(t, text)
		now := map[stateSeries]float64{}
		for metric, of := range ifaceMetrics {
			if len(got[metric]) != len(sums) {
				t.Errorf("%s: %s has %v; want a series for each of %v", st.what, metric, got[metric], sums)
			}
			for name, sum := range sums {
				v, want := got[metric][name], float64(of(sum))
				if v != want {
					t.Errorf("%s: %s{device=%q} %v; want %v, the sum of the runs' intervals", st.what, metric, name, v, want)
				}
				if before, ok := last[stateSeries{metric, name}]; ok && v < before {
					t.Errorf("%s: %s{device=%q} went down, from %v to %v", st.what, metric, name, before, v)
				}
				now[stateSeries{metric, name}] = v
			}
		}
		last = now
	}
	// By hand: eth0 3000+100+200+50+10+10+10 received, 400+50+30+5+1+1+1
	// sent; wlan0 100+30+40+10, 10+3+4+1; usb0 since it came back.
	for name, want := range map[string][2]uint64{"eth0": {3380, 488}, "wlan0": {180, 18}, "usb0": {500, 300}} {
		if got := sums[name]; got.rxBytes != want[0] || got.txBytes != want[1] {
			t.Errorf("after every run, %s: rx %d, tx %d; want %d and %d", name, got.rxBytes, got.txBytes, want[0], want[1])
		}
	}
}

// TestStateCumulativeTotal runs total --state --format prometheus
// --textfile as cron would: the edge counters, on stdout and in the file,
// are the sum of every run's interval and never go down, also when an
// edge interface goes away and takes its own totals with it, at a reboot,
// when an interface comes back with another index and when a counter is
// reset. Loopback and virtual interfaces are not in the edge.
func TestStateCumulativeTotal(t *testing.T) {
	s := newStateRig(t)
	prom := filepath.Join(t.TempDir(), "netuse.prom")
	lo := func(n uint64) counter {
		return counter{name: "lo", index: 1, loopback: true, traffic: traffic{rxBytes: n, txBytes: n}}
	}
	veth := func(n uint64) counter {
		return counter{name: "veth1", index: 4, virtual: true, traffic: traffic{rxBytes: n, txBytes: n}}
	}
	steps := []struct {
		what     string
		boot     string
		cs       []counter
		interval [2]uint64 // the edge's rx and tx bytes since the run before
	}{
		{"the baseline", "boot-1", []counter{lo(9999), veth(5000), iface("eth0", 2, 1000, 500), iface("eth1", 3, 10, 10)}, [2]uint64{}},
		{"traffic", "boot-1", []counter{lo(99999), veth(50000), iface("eth0", 2, 3000, 600), iface("eth1", 3, 20, 30)}, [2]uint64{2010, 120}},
		{"eth1 gone", "boot-1", []counter{lo(99999), veth(60000), iface("eth0", 2, 3500, 700)}, [2]uint64{500, 100}},
		{"a reboot", "boot-2", []counter{lo(10), veth(10), iface("eth0", 2, 100, 10)}, [2]uint64{100, 10}},
		{"eth1 back", "boot-2", []counter{lo(20), veth(20), iface("eth0", 2, 150, 20), iface("eth1", 7, 40, 4)}, [2]uint64{90, 14}},
		{"eth0's counters reset", "boot-2", []counter{lo(30), veth(30), iface("eth0", 2, 5, 5), iface("eth1", 7, 44, 4)}, [2]uint64{9, 5}},
	}
	var sum [2]uint64
	var last [2]float64
	for i, st := range steps {
		s.now, s.cs, s.boot = s.now.Add(5*time.Minute), st.cs, st.boot
		code, out, errs := s.run("total", "--format", "prometheus", "--textfile", prom)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", st.what, code, errs)
		}
		if i == 0 {
			continue
		}
		sum[0] += st.interval[0]
		sum[1] += st.interval[1]
		text, err := os.ReadFile(prom)
		if err != nil {
			t.Fatal(err)
		}
		if string(text) != out {
			t.Errorf("%s: the textfile holds\n%s\nstdout\n%s", st.what, text, out)
		}
		got := parseMetrics(t, []byte(out))
		rx, tx := got["netuse_edge_receive_bytes_total"][""], got["netuse_edge_transmit_bytes_total"][""]
		if rx != float64(sum[0]) || tx != float64(sum[1]) {
			t.Errorf("%s: edge rx %v, tx %v; want %d and %d, the sum of the runs' intervals", st.what, rx, tx, sum[0], sum[1])
		}
		if rx < last[0] || tx < last[1] {
			t.Errorf("%s: the edge counters went down, from %v to rx %v, tx %v", st.what, last, rx, tx)
		}
		last = [2]float64{rx, tx}
	}
	if sum != [2]uint64{2709, 249} {
		t.Errorf("the steps add up to %v; want 2709 and 249", sum)
	}
}

// TestStateSelections: one file serves total, total --iface eth1 and
// iface runs in turn. Each selection of total keeps its own edge sum,
// from the run before the first that used it, grown by every run of the
// file whatever its own selection; --iface's globs name it in any order,
// each once.
func TestStateSelections(t *testing.T) {
	s := newStateRig(t)
	runs := []struct {
		args       []string
		eth0, eth1 uint64 // rx bytes; tx is a tenth
		total      uint64 // the total record's rx_total
	}{
		{[]string{"total"}, 1000, 100, 0}, // the baseline
		{[]string{"total", "--iface", "eth1"}, 1500, 150, 50},
		{[]string{"iface"}, 1600, 160, 0},
		{[]string{"total"}, 2000, 200, 1000 + 100},
		{[]string{"total", "--iface", "eth1", "--iface", "eth1"}, 2100, 250, 150},
		{[]string{"total", "--iface", "eth*"}, 2200, 260, 110},
		{[]string{"total", "--iface", "eth*", "--iface", "eth1"}, 2300, 270, 110},
		{[]string{"total", "--iface", "eth1", "--iface", "eth*"}, 2400, 280, 220},
	}
	for i, r := range runs {
		s.now, s.cs = s.now.Add(time.Minute), []counter{iface("eth0", 2, r.eth0, r.eth0/10), iface("eth1", 3, r.eth1, r.eth1/10)}
		code, out, errs := s.run(append(r.args, "--json")...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", r.args, code, errs)
		}
		if i == 0 || r.args[0] != "total" {
			continue
		}
		var rec record
		if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.RxTotal != r.total || rec.TxTotal != r.total/10 {
			t.Errorf("%v: %q (%v); want rx_total %d, tx_total %d", r.args, out, err, r.total, r.total/10)
		}
	}
	st, err := loadState(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Edge) != 4 {
		t.Errorf("edge sums %+v; want 4: no globs, eth1, eth*, and eth* with eth1", st.Edge)
	}
}

// TestStateWithoutTotals reads a file of version 1 as netuse wrote it
// before it kept totals: its totals are zero at its last run, and count
// from there; iface's and total's alike.
func TestStateWithoutTotals(t *testing.T) {
	s := newStateRig(t)
	old := `{
	"format": "netuse-state",
	"version": 1,
	"boot_id": "boot-1",
	"taken": "2026-11-29T12:00:00Z",
	"ifaces": {
		"eth0": {"index": 2, "rx_bytes": 1000, "tx_bytes": 500, "rx_packets": 10, "tx_packets": 5,
		         "rx_errors": 0, "tx_errors": 0, "rx_drops": 0, "tx_drops": 0}
	}
}
`
	if err := os.WriteFile(s.path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	s.now, s.cs = epoch.Add(5*time.Minute), []counter{iface("eth0", 2, 4000, 900)}
	code, out, errs := s.run("iface", "--json")
	var r record
	if code != 0 || errs != "" || json.Unmarshal([]byte(out), &r) != nil || r.RxBytes != 3000 || r.TxBytes != 400 || r.RxTotal != 3000 || r.TxTotal != 400 {
		t.Fatalf("exit %d, stdout %q, stderr %q; want eth0's 3000 and 400 bytes, totals alike", code, out, errs)
	}
	st, err := loadState(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if !st.TotalsSince.Equal(epoch) || st.Ifaces["eth0"].Total != (stateTotal{3000, 400, 30, 4}) {
		t.Errorf("the file's totals since %v: %+v; want since %v, 3000 and 400 bytes, 30 and 4 packets", st.TotalsSince, st.Ifaces["eth0"].Total, epoch)
	}
	s.now, s.cs = s.now.Add(5*time.Minute), []counter{iface("eth0", 2, 5000, 1000)}
	code, out, _ = s.run("iface", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.RxTotal != 4000 || r.TxTotal != 500 {
		t.Errorf("next run: %q; want rx_total 4000, tx_total 500", out)
	}
	s.now, s.cs = s.now.Add(5*time.Minute), []counter{iface("eth0", 2, 5500, 1100)}
	code, out, _ = s.run("total", "--json")
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || r.RxTotal != 500 || r.TxTotal != 100 {
		t.Errorf("total's first run on the file: %q; want rx_total 500, tx_total 100, from the run before", out)
	}
}
