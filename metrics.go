package main

import (
	"runtime"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// netuse's metric families: the one contract of serve's /metrics, of
// --format prometheus and of --textfile. Each family is declared here
// once, with its type, its labels and its help; every output builds its
// families from these (families.add), so that a family says the same
// wherever it is read (TestMetricsContract holds the outputs to it).
//
// Every counter of traffic counts from when netuse started: an interface
// that went away and a process that exited keep their last totals, so
// that a counter never goes down while netuse runs. From a one-shot run
// (--count 1) they cover its one interval; from a --state run they are
// the state file's totals since its first run, which go on from run to
// run. No timestamps: the textfile collector drops a file that has them.

// family is one metric family of the contract.
type family struct {
	name   string
	typ    dto.MetricType
	labels []string // its series' label names, sorted as a registry writes them
	help   string
	serve  bool // serve writes it
	file   bool // --format prometheus and --textfile write it
}

const (
	helpSince = ", since netuse started."
	// helpSinceState: total's and iface's counters go on across --state runs.
	helpSinceState = ", since netuse started (with --state, since the state file's first run, across reboots and counter resets)."
)

var (
	famBuildInfo = family{name: "netuse_build_info", typ: dto.MetricType_GAUGE, labels: []string{"goversion", "version"},
		help: "netuse's version and the Go it was built with; always 1.", serve: true, file: true}
	famInterface    = trafficFamilies("netuse_interface", "by the interface", helpSinceState, []string{"device"}, true, true)
	famEdge         = trafficFamilies("netuse_edge", "across the machine's edge interfaces", helpSinceState, nil, false, true)
	famProcess      = trafficFamilies("netuse_process", "by the group's processes (by program unless --by says otherwise), exited ones included", helpSince, []string{"groupname"}, true, true)
	famUnattributed = [2]family{
		{name: "netuse_unattributed_receive_bytes_total", typ: dto.MetricType_COUNTER, labels: []string{"reason"},
			help: "Bytes received that no process could be credited with, by why" + helpSince, serve: true, file: true},
		{name: "netuse_unattributed_transmit_bytes_total", typ: dto.MetricType_COUNTER, labels: []string{"reason"},
			help: "Bytes sent that no process could be credited with, by why" + helpSince, serve: true, file: true},
	}

	// serve's own: the capture's health, its bounds, its history file.
	famEnabled = family{name: "netuse_process_metrics_enabled", typ: dto.MetricType_GAUGE, labels: []string{"reason"},
		help: "1 if netuse captures packets and serves the process metrics; 0 if not, reason says why.", serve: true}
	famGroupsFolded = family{name: "netuse_process_groups_folded_total", typ: dto.MetricType_COUNTER,
		help: "Groups folded into the (other) group to keep the groups bounded" + helpSince, serve: true}
	famCaptured = family{name: "netuse_capture_received_packets_total", typ: dto.MetricType_COUNTER, labels: []string{"device"},
		help: "Frames the capture read on the interface, both ways" + helpSince, serve: true}
	famDropped = family{name: "netuse_capture_dropped_packets_total", typ: dto.MetricType_COUNTER, labels: []string{"device"},
		help: "Frames the kernel dropped before the capture read them, for want of room in its ring" + helpSince, serve: true}
	famEvicted = family{name: "netuse_capture_flows_evicted_total", typ: dto.MetricType_COUNTER,
		help: "Flow ends dropped early to keep the flow table under --max-flows; their later bytes count as flow_table_full" + helpSince, serve: true}
	famOwnersLost = family{name: "netuse_owner_records_lost_total", typ: dto.MetricType_COUNTER,
		help: "The kernel's socket owner records lost (a full ring) or dropped to keep the book bounded" + helpSince, serve: true}
	famHistoryErrors = family{name: "netuse_history_write_errors_total", typ: dto.MetricType_COUNTER,
		help: "Failed writes of the history file (--db), each a flush whose traffic stays in memory for the next" + helpSince, serve: true}
	famHistoryWrite = family{name: "netuse_history_last_write_timestamp_seconds", typ: dto.MetricType_GAUGE,
		help: "When serve last wrote the history file (--db), Unix seconds; 0 if not yet.", serve: true}
)

// contract is every family, for the test that holds the outputs to it.
func contract() []family {
	fs := []family{famBuildInfo, famEnabled, famGroupsFolded, famCaptured, famDropped, famEvicted, famOwnersLost, famHistoryErrors, famHistoryWrite}
	fs = append(fs, famUnattributed[:]...)
	for _, t := range [][4]family{famInterface, famEdge, famProcess} {
		fs = append(fs, t[:]...)
	}
	return fs
}

// trafficFamilies are the four counters of traffic named prefix_{receive,
// transmit}_{bytes,packets}_total: whose says whose traffic, since from
// when.
func trafficFamilies(prefix, whose, since string, labels []string, serve, file bool) (fs [4]family) {
	for i, n := range []struct{ dir, unit, verb string }{{"receive", "bytes", "received"}, {"transmit", "bytes", "sent"}, {"receive", "packets", "received"}, {"transmit", "packets", "sent"}} {
		fs[i] = family{name: prefix + "_" + n.dir + "_" + n.unit + "_total", typ: dto.MetricType_COUNTER, labels: labels,
			help: strings.ToUpper(n.unit[:1]) + n.unit[1:] + " " + n.verb + " " + whose + since, serve: serve, file: file}
	}
	return fs
}

// serveLabel is the label of each --by key: process-exporter's
// "groupname" for the program.
var serveLabel = map[string]string{"program": "groupname", "user": "user", "container": "container", "netns": "netns", "pid": "pid"}

// processFamilies returns the process families of groups by --by's keys
// (by program when none), and the key each of their labels holds, in the
// labels' order.
func processFamilies(by []string) (fs [4]family, keys []string) {
	if len(by) == 0 {
		by = []string{"program"}
	}
	keys = slices.Clone(by)
	slices.SortFunc(keys, func(a, b string) int { return strings.Compare(serveLabel[a], serveLabel[b]) })
	labels := make([]string, len(keys))
	for i, k := range keys {
		labels[i] = serveLabel[k]
	}
	fs = famProcess
	for i := range fs {
		fs[i].labels = labels
	}
	return fs, keys
}

// buildInfo is netuse_build_info's one series.
func buildInfo() oneSeries {
	return oneSeries{famBuildInfo.pairs(runtime.Version(), versionLine()[len("netuse "):]), 1}
}

// oneSeries is one series of a family: its labels and value.
type oneSeries struct {
	labels []*dto.LabelPair
	value  float64
}

// trafficSeries is the four series of traffic that share labels.
type trafficSeries struct {
	labels []*dto.LabelPair
	t      traffic
}

// pairs makes the label pairs of a series of f, values in f.labels' order.
func (f family) pairs(values ...string) []*dto.LabelPair {
	ps := make([]dto.LabelPair, len(f.labels))
	out := make([]*dto.LabelPair, len(ps))
	for i := range ps {
		ps[i].Name, ps[i].Value = new(f.labels[i]), new(values[i])
		out[i] = &ps[i]
	}
	return out
}

// families gathers metric families. They are built here rather than
// through client_golang's const metrics and a registry's Gather, whose
// checks and sorting would be most of a scrape of many groups
// (BenchmarkServeScrape).
type families []*dto.MetricFamily

// add adds family f of series ss, sorted by their labels' values.
func (fs *families) add(f family, ss []oneSeries) {
	if len(ss) == 0 {
		return // as a registry: a family of no series is not written
	}
	slices.SortFunc(ss, func(a, b oneSeries) int { return compareLabels(a.labels, b.labels) })
	ms := make([]dto.Metric, len(ss))
	mf := &dto.MetricFamily{Name: new(f.name), Help: new(f.help), Type: f.typ.Enum(), Metric: make([]*dto.Metric, len(ss))}
	if f.typ == dto.MetricType_COUNTER {
		cs := make([]dto.Counter, len(ss))
		for i, s := range ss {
			cs[i].Value = new(s.value)
			ms[i].Label, ms[i].Counter = s.labels, &cs[i]
			mf.Metric[i] = &ms[i]
		}
	} else {
		gs := make([]dto.Gauge, len(ss))
		for i, s := range ss {
			gs[i].Value = new(s.value)
			ms[i].Label, ms[i].Gauge = s.labels, &gs[i]
			mf.Metric[i] = &ms[i]
		}
	}
	*fs = append(*fs, mf)
}

// traffic adds the four families of tf of the series ts.
func (fs *families) traffic(tf [4]family, ts []trafficSeries) {
	var ss [4][]oneSeries
	for i := range ss {
		ss[i] = make([]oneSeries, len(ts))
	}
	for j, t := range ts {
		for i, v := range [4]uint64{t.t.rxBytes, t.t.txBytes, t.t.rxPackets, t.t.txPackets} {
			ss[i][j] = oneSeries{t.labels, float64(v)}
		}
	}
	for i := range tf {
		fs.add(tf[i], ss[i])
	}
}

// sorted returns the families by name.
func (fs families) sorted() []*dto.MetricFamily {
	slices.SortFunc(fs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return fs
}

// compareLabels orders series by their labels' values, in order.
func compareLabels(a, b []*dto.LabelPair) int {
	for i := range min(len(a), len(b)) {
		if c := strings.Compare(a[i].GetValue(), b[i].GetValue()); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}
