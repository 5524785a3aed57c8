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
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
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
	capture  *captured // proc, conn: what the capture saw
	by       []string  // proc, conn: the rows are groups of these keys (--by)
	partial  bool      // the run was interrupted before the interval was over
	since    time.Time // --state: when the previous run read the counters
	// totalsSince is --state's start of the totals: the file's first run
	totalsSince time.Time
	summary     bool   // the run's summary: elapsed is the run's length, rows its totals
	filter      string // proc, conn: the filter's flags, "" for none; a table with no rows names it
	// all is iface's "(all)" row: every row's traffic added up before
	// --top cut them; nil with fewer than two rows, or in other modes
	all *usage
}

// usage is one row of a report: an interface's traffic, or a process's
// (proc), during an interval and since the start.
type usage struct {
	name               string
	interval           traffic
	total              traffic    // since netuse started
	rxErrors, txErrors uint64     // during the interval
	rxDrops, txDrops   uint64     // during the interval
	down               bool       // iface: the interface is down (not up, or no carrier)
	proc               *process   // proc, conn: the row's process, or pid 0's
	conn               *connInfo  // conn: the row's connection
	group              *groupInfo // --by: the row's group; proc and conn are nil
}

// unattributed returns why row u's bytes went to no process, for a row
// of no process (pid 0) or a group of such rows; ok is false for the
// others.
func (u usage) unattributed() (why reason, ok bool) {
	switch {
	case u.group != nil:
		return u.group.key.reason, unattributed(u.group.key.pid, u.group.key.reason)
	case u.proc != nil:
		return u.proc.reason, unattributed(u.proc.pid, u.proc.reason)
	}
	return attributed, false
}

// unattributed reports whether bytes of pid for reason why went to no
// process: pid 0, for a reason other than attributed.
func unattributed(pid int, why reason) bool { return pid == 0 && why != attributed }

// connInfo is a conn row's connection: a flow end of this host, or the
// zero value for the bytes of no flow (pid 0: not TCP or UDP, ...).
type connInfo struct {
	flow
	state       tcpState // TCP: its socket's, at the last look
	first, last int64    // when its first and last packets were captured, Unix ns; 0 if not known
	remoteName  string   // --resolve: the remote address's name, once known
}

// renderer writes frames in one of three forms: NDJSON, a table redrawn in
// place on a terminal (live), or plain text blocks.
type renderer struct {
	w    io.Writer
	json bool
	live bool
	tty  bool // stdout is a terminal (live or not), and this is no NDJSON
	bits bool // table in bits instead of bytes
	si   bool // table in powers of 1000 instead of 1024

	// termSize returns the terminal's columns and rows, or ok false; live only.
	termSize func() (cols, rows int, ok bool)

	// mu guards every field below, and bits and si: the keys goroutine
	// (keys.go) changes the view and redraws while the run loop renders.
	mu       sync.Mutex
	buf      bytes.Buffer
	drawn    int  // live: lines the previous frame left on the screen
	started  bool // the first frame was written
	onScreen bool // live: something is drawn that the next frame goes over
	headed   bool // live total: the lines above the total line are written
	closed   bool // close was called

	ledger     *ledger           // every row shown so far, for the cumulative view and the summary
	cumulative bool              // show every row of the run with its totals, sorted by them
	sortBy     string            // the column chosen with s (or --sort); "" the mode's default
	reverse    bool              // the order reversed with r
	keys       bool              // keys are read: a hint line names them
	hinted     bool              // live total: the hint line is above the column names
	scroll     int               // live: the row at the top of the table, from 0; the arrow and page keys move it
	page       int               // live: the rows the last frame showed, what PgUp and PgDn move by
	staleHead  bool              // total: the header written once is out of date (units changed)
	widths     map[string]int    // the growing columns' widths so far (grow)
	prom       bool              // --format prometheus: the metrics of the run's rows, not the frame
	textfile   string            // --textfile: the file to write the metrics to each frame; "" for none
	containers map[string]string // containerOf by cgroup (renderer.containerOf)
	last       report            // the last frame drawn, for a key to redraw
	lastOpts   options
}

func newRenderer(w io.Writer, json, live, bits, si bool) *renderer {
	return &renderer{w: w, json: json, live: live && !json, bits: bits, si: si, ledger: newLedger()}
}

// render writes one frame after sorting and cutting its rows as o says.
// In the cumulative view the rows are every row of the run so far.
func (r *renderer) render(f report, o options) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ledger.note(f.seq, f.rows)
	if r.textfile != "" {
		if err := writeTextfile(r.textfile, f.mode, r.ledger.all()); err != nil {
			return fmt.Errorf("--textfile %q: %w", r.textfile, err)
		}
	}
	r.buf.Reset()
	if r.prom {
		r.last, r.lastOpts, r.started = f, o, true
		if err := writeMetrics(&r.buf, f.mode, r.ledger.all()); err != nil {
			return err
		}
		return r.flush()
	}
	r.draw(f, o)
	return r.flush()
}

