package main

import (
	"bytes"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Prometheus's text format, for --format prometheus on stdout and
// --textfile for node_exporter's textfile collector: the metrics of every
// row the run has shown (the renderer's ledger), in the families of the
// contract (metrics.go).

// promSink writes --format prometheus: at each report, the metrics of
// every row of the run, which the ledger holds; the summary's are the
// last report's.
type promSink struct{}

func (s *promSink) waiting(*bytes.Buffer, mode, time.Time) {}

func (s *promSink) close(*bytes.Buffer, func()) {}

// write writes the metrics of every row of the run (v.run).
func (s *promSink) write(b *bytes.Buffer, rep report, v rowView) {
	if !rep.summary {
		writeMetrics(b, rep.mode, v.run) // a family of the contract always writes to a buffer
	}
}

// rowFamilies returns the metric families of rows, every row of the run:
// the machine's edge (total), each interface (iface), or each process or
// group of them and the traffic of none by why (proc, conn).
func rowFamilies(m mode, rows []usage) []*dto.MetricFamily {
	var fs families
	fs.add(famBuildInfo, []oneSeries{buildInfo()})
	switch m {
	case modeTotal:
		var sum traffic
		for _, u := range rows {
			sum.add(u.total)
		}
		fs.traffic(famEdge, []trafficSeries{{t: sum}})
	case modeIface:
		ts := make([]trafficSeries, len(rows))
		for i, u := range rows {
			ts[i] = trafficSeries{famInterface[0].pairs(u.name), u.total}
		}
		fs.traffic(famInterface, ts)
	default:
		processSeries(&fs, rows)
	}
	return fs.sorted()
}

// processSeries adds the process families of rows, each process's by its
// name or each group's by its keys, and the unattributed ones, by reason.
func processSeries(fs *families, rows []usage) {
	byName, byReason := map[string]traffic{}, map[reason]traffic{}
	var groups []usage
	for _, u := range rows {
		if why, ok := u.unattributed(); ok {
			t := byReason[why]
			t.add(u.total)
			byReason[why] = t
			continue
		}
		switch {
		case u.group != nil:
			groups = append(groups, u)
		case u.proc != nil:
			t := byName[u.name]
			t.add(u.total)
			byName[u.name] = t
		}
	}
	var ts []trafficSeries
	if len(groups) == 0 {
		for name, t := range byName {
			ts = append(ts, trafficSeries{famProcess[0].pairs(name), t})
		}
		fs.traffic(famProcess, ts)
	} else {
		// --by: the groups' labels are serve's for the same keys.
		fams, keys := processFamilies(groups[0].group.by)
		values := make([]string, len(keys))
		for _, u := range groups {
			for i, k := range keys {
				values[i] = u.group.key.value(k)
				if u.group.key == (groupKey{}) && u.name == "(other)" {
					values[i] = "(other)"
				}
			}
			ts = append(ts, trafficSeries{fams[0].pairs(values...), u.total})
		}
		fs.traffic(fams, ts)
	}
	var rx, tx []oneSeries
	for why, t := range byReason {
		l := famUnattributed[0].pairs(reasonKey[why])
		rx, tx = append(rx, oneSeries{l, float64(t.rxBytes)}), append(tx, oneSeries{l, float64(t.txBytes)})
	}
	fs.add(famUnattributed[0], rx)
	fs.add(famUnattributed[1], tx)
}

// writeMetrics writes the metrics of rows in the classic text format.
func writeMetrics(w io.Writer, m mode, rows []usage) error {
	for _, mf := range rowFamilies(m, rows) {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return err
		}
	}
	return nil
}

// writeTextfile replaces path with the metrics of rows, atomically: a
// temporary file in the same directory (whose name does not end in .prom,
// so that node_exporter never reads it half written), renamed over path.
func writeTextfile(path string, m mode, rows []usage) error {
	return prometheus.WriteToTextfile(path, prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return rowFamilies(m, rows), nil
	}))
}
