package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// The exporter's side: serve opens the store as it starts, hands it each
// report, and writes every flush interval and as it ends.

// openHistory opens serve's history at path: an error ends serve when
// another serve writes the file or its schema is newer; any other
// (a read-only directory) serve says and tries again at each flush.
func (e *exporter) openHistory(path string, keep [numLevels]time.Duration, now func() time.Time, boot string, stderr io.Writer) error {
	cs := slices.DeleteFunc(slices.Clone(e.sampler.cur), func(c counter) bool { return len(e.globs) > 0 && !matchAny(e.globs, c.name) })
	e.hist = newHistoryStore(path, now, boot, cs)
	e.hist.keep = keep // before open, which writes it
	e.stderr = stderr
	moved, err := e.hist.open()
	if errors.Is(err, errHistoryBusy) || errors.Is(err, errHistoryNewer) {
		e.hist = nil
		return err
	}
	e.historySaid(moved, err)
	return nil
}

// historySaid says on stderr that the file was moved aside, or that
// writing failed (once, until it works again), or that it works again.
func (e *exporter) historySaid(moved string, err error) {
	h := e.hist
	if moved != "" {
		fmt.Fprintf(e.stderr, "netuse: serve: history %q was damaged or not a history file: moved it to %q and began a new one\n", h.path, moved)
	}
	switch {
	case err != nil:
		h.writeErrors++
		if msg := oneLine(err); msg != h.lastErr {
			h.lastErr = msg
			fmt.Fprintf(e.stderr, "netuse: serve: %s; keeping the traffic in memory and trying again every %v (netuse_history_write_errors_total counts the failures)\n", msg, h.flush)
		}
	case h.lastErr != "":
		h.lastErr = ""
		fmt.Fprintf(e.stderr, "netuse: serve: history %q: writing again\n", h.path)
	}
}

// historyReport hands one report to the store, and writes if it is time.
func (e *exporter) historyReport(us []usage, procs []usage) {
	h := e.hist
	if h == nil {
		return
	}
	if len(e.globs) > 0 {
		us = slices.DeleteFunc(us, func(u usage) bool { return !matchAny(e.globs, u.name) })
	}
	cs := slices.DeleteFunc(slices.Clone(e.sampler.cur), func(c counter) bool { return len(e.globs) > 0 && !matchAny(e.globs, c.name) })
	h.addReport(us, cs, procs)
	if h.due() {
		e.writeHistory()
	}
}

// writeHistory writes what is pending, opening the file first if an
// earlier try could not.
func (e *exporter) writeHistory() {
	h := e.hist
	var moved string
	var err error
	if h.db == nil {
		h.lastFlush = h.now()
		moved, err = h.open()
	}
	if err == nil {
		err = h.write()
	}
	e.historySaid(moved, err)
}

// closeHistory takes a last report, writes what is pending and closes
// the file: it ends with the counters as serve ends.
func (e *exporter) closeHistory() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hist != nil {
		if e.err == nil {
			e.err = e.report()
		}
		e.writeHistory()
		e.hist.close()
	}
}

// historyFamilies adds the metrics of the history's writing.
func (e *exporter) historyFamilies(fs *families) {
	h := e.hist
	if h == nil {
		return
	}
	fs.add(famHistoryErrors, []oneSeries{{value: float64(h.writeErrors)}})
	last := 0.0
	if !h.lastWrite.IsZero() {
		last = float64(h.lastWrite.UnixMilli()) / 1000
	}
	fs.add(famHistoryWrite, []oneSeries{{value: last}})
}
