package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
)

// netuse serve: a Prometheus exporter. It reads the interfaces' counters
// and, when it may capture, runs proc's pipeline, and keeps totals since
// it started: per interface, per group of processes (--by), per reason
// traffic had no process, and the capture's own counts. A scrape takes a
// report first, so that its values are those of that moment; a report
// also runs every --interval between scrapes, which keeps the flow table
// settled and bounded however seldom Prometheus comes.
//
// Every series is a counter that never goes down while serve runs: an
// interface that goes away keeps its series (up to maxIfaceSeries names;
// past it those gone are forgotten), a group outlives its processes, and
// groups past the view's bound (maxGroups) fold into one "(other)" group,
// whose counters take theirs.
//
// The listener and the web configuration (exporter-toolkit's: TLS, basic
// auth) are checked before the capture opens; a bad one ends serve with
// one line, exit 1.

// serveKeys are the keys serve's --by takes; pid is one series per
// process, which Prometheus pays for as processes come and go.
var serveKeys = []string{"program", "user", "container", "netns", "pid"}

// serveLabel is the label of each --by key: process-exporter's
// "groupname" for the program.
var serveLabel = map[string]string{"program": "groupname", "user": "user", "container": "container", "netns": "netns", "pid": "pid"}

// defaultListen is serve's address: this machine only, on a port of
// Prometheus's exporter range that no well-known exporter takes.
const defaultListen = "127.0.0.1:9957"

// maxIfaceSeries bounds the interfaces serve keeps series of: past it,
// the interfaces gone (a container host's veths) are forgotten.
const maxIfaceSeries = 1024

// serveOptions are serve's own flags, read.
type serveOptions struct {
	listen    string
	webConfig string // exporter-toolkit's web configuration file; "" for plain HTTP
}

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

	descs serveDescs
}

// serveDescs are the descriptions of serve's metrics; the process ones
// have a label per --by key.
type serveDescs struct {
	iface, process           [4]*prometheus.Desc
	unattributed             [2]*prometheus.Desc
	captured, dropped        *prometheus.Desc
	evicted, folded, records *prometheus.Desc
	enabled, build           *prometheus.Desc
}

// counterDescs are the four counters of traffic named prefix_{receive,
// transmit}_{bytes,packets}_total; what says whose.
func counterDescs(prefix, what, since string, labels []string) [4]*prometheus.Desc {
	var d [4]*prometheus.Desc
	for i, n := range []struct{ dir, unit, verb string }{{"receive", "bytes", "received"}, {"transmit", "bytes", "sent"}, {"receive", "packets", "received"}, {"transmit", "packets", "sent"}} {
		help := strings.ToUpper(n.unit[:1]) + n.unit[1:] + " " + n.verb + " by " + what + since
		d[i] = prometheus.NewDesc(prefix+"_"+n.dir+"_"+n.unit+"_total", help, labels, nil)
	}
	return d
}

func newServeDescs(by []string) serveDescs {
	const since = ", since netuse serve started."
	labels := make([]string, len(by))
	for i, k := range by {
		labels[i] = serveLabel[k]
	}
	return serveDescs{
		iface:   counterDescs("netuse_interface", "the interface", since, []string{"device"}),
		process: counterDescs("netuse_process", "the group's processes, exited ones included", since, labels),
		unattributed: [2]*prometheus.Desc{
			prometheus.NewDesc("netuse_unattributed_receive_bytes_total", "Bytes received that no process could be credited with, by why"+since, []string{"reason"}, nil),
			prometheus.NewDesc("netuse_unattributed_transmit_bytes_total", "Bytes sent that no process could be credited with, by why"+since, []string{"reason"}, nil),
		},
		captured: prometheus.NewDesc("netuse_capture_received_packets_total", "Frames the capture read on the interface, both ways"+since, []string{"device"}, nil),
		dropped:  prometheus.NewDesc("netuse_capture_dropped_packets_total", "Frames the kernel dropped before the capture read them, for want of room in its ring"+since, []string{"device"}, nil),
		evicted:  prometheus.NewDesc("netuse_capture_flows_evicted_total", "Flow ends dropped early to keep the flow table under --max-flows; their later bytes count as flow_table_full"+since, nil, nil),
		folded:   prometheus.NewDesc("netuse_process_groups_folded_total", "Groups folded into the (other) group to keep the groups bounded"+since, nil, nil),
		records:  prometheus.NewDesc("netuse_owner_records_lost_total", "The kernel's socket owner records lost (a full ring) or dropped to keep the book bounded"+since, nil, nil),
		enabled:  prometheus.NewDesc("netuse_process_metrics_enabled", "1 if netuse captures packets and serves the process metrics; 0 if not, reason says why.", []string{"reason"}, nil),
		build:    prometheus.NewDesc("netuse_build_info", "netuse's version and the Go it was built with; always 1.", []string{"version", "goversion"}, nil),
	}
}

