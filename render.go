package main

// Output rules. Data goes to stdout and nothing else does: diagnostics go to
// stderr as one line "netuse: what failed: why", lowercase, without a final
// period, the failing input quoted. A frame is built in a buffer and written
// with one Write, so a reader never sees half an interval. With --json,
// stdout holds NDJSON records and nothing else. Off a terminal no escape
// sequence is ever written. The renderer formats; it never measures.

import (
	"bytes"
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Escape sequences (ECMA-48), written only to a terminal.
const (
	escHideCursor = "\x1b[?25l"
	escShowCursor = "\x1b[?25h"
	escClearLine  = "\x1b[K" // erase from the cursor to the end of the line
	escClearDown  = "\x1b[J" // erase from the cursor to the end of the screen
	escUpFmt      = "\x1b[%dA"
)

// report is one interval's output.
type report struct {
	mode     mode          // the command
	seq      int           // interval number, from 1
	at       time.Time     // when the interval ended
	elapsed  time.Duration // time that really elapsed during the interval
	interval time.Duration // nominal interval, for the header
	rows     []usage
	ifaces   []string  // total: the interfaces summed
	capture  *captured // proc: what the capture saw
}

// usage is one row of a report: an interface's traffic, or a process's
// (proc), during an interval and since the start.
type usage struct {
	name               string
	interval           traffic
	total              traffic  // since netuse started
	rxErrors, txErrors uint64   // during the interval
	rxDrops, txDrops   uint64   // during the interval
	proc               *process // proc mode: the row's process
}

// renderer writes frames in one of three forms: NDJSON, a table redrawn in
// place on a terminal (live), or plain text blocks.
type renderer struct {
	w    io.Writer
	json bool
	live bool
	bits bool // table in bits instead of bytes
	si   bool // table in powers of 1000 instead of 1024

	// termSize returns the terminal's columns and rows, or ok false; live only.
	termSize func() (cols, rows int, ok bool)

	buf     bytes.Buffer
	drawn   int   // live: lines the previous frame left on the screen
	started bool  // the first frame was written
	left    []int // widths of the text columns; they only grow, so columns do not jump
}

func newRenderer(w io.Writer, json, live, bits, si bool) *renderer {
	return &renderer{w: w, json: json, live: live && !json, bits: bits, si: si}
}

// render writes one frame after sorting and cutting its rows as o says.
func (r *renderer) render(f report, o options) error {
	sortRows(f.rows, o.sort, f.mode)
	if o.top > 0 && len(f.rows) > o.top {
		f.rows = f.rows[:o.top]
	}
	r.buf.Reset()
	switch {
	case r.json:
		r.writeJSON(f)
	case r.live && f.mode == modeTotal:
		r.writeTotalLine(f)
	default:
		r.writeTable(f)
	}
	r.started = true
	if _, err := r.w.Write(r.buf.Bytes()); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// close leaves the terminal as it was found: cursor shown, on a new line.
func (r *renderer) close() {
	if r.live && r.started {
		io.WriteString(r.w, "\n"+escShowCursor)
	}
}

// sortRows orders rows by column: rates descending, names ascending, with the
// name as the tie-break so that equal rows keep their place between frames.
func sortRows(rows []usage, column string, m mode) {
	if column == "" {
		column = "name"
		if m == modeProc {
			column = "total"
		}
	}
	key := func(u usage) uint64 {
		switch column {
		case "rx":
			return u.interval.rxBytes
		case "tx":
			return u.interval.txBytes
		case "total":
			return u.interval.rxBytes + u.interval.txBytes
		}
		return 0
	}
	pid := func(u usage) int {
		if u.proc == nil {
			return 0
		}
		return u.proc.pid
	}
	slices.SortStableFunc(rows, func(a, b usage) int {
		if column == "pid" {
			if c := cmp.Compare(pid(a), pid(b)); c != 0 {
				return c
			}
		}
		if c := cmp.Compare(key(b), key(a)); c != 0 {
			return c
		}
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return cmp.Compare(pid(a), pid(b))
	})
}

// attribution returns the bytes of f's rows that have a process, and their
// share of the bytes captured (1 when nothing was captured).
func attribution(f report) (uint64, float64) {
	var n uint64
	for _, u := range f.rows {
		if u.proc != nil && u.proc.pid != 0 {
			n += u.interval.rxBytes + u.interval.txBytes
		}
	}
	all := f.capture.rxBytes + f.capture.txBytes
	if all == 0 {
		return n, 1
	}
	return n, float64(n) / float64(all)
}

func rate(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func round(x float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(x*p+0.5)) / p
}

// columns of the tables: text columns on the left, numbers on the right.
var (
	ifaceNumbers = []string{"RX/s", "TX/s", "RX pkt/s", "TX pkt/s", "RX total", "TX total"}
	procText     = []string{"PID", "USER", "PROGRAM"}
	procNumbers  = []string{"RX/s", "TX/s", "RX total", "TX total"}
)

// cells formats u's numbers in the order of the mode's number columns.
func (r *renderer) cells(m mode, u usage, elapsed time.Duration) []string {
	rx := r.size(rate(u.interval.rxBytes, elapsed)) + "/s"
	tx := r.size(rate(u.interval.txBytes, elapsed)) + "/s"
	rxTotal, txTotal := r.size(float64(u.total.rxBytes)), r.size(float64(u.total.txBytes))
	if m == modeProc {
		return []string{rx, tx, rxTotal, txTotal}
	}
	return []string{rx, tx,
		strconv.FormatFloat(rate(u.interval.rxPackets, elapsed), 'f', 0, 64),
		strconv.FormatFloat(rate(u.interval.txPackets, elapsed), 'f', 0, 64),
		rxTotal, txTotal,
	}
}

// Longest text cells, in characters; longer values are cut to fit.
const (
	maxIface   = 24 // IFNAMSIZ is 16 bytes, but escapes make a name longer
	maxUser    = 16
	maxProgram = 32
	maxCgroup  = 64
)

// text returns u's text columns, safe to print.
func text(m mode, u usage) []string {
	if m != modeProc {
		return []string{visible(u.name, maxIface)}
	}
	pid := "-"
	if u.proc.pid != 0 {
		pid = strconv.Itoa(u.proc.pid)
	}
	return []string{pid, visible(u.proc.user, maxUser), visible(u.name, maxProgram)}
}

// visible returns s as a table may show it. Names come from other programs
// (a process picks its own name, and a command line may hold anything), so
// control characters, escape sequences, Unicode format characters (such as
// the right-to-left override) and bytes that are not UTF-8 are written as
// visible Go escapes: "\x1b[2J" stays those seven characters and never
// clears the screen. A result longer than limit characters is cut, its last
// character replaced by "…"; limit 0 means no limit. NDJSON carries the
// values themselves, escaped by encoding/json.
func visible(s string, limit int) string {
	safe := true
	for _, c := range []byte(s) {
		if c < 0x20 || c >= 0x7f {
			safe = false
			break
		}
	}
	if safe && (limit == 0 || len(s) <= limit) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case c == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x80 && unicode.IsControl(c):
			fmt.Fprintf(&b, `\x%02x`, c)
		case unicode.IsControl(c) || unicode.Is(unicode.Cf, c):
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteRune(c)
		}
		i += size
	}
	return cut(b.String(), limit)
}

