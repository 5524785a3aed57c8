package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// vterm is a terminal of cols x rows as far as netuse drives one: it
// prints, and understands \r, \n (as a terminal's ONLCR makes it), and
// the escape sequences render_table.go names. A character written past the
// last column is noted in overflow (a real terminal would wrap it and
// break the count of lines to go up); so is a move above the screen's
// top line (a frame taller than the screen).
type vterm struct {
	cols, rows int
	lines      [][]rune // the screen and what scrolled off it, top first
	x, y       int      // the cursor, y an index into lines
	overflow   []string
}

func newTerm(cols, rows int) *vterm { return &vterm{cols: cols, rows: rows, lines: [][]rune{nil}} }

var termEscape = regexp.MustCompile(`^\x1b\[([0-9;?]*)([A-Za-z])`)

func (t *vterm) write(s string) {
	for len(s) > 0 {
		if m := termEscape.FindStringSubmatch(s); m != nil {
			s = s[len(m[0]):]
			switch m[2] {
			case "A":
				n, _ := strconv.Atoi(m[1])
				if top := len(t.lines) - t.rows; t.y-n < top {
					t.overflow = append(t.overflow, fmt.Sprintf("up %d from line %d, above the screen's top", n, t.y))
				}
				t.y = max(t.y-n, 0)
			case "K":
				t.lines[t.y] = t.lines[t.y][:min(t.x, len(t.lines[t.y]))]
			case "J":
				t.lines[t.y] = t.lines[t.y][:min(t.x, len(t.lines[t.y]))]
				t.lines = t.lines[:t.y+1]
			}
			continue
		}
		c, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		switch c {
		case '\r':
			t.x = 0
		case '\n':
			t.x = 0
			t.y++
			if t.y == len(t.lines) {
				t.lines = append(t.lines, nil)
			}
		default:
			if t.x >= t.cols {
				t.overflow = append(t.overflow, fmt.Sprintf("line %q goes on with %q past column %d", string(t.lines[t.y]), c, t.cols))
			}
			l := t.lines[t.y]
			for len(l) <= t.x {
				l = append(l, ' ')
			}
			l[t.x] = c
			t.lines[t.y] = l
			t.x++
		}
	}
}

// screen returns the lines on the screen, trailing spaces trimmed.
func (t *vterm) screen() []string {
	var out []string
	for _, l := range t.lines[max(len(t.lines)-t.rows, 0):] {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	return out
}

// tableColumns are the column names a table's head may hold.
var tableColumns = []string{"PROTO", "LOCAL", "REMOTE", "STATE", "PID", "USER", "PROGRAM", "CONTAINER", "NETNS",
	"RX/s", "TX/s", "RX total", "TX total"}

// column is a column of a table's head: its name and where its name
// starts and ends, in characters.
type column struct {
	name       string
	start, end int
	number     bool // right-aligned
}

// parseHead finds the columns of a table's head line.
func parseHead(line string) []column {
	var cols []column
	r := []rune(line)
	for _, name := range tableColumns {
		for i := 0; i+len(name) <= len(r); i++ {
			if string(r[i:i+len(name)]) == name && (i == 0 || r[i-1] == ' ') && (i+len(name) == len(r) || r[i+len(name)] == ' ') {
				cols = append(cols, column{name: name, start: i, end: i + len(name), number: strings.HasPrefix(name, "RX") || strings.HasPrefix(name, "TX")})
				break
			}
		}
	}
	slices.SortFunc(cols, func(a, b column) int { return a.start - b.start })
	return cols
}

// checkHead parses a table's head line, and fails the test if it holds
// anything but whole column names (a name cut by the screen's edge).
func checkHead(t *testing.T, head, screen string) []column {
	t.Helper()
	cols := parseHead(head)
	rest := []rune(head)
	for _, c := range cols {
		copy(rest[c.start:c.end], []rune(strings.Repeat(" ", c.end-c.start)))
	}
	if strings.TrimSpace(string(rest)) != "" {
		t.Errorf("column names cut: %q\n%s", head, screen)
	}
	return cols
}

// cells splits a row under head's columns: a text cell starts where its
// column's name does, a number ends where its column's name does (a
// number is two words: "29.3 KiB/s").
func cells(head []column, line string) map[string]string {
	r := []rune(line)
	at := func(i int) int { return min(i, len(r)) }
	out := map[string]string{}
	for i, c := range head {
		switch {
		case c.number:
			from := 0
			if i > 0 {
				from = head[i-1].end
			}
			f := strings.Fields(string(r[at(from):at(c.end)]))
			out[c.name] = strings.Join(f[max(len(f)-2, 0):], " ")
		case i+1 < len(head) && head[i+1].number:
			f := strings.Fields(string(r[at(c.start):at(head[i+1].end)]))
			out[c.name] = strings.Join(f[:max(len(f)-2, 0)], " ")
		case i+1 < len(head):
			out[c.name] = strings.TrimSpace(string(r[at(c.start):at(head[i+1].start)]))
		default:
			out[c.name] = strings.TrimSpace(string(r[at(c.start):]))
		}
	}
	return out
}

// tableRows returns a table's head and rows from lines: the rows follow
// the head up to a blank line, a "…" line or the keys' line.
func tableRows(lines []string) (head string, rows []string) {
	i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "RX/s") })
	if i < 0 {
		return "", nil
	}
	for _, l := range lines[i+1:] {
		if l == "" || strings.HasPrefix(l, "…") || strings.HasPrefix(l, "keys:") {
			break
		}
		rows = append(rows, l)
	}
	return lines[i], rows
}

