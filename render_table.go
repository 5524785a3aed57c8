package main

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The table: a report as aligned columns, redrawn in place on a terminal
// (live), or off it, and with --no-clear, a block of its own after
// another. Its columns are render_columns.go's, its units
// render_units.go's.

// Escape sequences (ECMA-48), written only to a terminal.
const (
	escHideCursor = "\x1b[?25l"
	escShowCursor = "\x1b[?25h"
	escClearLine  = "\x1b[K" // erase from the cursor to the end of the line
	escClearDown  = "\x1b[J" // erase from the cursor to the end of the screen
	escUpFmt      = "\x1b[%dA"
)

// table is the sink of tables, and what it keeps from one report to the
// next: what is on the screen, the columns' widths, the scroll.
type table struct {
	live     bool                             // redrawn in place on a terminal
	tty      bool                             // on a terminal, live or not
	termSize func() (cols, rows int, ok bool) // the terminal's size, or ok false
	units    units                            // the u key changes them
	keys     bool                             // keys are read: a hint line names them

	drawn     int            // live: lines the previous report left on the screen
	onScreen  bool           // live: something is drawn that the next report goes over
	headed    bool           // live total: the lines above the total line are written
	hinted    bool           // live total: the hint line is above the column names
	staleHead bool           // total: the header written once is out of date (units changed)
	scroll    int            // live: the row at the top of the table, from 0; the arrow and page keys move it
	page      int            // live: the rows the last report showed, what PgUp and PgDn move by
	widths    map[string]int // the growing columns' widths so far (grow)
}

// first is how many of a report's first rows the table shows: --top's,
// or on a live terminal those that fit, from the first scrolled to.
func (t *table) first(top int) int {
	if t.live && t.termSize != nil {
		if _, rows, sized := t.termSize(); sized && (top == 0 || t.scroll+rows < top) {
			return t.scroll + rows
		}
	}
	return top
}

// waiting shows, on a terminal, when the first report comes (at first),
// so that a long interval does not leave a blank screen; a live table's
// first report is drawn over it.
func (t *table) waiting(b *bytes.Buffer, m mode, first time.Time) {
	if !t.tty {
		return
	}
	cols, _, sized := 0, 0, false
	if t.termSize != nil {
		cols, _, sized = t.termSize()
	}
	line := clipIf(fmt.Sprintf("netuse %s  measuring the first interval, until %s", m, first.Format(timeLayout)), cols, sized)
	if !t.live {
		// --no-clear or TERM=dumb: a line of its own, above the blocks.
		b.WriteString(line + "\n\n")
		return
	}
	b.WriteString(escHideCursor + "\r" + escClearLine + line)
	t.onScreen, t.drawn = true, 0
}

// write writes rep: live, over the report before it; the run's summary
// as a plain block below the last.
func (t *table) write(b *bytes.Buffer, rep report, v rowView) {
	if rep.summary && t.live {
		t.live = false
		defer func() { t.live = true }()
	}
	rep = v.arrange(rep, t.first(v.top))
	if t.live && rep.mode == modeTotal {
		t.writeTotalLine(b, rep, v.order)
		return
	}
	t.writeTable(b, rep, v.order)
}

// close leaves the terminal as it was found: cursor shown, on a new line.
// No key is read any more: the last report again first (redraw), without
// the line that names them.
func (t *table) close(b *bytes.Buffer, redraw func()) {
	if !t.live || !t.onScreen {
		return
	}
	if t.keys && redraw != nil {
		t.keys, t.staleHead = false, true
		redraw()
	}
	b.WriteString("\n" + escShowCursor)
}

// key applies a key of the table's (u, and those that scroll), and
// reports whether it was one.
func (t *table) key(k key) bool {
	switch k {
	case 'u', 'U':
		t.units, t.staleHead = t.units.next(), true
	// The table's redraw brings scroll back above its last screen of rows.
	case keyUp:
		t.scroll = max(t.scroll-1, 0)
	case keyDown:
		t.scroll++
	case keyPgUp:
		t.scroll = max(t.scroll-max(t.page, 1), 0)
	case keyPgDn:
		t.scroll += max(t.page, 1)
	case keyHome:
		t.scroll = 0
	case keyEnd:
		t.scroll = maxScroll
	default:
		return false
	}
	return true
}

// keyHint is the line under a live table that names the keys; with
// scroll, rows are hidden and the hint names the keys that scroll too,
// last (the line above it names them as well).
func (t *table) keyHint(m mode, ord order, cols int, scroll bool) string {
	view := "rates"
	if ord.totals {
		view = "totals"
	}
	reversed := ""
	if ord.reverse {
		reversed = ", reversed"
	}
	if m == modeTotal {
		return fitParts([]string{"keys: q quit", "u units"}, cols) // one row: nothing to sort
	}
	parts := []string{"keys: q quit", "s sort (" + ord.column + reversed + ")", "r reverse", "t totals/rates (" + view + ")", "u units"}
	if scroll {
		parts = append(parts, "↑↓ PgUp PgDn scroll")
	}
	return fitParts(parts, cols)
}

