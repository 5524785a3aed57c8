package main

import "slices"

// Keys while a table is live. The terminal is put in cbreak mode (keys
// come one at a time, not echoed, Ctrl-C still interrupts) for as long as
// netuse draws on it, and put back on every way out (keys_linux.go). Piped
// output and --json never read stdin.
//
//	q        quit, as Ctrl-C does: the partial interval, then the summary
//	s        sort by the next column (proc: total, rx, tx, name, pid)
//	r        reverse the order
//	t        totals since the start (every row of the run, idle and exited
//	         processes too, sorted by them), or back to this interval
//	u        units: bytes, bytes in powers of 1000, bits, bits in powers of 1000
//
// Other keys do nothing.

// keyHint is the line under a live table that names the keys.
func (r *renderer) keyHint(m mode, cols int) string {
	view := "rates"
	if r.cumulative {
		view = "totals"
	}
	order := ""
	if r.reverse {
		order = ", reversed"
	}
	if m == modeTotal {
		return fitParts([]string{"keys: q quit", "u units"}, cols) // one row: nothing to sort
	}
	return fitParts([]string{"keys: q quit", "s sort (" + r.sortColumn(m) + order + ")", "r reverse", "t totals/rates (" + view + ")", "u units"}, cols)
}

// sortColumns are the columns s cycles through, first the mode's default.
func sortColumns(m mode) []string {
	if m.captures() {
		return []string{"total", "rx", "tx", "name", "pid"}
	}
	return []string{"name", "total", "rx", "tx"}
}

// sortColumn is the column rows are sorted by now.
func (r *renderer) sortColumn(m mode) string {
	if r.sortBy != "" {
		return r.sortBy
	}
	return sortColumns(m)[0]
}

// key applies a key pressed while the table is live and redraws the last
// frame with it. It reports whether the key asks netuse to quit.
func (r *renderer) key(b byte) (quit bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.last.mode
	switch b {
	case 'q', 'Q':
		return true
	case 's', 'S':
		cols := sortColumns(m)
		if r.last.by != nil {
			cols = slices.DeleteFunc(cols, func(c string) bool { return c == "pid" }) // groups have no pid
		}
		i := slices.Index(cols, r.sortColumn(m))
		r.sortBy = cols[(i+1)%len(cols)]
	case 'r', 'R':
		r.reverse = !r.reverse
	case 't', 'T':
		r.cumulative = !r.cumulative
	case 'u', 'U':
		// bytes -> bytes, SI -> bits -> bits, SI -> bytes
		r.bits, r.si = r.bits != r.si, !r.si
		r.staleHead = true
	default:
		return false
	}
	if r.started && !r.closed {
		r.buf.Reset()
		r.draw(r.last, r.lastOpts)
		r.flush()
	}
	return false
}
