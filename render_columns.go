package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The table's columns: which a mode has, their cells, their widths (fixed,
// or growing to the widest value shown), which of them a narrow terminal
// drops, and a row's cells aligned in them.

// columnLines lays out the rows drawn of rep in their columns, in cols
// characters (0: as wide as they grew): the line of the columns' names,
// a line a row, and iface's "(all)". With totalsFirst (the totals view,
// the summary) the totals are the columns most needed after those never
// dropped.
func (t *table) columnLines(rep report, drawn []usage, totalsFirst bool, cols int) []string {
	textCols, allNums := textColumns(rep), ifaceNumbers
	if rep.mode.captures() {
		allNums = procNumbers
	}
	texts := make([][]string, len(drawn))
	for i, u := range drawn {
		texts[i] = textCells(rep, u)
	}
	t.grow(rep, textCols, texts)
	tail := rep.mode.captures() && rep.by == nil // the CONTAINER column
	l := t.fitColumns(textCols, allNums, t.units.widths(allNums), tail, rep.by != nil, totalsFirst, cols)
	lines := make([]string, 0, len(drawn)+2)
	lines = append(lines, t.row(l, textCols, allNums)+tailCell(l, tail, "CONTAINER"))
	for i, u := range drawn {
		container := ""
		if u.proc != nil && u.proc.foreign {
			ns := fmt.Sprintf("net:[%d]", u.proc.netns)
			if u.proc.nsName != "" {
				ns = "netns:" + visible(u.proc.nsName, textWidth["NETNS"])
			}
			container = ns + " " + visible(u.proc.cgroup, maxCgroup)
		}
		lines = append(lines, t.row(l, texts[i], t.units.cells(rep.mode, u, rep.elapsed))+tailCell(l, tail, container))
	}
	if rep.all != nil {
		lines = append(lines, t.row(l, []string{rep.all.name, ""}, t.units.cells(rep.mode, *rep.all, rep.elapsed)))
	}
	return lines
}

// totalColumns lays out the live total line, the time of the interval
// first, and the line of its columns' names, in cols characters.
func (t *table) totalColumns(rep report, totalsFirst bool, cols int) (names, line string) {
	textCols := []string{"TIME"}
	l := t.fitColumns(textCols, ifaceNumbers, t.units.widths(ifaceNumbers), false, false, totalsFirst, cols)
	return t.row(l, textCols, ifaceNumbers),
		t.row(l, []string{rep.at.Format("15:04:05")}, t.units.cells(rep.mode, rep.rows[0], rep.elapsed))
}

// columns of the tables: text columns on the left, numbers on the right.
var (
	ifaceNumbers = []string{"RX/s", "TX/s", "RX pkt/s", "TX pkt/s", "RX total", "TX total"}
	procText     = []string{"PID", "USER", "PROGRAM"}
	procNumbers  = []string{"RX/s", "TX/s", "RX total", "TX total"}
)

// Widths of the text columns, in characters: fixed, so that no column
// moves from one report to the next or within a run; a longer value is cut, its last
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

// groupColumn is each --by key's column in the table.
var groupColumn = map[string]string{"program": "PROGRAM", "user": "USER", "container": "CONTAINER", "netns": "NETNS", "remote": "REMOTE"}

// textColumns returns the text columns of rep's rows.
func textColumns(rep report) []string {
	switch {
	case rep.by != nil:
		cols := make([]string, len(rep.by))
		for i, b := range rep.by {
			cols[i] = groupColumn[b]
		}
		return cols
	case rep.mode == modeTotal:
		return []string{"TOTAL"}
	case rep.mode == modeProc:
		return procText
	case rep.mode == modeConn:
		return connText
	}
	return []string{"IFACE", "STATE"}
}

// textCells returns u's text columns, safe to print and cut to their widths.
func textCells(rep report, u usage) []string {
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
	case rep.mode == modeTotal:
		return []string{visible(u.name, textWidth["TOTAL"])}
	case rep.mode == modeIface:
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
	if rep.mode != modeConn {
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
func (t *table) textWidth(col string) int {
	if w, ok := t.widths[col]; ok {
		return w
	}
	return textWidth[col]
}

// grow widens the growing columns to the widest of texts, the text
// cells of the rows drawn, up to growWidth; conn's STATE is as wide as its
// longest common state.
func (t *table) grow(rep report, cols []string, texts [][]string) {
	if t.widths == nil {
		t.widths = map[string]int{}
	}
	if rep.mode == modeConn && rep.by == nil {
		t.widths["STATE"] = max(t.widths["STATE"], connStateWide)
	}
	for i, col := range cols {
		limit, ok := growWidth[col]
		if !ok {
			continue
		}
		w := t.textWidth(col)
		for _, cells := range texts {
			if w >= limit {
				break
			}
			w = max(w, min(utf8.RuneCountInString(cells[i]), limit))
		}
		t.widths[col] = w
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
	text     []int // the text columns shown, by index, in order
	width    []int // the width of each of them
	nums     []int // the number columns shown, by index, in order
	numWidth []int // the width of each number column, by index
	tail     int   // the last column, CONTAINER's, width: -1 not shown, 0 as wide as its values
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
// those never dropped. A number's width (numWidth, units.width) holds
// its widest value and a space before it.
func (t *table) fitColumns(textCols, numCols []string, numWidth []int, tail, groups, totalsFirst bool, cols int) layout {
	l := layout{numWidth: numWidth}
	if cols <= 0 {
		for i, c := range textCols {
			l.text, l.width = append(l.text, i), append(l.width, t.textWidth(c))
		}
		for i := range numWidth {
			l.nums = append(l.nums, i)
		}
		if !tail {
			l.tail = -1
		}
		return l
	}
	keepText, keepNum, keepTail, used := t.chooseColumns(textCols, numCols, numWidth, tail, groups, totalsFirst, cols)
	room := cols - used
	for i, c := range textCols {
		if !keepText[i] {
			continue
		}
		w := t.baseWidth(c)
		if extra := min(t.textWidth(c)-w, room); extra > 0 {
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
	for i := range numWidth {
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
func (t *table) baseWidth(col string) int {
	if _, grows := growWidth[col]; grows {
		return min(textWidth[col], t.textWidth(col))
	}
	return t.textWidth(col)
}

// chooseColumns is fitColumns' choice of columns: those never dropped,
// then the others most needed first, each if it fits in what room is
// left; used is the characters they take.
func (t *table) chooseColumns(textCols, numCols []string, numWidth []int, tail, groups, totalsFirst bool, cols int) (keepText, keepNum []bool, keepTail bool, used int) {
	keepText, keepNum = make([]bool, len(textCols)), make([]bool, len(numCols))
	used = -2 // the first text column has no space before it
	for i, c := range textCols {
		if groups || dropRank(c) < 0 {
			keepText[i], used = true, used+t.baseWidth(c)+2
		}
	}
	for i, c := range numCols {
		if dropRank(c) < 0 {
			keepNum[i], used = true, used+numWidth[i]
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
					cost, take = t.baseWidth(c)+2, func() { keepText[i] = true }
				}
			}
		}
		var nums []int
		for i, c := range numCols {
			if dropRank(c) == rank {
				cost, nums = cost+numWidth[i], append(nums, i)
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

// row aligns the text cells of the columns l shows left, each in its
// width, a longer one cut with "…", and their number cells right; texts
// and numbers hold the cells of every column, numCols names them.
func (t *table) row(l layout, texts, numbers []string) string {
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
		pad(&b, max(l.numWidth[i]-utf8.RuneCountInString(numbers[i]), 1))
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
