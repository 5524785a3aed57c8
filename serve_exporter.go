package main

import (
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// serve's exporter: the interfaces' sampler and, when it may capture,
// proc's pipeline, and the totals kept since serve started. Each report
// (a scrape's, the ticker's, /api/v1/now's) adds to them and hands its
// deltas to the history (serve_history.go); collect writes the totals as
// the contract's families (metrics.go).
//
// Every series of traffic is a counter that never goes down while serve
// runs: an interface that goes away keeps its series (up to
// maxIfaceSeries names; past it those gone are forgotten), a group
// outlives its processes, and groups past the view's bound (maxGroups)
// fold into one "(other)" group, whose counters take theirs.

// maxIfaceSeries bounds the interfaces serve keeps series of: past it,
// the interfaces gone (a container host's veths) are forgotten.
const maxIfaceSeries = 1024

// exporter is serve's state: the sources and the totals kept since start.
// Its mutex serialises reports, from scrapes and from the ticker.
type exporter struct {
	mu      sync.Mutex
	sampler *sampler
	globs   []string  // --iface; none: every interface
	pipe    *pipeline // nil: no capture (off says why)
	off     string
	view    *view
	by      []string

	unattributed map[reason]traffic
	captured     map[string]uint64 // frames captured, by interface
	dropped      map[string]uint64 // frames the kernel dropped, by interface
	evicted      uint64
	ownersLost   uint64
	seq          int
	err          error // the report that failed; serve ends with it

	hist   *historyStore // nil: --db off
	stderr io.Writer     // where the history's failures are said
}

// startExporter takes the interfaces' baseline and starts the capture if
// it may; without CAP_NET_RAW, or off Linux, it serves the interfaces
// alone and says so once on stderr.
func (a *app) startExporter(o options) (*exporter, error) {
	e := newExporter(a.counters, o.globs, o.by)
	if _, err := e.sampler.sample(); err != nil {
		return nil, err
	}
	if err := checkGlobs(o.globs, selector{}.pick(e.sampler.cur)); err != nil {
		return nil, err
	}
	o.mode = modeServe
	w := newWarner(a.stderr)
	p, err := newPipeline(o, a.proc, w)
	switch {
	case errors.Is(err, errNoCapRaw):
		e.off = "no CAP_NET_RAW"
		w.say("serve: capturing packets needs the CAP_NET_RAW capability: serving interface metrics only (netuse_process_metrics_enabled 0); run it as root or with the README's capabilities for process metrics")
	case errors.Is(err, errNotLinux):
		e.off = "not Linux"
		w.say("serve: capturing packets works on Linux only: serving interface metrics only (netuse_process_metrics_enabled 0)")
	case err != nil:
		return nil, err
	default:
		e.pipe = p
		e.view = newView(modeServe, o.by, filter{})
	}
	return e, nil
}

// newExporter is an exporter of counters and by's groups, without its
// first read and without a capture yet.
func newExporter(counters func() ([]counter, error), globs, by []string) *exporter {
	s := newSampler(counters)
	s.fromZero = true
	return &exporter{sampler: s, globs: globs, by: by,
		unattributed: map[reason]traffic{}, captured: map[string]uint64{}, dropped: map[string]uint64{}}
}

// close stops the capture, if any.
func (e *exporter) close() {
	if e.pipe != nil {
		e.pipe.close()
	}
}

// openHistory opens serve's history at path: an error ends serve when
// another serve writes the file or its schema is newer; any other
// (a read-only directory) serve says and tries again at each flush.
func (e *exporter) openHistory(path string, keep [numLevels]time.Duration, now func() time.Time, boot string, stderr io.Writer) error {
	e.hist = newHistoryStore(path, now, boot, e.keptCounters())
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

// keptCounters returns the counters of the last read of the interfaces
// --iface keeps (every interface without it).
func (e *exporter) keptCounters() []counter {
	return slices.DeleteFunc(slices.Clone(e.sampler.cur), func(c counter) bool { return len(e.globs) > 0 && !matchAny(e.globs, c.name) })
}

// refresh takes a report: the interfaces' counters, and the capture's
// interval added to the totals. It returns the error of any report so far.
func (e *exporter) refresh() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		e.err = e.report()
	}
	return e.err
}

