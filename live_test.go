package main

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestPartialInterval interrupts a run of -i 10s after 3 s: before, those
// 3 s were thrown away with status 0 and no output. Now they are reported,
// marked partial, and the run's summary follows.
func TestPartialInterval(t *testing.T) {
	fc := loadCounters(t, "basic")
	a, stdout, stderr := testApp(fc, false)
	ctx, cancel := context.WithCancel(context.Background())
	sleeps := 0
	a.clock.sleep = func(ctx context.Context, d time.Duration) error {
		if sleeps++; sleeps == 2 {
			cancel() // Ctrl-C 1.5 s into the second interval (the counters' third read is at 2.5 s)
			return ctx.Err()
		}
		return nil
	}
	if err := a.run(ctx, []string{"iface", "--json", "-i", "10s"}); err != nil {
		t.Fatalf("run: %v (stderr %q)", err, stderr)
	}
	var types []string
	var partial []bool
	for line := range bytes.Lines(stdout.Bytes()) {
		var r struct {
			Type     string  `json:"type"`
			Seq      int     `json:"seq"`
			Partial  bool    `json:"partial"`
			Interval float64 `json:"interval"`
			Iface    string  `json:"iface"`
			RxBytes  uint64  `json:"rx_bytes"`
		}
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("%v: %q", err, line)
		}
		types = append(types, r.Type)
		partial = append(partial, r.Partial)
		if r.Type == "iface" && r.Seq == 2 && (!r.Partial || r.Interval != 1.5) {
			t.Errorf("the interrupted interval: %q; want partial, 1.5 s", line)
		}
		if r.Type == "summary" && r.Iface == "eth0" && r.RxBytes != 5250000-1000000 {
			t.Errorf("summary of eth0: rx %d, want %d (both intervals)", r.RxBytes, 5250000-1000000)
		}
	}
	if got := strings.Join(types, ","); got != "iface,iface,iface,iface,summary,summary" {
		t.Errorf("records %s, want two intervals of two interfaces (the second partial), then a summary per interface", got)
	}
	if partial[0] || !partial[2] {
		t.Errorf("partial flags %v: only the second interval's records are partial", partial)
	}
}

// TestNoSummaryForOneInterval: a one-shot (cron's --count 1) is its own
// summary: nothing is added to its records.
func TestNoSummaryForOneInterval(t *testing.T) {
	a, stdout, _ := testApp(loadCounters(t, "basic"), false)
	if code := a.main([]string{"iface", "--json", "-c", "1"}); code != 0 || bytes.Contains(stdout.Bytes(), []byte(`"summary"`)) {
		t.Errorf("exit %d, output %q; want 0 and no summary", code, stdout)
	}
}

// TestDumbTerminal: TERM=dumb moves no cursor, hides none and clears
// nothing, though stdout is a terminal.
func TestDumbTerminal(t *testing.T) {
	t.Setenv("TERM", "dumb")
	for _, args := range []string{"iface -c 2", "total -c 2"} {
		a, stdout, _ := testApp(loadCounters(t, "basic"), true)
		if code := a.main(strings.Fields(args)); code != 0 {
			t.Fatalf("%s: exit %d", args, code)
		}
		if bytes.Contains(stdout.Bytes(), []byte("\x1b")) || bytes.Contains(stdout.Bytes(), []byte("\r")) {
			t.Errorf("%s with TERM=dumb wrote escapes or carriage returns: %q", args, stdout)
		}
	}
}

