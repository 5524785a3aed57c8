package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestKeyDecoder(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []key
	}{
		{"q", []key{'q'}},
		{"sru", []key{'s', 'r', 'u'}},
		{"\x1b[A\x1b[B", []key{keyUp, keyDown}},
		{"\x1bOA\x1bOB", []key{keyUp, keyDown}}, // application cursor mode
		{"\x1b[5~\x1b[6~", []key{keyPgUp, keyPgDn}},
		{"\x1b[H\x1b[F\x1bOH\x1bOF", []key{keyHome, keyEnd, keyHome, keyEnd}},
		{"\x1b[1~\x1b[4~\x1b[7~\x1b[8~", []key{keyHome, keyEnd, keyHome, keyEnd}},
		{"\x1bq", []key{'q'}},        // Escape, then q
		{"\x1b\x1b[A", []key{keyUp}}, // Escape, then ↑
		{"\x1b[D\x1b[C", nil},        // ← and →: no key, and not the letters D, C
		{"\x1b[15~s", []key{'s'}},    // F5, then s
		{"\x1b[1;5Ar", []key{'r'}},   // Ctrl-↑, then r
		{"\x1bOPq", []key{'q'}},      // F1 (SS3 P), then q
		{"\x1b[" + strings.Repeat(";", 20) + "q", []key{';', ';', ';', ';', ';', ';', 'q'}}, // no end: dropped at maxSeq
	} {
		var d keyDecoder
		var got []key
		for i := range len(c.in) {
			if k, ok := d.feed(c.in[i]); ok {
				got = append(got, k)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("keys of %q: %v, want %v", c.in, got, c.want)
		}
	}
}

// tallTable renders an iface table of n interfaces, live with keys, on a
// terminal of cols x rows that the returned vterm shows.
func tallTable(t *testing.T, n, cols, rows int) (*renderer, *vterm) {
	t.Helper()
	tm := newTerm(cols, rows)
	r := newRenderer(termWriter{tm}, false, true, false, false)
	r.tty, r.keys = true, true
	r.termSize = func() (int, int, bool) { return cols, rows, true }
	var us []usage
	for i := range n {
		u := usage{name: fmt.Sprintf("eth%02d", i)}
		u.interval.rxBytes = 1000
		us = append(us, u)
	}
	if err := r.render(report{mode: modeIface, seq: 1, elapsed: time.Second, interval: time.Second, rows: us}, options{}); err != nil {
		t.Fatal(err)
	}
	return r, tm
}

// termWriter writes to a vterm.
type termWriter struct{ tm *vterm }

func (w termWriter) Write(p []byte) (int, error) { w.tm.write(string(p)); return len(p), nil }