// newExporter takes the interfaces' baseline and starts the capture if
// it may; without CAP_NET_RAW, or off Linux, it serves the interfaces
// alone and says so once on stderr.
func (a *app) newExporter(o options) (*exporter, error) {
	e := &exporter{sampler: &sampler{counters: a.counters, last: map[string]counter{}, totals: map[string]traffic{}, fromZero: true}, globs: o.globs, by: o.by,
		unattributed: map[reason]traffic{}, captured: map[string]uint64{}, dropped: map[string]uint64{},
		descs: newServeDescs(o.by)}
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

// close stops the capture, if any.
func (e *exporter) close() {
	if e.pipe != nil {
		e.pipe.close()
	}
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
	if _, err := e.sampler.sample(); err != nil {
		return err
	}
	if len(e.sampler.totals) > maxIfaceSeries {
		for name := range e.sampler.totals {
			if _, ok := e.sampler.last[name]; !ok {
				delete(e.sampler.totals, name)
			}
		}
	}
	if e.pipe == nil {
		return nil
	}
	procs, _, c, err := e.pipe.report(false)
	if err != nil {
		return err
	}
	kept := procs[:0:0]
	for _, u := range procs {
		if u.proc.pid == 0 && u.proc.reason != attributed {
			t := e.unattributed[u.proc.reason]
			t.add(u.interval)
			e.unattributed[u.proc.reason] = t
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
	return nil
}

// Describe sends nothing: the exporter is an unchecked collector, as its
// series come and go with interfaces and groups.
func (*exporter) Describe(chan<- *prometheus.Desc) {}

// Collect takes a report, then sends every series.
func (e *exporter) Collect(ch chan<- prometheus.Metric) {
	if err := e.refresh(); err != nil {
		ch <- prometheus.NewInvalidMetric(e.descs.build, err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.collect(ch)
}

// collect sends every series; e.mu is held.
func (e *exporter) collect(ch chan<- prometheus.Metric) {
	d := &e.descs
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
	}
	four := func(descs *[4]*prometheus.Desc, t traffic, labels ...string) {
		counter(descs[0], t.rxBytes, labels...)
		counter(descs[1], t.txBytes, labels...)
		counter(descs[2], t.rxPackets, labels...)
		counter(descs[3], t.txPackets, labels...)
	}
	ch <- prometheus.MustNewConstMetric(d.build, prometheus.GaugeValue, 1, versionLine()[len("netuse "):], runtime.Version())
	for name, t := range e.sampler.totals {
		if len(e.globs) == 0 || matchAny(e.globs, name) {
			four(&d.iface, t, name)
		}
	}
	if e.pipe == nil {
		ch <- prometheus.MustNewConstMetric(d.enabled, prometheus.GaugeValue, 0, e.off)
		return
	}
	ch <- prometheus.MustNewConstMetric(d.enabled, prometheus.GaugeValue, 1, "")
	values := make([]string, len(e.by))
	for k, g := range e.view.groups {
		for i, by := range e.by {
			values[i] = k.value(by)
		}
		four(&d.process, g.u.total, values...)
	}
	if o := e.view.other; o != nil {
		for i := range values {
			values[i] = "(other)"
		}
		four(&d.process, o.u.total, values...)
	}
	counter(d.folded, e.view.folded)
	// Every reason, from zero: a query of the unattributed share has
	// series before the first such byte.
	for r := attributed + 1; r < numReasons; r++ {
		t := e.unattributed[r]
		counter(d.unattributed[0], t.rxBytes, reasonKey[r])
		counter(d.unattributed[1], t.txBytes, reasonKey[r])
	}
	for dev, n := range e.captured {
		counter(d.captured, n, dev)
		counter(d.dropped, e.dropped[dev], dev)
	}
	for dev, n := range e.dropped {
		if _, ok := e.captured[dev]; !ok {
			counter(d.captured, 0, dev)
			counter(d.dropped, n, dev)
		}
	}
	counter(d.evicted, e.evicted)
	counter(d.records, e.ownersLost)
}

// runServe runs netuse serve until ctx ends or the server fails.
func (a *app) runServe(ctx context.Context, o options, so serveOptions) error {
	if err := web.Validate(so.webConfig); err != nil {
		return fmt.Errorf("serve --web-config %q: %v; want exporter-toolkit's web configuration (see the README's \"Serve\")", so.webConfig, oneLine(err))
	}
	l, err := net.Listen("tcp", so.listen)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err
		}
		return fmt.Errorf("serve --listen %q: %v; want a free host:port of this machine, such as %s", so.listen, err, defaultListen)
	}
	defer l.Close()
	e, err := a.newExporter(o)
	if err != nil {
		return err
	}
	defer e.close()
	if slices.Contains(o.by, "pid") {
		fmt.Fprintln(a.stderr, "netuse: warning: serve --by pid: one series per process, without end as processes come and go; group by program, user or container for a fleet")
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(e, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorLog:          log.New(a.stderr, "netuse: serve: ", 0),
	})))
	landing, err := web.NewLandingPage(web.LandingConfig{
		Name:        "netuse",
		Description: "This machine's network usage, per interface and per group of processes.",
		Version:     versionLine(),
		Profiling:   "false",
		Links:       []web.LandingLinks{{Address: "/metrics", Text: "Metrics"}},
	})
	if err != nil {
		return err
	}
	mux.Handle("/", landing)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(a.stderr, "netuse: serve: ", 0)}
	logger := slog.New(lineHandler{w: a.stderr})
	served := make(chan error, 1)
	go func() {
		served <- web.Serve(l, srv, &web.FlagConfig{WebConfigFile: &so.webConfig}, logger)
	}()
	fmt.Fprintf(a.stderr, "netuse: serve: metrics on %s/metrics\n", l.Addr())

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ticked := make(chan error, 1)
	go func() {
		ticked <- tick(ctx, a.clock, options{interval: o.interval}, func(int) error { return e.refresh() })
	}()
	tickDone := false
	select {
	case err = <-served:
	case err = <-ticked:
		tickDone = true
	case <-ctx.Done():
	}
	cancel()
	stop, done := context.WithTimeout(context.Background(), 5*time.Second)
	defer done()
	srv.Shutdown(stop)
	if !tickDone {
		<-ticked
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// oneLine joins an error's lines: yaml's errors run over several.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", " ")), " ")
}

// lineHandler writes exporter-toolkit's warnings and errors as netuse's
// stderr lines; its information ("Listening on") serve says itself.
type lineHandler struct {
	w     io.Writer
	attrs []slog.Attr
}

func (lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h lineHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString("netuse: serve: ")
	b.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + strconv.Quote(a.Value.String()))
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	b.WriteByte('\n')
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return lineHandler{w: h.w, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h lineHandler) WithGroup(string) slog.Handler { return h }