// header describes the report: what, when (with the zone), over how long,
// in which units. Its parts are dropped from the right, least needed
// first, where a terminal is too narrow for all of them.
func (t *table) header(rep report, cols int) string {
	unit, base := t.units.names()
	parts := []string{"netuse " + rep.mode.String(), rep.at.Format(timeLayout),
		fmt.Sprintf("interval %s (measured %.3fs)", rep.interval, rep.elapsed.Seconds())}
	switch {
	case rep.summary:
		parts[0] += " summary"
		parts[2] = fmt.Sprintf("ran %.3fs, %d intervals; rates are averages", rep.elapsed.Seconds(), rep.seq) // seq >= 2
	case rep.partial:
		parts[2] = fmt.Sprintf("interval %s (interrupted after %.3fs)", rep.interval, rep.elapsed.Seconds())
	case !rep.since.IsZero():
		parts[2] = fmt.Sprintf("since the previous run at %s (%.3fs)", rep.since.Format(timeLayout), rep.elapsed.Seconds())
		if !rep.totalsSince.IsZero() {
			parts[2] += ", totals since " + rep.totalsSince.Format(timeLayout)
		}
	}
	if t.live && rep.mode == modeTotal {
		// The total line is redrawn below a header written once: the time
		// is on the line.
		parts = []string{"netuse total", "interval " + rep.interval.String(), "times " + rep.at.Format("MST")}
	}
	if rep.mode == modeTotal {
		parts = append(parts, "ifaces "+visible(strings.Join(rep.ifaces, ","), 0))
	}
	parts = append(parts, "units "+unit+", "+base)
	return fitParts(parts, cols)
}

// timeLayout is the tables' time: local, with its zone, as sar and date
// print it (NDJSON's is UTC, RFC 3339).
const timeLayout = "2006-01-02 15:04:05 MST"

// fitParts joins parts with two spaces, dropping whole parts from the end
// while the line is wider than cols (0: no limit); the first always stays.
func fitParts(parts []string, cols int) string {
	for n := len(parts); n > 0; n-- {
		line := strings.Join(parts[:n], "  ")
		if cols <= 0 || utf8.RuneCountInString(line) <= cols || n == 1 {
			return line
		}
	}
	return ""
}