// TestKeyScroll scrolls a table of 30 interfaces on a terminal of 10
// lines with the arrow, page, Home and End keys: each frame fits the
// screen, shows the rows from the one scrolled to, and says which rows it
// shows and how to see the others. Before, the rows past the screen could
// not be seen but with --top and --sort.
func TestKeyScroll(t *testing.T) {
	r, tm := tallTable(t, 30, 80, 10)
	// 10 lines: the header, the column names, 4 rows, (all), the line of
	// the rows not shown, the keys, and the cursor's.
	for _, step := range []struct {
		k     key
		first string // the first row shown
		more  string
	}{
		{0, "eth00", "… 26 more rows (1-4 of 30 shown)"},
		{keyDown, "eth01", "(2-5 of 30 shown)"},
		{keyDown, "eth02", "(3-6 of 30 shown)"},
		{keyPgDn, "eth06", "(7-10 of 30 shown)"},
		{keyUp, "eth05", "(6-9 of 30 shown)"},
		{keyPgUp, "eth01", "(2-5 of 30 shown)"},
		{keyPgUp, "eth00", "(1-4 of 30 shown)"},
		{keyUp, "eth00", "(1-4 of 30 shown)"},
		{keyEnd, "eth26", "(27-30 of 30 shown)"},
		{keyDown, "eth26", "(27-30 of 30 shown)"},
		{keyPgDn, "eth26", "(27-30 of 30 shown)"},
		{keyUp, "eth25", "(26-29 of 30 shown)"},
		{keyHome, "eth00", "(1-4 of 30 shown)"},
	} {
		if step.k != 0 {
			r.key(step.k)
		}
		screen := tm.screen()
		all := strings.Join(screen, "\n")
		for _, o := range tm.overflow {
			t.Errorf("key %#x: %s\n%s", int(step.k), o, all)
		}
		i := slices.IndexFunc(screen, func(l string) bool { return strings.HasPrefix(l, "IFACE") })
		if i < 0 || i+1 >= len(screen) || !strings.HasPrefix(screen[i+1], step.first+" ") {
			t.Errorf("key %#x: want %s first:\n%s", int(step.k), step.first, all)
		}
		if !strings.Contains(all, step.more) || !strings.Contains(all, "↑↓ PgUp PgDn Home End scroll") {
			t.Errorf("key %#x: no line %q that says how to scroll:\n%s", int(step.k), step.more, all)
		}
		if !strings.Contains(all, "(all)") {
			t.Errorf("key %#x: the (all) row is gone:\n%s", int(step.k), all)
		}
		if n := len(strings.Split(strings.TrimRight(all[strings.Index(all, "netuse iface"):], "\n"), "\n")); n > 10 {
			t.Errorf("key %#x: a frame of %d lines on 10:\n%s", int(step.k), n, all)
		}
	}
	// A table that fits says nothing of scrolling.
	_, tm = tallTable(t, 3, 120, 10)
	if all := strings.Join(tm.screen(), "\n"); strings.Contains(all, "scroll") || strings.Contains(all, "more rows") {
		t.Errorf("a table that fits offers to scroll:\n%s", all)
	}
}

// TestKeyHintErasedAtClose: once netuse stops reading keys, the last
// frame loses the line that names them (before, the table left on the
// screen offered keys that did nothing), as does total's line.
func TestKeyHintErasedAtClose(t *testing.T) {
	r, tm := tallTable(t, 30, 100, 12)
	r.key(keyDown)
	if !strings.Contains(strings.Join(tm.screen(), "\n"), "keys: q quit") {
		t.Fatalf("no keys' line while live:\n%s", strings.Join(tm.screen(), "\n"))
	}
	r.close()
	all := strings.Join(tm.screen(), "\n")
	if strings.Contains(all, "keys:") || strings.Contains(all, "scroll") {
		t.Errorf("the keys' line is left after the end:\n%s", all)
	}
	if !strings.Contains(all, "eth01") || !strings.Contains(all, "… 23 more rows (2-8 of 30 shown)") {
		t.Errorf("the last frame is not left as it was, less its keys:\n%s", all)
	}
	if len(tm.overflow) > 0 {
		t.Errorf("%s\n%s", tm.overflow, all)
	}

	tm = newTerm(100, 12)
	r = newRenderer(termWriter{tm}, false, true, false, false)
	r.tty, r.keys = true, true
	r.termSize = func() (int, int, bool) { return 100, 12, true }
	u := usage{name: "total"}
	u.interval.rxBytes = 2048
	for seq := 1; seq <= 2; seq++ {
		if err := r.render(report{mode: modeTotal, seq: seq, at: epoch, elapsed: time.Second, interval: time.Second, rows: []usage{u}}, options{}); err != nil {
			t.Fatal(err)
		}
	}
	r.close()
	screen := tm.screen()
	all = strings.Join(screen, "\n")
	if strings.Contains(all, "keys:") || !strings.HasPrefix(screen[0], "netuse total") || !strings.HasPrefix(screen[1], "TIME") || !strings.Contains(screen[2], "2.0 KiB/s") {
		t.Errorf("total after the end: want its header, column names and line, no keys' line:\n%s", all)
	}
}