// TestStableWidths renders proc rows whose user and program names grow
// between frames: no column moves (before, PID USER PROGRAM widened when a
// longer name came), and names past their width are cut with "…".
func TestStableWidths(t *testing.T) {
	r := newRenderer(&bytes.Buffer{}, false, false, false, false)
	var out bytes.Buffer
	r.w = &out
	frame := func(user, name string) {
		u := usage{name: name, proc: &process{pid: 4242, user: user, name: name}}
		u.interval.rxBytes = 1000
		f := report{mode: modeProc, seq: 1, elapsed: time.Second, rows: []usage{u}, capture: &captured{}}
		if err := r.render(f, options{}); err != nil {
			t.Fatal(err)
		}
	}
	frame("bob", "sh")
	frame("a-very-long-user-name", "a-program-with-a-very-long-name")
	var heads, rows []string
	for _, l := range strings.Split(out.String(), "\n") {
		switch {
		case strings.HasPrefix(l, "PID"):
			heads = append(heads, l)
		case strings.HasPrefix(l, "4242"):
			rows = append(rows, l)
		}
	}
	if len(heads) != 2 || heads[0] != heads[1] {
		t.Fatalf("column names moved between frames:\n%s", strings.Join(heads, "\n"))
	}
	// Numbers are right-aligned: each row's first rate ends where the
	// column's name does.
	end := utf8.RuneCountInString(heads[0][:strings.Index(heads[0], "RX/s")+len("RX/s")])
	for _, row := range rows {
		if i := strings.Index(row, "/s"); utf8.RuneCountInString(row[:i+2]) != end {
			t.Errorf("a row's columns moved:\n%s\n%s", heads[0], row)
		}
	}
	if !strings.Contains(rows[1], "a-very-long…") || !strings.Contains(rows[1], "a-program-with-a-ve…") {
		t.Errorf("long names not cut with …: %q", rows[1])
	}
}

// TestSmallTerminal draws a table of 6 interfaces on a terminal of 60
// columns and 6 rows: every line fits the width (before, the header was
// cut mid-word), and a line says how many rows are not shown (before,
// they were cut with no word).
func TestSmallTerminal(t *testing.T) {
	fc := loadCounters(t, "many")
	a, stdout, _ := testApp(fc, true)
	a.termSize = func() (int, int, bool) { return 60, 6, true }
	if code := a.main([]string{"iface", "-c", "1"}); code != 0 {
		t.Fatal("exit", code)
	}
	plain := escapes.ReplaceAllString(stdout.String(), "")
	var lines []string
	for _, l := range strings.Split(plain, "\n") {
		if i := strings.LastIndex(l, "\r"); i >= 0 {
			l = l[i+1:] // a carriage return draws over what came before it
		}
		lines = append(lines, l)
		if n := utf8.RuneCountInString(l); n > 60 {
			t.Errorf("a line of %d characters on a terminal of 60: %q", n, l)
		}
	}
	if !strings.Contains(plain, "more rows") {
		t.Errorf("rows were cut without a word:\n%s", plain)
	}
	if n := len(strings.Split(strings.Split(plain, "netuse iface summary")[0], "\n")); n > 6 {
		t.Errorf("the live frame has %d lines on a terminal of 6", n)
	}
}

// TestSmallTerminalProc: on 60 columns proc's capture line keeps the
// kernel's drops (before, it was cut mid-word after "credited"), and rows
// lose USER rather than be cut inside a number.
func TestSmallTerminalProc(t *testing.T) {
	var out bytes.Buffer
	r := newRenderer(&out, false, true, false, false)
	r.tty = true
	r.termSize = func() (int, int, bool) { return 60, 12, true }
	u := usage{name: "curl", proc: &process{pid: 4242, user: "alice", name: "curl"}}
	u.interval.rxBytes = 300_000
	c := &captured{ifaces: []string{"eth0"}, drops: 7, byIface: map[string]traffic{"eth0": {rxBytes: 300_000, rxPackets: 200}}}
	c.rxBytes = 300_000
	if err := r.render(report{mode: modeProc, seq: 1, elapsed: time.Second, rows: []usage{u}, capture: c}, options{}); err != nil {
		t.Fatal(err)
	}
	plain := escapes.ReplaceAllString(out.String(), "")
	if !strings.Contains(plain, "kernel drops 7") {
		t.Errorf("the capture line lost the drops on 60 columns:\n%s", plain)
	}
	for _, l := range strings.Split(plain, "\n") {
		if i := strings.LastIndex(l, "\r"); i >= 0 {
			l = l[i+1:]
		}
		if n := utf8.RuneCountInString(l); n > 60 {
			t.Errorf("a line of %d characters on 60 columns: %q", n, l)
		}
		if strings.HasPrefix(l, "4242") && !strings.HasSuffix(strings.TrimSpace(l), "B/s") {
			t.Errorf("a row cut inside its numbers: %q", l)
		}
	}
}

var escapes = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
