package main

import (
	"strconv"
	"strings"
	"time"
)

// The table's units: rates in bytes or bits (--units), in powers of 1024
// or 1000 (--si), which the u key cycles through. NDJSON and the metrics
// carry plain numbers.

// units are the table's units.
type units struct {
	bits bool // rates in bits instead of bytes
	si   bool // powers of 1000 instead of 1024
}

// next is the u key's next units: bytes, bytes in powers of 1000, bits,
// bits in powers of 1000, and round again.
func (un units) next() units {
	return units{bits: un.bits != un.si, si: !un.si}
}

// names says the units in the table's header: what rates and volumes are
// in, and the step between units.
func (un units) names() (unit, base string) {
	switch {
	case un.bits && un.si:
		return "bit/s for rates, bytes for volumes", "1 kbit = 1000 bit"
	case un.bits:
		return "bit/s for rates, bytes for volumes", "1 Kibit = 1024 bit"
	case un.si:
		return "bytes", "1 kB = 1000 B"
	}
	return "bytes", "1 KiB = 1024 B"
}

// rate is n bytes (or packets) over d, per second; 0 over no time.
func rate(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// cells formats u's numbers in the order of the mode's number columns
// (procNumbers, ifaceNumbers).
func (un units) cells(m mode, u usage, elapsed time.Duration) []string {
	rx := un.rateSize(rate(u.interval.rxBytes, elapsed))
	tx := un.rateSize(rate(u.interval.txBytes, elapsed))
	rxTotal, txTotal := un.size(float64(u.total.rxBytes), false), un.size(float64(u.total.txBytes), false)
	if m.captures() {
		return []string{rx, tx, rxTotal, txTotal}
	}
	return []string{rx, tx,
		strconv.FormatFloat(rate(u.interval.rxPackets, elapsed), 'f', 0, 64),
		strconv.FormatFloat(rate(u.interval.txPackets, elapsed), 'f', 0, 64),
		rxTotal, txTotal,
	}
}

// rateSize formats bytes per second: "1.5 MiB/s", or with --units bits
// "12.0 Mibit/s".
func (un units) rateSize(bytesPerSecond float64) string {
	return un.size(bytesPerSecond, un.bits) + "/s"
}

// size formats a number of bytes, in bits if bits: "512 B", "1.5 MiB",
// "12.0 Mibit", at most 999.9 of a unit but the first. Volumes are always
// bytes, as iftop shows them: --units bits is for rates, which links are
// sold in.
func (un units) size(bytes float64, bits bool) string {
	base, names := un.ladder(bits)
	v := bytes
	if bits {
		v *= 8
	}
	i := 0
	for v >= base && i < len(names)-1 {
		v /= base
		i++
	}
	if i == 0 {
		return strconv.FormatFloat(v, 'f', 0, 64) + " " + names[0]
	}
	// 1000.0 KiB and up is 1.0 MiB: a value never fills its column
	// (width), so a space always parts it from the one before.
	if v >= 999.95 && i < len(names)-1 {
		v /= base
		i++
	}
	return strconv.FormatFloat(v, 'f', 1, 64) + " " + names[i]
}

// ladder returns the step between units and their names.
func (un units) ladder(bits bool) (base float64, names []string) {
	switch {
	case un.si && bits:
		return 1000, []string{"bit", "kbit", "Mbit", "Gbit", "Tbit", "Pbit"}
	case un.si:
		return 1000, []string{"B", "kB", "MB", "GB", "TB", "PB"}
	case bits:
		return 1024, []string{"bit", "Kibit", "Mibit", "Gibit", "Tibit", "Pibit"}
	}
	return 1024, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
}

// widths are the widths of the number columns cols (width).
func (un units) widths(cols []string) []int {
	ws := make([]int, len(cols))
	for i, c := range cols {
		ws[i] = un.width(c)
	}
	return ws
}

// width of a number column: enough for the widest value the unit ladder
// gives ("999.9 Gibit/s", size) and a space before it, so that the
// columns never move from one report to the next.
func (un units) width(column string) int {
	if strings.Contains(column, "pkt") {
		return 9
	}
	rate := strings.HasSuffix(column, "/s")
	_, names := un.ladder(rate && un.bits)
	longest := 0
	for _, n := range names {
		longest = max(longest, len(n))
	}
	if rate {
		return len("1023.9 ") + longest + len("/s")
	}
	return len("1023.9 ") + longest + len(" ")
}
