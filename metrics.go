package main

import (
	"io"
	"maps"
	"runtime"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Prometheus's text format, for --format prometheus on stdout and
// --textfile for node_exporter's textfile collector: the metrics of every
// row the run has shown (the renderer's ledger), so that a counter never
// goes down while netuse runs: an interface that went away and a process
// that exited keep their last totals. No timestamps: the textfile
// collector drops a file that has them.
//
// Counters are the totals since netuse started: from a one-shot run
// (--count 1) they cover its one interval; from a --state run they are
// the state file's totals since its first run, which go on from run to
// run. Their help says so.

// metricsCollector is one frame's metrics, made when gathered.
type metricsCollector struct {
	mode mode
	rows []usage // every row of the run, with its totals
}

// Describe sends nothing: the collector is unchecked, its series those of
// the rows.
func (metricsCollector) Describe(chan<- *prometheus.Desc) {}

var (
	metricHelpSuffix = " since netuse started, or with --state since the state file's first run: a one-shot run's cover its interval; a --state run's go on from run to run, across reboots and counter resets."

	ifaceDescs = [4]*prometheus.Desc{
		prometheus.NewDesc("netuse_interface_receive_bytes_total", "Bytes received by the interface"+metricHelpSuffix, []string{"device"}, nil),
		prometheus.NewDesc("netuse_interface_transmit_bytes_total", "Bytes sent by the interface"+metricHelpSuffix, []string{"device"}, nil),
		prometheus.NewDesc("netuse_interface_receive_packets_total", "Packets received by the interface"+metricHelpSuffix, []string{"device"}, nil),
		prometheus.NewDesc("netuse_interface_transmit_packets_total", "Packets sent by the interface"+metricHelpSuffix, []string{"device"}, nil),
	}
	edgeDescs = [4]*prometheus.Desc{
		prometheus.NewDesc("netuse_edge_receive_bytes_total", "Bytes received across the machine's edge interfaces"+metricHelpSuffix, nil, nil),
		prometheus.NewDesc("netuse_edge_transmit_bytes_total", "Bytes sent across the machine's edge interfaces"+metricHelpSuffix, nil, nil),
		prometheus.NewDesc("netuse_edge_receive_packets_total", "Packets received across the machine's edge interfaces"+metricHelpSuffix, nil, nil),
		prometheus.NewDesc("netuse_edge_transmit_packets_total", "Packets sent across the machine's edge interfaces"+metricHelpSuffix, nil, nil),
	}
	processDescs      = processDescsBy([]string{"groupname"})
	unattributedDescs = [2]*prometheus.Desc{
		prometheus.NewDesc("netuse_unattributed_receive_bytes_total", "Bytes received that no process could be credited with, by why"+metricHelpSuffix, []string{"reason"}, nil),
		prometheus.NewDesc("netuse_unattributed_transmit_bytes_total", "Bytes sent that no process could be credited with, by why"+metricHelpSuffix, []string{"reason"}, nil),
	}
	buildInfoDesc = prometheus.NewDesc("netuse_build_info", "netuse's version and the Go it was built with; always 1.", []string{"version", "goversion"}, nil)
)

// processDescsBy returns the process families with these labels: the
// group's keys (--by), by default the program's name alone (groupname).
func processDescsBy(labels []string) [4]*prometheus.Desc {
	help := ", exited ones included" + metricHelpSuffix
	return [4]*prometheus.Desc{
		prometheus.NewDesc("netuse_process_receive_bytes_total", "Bytes received by the processes of the group (by name unless --by says otherwise)"+help, labels, nil),
		prometheus.NewDesc("netuse_process_transmit_bytes_total", "Bytes sent by the processes of the group (by name unless --by says otherwise)"+help, labels, nil),
		prometheus.NewDesc("netuse_process_receive_packets_total", "Packets received by the processes of the group (by name unless --by says otherwise)"+help, labels, nil),
		prometheus.NewDesc("netuse_process_transmit_packets_total", "Packets sent by the processes of the group (by name unless --by says otherwise)"+help, labels, nil),
	}
}

// Collect sends the metrics of the rows.
func (c metricsCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(buildInfoDesc, prometheus.GaugeValue, 1, versionLine()[len("netuse "):], runtime.Version())
	send := func(descs [4]*prometheus.Desc, t traffic, labels ...string) {
		for i, v := range []uint64{t.rxBytes, t.txBytes, t.rxPackets, t.txPackets} {
			ch <- prometheus.MustNewConstMetric(descs[i], prometheus.CounterValue, float64(v), labels...)
		}
	}
	switch c.mode {
	case modeTotal:
		var sum traffic
		for _, u := range c.rows {
			sum.add(u.total)
		}
		send(edgeDescs, sum)
	case modeIface:
		for _, u := range c.rows {
			send(ifaceDescs, u.total, u.name)
		}
	default:
		byName := map[string]traffic{}
		byReason := map[string]traffic{}
		var groups []usage
		for _, u := range c.rows {
			switch {
			case u.group != nil && u.group.key.reasonCell() != "":
				t := byReason[reasonKey[u.group.key.reason]]
				t.add(u.total)
				byReason[reasonKey[u.group.key.reason]] = t
			case u.group != nil:
				groups = append(groups, u)
			case u.proc == nil:
			case u.proc.pid == 0 && u.proc.reason != attributed:
				t := byReason[reasonKey[u.proc.reason]]
				t.add(u.total)
				byReason[reasonKey[u.proc.reason]] = t
			default:
				t := byName[u.name]
				t.add(u.total)
				byName[u.name] = t
			}
		}
		for _, name := range slices.Sorted(maps.Keys(byName)) {
			send(processDescs, byName[name], name)
		}
		if len(groups) > 0 {
			// --by: the groups' labels are serve's for the same keys.
			by := groups[0].group.by
			labels := make([]string, len(by))
			for i, b := range by {
				labels[i] = serveLabel[b]
			}
			descs := processDescsBy(labels)
			values := make([]string, len(by))
			for _, u := range groups {
				for i, b := range by {
					values[i] = u.group.key.value(b)
					if u.group.key == (groupKey{}) && u.name == "(other)" {
						values[i] = "(other)"
					}
				}
				send(descs, u.total, values...)
			}
		}
		for _, reason := range slices.Sorted(maps.Keys(byReason)) {
			t := byReason[reason]
			ch <- prometheus.MustNewConstMetric(unattributedDescs[0], prometheus.CounterValue, float64(t.rxBytes), reason)
			ch <- prometheus.MustNewConstMetric(unattributedDescs[1], prometheus.CounterValue, float64(t.txBytes), reason)
		}
	}
}

// gatherer returns a registry of the metrics of rows, every row of the run.
func gatherer(m mode, rows []usage) prometheus.Gatherer {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metricsCollector{mode: m, rows: rows})
	return reg
}

// writeMetrics writes the metrics of rows in the classic text format.
func writeMetrics(w io.Writer, m mode, rows []usage) error {
	mfs, err := gatherer(m, rows).Gather()
	if err != nil {
		return err
	}
	for _, mf := range mfs {
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
	return prometheus.WriteToTextfile(path, gatherer(m, rows))
}