// draw builds frame f in r.buf, in the view the keys chose.
func (r *renderer) draw(f report, o options) {
	r.last, r.lastOpts = f, o
	if r.cumulative {
		f.rows = r.ledger.all()
	}
	if r.sortBy == "" {
		r.sortBy = o.sort
	}
	f.rows = slices.Clone(f.rows)
	// Only the rows shown need their order: --top's, or on a live
	// terminal those that fit, from the first scrolled to.
	first := o.top
	if r.live && !r.json && r.termSize != nil {
		if _, rows, ok := r.termSize(); ok && (first == 0 || r.scroll+rows < first) {
			first = r.scroll + rows
		}
	}
	sortRows(f.rows, r.sortBy, f.mode, r.cumulative, r.reverse, first)
	f.cutTop(o.top)
	switch {
	case r.json:
		r.writeJSON(f)
	case r.live && f.mode == modeTotal:
		r.writeTotalLine(f)
	default:
		r.writeTable(f)
	}
	r.started = true
}

// waiting shows, on a terminal, when the first frame comes (at first), so
// that a long interval does not leave a blank screen; a live table's first
// frame is drawn over it.
func (r *renderer) waiting(m mode, first time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.tty {
		return nil
	}
	cols, _, sized := 0, 0, false
	if r.termSize != nil {
		cols, _, sized = r.termSize()
	}
	line := clipIf(fmt.Sprintf("netuse %s  measuring the first interval, until %s", m, first.Format(timeLayout)), cols, sized)
	r.buf.Reset()
	if !r.live {
		// --no-clear or TERM=dumb: a line of its own, above the blocks.
		r.buf.WriteString(line + "\n\n")
		return r.flush()
	}
	r.buf.WriteString(escHideCursor + "\r" + escClearLine + line)
	r.onScreen, r.drawn = true, 0
	return r.flush()
}

// flush writes the frame built in r.buf, with one Write.
func (r *renderer) flush() error {
	if _, err := r.w.Write(r.buf.Bytes()); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// close leaves the terminal as it was found: cursor shown, on a new line.
// Calling it again does nothing.
func (r *renderer) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked()
}

func (r *renderer) closeLocked() {
	if r.live && r.onScreen && !r.closed {
		if r.keys && r.started {
			// No key is read any more: the last frame again, without the
			// line that names them.
			r.keys, r.staleHead = false, true
			r.buf.Reset()
			r.draw(r.last, r.lastOpts)
			r.flush() // as the line below: nothing to do if it fails
		}
		io.WriteString(r.w, "\n"+escShowCursor)
	}
	r.closed = true
}

// sortRows orders rows by column: volumes descending, names ascending,
// with the name as the tie-break so that equal rows keep their place
// between frames; reverse turns the order round. The volumes are the
// interval's, or with cumulative the totals since the start. With first
// above 0, only the first rows need be in order: they are, and the others
// follow in no order.
func sortRows(rows []usage, column string, m mode, cumulative, reverse bool, first int) {
	if column == "" {
		column = "name"
		if m.captures() {
			column = "total"
		}
	}
	key := func(u usage) uint64 {
		t := u.interval
		if cumulative {
			t = u.total
		}
		switch column {
		case "rx":
			return t.rxBytes
		case "tx":
			return t.txBytes
		case "total":
			return t.rxBytes + t.txBytes
		}
		return 0
	}
	// The keys first, in a slice of small items: sorting 10,000 rows
	// themselves, with the key computed at each comparison, was most of a
	// conn report's time (BenchmarkConnReport).
	type item struct {
		key    uint64
		pid    int
		name   string
		fl     [2]uint64 // an IPv4 connection's flow, packed (packFlow)
		packed bool
		i      int
	}
	items := make([]item, len(rows))
	for i, u := range rows {
		items[i] = item{key: key(u), pid: pidOf(u), name: u.name, i: i}
		if u.conn != nil {
			items[i].fl, items[i].packed = packFlow(u.conn.flow)
		}
	}
	// The name, the pid and compareName break every tie: the order is
	// total, so an unstable sort gives the same frame every time.
	order := func(a, b item) int {
		if column == "pid" {
			if c := cmp.Compare(a.pid, b.pid); c != 0 {
				return c
			}
		}
		if c := cmp.Compare(b.key, a.key); c != 0 {
			return c
		}
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := cmp.Compare(a.pid, b.pid); c != 0 {
			return c
		}
		if a.packed && b.packed {
			if c := cmp.Compare(a.fl[0], b.fl[0]); c != 0 {
				return c
			}
			return cmp.Compare(a.fl[1], b.fl[1])
		}
		return compareName(rows[a.i], rows[b.i])
	}
	if reverse {
		forward := order
		order = func(a, b item) int { return forward(b, a) }
	}
	if first > 0 && first < len(items)/4 {
		selectFirst(items, first, order)
	} else {
		slices.SortFunc(items, order)
	}
	sorted := make([]usage, len(rows))
	for j, it := range items {
		sorted[j] = rows[it.i]
	}
	copy(rows, sorted)
}

