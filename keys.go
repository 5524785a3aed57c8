package main

import "slices"

// Keys while a table is live. The terminal is put in cbreak mode (keys
// come one at a time, not echoed, Ctrl-C still interrupts) for as long as
// netuse draws on it, and put back on every way out (keys_linux.go). Piped
// output and --json never read stdin.
//
//	q          quit, as Ctrl-C does: the partial interval, then the summary
//	s          sort by the next column (proc: total, rx, tx, name, pid)
//	r          reverse the order
//	t          totals since the start (every row of the run, idle and exited
//	           processes too, sorted by them), or back to this interval
//	u          units: bytes, bytes in powers of 1000, bits, bits in powers of 1000
//	↑ ↓        scroll a table taller than the screen by a row
//	PgUp PgDn  scroll it by a screen of rows
//	Home End   its first rows, its last rows
//
// Other keys do nothing. The cursor and page keys come as escape
// sequences (keyDecoder). When netuse ends, the last report is drawn again
// without the line that names the keys (table.close).

// key is a key pressed: a byte the terminal sent, or one of the keys
// below that it sends as an escape sequence.
type key int

const (
	keyUp key = 0x100 + iota
	keyDown
	keyPgUp
	keyPgDn
	keyHome
	keyEnd
)

// seqKeys are the escape sequences of the keys that scroll, as xterm and
// the Linux console send them: ECMA-48's CSI (ESC [) with a final byte or
// a number and "~", or SS3 (ESC O) in the terminal's application cursor
// mode. Home and End have a sequence of each kind.
var seqKeys = map[string]key{
	"\x1b[A": keyUp, "\x1bOA": keyUp,
	"\x1b[B": keyDown, "\x1bOB": keyDown,
	"\x1b[5~": keyPgUp, "\x1b[6~": keyPgDn,
	"\x1b[H": keyHome, "\x1bOH": keyHome, "\x1b[1~": keyHome, "\x1b[7~": keyHome,
	"\x1b[F": keyEnd, "\x1bOF": keyEnd, "\x1b[4~": keyEnd, "\x1b[8~": keyEnd,
}

// maxSeq bounds an escape sequence: past it, bytes that never end one
// are dropped rather than kept.
const maxSeq = 16

// keyDecoder turns the bytes a terminal sends into keys. A sequence may
// come over more than one read, so it keeps the one begun. A sequence it
// does not know (F1, Ctrl-↑) is no key: its bytes are not letters. An ESC
// followed by neither "[" nor "O" is the Escape key, and does nothing.
type keyDecoder struct {
	seq []byte // the escape sequence begun, from its ESC; empty: none
}

// feed takes the next byte and returns the key it ends, if any.
func (d *keyDecoder) feed(b byte) (k key, ok bool) {
	const esc = 0x1b
	switch {
	case len(d.seq) == 0 && b == esc:
		d.seq = append(d.seq, b)
		return 0, false
	case len(d.seq) == 0:
		return key(b), true
	case len(d.seq) == 1 && (b == '[' || b == 'O'):
		d.seq = append(d.seq, b)
		return 0, false
	case len(d.seq) == 1:
		d.seq = d.seq[:0] // the Escape key, then b
		return d.feed(b)
	}
	d.seq = append(d.seq, b)
	// CSI's final byte is in 0x40-0x7e, after parameters and
	// intermediates below it; SS3 has one byte after the O.
	if b >= 0x40 && b <= 0x7e || d.seq[1] == 'O' {
		k, ok = seqKeys[string(d.seq)]
		d.seq = d.seq[:0]
		return k, ok
	}
	if len(d.seq) >= maxSeq {
		d.seq = d.seq[:0]
	}
	return 0, false
}

// key applies a key pressed while the table is live and redraws the last
// report with it: s, r and t change the order (render_order.go), the
// others are the table's (table.key). It reports whether the key asks
// netuse to quit.
func (r *renderer) key(k key) (quit bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.last.mode
	switch k {
	case 'q', 'Q':
		return true
	case 's', 'S':
		cols := sortColumns(m)
		if r.last.by != nil {
			cols = slices.DeleteFunc(cols, func(c string) bool { return c == "pid" }) // groups have no pid
		}
		i := slices.Index(cols, r.order.sortColumn(m))
		r.order.column = cols[(i+1)%len(cols)]
	case 'r', 'R':
		r.order.reverse = !r.order.reverse
	case 't', 'T':
		r.order.totals = !r.order.totals
	default:
		if t, ok := r.sinkOf().(*table); !ok || !t.key(k) {
			return false
		}
	}
	if r.started && !r.closed {
		r.buf.Reset()
		r.draw(r.last, r.lastOpts)
		r.flush()
	}
	return false
}

// maxScroll is End's scroll: past any table's rows, which the table's
// redraw brings back to its last screen of rows.
const maxScroll = 1 << 30