// TestNarrowTable draws the capture scenario's proc and conn tables, live,
// on terminals of 80x24 and 60x15: every line fits the width, PID,
// PROGRAM and the rates are shown (with --by, the group's columns and the
// rates), and each value is the one of the full table, or its start
// marked with "…" where its column is narrower. Before, conn at 80
// columns showed `PROGR` and no rates, at 60 its state cut (`TIME_WA`),
// and proc at 80 its container cut (`net:[402653`), by the screen's edge.
func TestNarrowTable(t *testing.T) {
	const name = "mixed"
	frames := loadScenario(t, name).readFrames(t, filepath.Join("testdata", "capture", name+".pcapng"))
	for _, args := range []string{"proc", "conn", "proc --units bits", "conn --units bits --si", "conn --si",
		"proc --by program", "proc --by user,program", "proc --by container", "conn --by remote", "conn --by container,user --units bits"} {
		argv := append(strings.Fields(args), "--count", "1", "--owners", "proc")
		wide := strings.Split(string(loadScenario(t, name).run(t, frames, argv...)), "\n")
		wideHead, wideRows := tableRows(wide)
		wideCols := parseHead(wideHead)
		want := []string{"PID", "PROGRAM", "RX/s", "TX/s"}
		if i := slices.Index(argv, "--by"); i >= 0 {
			want = []string{"RX/s", "TX/s"}
			for _, k := range strings.Split(argv[i+1], ",") {
				want = append(want, groupColumn[k])
			}
		}
		for _, size := range [][2]int{{80, 24}, {60, 15}, {120, 30}} {
			t.Run(fmt.Sprintf("%s/%dx%d", strings.ReplaceAll(args, " ", "_"), size[0], size[1]), func(t *testing.T) {
				out := loadScenario(t, name).runWith(t, frames, func(a *app) {
					a.tty = true
					a.termSize = func() (int, int, bool) { return size[0], size[1], true }
				}, argv...)
				tm := newTerm(size[0], size[1])
				tm.write(string(out))
				screen := strings.Join(tm.screen(), "\n")
				for _, o := range tm.overflow {
					t.Errorf("%s\nscreen:\n%s", o, screen)
				}
				head, rows := tableRows(tm.screen())
				cols := checkHead(t, head, screen)
				for _, w := range want {
					if !slices.ContainsFunc(cols, func(c column) bool { return c.name == w }) {
						t.Errorf("no %s column:\n%s", w, screen)
					}
				}
				if len(rows) == 0 || len(rows) > len(wideRows) {
					t.Fatalf("%d rows of %d:\n%s", len(rows), len(wideRows), screen)
				}
				for i, row := range rows {
					got, full := cells(cols, row), cells(wideCols, wideRows[i])
					for _, c := range cols {
						g, f := got[c.name], full[c.name]
						if g == f {
							continue
						}
						if short, ok := strings.CutSuffix(g, "…"); !ok || !strings.HasPrefix(f, short) {
							t.Errorf("row %d, %s: %q, want %q or its start and \"…\"\n%s", i+1, c.name, g, f, screen)
						}
					}
				}
			})
		}
	}
}