// selectFirst moves the n items that come first by cmp to the front of
// items, in order; the others follow in no order. A live table of 10,000
// connections shows some 46: a heap of n finds them in n log n steps of
// the items' count, against a sort's log of it (BenchmarkConnReport/live).
func selectFirst[T any](items []T, n int, cmp func(a, b T) int) {
	// items[:n] is a heap with the last of the first n at its root.
	down := func(i int) {
		for {
			c := 2*i + 1
			if c >= n {
				return
			}
			if c+1 < n && cmp(items[c+1], items[c]) > 0 {
				c++
			}
			if cmp(items[c], items[i]) <= 0 {
				return
			}
			items[i], items[c] = items[c], items[i]
			i = c
		}
	}
	for i := n/2 - 1; i >= 0; i-- {
		down(i)
	}
	for j := n; j < len(items); j++ {
		if cmp(items[j], items[0]) < 0 {
			items[0], items[j] = items[j], items[0]
			down(0)
		}
	}
	slices.SortFunc(items[:n], cmp)
}

// compareName orders rows by name, then pid, then connection.
func compareName(a, b usage) int {
	if c := strings.Compare(a.name, b.name); c != 0 {
		return c
	}
	if c := cmp.Compare(pidOf(a), pidOf(b)); c != 0 || a.conn == nil || b.conn == nil {
		return c
	}
	return compareFlow(a.conn.flow, b.conn.flow)
}

// packFlow packs an IPv4 flow into two numbers that order as compareFlow
// orders flows: comparing addresses a row's tie costed most of a sort of
// 10,000 connections. ok is false for other flows.
func packFlow(fl flow) (packed [2]uint64, ok bool) {
	l, r := fl.local.Addr(), fl.remote.Addr()
	if !l.Is4() || !r.Is4() || l.Zone() != "" {
		return packed, false
	}
	l4, r4 := l.As4(), r.As4()
	packed[0] = uint64(fl.proto)<<56 | uint64(binary.BigEndian.Uint32(l4[:]))<<16 | uint64(fl.local.Port())
	packed[1] = uint64(binary.BigEndian.Uint32(r4[:]))<<16 | uint64(fl.remote.Port())
	return packed, true
}

// compareFlow orders flows by protocol, local end, remote end.
func compareFlow(a, b flow) int {
	if c := cmp.Compare(a.proto, b.proto); c != 0 {
		return c
	}
	if c := a.local.Compare(b.local); c != 0 {
		return c
	}
	return a.remote.Compare(b.remote)
}

func pidOf(u usage) int {
	if u.proc == nil {
		return 0
	}
	return u.proc.pid
}

// attribution returns the bytes credited to a process, of every row
// before a view filtered or grouped them, and their share of the bytes
// captured (1 when nothing was captured).
func attribution(f report) (uint64, float64) {
	n := f.capture.attributed
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
	rx := r.rateSize(rate(u.interval.rxBytes, elapsed))
	tx := r.rateSize(rate(u.interval.txBytes, elapsed))
	rxTotal, txTotal := r.size(float64(u.total.rxBytes), false), r.size(float64(u.total.txBytes), false)
	if m.captures() {
		return []string{rx, tx, rxTotal, txTotal}
	}
	return []string{rx, tx,
		strconv.FormatFloat(rate(u.interval.rxPackets, elapsed), 'f', 0, 64),
		strconv.FormatFloat(rate(u.interval.txPackets, elapsed), 'f', 0, 64),
		rxTotal, txTotal,
	}
}

// Widths of the text columns, in characters: fixed, so that no column
// moves between frames or within a run; a longer value is cut, its last
// character replaced by "…". A pid is at most 7 digits (pid_max is at most
// 4,194,304); a program name from /proc is at most 15 bytes, and the pid 0
// rows' names are at most 20; an interface name is at most 15 bytes
// (IFNAMSIZ), more once escaped. The CONTAINER column is last, so its
// width moves nothing.
//
// Addresses and a group's container differ too much in length for one
// width: their columns start at the width of the usual value (an IPv4
// address and port) and widen, never narrow, to the widest value shown,
// up to growWidth.
var textWidth = map[string]int{"PID": 7, "USER": 12, "PROGRAM": 20, "IFACE": 15, "STATE": 5, "TOTAL": 5, "TIME": 8,
	"PROTO": 5, "LOCAL": 21, "REMOTE": 21, "NETNS": 10, "CONTAINER": 16}

