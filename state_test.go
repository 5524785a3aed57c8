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