// cut shortens s to at most limit characters, marking the cut with "…".
func cut(s string, limit int) string {
	if limit <= 0 || utf8.RuneCountInString(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}

// width of a number column: enough for the widest value the unit ladder
// gives ("1023.9 Gibit/s"), so that the columns never jump between frames.
func (r *renderer) width(column string) int {
	if strings.Contains(column, "pkt") {
		return 9
	}
	_, units := r.ladder()
	longest := 0
	for _, u := range units {
		longest = max(longest, len(u))
	}
	if strings.HasSuffix(column, "/s") {
		return len("1023.9 ") + longest + len("/s")
	}
	return len("1023.9 ") + longest + len(" ")
}

// header describes the frame: what, when, over how long, in which units.
func (r *renderer) header(f report) string {
	unit := "bytes"
	if r.bits {
		unit = "bits"
	}
	base := "1 KiB = 1024 B"
	switch {
	case r.si && r.bits:
		base = "1 kbit = 1000 bit"
	case r.si:
		base = "1 kB = 1000 B"
	case r.bits:
		base = "1 Kibit = 1024 bit"
	}
	h := fmt.Sprintf("netuse %s  interval %s  units %s, %s", f.mode, f.interval, unit, base)
	if !r.live || f.mode != modeTotal {
		// The total line is redrawn below a header written once: no time there.
		h = fmt.Sprintf("netuse %s  %s  interval %s (measured %.3fs)  units %s, %s",
			f.mode, f.at.Format("2006-01-02 15:04:05"), f.interval, f.elapsed.Seconds(), unit, base)
	}
	if f.mode == modeTotal {
		h += "  ifaces " + visible(strings.Join(f.ifaces, ","), 0)
	}
	return h
}

// writeTable writes a frame as an aligned table: on a terminal over the
// previous frame, elsewhere as a block of its own followed by a blank line.
func (r *renderer) writeTable(f report) {
	textCols, numCols := []string{"IFACE"}, ifaceNumbers
	switch f.mode {
	case modeTotal:
		textCols = []string{"TOTAL"}
	case modeProc:
		textCols, numCols = procText, procNumbers
	}
	lines := make([]string, 0, len(f.rows)+3)
	lines = append(lines, r.header(f))
	if f.capture != nil {
		lines = append(lines, r.captureLine(f))
	}
	texts := make([][]string, len(f.rows))
	for i, u := range f.rows {
		texts[i] = text(f.mode, u)
	}
	r.growLeft(textCols, texts)
	head := r.row(textCols, numCols, numCols)
	if f.mode == modeProc {
		head += "  CONTAINER"
	}
	lines = append(lines, head)
	for i, u := range f.rows {
		line := r.row(texts[i], r.cells(f.mode, u, f.elapsed), numCols)
		if f.mode == modeProc && u.proc.foreign {
			// Last, so that its width does not move the other columns.
			line += fmt.Sprintf("  net:[%d] %s", u.proc.netns, visible(u.proc.cgroup, maxCgroup))
		}
		lines = append(lines, line)
	}
	if !r.live {
		for _, l := range lines {
			r.buf.WriteString(l)
			r.buf.WriteByte('\n')
		}
		r.buf.WriteByte('\n')
		return
	}
	cols, rows, ok := r.termSize()
	if ok && len(lines) > rows-1 {
		lines = lines[:max(rows-1, 1)] // more rows than the screen: --top shows which
	}
	if r.started {
		if r.drawn > 0 {
			fmt.Fprintf(&r.buf, escUpFmt, r.drawn)
		}
		r.buf.WriteString("\r" + escClearDown)
	} else {
		r.buf.WriteString(escHideCursor)
	}
	for i, l := range lines {
		if ok {
			l = clip(l, cols) // a wrapped line would break the count of lines to go up
		}
		r.buf.WriteString(l)
		if i < len(lines)-1 {
			r.buf.WriteByte('\n')
		}
	}
	r.drawn = len(lines) - 1
}

// captureLine sums up proc mode's capture: the packets and bytes on the
// wire, as the interfaces' own counters (and iface mode) count them; the
// bytes credited to the ends of those packets, which count a packet
// between two processes of this machine twice; the share of those that
// went to a process; drops and flows.
func (r *renderer) captureLine(f report) string {
	c := f.capture
	_, share := attribution(f)
	var wire traffic
	for _, t := range c.byIface {
		wire.add(t)
	}
	// Rounded down, so that 100.0% means all of it.
	line := fmt.Sprintf("wire %d packets, %s on %s  credited %s to ends, %.1f%% to processes  kernel drops %d  flows %d",
		wire.rxPackets+wire.txPackets, r.size(float64(wire.rxBytes+wire.txBytes)), visible(strings.Join(c.ifaces, ","), 0),
		r.size(float64(c.rxBytes+c.txBytes)), math.Floor(share*1000)/10, c.drops, c.flows)
	if c.evicted > 0 {
		line += fmt.Sprintf(" (%d evicted)", c.evicted)
	}
	if c.owners != "" {
		line += "  owners " + c.owners
	}
	if c.ownersLost > 0 {
		line += fmt.Sprintf(" (%d records lost)", c.ownersLost)
	}
	return line
}

// growLeft widens the text columns to fit the headers and texts.
func (r *renderer) growLeft(headers []string, texts [][]string) {
	for len(r.left) < len(headers) {
		r.left = append(r.left, 0)
	}
	for i, h := range headers {
		r.left[i] = max(r.left[i], len(h))
	}
	for _, t := range texts {
		for i, s := range t {
			r.left[i] = max(r.left[i], utf8.RuneCountInString(s))
		}
	}
}

// row aligns text cells left and number cells right.
func (r *renderer) row(texts, numbers, columns []string) string {
	var b strings.Builder
	for i, t := range texts {
		if i > 0 {
			b.WriteString("  ")
		}
		b.WriteString(t)
		b.WriteString(strings.Repeat(" ", r.left[i]-utf8.RuneCountInString(t)))
	}
	for i, c := range numbers {
		b.WriteString(strings.Repeat(" ", max(r.width(columns[i])-len(c), 1)))
		b.WriteString(c)
	}
	return b.String()
}

// writeTotalLine redraws the total mode's single line with \r; the header
// and the column names are written once, above it.
func (r *renderer) writeTotalLine(f report) {
	r.growLeft([]string{"TOTAL"}, nil)
	if !r.started {
		r.buf.WriteString(escHideCursor)
		r.buf.WriteString(r.header(f) + "\n")
		r.buf.WriteString(r.row([]string{"TOTAL"}, ifaceNumbers, ifaceNumbers) + "\n")
	}
	r.buf.WriteString("\r" + r.row([]string{""}, r.cells(f.mode, f.rows[0], f.elapsed), ifaceNumbers) + escClearLine)
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

// size formats a number of bytes, or bytes per second, in the renderer's
// units: "512 B", "1.5 MiB", "12.0 Mbit".
func (r *renderer) size(bytes float64) string {
	base, units := r.ladder()
	v := bytes
	if r.bits {
		v *= 8
	}
	i := 0
	for v >= base && i < len(units)-1 {
		v /= base
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64) + " " + units[0]
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

// ladder returns the step between units and their names.
func (r *renderer) ladder() (base float64, units []string) {
	switch {
	case r.si && r.bits:
		return 1000, []string{"bit", "kbit", "Mbit", "Gbit", "Tbit", "Pbit"}
	case r.si:
		return 1000, []string{"B", "kB", "MB", "GB", "TB", "PB"}
	case r.bits:
		return 1024, []string{"bit", "Kibit", "Mibit", "Gibit", "Tibit", "Pibit"}
	}
	return 1024, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
}
