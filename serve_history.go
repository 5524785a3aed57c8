package main

import "fmt"

// The exporter's side of the history: serve opens the store as it starts
// and closes it as it ends (serve_exporter.go's openHistory and
// closeHistory); between, it hands the store each report, which writes
// every flush interval, and /api/v1/history has it write before it reads.

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

// historyReport hands one report to the store: the rows and counters of
// the interfaces --iface keeps, and the processes' rows; and writes if it
// is time.
func (e *exporter) historyReport(us []usage, cs []counter, procs []usage) {
	h := e.hist
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

// flushHistory writes what serve's reports counted since its last write
// (a minute's at most), so that the API answers up to the last report.
func (e *exporter) flushHistory() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hist != nil && len(e.hist.pending) > 0 {
		e.writeHistory()
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