// writeTable writes a report as an aligned table: on a terminal over the
// previous one, elsewhere as a block of its own followed by a blank line.
func (t *table) writeTable(b *bytes.Buffer, rep report, ord order) {
	cols, rows, sized := 0, 0, false
	if t.tty && t.termSize != nil {
		cols, rows, sized = t.termSize()
	}
	room := rows - 1 // the last line stays free: the cursor rests on it
	if t.keys {
		room--
	}
	drawn := rep.rows
	if t.live && sized {
		drawn = t.window(rep, room)
	}
	lines := make([]string, 0, len(drawn)+5)
	lines = append(lines, t.header(rep, cols))
	if rep.capture != nil {
		lines = append(lines, t.captureLine(rep, cols))
	}
	grid := t.columnLines(rep, drawn, ord.totals || rep.summary, cols)
	lines = append(lines, grid[0])
	if len(rep.rows) == 0 && rep.filter != "" {
		lines = append(lines, "(no row matches "+visible(rep.filter, 0)+")")
	}
	lines = append(lines, grid[1:]...)
	if !t.live {
		if t.tty && rep.partial {
			b.WriteByte('\n') // past the ^C the terminal echoed
		}
		for _, l := range lines {
			b.WriteString(clipIf(l, cols, sized))
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
		return
	}
	hidden := len(rep.rows) - len(drawn)
	if sized && len(lines) > room {
		// A screen too short even for one row: the lines that fit.
		hidden += len(lines) - max(room-1, 1)
		lines = lines[:max(room-1, 1)]
	}
	if sized && hidden > 0 {
		lines = append(lines, t.moreRows(hidden, len(drawn), len(rep.rows), cols))
	}
	if t.keys {
		lines = append(lines, t.keyHint(rep.mode, ord, cols, sized && hidden > 0))
	}
	t.redraw(b, lines, cols, sized)
}

// window returns the rows of rep a live table of room lines shows: as many
// as fit below the header lines, from the one scrolled to, which it keeps
// between the first row and the last screen of rows.
func (t *table) window(rep report, room int) []usage {
	fit := room - 2 // the header and the column names
	if rep.capture != nil {
		fit--
	}
	if rep.mode == modeIface && len(rep.rows) > 1 {
		fit-- // (all)
	}
	if len(rep.rows) > fit {
		fit-- // the line that says what is not shown
	}
	fit = max(fit, 1)
	t.scroll = max(min(t.scroll, len(rep.rows)-fit), 0)
	drawn := rep.rows[t.scroll:min(t.scroll+fit, len(rep.rows))]
	t.page = len(drawn)
	return drawn
}

// moreRows is the line under a live table that has more rows than the
// screen: how many are not shown, which are, and how to see the others.
func (t *table) moreRows(hidden, shown, all, cols int) string {
	if !t.keys && t.scroll == 0 {
		return fmt.Sprintf("… %d more rows (a taller terminal, or --top, shows the first)", hidden)
	}
	more := fmt.Sprintf("… %d more rows (%d-%d of %d shown)", hidden, t.scroll+1, t.scroll+shown, all)
	if t.keys {
		more = fitParts([]string{more, "↑↓ PgUp PgDn Home End scroll"}, cols)
	}
	return more
}

// redraw writes lines over the previous report on a terminal, each cut to
// its width: a wrapped line would break the count of lines to go up.
func (t *table) redraw(b *bytes.Buffer, lines []string, cols int, sized bool) {
	if t.onScreen {
		if t.drawn > 0 {
			fmt.Fprintf(b, escUpFmt, t.drawn)
		}
		b.WriteString("\r" + escClearDown)
	} else {
		// The cursor is where the shell left it, after anything typed
		// since (a ^C): start the line afresh.
		b.WriteString(escHideCursor + "\r" + escClearLine)
	}
	for i, l := range lines {
		if sized {
			l = clip(l, cols)
		}
		b.WriteString(l)
		if i < len(lines)-1 {
			b.WriteByte('\n')
		}
	}
	t.drawn = len(lines) - 1
	t.onScreen = true
}

// writeTotalLine redraws the total mode's single line with \r, the time
// of the interval first; the header and the column names are written
// once, above it.
func (t *table) writeTotalLine(b *bytes.Buffer, rep report, ord order) {
	cols, _, sized := t.termSize()
	names, line := t.totalColumns(rep, ord.totals, cols)
	if t.headed && t.staleHead {
		// The units changed: write the lines above the total line again.
		up := 1
		if t.hinted {
			up++
		}
		fmt.Fprintf(b, "\r"+escUpFmt+escClearDown, up+1)
	}
	if !t.headed || t.staleHead {
		if !t.headed {
			b.WriteString(escHideCursor + "\r" + escClearLine) // as in redraw, and over the waiting line
		}
		b.WriteString(clipIf(t.header(rep, cols), cols, sized) + "\n")
		if t.hinted = t.keys; t.keys {
			b.WriteString(clipIf(t.keyHint(rep.mode, ord, cols, false), cols, sized) + "\n")
		}
		b.WriteString(clipIf(names, cols, sized) + "\n")
		t.staleHead, t.headed = false, true
	}
	t.onScreen = true
	b.WriteString("\r" + clipIf(line, cols, sized) + escClearLine)
}

// captureLine sums up proc mode's capture: the packets and bytes on the
// wire, as the interfaces' own counters (and iface mode) count them; the
// bytes credited to the ends of those packets, which count a packet
// between two processes of this machine twice; the share of those that
// went to a process; drops and flows.
func (t *table) captureLine(rep report, cols int) string {
	c := rep.capture
	_, share := rep.attribution()
	var wire traffic
	for _, ifc := range c.byIface {
		wire.add(ifc)
	}
	size := t.units.size(float64(wire.rxBytes+wire.txBytes), false)
	ifaces := visible(strings.Join(c.ifaces, ","), 0)
	// Rounded down, so that 100.0% means all of it.
	pct := fmt.Sprintf("%.1f%% to processes", math.Floor(share*1000)/10)
	drops, flows := fmt.Sprintf("kernel drops %d", c.drops), fmt.Sprintf("flows %d", c.flows)
	if c.evicted > 0 {
		flows += fmt.Sprintf(" (%d evicted)", c.evicted)
	}
	owners := ""
	if c.owners != "" {
		owners = "owners " + c.owners
	}
	if c.ownersLost > 0 {
		owners += fmt.Sprintf(" (%d records lost)", c.ownersLost)
	}
	line := fmt.Sprintf("wire %d packets, %s on %s  credited %s to ends, %s  %s  %s",
		wire.rxPackets+wire.txPackets, size, ifaces, t.units.size(float64(c.rxBytes+c.txBytes), false), pct, drops, flows)
	if owners != "" {
		line += "  " + owners
	}
	if cols <= 0 || utf8.RuneCountInString(line) <= cols {
		return line
	}
	// A narrow terminal: the short form, drops before what matters less.
	parts := []string{"wire " + size + " on " + ifaces, pct, drops, flows, owners}
	return fitParts(slices.DeleteFunc(parts, func(p string) bool { return p == "" }), cols)
}

// clipIf clips s to cols if the terminal's size is known.
func clipIf(s string, cols int, sized bool) string {
	if !sized {
		return s
	}
	return clip(s, cols)
}

// clip shortens a line to the terminal's width, in characters; unlike cut
// it does not mark the cut, which the edge of the screen already shows.
func clip(s string, cols int) string {
	n := 0
	for i := range s {
		if n == cols {
			return s[:i]
		}
		n++
	}
	return s
}