// TestNarrowNumbers: in every unit, a rate or a volume is shorter than its
// column, so that a space parts it from the column before (before,
// "1000.0 KiB/s" filled its column of 12 and ran one character past it,
// over the screen's edge when the line was fitted to it).
func TestNarrowNumbers(t *testing.T) {
	for _, u := range []struct{ bits, si bool }{{false, false}, {false, true}, {true, false}, {true, true}} {
		un := units{bits: u.bits, si: u.si}
		for _, base := range []float64{1000, 1024} {
			for v, k := 1.0, 0; k < 5; v, k = v*base, k+1 { // up to TiB: PiB, the last unit, has no end
				for _, x := range []float64{v * 999.96, v * 1023.96, v * 1000.4, v * 999.94} {
					if rate := un.rateSize(x / 8); u.bits && utf8.RuneCountInString(rate) >= un.width("RX/s") {
						t.Errorf("bits %v si %v: %q fills RX/s's %d columns", u.bits, u.si, rate, un.width("RX/s"))
					}
					if rate := un.rateSize(x); !u.bits && utf8.RuneCountInString(rate) >= un.width("RX/s") {
						t.Errorf("si %v: %q fills RX/s's %d columns", u.si, rate, un.width("RX/s"))
					}
					if size := un.size(x, false); utf8.RuneCountInString(size) >= un.width("RX total") {
						t.Errorf("si %v: %q fills RX total's %d columns", u.si, size, un.width("RX total"))
					}
				}
			}
		}
	}
}

// TestNarrowTotals: at 80 columns, where the rates leave no room for the
// totals too, the totals view (the t key) and the summary show the totals
// in place of what else there was: their rows are sorted by them, and the
// summary is the run's totals (before, both showed only the rates).
func TestNarrowTotals(t *testing.T) {
	const name = "mixed"
	frames := loadScenario(t, name).readFrames(t, filepath.Join("testdata", "capture", name+".pcapng"))
	for _, mode := range []string{"proc", "conn"} {
		out := loadScenario(t, name).runWith(t, frames, func(a *app) {
			a.tty = true
			a.termSize = func() (int, int, bool) { return 80, 24, true }
		}, mode, "--count", "2", "--owners", "proc")
		tm := newTerm(80, 24)
		tm.write(string(out))
		screen := tm.screen()
		i := slices.IndexFunc(screen, func(l string) bool { return strings.HasPrefix(l, "netuse "+mode+" summary") })
		if i < 0 {
			t.Fatalf("%s: no summary:\n%s", mode, strings.Join(screen, "\n"))
		}
		head, rows := tableRows(screen[i:])
		if cols := parseHead(head); len(rows) == 0 || !slices.ContainsFunc(cols, func(c column) bool { return c.name == "RX total" }) ||
			!slices.ContainsFunc(cols, func(c column) bool { return c.name == "TX total" }) {
			t.Errorf("%s: the summary at 80 columns has no totals:\n%s", mode, strings.Join(screen[i:], "\n"))
		}
		for _, o := range tm.overflow {
			t.Errorf("%s: %s", mode, o)
		}
	}

	tm := newTerm(80, 24)
	r := newRenderer(termWriter{tm}, false, true, false, false)
	r.tty, r.keys = true, true
	r.termSize = func() (int, int, bool) { return 80, 24, true }
	u := usage{name: "curl", proc: &process{pid: 4242, user: "alice", name: "curl"}}
	u.interval.rxBytes, u.total.rxBytes = 300_000, 900_000
	if err := r.render(report{mode: modeProc, seq: 1, elapsed: time.Second, rows: []usage{u}, capture: &captured{}}, options{}); err != nil {
		t.Fatal(err)
	}
	r.key('t')
	screen := tm.screen()
	head, _ := tableRows(screen)
	if !strings.Contains(head, "RX total") || !strings.Contains(strings.Join(screen, "\n"), "878.9 KiB") {
		t.Errorf("the totals view at 80 columns shows no totals:\n%s", strings.Join(screen, "\n"))
	}
}