// growWidth is the widest a growing column gets: an IPv6 address and
// port ("[" 39 "]:" 5); a name from --resolve, or a container, is cut.
var growWidth = map[string]int{"LOCAL": 47, "REMOTE": 47, "CONTAINER": 40}

const maxCgroup = 64

// conn's text columns; its STATE holds a TCP state, as netstat names it.
var (
	connText      = []string{"PROTO", "LOCAL", "REMOTE", "STATE", "PID", "USER", "PROGRAM"}
	connStateWide = len("ESTABLISHED")
)

// textColumns returns the text columns of f's rows.
func textColumns(f report) []string {
	switch {
	case f.by != nil:
		cols := make([]string, len(f.by))
		for i, b := range f.by {
			cols[i] = groupColumn[b]
		}
		return cols
	case f.mode == modeTotal:
		return []string{"TOTAL"}
	case f.mode == modeProc:
		return procText
	case f.mode == modeConn:
		return connText
	}
	return []string{"IFACE", "STATE"}
}

// text returns u's text columns, safe to print and cut to their widths.
func (r *renderer) text(f report, u usage) []string {
	switch {
	case u.group != nil:
		cells := make([]string, len(u.group.by))
		for i, b := range u.group.by {
			v := u.group.key.value(b)
			switch {
			case i == 0 && u.group.key == (groupKey{}) && u.name == "(other)":
				v = u.name // groups folded away
			case i == 0 && v == "" && u.group.key.reasonCell() != "":
				v = u.group.key.reasonCell()
			case v == "":
				v = "-"
			case b == "remote" && u.group.remoteName != "":
				v = u.group.remoteName
			}
			limit := textWidth[groupColumn[b]]
			if _, grows := growWidth[groupColumn[b]]; grows {
				limit = 0 // row cuts it, to the width grow gives
			}
			cells[i] = visible(v, limit)
		}
		return cells
	case f.mode == modeTotal:
		return []string{visible(u.name, textWidth["TOTAL"])}
	case f.mode == modeIface:
		state := "up"
		if u.down {
			state = "down"
		}
		return []string{visible(u.name, textWidth["IFACE"]), state}
	}
	pid := "-"
	if u.proc.pid != 0 {
		pid = strconv.Itoa(u.proc.pid)
	}
	owner := []string{pid, visible(u.proc.user, textWidth["USER"]), visible(u.name, textWidth["PROGRAM"])}
	if f.mode != modeConn {
		return owner
	}
	c := u.conn
	if c == nil || c.proto == 0 {
		return append([]string{"-", "-", "-", "-"}, owner...)
	}
	proto, state := "tcp", c.state.String()
	if c.proto == 17 {
		proto, state = "udp", ""
	}
	if state == "" {
		state = "-"
	}
	local, remote := endpoints(c)
	return append([]string{proto, local, remote, state}, owner...) // row cuts LOCAL and REMOTE
}

// endpoints returns a connection's ends as its LOCAL and REMOTE columns
// show them, safe to print and not cut: the remote's name with
// --resolve, once known, in place of its address.
func endpoints(c *connInfo) (local, remote string) {
	remote = c.remote.String()
	if c.remoteName != "" {
		remote = visible(c.remoteName, 0) + ":" + strconv.Itoa(int(c.remote.Port()))
	}
	return c.local.String(), remote
}

// textWidth returns the width of a text column now.
func (r *renderer) textWidth(col string) int {
	if w, ok := r.widths[col]; ok {
		return w
	}
	return textWidth[col]
}

