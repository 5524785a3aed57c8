package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
)

// netuse serve: a Prometheus exporter. It reads the interfaces' counters
// and, when it may capture, runs proc's pipeline, and keeps totals since
// it started: per interface, per group of processes (--by), per reason
// traffic had no process, and the capture's own counts. A scrape takes a
// report first, so that its values are those of that moment; a report
// also runs every --interval between scrapes, which keeps the flow table
// settled and bounded however seldom Prometheus comes.
//
// Every series of traffic is a counter that never goes down while serve runs: an
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
	db        string // the history file; "" keeps none
	keep      [numLevels]time.Duration
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

// serveGatherer is the registry's families (Go's, the process's,
// promhttp's) and the exporter's, by name.
type serveGatherer struct {
	reg prometheus.Gatherer
	e   *exporter
}

func (g serveGatherer) Gather() ([]*dto.MetricFamily, error) {
	own, err := g.e.families()
	if err != nil {
		return nil, err
	}
	mfs, err := g.reg.Gather()
	mfs = append(mfs, own...)
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return mfs, err
}

// metricsHandler serves e's metrics and serve's own (Go's and the
// process's collectors, and the handler's counts of scrapes); errLog
// takes the handler's errors. It returns the gatherer too.
func metricsHandler(e *exporter, errLog *log.Logger) (http.Handler, prometheus.Gatherer) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g := serveGatherer{reg: reg, e: e}
	return promhttp.InstrumentMetricHandler(reg, promhttp.HandlerFor(g, promhttp.HandlerOpts{
		EnableOpenMetrics: true,
		ErrorLog:          errLog,
	})), g
}

// runServe runs netuse serve until ctx ends or the server fails.
func (a *app) runServe(ctx context.Context, o options, so serveOptions) error {
	scheme, err := checkWebConfig(so.webConfig)
	if err != nil {
		return fmt.Errorf("serve --web-config %q: %v", so.webConfig, err)
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
	e, err := a.startExporter(o)
	if err != nil {
		return err
	}
	defer e.close()
	if so.db != "" {
		boot := ""
		if a.bootID != nil {
			boot = a.bootID()
		}
		if err := e.openHistory(so.db, so.keep, a.clock.now, boot, a.stderr); err != nil {
			return err
		}
		defer e.closeHistory()
	}
	if slices.Contains(o.by, "pid") {
		fmt.Fprintln(a.stderr, "netuse: warning: serve --by pid: one series per process, without end as processes come and go; group by program, user or container for a fleet")
	}

	mux := http.NewServeMux()
	h, _ := metricsHandler(e, log.New(a.stderr, "netuse: serve: ", 0))
	mux.Handle("/metrics", h)
	a.servePage(mux, e, so.db)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(a.stderr, "netuse: serve: ", 0)}
	logger := slog.New(lineHandler{w: a.stderr})
	served := make(chan error, 1)
	go func() {
		served <- web.Serve(l, srv, &web.FlagConfig{WebConfigFile: &so.webConfig}, logger)
	}()
	fmt.Fprintf(a.stderr, "netuse: serve: metrics on %s://%s/metrics\n", scheme, l.Addr())

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

// checkWebConfig checks --web-config's file as exporter-toolkit will read
// it, and returns the scheme it serves: https with TLS, else http. A
// password that is no bcrypt hash (the contrib file's placeholder) is said
// in netuse's words, with the command that makes one, rather than
// bcrypt's "hashedSecret too short".
func checkWebConfig(path string) (scheme string, err error) {
	if path == "" {
		return "http", nil
	}
	const want = "; want exporter-toolkit's web configuration (see the README's \"Serve\")"
	text, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%v%s", oneLine(err), want)
	}
	var c web.Config
	if err := yaml.Unmarshal(text, &c); err != nil {
		return "", fmt.Errorf("%v%s", oneLine(err), want)
	}
	for _, user := range slices.Sorted(maps.Keys(c.Users)) {
		if !strings.HasPrefix(string(c.Users[user]), "$2") {
			return "", fmt.Errorf("basic_auth_users: the password of %q is not a bcrypt hash; make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'", user)
		}
	}
	if err := web.Validate(path); err != nil {
		return "", fmt.Errorf("%v%s", oneLine(err), want)
	}
	if c.TLSConfig.IsEnabled() {
		return "https", nil
	}
	return "http", nil
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