func (e *exporter) report() error {
	us, err := e.sampler.sample()
	if err != nil {
		return err
	}
	if len(e.sampler.totals) > maxIfaceSeries {
		for name := range e.sampler.totals {
			if _, ok := e.sampler.last[name]; !ok {
				delete(e.sampler.totals, name)
			}
		}
	}
	var procs []usage
	var c captured
	if e.pipe != nil {
		if procs, _, c, err = e.pipe.report(false); err != nil {
			return err
		}
	}
	if e.hist != nil {
		if len(e.globs) > 0 {
			us = slices.DeleteFunc(us, func(u usage) bool { return !matchAny(e.globs, u.name) })
		}
		e.historyReport(us, e.keptCounters(), procs)
	}
	if e.pipe != nil {
		e.add(procs, c)
	}
	return nil
}

// add adds the process rows and the capture record of a report to the
// totals: the rows of no process to their reason's, the others to their
// groups' (the view's).
func (e *exporter) add(procs []usage, c captured) {
	kept := procs[:0:0]
	for _, u := range procs {
		if why, ok := u.unattributed(); ok {
			t := e.unattributed[why]
			t.add(u.interval)
			e.unattributed[why] = t
			continue
		}
		kept = append(kept, u)
	}
	e.seq++
	e.view.apply(e.seq, kept, nil)
	for dev, t := range c.byIface {
		e.captured[dev] += t.rxPackets + t.txPackets
	}
	for dev, n := range c.dropsBy {
		e.dropped[dev] += n
	}
	e.evicted += c.evicted
	e.ownersLost = c.ownersLost
}

// families takes a report, then returns serve's metric families, each
// series sorted by its labels' values; serveGatherer joins them to the
// registry's.
func (e *exporter) families() ([]*dto.MetricFamily, error) {
	if err := e.refresh(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.collect(), nil
}

// collect returns serve's families of the totals kept, in the contract's
// families (metrics.go).
func (e *exporter) collect() []*dto.MetricFamily {
	var fs families
	fs.add(famBuildInfo, []oneSeries{buildInfo()})
	var ifaces []trafficSeries
	for name, t := range e.sampler.totals {
		if len(e.globs) == 0 || matchAny(e.globs, name) {
			ifaces = append(ifaces, trafficSeries{famInterface[0].pairs(name), t})
		}
	}
	fs.traffic(famInterface, ifaces)
	e.historyFamilies(&fs)
	if e.view == nil {
		fs.add(famEnabled, []oneSeries{{labels: famEnabled.pairs(e.off), value: 0}})
		return fs.sorted()
	}
	fs.add(famEnabled, []oneSeries{{labels: famEnabled.pairs(""), value: 1}})

	fams, keys := processFamilies(e.by)
	groups := make([]trafficSeries, 0, len(e.view.groups)+1)
	values := make([]string, len(keys))
	for k, g := range e.view.groups {
		for i, key := range keys {
			values[i] = k.value(key)
		}
		groups = append(groups, trafficSeries{fams[0].pairs(values...), g.u.total})
	}
	if o := e.view.other; o != nil {
		for i := range values {
			values[i] = "(other)"
		}
		groups = append(groups, trafficSeries{fams[0].pairs(values...), o.u.total})
	}
	fs.traffic(fams, groups)
	fs.add(famGroupsFolded, []oneSeries{{value: float64(e.view.folded)}})

	// Every reason, from zero: a query of the unattributed share has
	// series before the first such byte.
	var rx, tx []oneSeries
	for r := attributed + 1; r < numReasons; r++ {
		t, l := e.unattributed[r], famUnattributed[0].pairs(reasonKey[r])
		rx, tx = append(rx, oneSeries{l, float64(t.rxBytes)}), append(tx, oneSeries{l, float64(t.txBytes)})
	}
	fs.add(famUnattributed[0], rx)
	fs.add(famUnattributed[1], tx)

	var got, lost []oneSeries
	for dev := range e.captured {
		l := famCaptured.pairs(dev)
		got, lost = append(got, oneSeries{l, float64(e.captured[dev])}), append(lost, oneSeries{l, float64(e.dropped[dev])})
	}
	for dev, n := range e.dropped {
		if _, ok := e.captured[dev]; !ok {
			l := famCaptured.pairs(dev)
			got, lost = append(got, oneSeries{l, 0}), append(lost, oneSeries{l, float64(n)})
		}
	}
	fs.add(famCaptured, got)
	fs.add(famDropped, lost)
	fs.add(famEvicted, []oneSeries{{value: float64(e.evicted)}})
	fs.add(famOwnersLost, []oneSeries{{value: float64(e.ownersLost)}})
	return fs.sorted()
}
