package main

// Output rules. Data goes to stdout and nothing else does: diagnostics go to
// stderr as one line "netuse: what failed: why", lowercase, without a final
// period, the failing input quoted. A report's output is built in a buffer
// and written with one Write, so a reader never sees half an interval. With
// --json, stdout holds NDJSON records and nothing else. Off a terminal no
// escape sequence is ever written. The renderer formats; it never measures.
//
// A report's way out, each step in the next file:
//
//	render.go             renderer.render: the report's rows noted in the ledger
//	render_ledger.go      every row of the run, with its totals
//	render_prometheus.go  --textfile, if asked for, from the ledger
//	render.go             renderer.draw: the rows the view shows, then one sink
//	render_order.go       the rows in order, and --top
//	render_table.go       the table (render_columns.go its columns, render_units.go its units),
//	render_json.go        or NDJSON (render_json_fast.go: conn's records),
//	render_prometheus.go  or Prometheus's text (metrics.go: the families)
//	render.go             renderer.flush: one Write

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
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

// attribution returns the bytes credited to a process, of every row
// before a view filtered or grouped them, and their share of the bytes
// captured (1 when nothing was captured).
func (rep report) attribution() (uint64, float64) {
	n := rep.capture.attributed
	all := rep.capture.rxBytes + rep.capture.txBytes
	if all == 0 {
		return n, 1
	}
	return n, float64(n) / float64(all)
}

// sink writes reports in one form, and keeps what that form needs from
// one report to the next: the table (render_table.go), NDJSON
// (render_json.go) or Prometheus's text (render_prometheus.go).
type sink interface {
	// shown is how many of a report's first rows the sink shows (0: all),
	// the only ones that need be in order; ok is false if it shows none.
	shown(top int) (first int, ok bool)
	// waiting appends what says, before the first report, when it comes.
	waiting(b *bytes.Buffer, m mode, first time.Time)
	// write appends rep, its rows in ord's order and cut to --top.
	write(b *bytes.Buffer, rep report, ord order)
	// close appends what leaves the output as it was found; redraw, if
	// not nil, appends the last report again.
	close(b *bytes.Buffer, redraw func())
}

// renderer takes each report to the one sink of the run: it keeps the
// run's rows (the ledger), orders them as --sort and the keys say, and
// writes what the sink made with one Write.
type renderer struct {
	// How the output was asked for: newRenderer's arguments, and what
	// newOutput, run and tests set before the first report. The sink is
	// made of them when first needed (sinkOf).
	w        io.Writer
	json     bool                             // NDJSON
	prom     bool                             // --format prometheus: the metrics of the run's rows
	live     bool                             // a table redrawn in place on a terminal
	tty      bool                             // stdout is a terminal (live or not), and this is no NDJSON
	bits, si bool                             // the table's first units, as --units and --si chose them
	keys     bool                             // keys are read (keys.go): the table names them
	termSize func() (cols, rows int, ok bool) // the terminal's columns and rows, or ok false; live only
	textfile string                           // --textfile: the file the metrics go to each report; "" for none

	// mu guards every field below, and the sink: the keys goroutine
	// (keys.go) changes the order and redraws while the run loop renders.
	mu       sync.Mutex
	out      sink
	buf      bytes.Buffer
	ledger   *ledger // every row shown so far, for the totals view, the metrics and the summary
	order    order   // how rows are ordered, as --sort and the keys chose
	wrote    bool    // something was written: the waiting line, or a report
	started  bool    // a report was written
	closed   bool    // close was called
	last     report  // the last report written, for a key to redraw
	lastOpts options
}

func newRenderer(w io.Writer, json, live, bits, si bool) *renderer {
	return &renderer{w: w, json: json, live: live && !json, bits: bits, si: si, ledger: newLedger()}
}

