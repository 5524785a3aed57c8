package main

// Output rules. Data goes to stdout and nothing else does: diagnostics go to
// stderr as one line "netuse: what failed: why", lowercase, without a final
// period, the failing input quoted. A report's output is built in a buffer
// and written with one Write, so a reader never sees half an interval. With
// --json, stdout holds NDJSON records and nothing else. Off a terminal no
// escape sequence is ever written. The renderer formats; it never measures.
//
// A report's way out, each step in the next file (docs/development.md
// follows it from the ring, and TestWays holds the calls to its order):
//
//	render.go             renderer.render takes the report,
//	render_ledger.go      which notes its rows among every row of the run;
//	render_prometheus.go  --textfile, if asked for, from those; then one
//	                      sink writes it: Prometheus's text,
//	metrics.go            (the metric families, serve's too)
//	render_json.go        or NDJSON,
//	render_json_fast.go   (conn's records, by hand)
//	render_table.go       or the table;
//	render_order.go       each sink has the rows it shows in order first,
//	render_columns.go     the table lays them out in its columns,
//	render_units.go       their numbers in its units.
//
// render.go then writes what the sink made with one Write.

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// oneLine joins an error's lines, for the one line a diagnostic is:
// yaml's errors run over several.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

// sink writes reports in one form, and keeps what that form needs from
// one report to the next: the table (render_table.go), NDJSON
// (render_json.go) or Prometheus's text (render_prometheus.go).
type sink interface {
	// waiting appends what says, before the first report, when it comes.
	waiting(b *bytes.Buffer, m mode, first time.Time)
	// write appends rep, its rows as v shows them (rowView.arrange).
	write(b *bytes.Buffer, rep report, v rowView)
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
			r.out = &promSink{}
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
	run := r.ledger.note(rep.seq, rep.rows, r.prom || r.order.totals || r.textfile != "")
	if r.textfile != "" {
		if err := writeTextfile(r.textfile, rep.mode, run); err != nil {
			return fmt.Errorf("--textfile %q: %w", r.textfile, err)
		}
	}
	r.buf.Reset()
	r.drawRun(rep, run, o)
	return r.flush()
}

// draw appends rep to r.buf as the sink writes it: again, after a key.
func (r *renderer) draw(rep report, o options) {
	var run []usage
	if r.prom || r.order.totals {
		run = r.ledger.all()
	}
	r.drawRun(rep, run, o)
}

// drawRun appends rep to r.buf as the sink writes it, its rows as the
// view the keys chose shows them; run is every row of the run, if the
// view or the sink needs it.
func (r *renderer) drawRun(rep report, run []usage, o options) {
	r.last, r.lastOpts = rep, o
	if r.order.column == "" {
		r.order.column = o.sort
	}
	r.sinkOf().write(&r.buf, rep, rowView{order: r.order, top: o.top, run: run})
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
	v := rowView{order: r.order, top: o.top, run: rep.rows}
	v.totals = true
	r.buf.Reset()
	r.sinkOf().write(&r.buf, rep, v)
	if r.buf.Len() == 0 {
		return nil
	}
	return r.flush()
}