// grow widens the growing columns to the widest of texts, the text
// cells of the rows drawn, up to growWidth; conn's STATE is as wide as its
// longest common state.
func (r *renderer) grow(f report, cols []string, texts [][]string) {
	if r.widths == nil {
		r.widths = map[string]int{}
	}
	if f.mode == modeConn && f.by == nil {
		r.widths["STATE"] = max(r.widths["STATE"], connStateWide)
	}
	for i, col := range cols {
		limit, ok := growWidth[col]
		if !ok {
			continue
		}
		w := r.textWidth(col)
		for _, cells := range texts {
			if w >= limit {
				break
			}
			w = max(w, min(utf8.RuneCountInString(cells[i]), limit))
		}
		r.widths[col] = w
	}
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
// gives ("999.9 Gibit/s", size) and a space before it, so that the
// columns never jump between frames.
func (r *renderer) width(column string) int {
	if strings.Contains(column, "pkt") {
		return 9
	}
	rate := strings.HasSuffix(column, "/s")
	_, units := r.ladder(rate && r.bits)
	longest := 0
	for _, u := range units {
		longest = max(longest, len(u))
	}
	if rate {
		return len("1023.9 ") + longest + len("/s")
	}
	return len("1023.9 ") + longest + len(" ")
}

// header describes the frame: what, when (with the zone), over how long,
// in which units. Its parts are dropped from the right, least needed
// first, where a terminal is too narrow for all of them.
func (r *renderer) header(f report, cols int) string {
	unit, base := "bytes", "1 KiB = 1024 B"
	switch {
	case r.bits && r.si:
		unit, base = "bit/s for rates, bytes for volumes", "1 kbit = 1000 bit"
	case r.bits:
		unit, base = "bit/s for rates, bytes for volumes", "1 Kibit = 1024 bit"
	case r.si:
		base = "1 kB = 1000 B"
	}
	parts := []string{"netuse " + f.mode.String(), f.at.Format(timeLayout),
		fmt.Sprintf("interval %s (measured %.3fs)", f.interval, f.elapsed.Seconds())}
	switch {
	case f.summary:
		parts[0] += " summary"
		parts[2] = fmt.Sprintf("ran %.3fs, %d intervals; rates are averages", f.elapsed.Seconds(), f.seq) // seq >= 2
	case f.partial:
		parts[2] = fmt.Sprintf("interval %s (interrupted after %.3fs)", f.interval, f.elapsed.Seconds())
	case !f.since.IsZero():
		parts[2] = fmt.Sprintf("since the previous run at %s (%.3fs)", f.since.Format(timeLayout), f.elapsed.Seconds())
		if !f.totalsSince.IsZero() {
			parts[2] += ", totals since " + f.totalsSince.Format(timeLayout)
		}
	}
	if r.live && f.mode == modeTotal {
		// The total line is redrawn below a header written once: the time
		// is on the line.
		parts = []string{"netuse total", "interval " + f.interval.String(), "times " + f.at.Format("MST")}
	}
	if f.mode == modeTotal {
		parts = append(parts, "ifaces "+visible(strings.Join(f.ifaces, ","), 0))
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

// writeTable writes a frame as an aligned table: on a terminal over the
// previous frame, elsewhere as a block of its own followed by a blank line.
func (r *renderer) writeTable(f report) {
	cols, rows, sized := 0, 0, false
	if r.tty && r.termSize != nil {
		cols, rows, sized = r.termSize()
	}
	textCols, allNums := textColumns(f), ifaceNumbers
	if f.mode.captures() {
		allNums = procNumbers
	}
	room := rows - 1 // the last line stays free: the cursor rests on it
	if r.keys {
		room--
	}
	drawn := f.rows
	if r.live && sized {
		drawn = r.window(f, room)
	}
	texts := make([][]string, len(drawn))
	for i, u := range drawn {
		texts[i] = r.text(f, u)
	}
	r.grow(f, textCols, texts)
	tail := f.mode.captures() && f.by == nil // the CONTAINER column
	l := r.fitColumns(textCols, allNums, tail, f.by != nil, r.cumulative || f.summary, cols)
	lines := make([]string, 0, len(drawn)+4)
	lines = append(lines, r.header(f, cols))
	if f.capture != nil {
		lines = append(lines, r.captureLine(f, cols))
	}
	lines = append(lines, r.row(l, allNums, textCols, allNums)+tailCell(l, tail, "CONTAINER"))
	if len(f.rows) == 0 && f.filter != "" {
		lines = append(lines, "(no row matches "+visible(f.filter, 0)+")")
	}
	for i, u := range drawn {
		container := ""
		if u.proc != nil && u.proc.foreign {
			ns := fmt.Sprintf("net:[%d]", u.proc.netns)
			if u.proc.nsName != "" {
				ns = "netns:" + visible(u.proc.nsName, textWidth["NETNS"])
			}
			container = ns + " " + visible(u.proc.cgroup, maxCgroup)
		}
		lines = append(lines, r.row(l, allNums, texts[i], r.cells(f.mode, u, f.elapsed))+tailCell(l, tail, container))
	}
	if f.all != nil {
		lines = append(lines, r.row(l, allNums, []string{f.all.name, ""}, r.cells(f.mode, *f.all, f.elapsed)))
	}
	if !r.live {
		if r.tty && f.partial {
			r.buf.WriteByte('\n') // past the ^C the terminal echoed
		}
		for _, l := range lines {
			r.buf.WriteString(clipIf(l, cols, sized))
			r.buf.WriteByte('\n')
		}
		r.buf.WriteByte('\n')
		return
	}
	hidden := len(f.rows) - len(drawn)
	if sized && len(lines) > room {
		// A screen too short even for one row: the lines that fit.
		hidden += len(lines) - max(room-1, 1)
		lines = lines[:max(room-1, 1)]
	}
	if sized && hidden > 0 {
		lines = append(lines, r.moreRows(hidden, len(drawn), len(f.rows), cols))
	}
	if r.keys {
		lines = append(lines, r.keyHint(f.mode, cols, sized && hidden > 0))
	}
	r.redraw(lines, cols, sized)
}

// window returns the rows of f a live table of room lines shows: as many
// as fit below the header lines, from the one scrolled to, which it keeps
// between the first row and the last screen of rows.
func (r *renderer) window(f report, room int) []usage {
	fit := room - 2 // the header and the column names
	if f.capture != nil {
		fit--
	}
	if f.mode == modeIface && len(f.rows) > 1 {
		fit-- // (all)
	}
	if len(f.rows) > fit {
		fit-- // the line that says what is not shown
	}
	fit = max(fit, 1)
	r.scroll = max(min(r.scroll, len(f.rows)-fit), 0)
	drawn := f.rows[r.scroll:min(r.scroll+fit, len(f.rows))]
	r.page = len(drawn)
	return drawn
}

// moreRows is the line under a live table that has more rows than the
// screen: how many are not shown, which are, and how to see the others.
func (r *renderer) moreRows(hidden, shown, all, cols int) string {
	if !r.keys && r.scroll == 0 {
		return fmt.Sprintf("… %d more rows (a taller terminal, or --top, shows the first)", hidden)
	}
	more := fmt.Sprintf("… %d more rows (%d-%d of %d shown)", hidden, r.scroll+1, r.scroll+shown, all)
	if r.keys {
		more = fitParts([]string{more, "↑↓ PgUp PgDn Home End scroll"}, cols)
	}
	return more
}

// dropOrder is the order in which a narrow terminal loses columns, least
// needed first, so that no row is cut by the screen's edge: CONTAINER
// (proc's and conn's last column, shown only where a row of another
// network namespace has a value), the packet rates (iface), the totals
// (each pair goes together), USER, LOCAL, PROTO, STATE, REMOTE. What a
// table is about is never dropped: the interface or the process (PID,
// PROGRAM), --by's group columns, and the rates in and out. The columns
// are chosen most needed first, each if it fits in the room the others
// left: a narrower column may take room a wider one more needed could
// not, and CONTAINER takes what room is left if it is at least its first
// width. In the totals view (the t key) and the summary, whose rows are
// the totals, the totals come right after what is never dropped.
var dropOrder = []string{"CONTAINER", "pkt/s", "total", "USER", "LOCAL", "PROTO", "STATE", "REMOTE"}

// minTextWidth is the narrowest a text column gets, its values cut with
// "…", when even the columns never dropped do not fit.
const minTextWidth = 8

// layout is the columns of a table as one terminal's width allows.
type layout struct {
	text  []int // the text columns shown, by index, in order
	width []int // the width of each of them
	nums  []int // the number columns shown, by index, in order
	tail  int   // the last column, CONTAINER's, width: -1 not shown, 0 as wide as its values
}

// dropRank is col's place in dropOrder, or -1 for a column never dropped.
func dropRank(col string) int {
	for i, d := range dropOrder {
		if strings.HasSuffix(col, d) {
			return i
		}
	}
	return -1
}

// fitColumns chooses the columns of a table of textCols, numCols and, with
// tail, a last CONTAINER column, in cols characters (0: all of them, as
// wide as they grew). With groups, every text column is a group's key and
// stays. A column that grows (LOCAL, REMOTE, CONTAINER) counts at its
// first width, and takes more of what room is left up to the width it
// grew to; CONTAINER last takes all that is left. With totalsFirst (the
// totals view, the summary) the totals are the columns most needed after
// those never dropped. A number's width (renderer.width) holds its
// widest value and a space before it.
func (r *renderer) fitColumns(textCols, numCols []string, tail, groups, totalsFirst bool, cols int) layout {
	var l layout
	if cols <= 0 {
		for i, c := range textCols {
			l.text, l.width = append(l.text, i), append(l.width, r.textWidth(c))
		}
		for i := range numCols {
			l.nums = append(l.nums, i)
		}
		if !tail {
			l.tail = -1
		}
		return l
	}
	keepText, keepNum, keepTail, used := r.chooseColumns(textCols, numCols, tail, groups, totalsFirst, cols)
	room := cols - used
	for i, c := range textCols {
		if !keepText[i] {
			continue
		}
		w := r.baseWidth(c)
		if extra := min(r.textWidth(c)-w, room); extra > 0 {
			w, room = w+extra, room-extra
		}
		l.text, l.width = append(l.text, i), append(l.width, w)
	}
	// Too narrow even for what is never dropped: the widest text columns
	// narrow, but for PID, whose digits are not cut.
	for room < 0 {
		widest := -1
		for j, w := range l.width {
			if textCols[l.text[j]] != "PID" && w > minTextWidth && (widest < 0 || w > l.width[widest]) {
				widest = j
			}
		}
		if widest < 0 {
			break
		}
		l.width[widest]--
		room++
	}
	for i := range numCols {
		if keepNum[i] {
			l.nums = append(l.nums, i)
		}
	}
	l.tail = -1
	if keepTail {
		l.tail = textWidth["CONTAINER"] + max(room, 0)
	}
	return l
}

// baseWidth is the width col counts for among the columns: a growing
// column's first width, which it may pass where there is room.
func (r *renderer) baseWidth(col string) int {
	if _, grows := growWidth[col]; grows {
		return min(textWidth[col], r.textWidth(col))
	}
	return r.textWidth(col)
}

// chooseColumns is fitColumns' choice of columns: those never dropped,
// then the others most needed first, each if it fits in what room is
// left; used is the characters they take.
func (r *renderer) chooseColumns(textCols, numCols []string, tail, groups, totalsFirst bool, cols int) (keepText, keepNum []bool, keepTail bool, used int) {
	keepText, keepNum = make([]bool, len(textCols)), make([]bool, len(numCols))
	used = -2 // the first text column has no space before it
	for i, c := range textCols {
		if groups || dropRank(c) < 0 {
			keepText[i], used = true, used+r.baseWidth(c)+2
		}
	}
	for i, c := range numCols {
		if dropRank(c) < 0 {
			keepNum[i], used = true, used+r.width(c)
		}
	}
	ranks := make([]int, 0, len(dropOrder))
	for rank := len(dropOrder) - 1; rank >= 0; rank-- {
		ranks = append(ranks, rank)
	}
	if totalsFirst {
		i := slices.Index(dropOrder, "total")
		ranks = append([]int{i}, slices.DeleteFunc(ranks, func(r int) bool { return r == i })...)
	}
	for _, rank := range ranks {
		cost, take := 0, func() {}
		switch {
		case dropOrder[rank] == "CONTAINER" && tail:
			cost, take = 2+textWidth["CONTAINER"], func() { keepTail = true }
		case !groups:
			for i, c := range textCols {
				if dropRank(c) == rank {
					cost, take = r.baseWidth(c)+2, func() { keepText[i] = true }
				}
			}
		}
		var nums []int
		for i, c := range numCols {
			if dropRank(c) == rank {
				cost, nums = cost+r.width(c), append(nums, i)
			}
		}
		if cost == 0 || used+cost > cols {
			continue
		}
		used += cost
		take()
		for _, i := range nums {
			keepNum[i] = true
		}
	}
	return keepText, keepNum, keepTail, used
}

// redraw writes lines over the previous frame on a terminal, each cut to
// its width: a wrapped line would break the count of lines to go up.
func (r *renderer) redraw(lines []string, cols int, sized bool) {
	if r.onScreen {
		if r.drawn > 0 {
			fmt.Fprintf(&r.buf, escUpFmt, r.drawn)
		}
		r.buf.WriteString("\r" + escClearDown)
	} else {
		// The cursor is where the shell left it, after anything typed
		// since (a ^C): start the line afresh.
		r.buf.WriteString(escHideCursor + "\r" + escClearLine)
	}
	for i, l := range lines {
		if sized {
			l = clip(l, cols)
		}
		r.buf.WriteString(l)
		if i < len(lines)-1 {
			r.buf.WriteByte('\n')
		}
	}
	r.drawn = len(lines) - 1
	r.onScreen = true
}

// cutTop keeps the first top rows (0: all), after iface's "(all)" row
// has added them all up: it is the machine's, whatever --top shows.
func (f *report) cutTop(top int) {
	if f.mode == modeIface && len(f.rows) > 1 {
		all := sumRows(f.rows)
		all.name = "(all)"
		f.all = &all
	}
	if top > 0 && len(f.rows) > top {
		f.rows = f.rows[:top]
	}
}

// sumRows adds up rows into one: iface's "(all)" row.
func sumRows(rows []usage) usage {
	var sum usage
	for _, u := range rows {
		sum.interval.add(u.interval)
		sum.total.add(u.total)
	}
	return sum
}

// captureLine sums up proc mode's capture: the packets and bytes on the
// wire, as the interfaces' own counters (and iface mode) count them; the
// bytes credited to the ends of those packets, which count a packet
// between two processes of this machine twice; the share of those that
// went to a process; drops and flows.
func (r *renderer) captureLine(f report, cols int) string {
	c := f.capture
	_, share := attribution(f)
	var wire traffic
	for _, t := range c.byIface {
		wire.add(t)
	}
	size := r.size(float64(wire.rxBytes+wire.txBytes), false)
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
		wire.rxPackets+wire.txPackets, size, ifaces, r.size(float64(c.rxBytes+c.txBytes), false), pct, drops, flows)
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

// row aligns the text cells of the columns l shows left, each in its
// width, a longer one cut with "…", and their number cells right; texts
// and numbers hold the cells of every column, numCols names them.
func (r *renderer) row(l layout, numCols, texts, numbers []string) string {
	var b strings.Builder
	b.Grow(160)
	for j, i := range l.text {
		if j > 0 {
			b.WriteString("  ")
		}
		t := cut(texts[i], l.width[j])
		b.WriteString(t)
		pad(&b, l.width[j]-utf8.RuneCountInString(t))
	}
	for _, i := range l.nums {
		pad(&b, max(r.width(numCols[i])-utf8.RuneCountInString(numbers[i]), 1))
		b.WriteString(numbers[i])
	}
	return b.String()
}

// tailCell is the last column's cell, s, cut to its width, after the
// others: nothing where it is not shown, or empty. It is last so that its
// width moves no other column.
func tailCell(l layout, shown bool, s string) string {
	if !shown || l.tail < 0 || s == "" {
		return ""
	}
	return "  " + cut(s, l.tail)
}

// pad writes n spaces.
func pad(b *strings.Builder, n int) {
	const spaces = "                                "
	for ; n > len(spaces); n -= len(spaces) {
		b.WriteString(spaces)
	}
	if n > 0 {
		b.WriteString(spaces[:n])
	}
}

// writeTotalLine redraws the total mode's single line with \r, the time
// of the interval first; the header and the column names are written
// once, above it.
func (r *renderer) writeTotalLine(f report) {
	cols, _, sized := r.termSize()
	textCols := []string{"TIME"}
	l := r.fitColumns(textCols, ifaceNumbers, false, false, r.cumulative, cols)
	if r.headed && r.staleHead {
		// The units changed: write the lines above the total line again.
		up := 1
		if r.hinted {
			up++
		}
		fmt.Fprintf(&r.buf, "\r"+escUpFmt+escClearDown, up+1)
	}
	if !r.headed || r.staleHead {
		if !r.headed {
			r.buf.WriteString(escHideCursor + "\r" + escClearLine) // as in redraw, and over the waiting line
		}
		r.buf.WriteString(clipIf(r.header(f, cols), cols, sized) + "\n")
		if r.hinted = r.keys; r.keys {
			r.buf.WriteString(clipIf(r.keyHint(f.mode, cols, false), cols, sized) + "\n")
		}
		r.buf.WriteString(clipIf(r.row(l, ifaceNumbers, textCols, ifaceNumbers), cols, sized) + "\n")
		r.staleHead, r.headed = false, true
	}
	r.onScreen = true
	line := r.row(l, ifaceNumbers, []string{f.at.Format("15:04:05")}, r.cells(f.mode, f.rows[0], f.elapsed))
	r.buf.WriteString("\r" + clipIf(line, cols, sized) + escClearLine)
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

// rateSize formats bytes per second in the renderer's units: "1.5 MiB/s",
// or with --units bits "12.0 Mibit/s".
func (r *renderer) rateSize(bytesPerSecond float64) string {
	return r.size(bytesPerSecond, r.bits) + "/s"
}

// size formats a number of bytes, in bits if bits: "512 B", "1.5 MiB",
// "12.0 Mibit", at most 999.9 of a unit but the first. Volumes are always bytes, as iftop shows them: --units
// bits is for rates, which links are sold in.
func (r *renderer) size(bytes float64, bits bool) string {
	base, units := r.ladder(bits)
	v := bytes
	if bits {
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
	// 1000.0 KiB and up is 1.0 MiB: a value never fills its column
	// (width), so a space always parts it from the one before.
	if v >= 999.95 && i < len(units)-1 {
		v /= base
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + units[i]
}

// ladder returns the step between units and their names.
func (r *renderer) ladder(bits bool) (base float64, units []string) {
	switch {
	case r.si && bits:
		return 1000, []string{"bit", "kbit", "Mbit", "Gbit", "Tbit", "Pbit"}
	case r.si:
		return 1000, []string{"B", "kB", "MB", "GB", "TB", "PB"}
	case bits:
		return 1024, []string{"bit", "Kibit", "Mibit", "Gibit", "Tibit", "Pibit"}
	}
	return 1024, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
}