// sinkOf returns the run's sink, made the first time.
func (r *renderer) sinkOf() sink {
	if r.out == nil {
		switch {
		case r.prom:
			r.out = &promSink{ledger: r.ledger}
		case r.json:
			r.out = &jsonSink{}
		default:
			r.out = &table{live: r.live, tty: r.tty, termSize: r.termSize, units: units{bits: r.bits, si: r.si}, keys: r.keys}
		}
	}
	return r.out
}

// render writes one report: its rows noted in the ledger, --textfile
// written, then the report as the sink writes it.
func (r *renderer) render(rep report, o options) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ledger.note(rep.seq, rep.rows)
	if r.textfile != "" {
		if err := writeTextfile(r.textfile, rep.mode, r.ledger.all()); err != nil {
			return fmt.Errorf("--textfile %q: %w", r.textfile, err)
		}
	}
	r.buf.Reset()
	r.draw(rep, o)
	return r.flush()
}

// draw appends rep to r.buf as the sink writes it, its rows those of the
// view the keys chose (in the totals view every row of the run), sorted
// and cut as o and the keys say.
func (r *renderer) draw(rep report, o options) {
	r.last, r.lastOpts = rep, o
	if r.order.column == "" {
		r.order.column = o.sort
	}
	s := r.sinkOf()
	if first, ok := s.shown(o.top); ok {
		if r.order.totals {
			rep.rows = r.ledger.all()
		}
		rep.rows = slices.Clone(rep.rows)
		sortRows(rep.rows, r.order, rep.mode, first)
		rep.cutTop(o.top)
	}
	s.write(&r.buf, rep, r.order)
	r.started = true
}

// waiting shows, where the sink does (a terminal), when the first report
// comes, at first.
func (r *renderer) waiting(m mode, first time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf.Reset()
	r.sinkOf().waiting(&r.buf, m, first)
	if r.buf.Len() == 0 {
		return nil
	}
	r.wrote = true
	return r.flush()
}

// flush writes what r.buf holds, with one Write.
func (r *renderer) flush() error {
	if _, err := r.w.Write(r.buf.Bytes()); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	return nil
}

// close leaves the output as it was found: on a terminal, the cursor
// shown, on a new line. Calling it again does nothing.
func (r *renderer) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closeLocked()
}

func (r *renderer) closeLocked() {
	if r.closed {
		return
	}
	r.closed = true
	var redraw func()
	if r.started {
		redraw = func() { r.draw(r.last, r.lastOpts) }
	}
	r.buf.Reset()
	r.sinkOf().close(&r.buf, redraw)
	if r.buf.Len() > 0 {
		r.w.Write(r.buf.Bytes()) // as netuse ends: nothing to do if it fails
	}
}

// writeSummary writes the summary of a run that began at start and ended
// at end, after seq intervals: in NDJSON one record of type "summary" per
// row, in a table a block of its own below the last report (sar's
// "Average:"); the metrics of the last report are the run's already.
// Nothing after a single interval, which is the whole run already (cron's
// one-shots stay one record a row), or none.
func (r *renderer) writeSummary(m mode, start, end time.Time, seq int, ifaces []string, o options) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.started || seq < 2 {
		return nil
	}
	rep := report{mode: m, seq: seq, at: end, elapsed: end.Sub(start), interval: end.Sub(start), rows: r.ledger.summary(), ifaces: ifaces, by: o.by, summary: true}
	r.closeLocked() // a live table's summary is a block below it
	ord := r.order
	ord.totals = true
	sortRows(rep.rows, ord, m, o.top)
	rep.cutTop(o.top)
	r.buf.Reset()
	r.sinkOf().write(&r.buf, rep, ord)
	if r.buf.Len() == 0 {
		return nil
	}
	return r.flush()
}

// size formats a number of bytes in r's units: netuse history's table
// holds a renderer for its units (history_cmd.go).
func (r *renderer) size(bytes float64, bits bool) string {
	return units{bits: r.bits, si: r.si}.size(bytes, bits)
}
