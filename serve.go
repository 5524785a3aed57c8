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
// settled and bounded however seldom Prometheus comes. The exporter
// (serve_exporter.go) keeps those totals; this file runs the server.
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

// serveOptions are serve's own flags, read.
type serveOptions struct {
	listen    string
	webConfig string // exporter-toolkit's web configuration file; "" for plain HTTP
	db        string // the history file; "" keeps none
	keep      [numLevels]time.Duration
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
