package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// netuse history's two outputs: JSON records (historyRecord, the
// contract, in history_cmd.go) and the table.

// writeHistoryJSON writes one historyRecord a line.
func writeHistoryJSON(w io.Writer, h historyOptions, rows []historyRow) error {
	enc := json.NewEncoder(w)
	for _, r := range rows {
		rec := historyRecord{Schema: historyJSON, From: r.from.Format(time.RFC3339), To: r.to.Format(time.RFC3339),
			RxBytes: r.t.rxBytes, TxBytes: r.t.txBytes, RxPackets: r.t.rxPackets, TxPackets: r.t.txPackets}
		for _, by := range h.by {
			switch by {
			case "program":
				rec.Program = &r.key.name
				if r.reason != "" {
					rec.Reason = &r.reason
				}
			case "user":
				rec.User = &r.key.user
			case "container":
				rec.Container = &r.key.container
			case "iface":
				rec.Iface = &r.key.name
			case "reason":
				rec.Reason = &r.key.name
			}
		}
		if err := enc.Encode(rec); err != nil {
			return err
		}
	}
	return nil
}

// historyColumn is each --by key's column.
var historyColumn = map[string]string{"program": "PROGRAM", "user": "USER", "container": "CONTAINER", "iface": "IFACE", "reason": "REASON"}

// bucketLayout is how the table writes a bucket's start.
var bucketLayout = [numLevels]string{"2006-01-02 15:04", "2006-01-02 15:04", "2006-01-02", "2006-01"}

// writeHistoryTable writes the rows as a table: a line that says the span,
// then a row per key (per bucket and key with --every) and the total.
func writeHistoryTable(w io.Writer, h historyOptions, rows []historyRow, from, to time.Time) error {
	var head []string
	if h.every < numLevels {
		head = append(head, strings.ToUpper(levelName[h.every]))
		if h.every == level5m {
			head[0] = "5 MIN"
		}
	}
	for _, by := range h.by {
		head = append(head, historyColumn[by])
	}
	head = append(head, "RX", "TX", "TOTAL")
	table := [][]string{head}
	var sum traffic
	for _, r := range rows {
		var line []string
		if h.every < numLevels {
			line = append(line, r.from.Format(bucketLayout[h.every]))
		}
		for _, by := range h.by {
			v := r.key.name
			switch by {
			case "user":
				v = r.key.user
			case "container":
				v = r.key.container
			}
			if v == "" {
				v = "-"
			}
			line = append(line, v)
		}
		line = append(line, h.units.size(float64(r.t.rxBytes), false), h.units.size(float64(r.t.txBytes), false), h.units.size(float64(r.t.rxBytes+r.t.txBytes), false))
		table = append(table, line)
		sum.add(r.t)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s to %s\n", from.Format(timeLayout), to.Format(timeLayout))
	if len(rows) == 0 {
		if h.none != "" {
			b.WriteString(h.none + "\n")
		} else {
			b.WriteString("no traffic kept in that span\n")
		}
	} else {
		total := make([]string, len(head))
		total[0] = "total"
		if h.top > 0 {
			total[0] = "total of these rows"
		}
		n := len(head)
		total[n-3], total[n-2], total[n-1] = h.units.size(float64(sum.rxBytes), false), h.units.size(float64(sum.txBytes), false), h.units.size(float64(sum.rxBytes+sum.txBytes), false)
		table = append(table, total)
		widths := make([]int, len(head))
		for _, line := range table {
			for i, v := range line {
				widths[i] = max(widths[i], len(v))
			}
		}
		for _, line := range table {
			for i, v := range line {
				if i >= n-3 {
					b.WriteString(strings.Repeat(" ", widths[i]-len(v)) + v) // numbers to the right
				} else {
					b.WriteString(v + strings.Repeat(" ", widths[i]-len(v)))
				}
				if i < n-1 {
					b.WriteString("  ")
				}
			}
			b.WriteString("\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
