package main

// Tests of netuse serve, in-process and without privileges: the interface
// counters are a fake the test changes between scrapes, and the capture is
// either refused (no CAP_NET_RAW) or a scenario's frames (capture_test.go)
// handed over batch by batch. A running serve is a.run with a context the
// test cancels; one that must fail is a.main, for its exit status and its
// one line. Every wait is for a sign (a stderr line, a scrape's values)
// with a deadline.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// serveWait bounds every wait of these tests: for serve to listen, for a
// scrape's values, for serve to end.
const serveWait = 10 * time.Second

// syncBuffer is stdout or stderr of a serve that runs in another
// goroutine: its writes may come while the test reads.
type syncBuffer struct {
	mu    sync.Mutex // guards b and wrote
	b     bytes.Buffer
	wrote chan struct{} // closed by the next write
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{})} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.wrote)
	s.wrote = make(chan struct{})
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lines returns what was written, line by line.
func (s *syncBuffer) lines() []string {
	return strings.Split(strings.TrimSuffix(s.String(), "\n"), "\n")
}

// waitFor waits until what was written satisfies ok, or ended is closed
// (serve returned), or serveWait passed; it returns the text and whether
// ok held.
func (s *syncBuffer) waitFor(ok func(string) bool, ended <-chan struct{}) (string, bool) {
	deadline := time.NewTimer(serveWait)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		text, wrote := s.b.String(), s.wrote
		s.mu.Unlock()
		if ok(text) {
			return text, true
		}
		select {
		case <-wrote:
		case <-ended:
			return s.String(), ok(s.String())
		case <-deadline.C:
			return text, false
		}
	}
}

// fakeIfaces is the interfaces' counters as the test sets them.
type fakeIfaces struct {
	mu    sync.Mutex // guards cs, reads and read
	cs    []counter
	reads int           // calls of counters
	read  chan struct{} // closed by the next call
	fail  error         // if not nil, counters returns it
}

func newFakeIfaces(cs ...counter) *fakeIfaces {
	return &fakeIfaces{cs: cs, read: make(chan struct{})}
}

func (f *fakeIfaces) counters() ([]counter, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	close(f.read)
	f.read = make(chan struct{})
	if f.fail != nil {
		return nil, f.fail
	}
	return slices.Clone(f.cs), nil
}

func (f *fakeIfaces) set(cs ...counter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cs = slices.Clone(cs)
}

func (f *fakeIfaces) setFail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = err
}

// waitReads waits until counters was called n times more, by serve's
// ticker, or serveWait passed.
func (f *fakeIfaces) waitReads(t *testing.T, n int) {
	t.Helper()
	f.mu.Lock()
	until := f.reads + n
	f.mu.Unlock()
	deadline := time.After(serveWait)
	for {
		f.mu.Lock()
		reads, read := f.reads, f.read
		f.mu.Unlock()
		if reads >= until {
			return
		}
		select {
		case <-read:
		case <-deadline:
			t.Fatalf("the counters were read %d times in %v; want %d: serve's ticker does not report", reads-(until-n), serveWait, n)
		}
	}
}

// ifc is an interface's counters: bytes and packets received and sent.
func ifc(name string, index int, rxBytes, txBytes, rxPackets, txPackets uint64) counter {
	return counter{name: name, index: index, traffic: traffic{rxBytes: rxBytes, txBytes: txBytes, rxPackets: rxPackets, txPackets: txPackets}}
}

// blockedClock is a clock whose sleep lasts until the run ends: serve's
// ticker never reports, so every report is a scrape's.
var blockedClock = clock{now: time.Now, sleep: func(ctx context.Context, _ time.Duration) error {
	<-ctx.Done()
	return ctx.Err()
}}

// serveApp returns an app whose counters are ifs and whose proc mode is
// proc, writing to buffers.
func serveApp(ifs *fakeIfaces, proc procOS) (*app, *syncBuffer, *syncBuffer) {
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	a := &app{
		stdout:   stdout,
		stderr:   stderr,
		clock:    blockedClock,
		counters: ifs.counters,
		proc:     proc,
	}
	return a, stdout, stderr
}

// noCapture is a procOS whose capture the kernel refuses, as it does
// without CAP_NET_RAW.
func noCapture() procOS {
	p := (&scenario{owners: fixedOwners{}}).procOS(nil)
	p.capture = func([]string) (frameSource, error) { return nil, errNoCapRaw }
	return p
}

// serving is a serve that runs in a goroutine.
type serving struct {
	addr   string        // host:port it listens on, from its stderr line
	scheme string        // http or https, from the same line
	ended  chan struct{} // closed when a.run returned
	err    error         // a.run's error, once ended is closed
	stop   func() error  // cancels it and waits for it; its error
}

// metricsLine is serve's line on stderr once it listens.
var metricsLine = regexp.MustCompile(`(?m)^netuse: serve: metrics on (https?)://(\S+)/metrics$`)

// startServe runs netuse with args (serve and its flags) until the test
// ends or stop is called, and waits for the line that says it listens.
func startServe(t *testing.T, a *app, stderr *syncBuffer, args ...string) *serving {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{ended: make(chan struct{})}
	go func() {
		defer close(s.ended)
		s.err = a.run(ctx, args)
	}()
	var once sync.Once
	var stopErr error
	s.stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case <-s.ended:
				stopErr = s.err
			case <-time.After(serveWait):
				stopErr = fmt.Errorf("netuse %s still runs %v after its context was cancelled", strings.Join(args, " "), serveWait)
			}
		})
		return stopErr
	}
	t.Cleanup(func() { s.stop() })
	text, ok := stderr.waitFor(func(s string) bool { return metricsLine.MatchString(s) }, s.ended)
	if !ok {
		select {
		case <-s.ended:
			t.Fatalf("netuse %s ended before it listened: %v; stderr %q", strings.Join(args, " "), s.err, text)
		default:
			t.Fatalf("netuse %s: no line %q on stderr after %v; stderr %q", strings.Join(args, " "), "netuse: serve: metrics on ADDR/metrics", serveWait, text)
		}
	}
	m := metricsLine.FindStringSubmatch(text)
	s.scheme, s.addr = m[1], m[2]
	if host, port, err := net.SplitHostPort(s.addr); err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("serve says it listens on %q; want 127.0.0.1 and the port it was given", s.addr)
	}
	return s
}

// mainWithin runs a.main(args), which must end on its own (a refused
// flag, a failure before serve listens); a serve that listens instead is
// a failed test.
func mainWithin(t *testing.T, a *app, args ...string) int {
	t.Helper()
	code := make(chan int, 1)
	go func() { code <- a.main(args) }()
	select {
	case c := <-code:
		return c
	case <-time.After(serveWait):
		t.Fatalf("netuse %s still runs after %v; want it to fail at once", strings.Join(args, " "), serveWait)
		return 0
	}
}

// scrape GETs url with the Accept header accept ("" for none) and returns
// the response and its body.
func scrape(t *testing.T, client *http.Client, url, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, string(body)
}

// series reads a scrape in the classic text format, as Prometheus does,
// into values by series, `name{label="value",...}` with the labels
// sorted, of the families whose name starts with prefix; types maps each
// family to its type.
func series(t *testing.T, text, prefix string) (values map[string]float64, types map[string]string) {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("not the text format: %v\n%s", err, text)
	}
	values, types = map[string]float64{}, map[string]string{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		types[name] = strings.ToLower(mf.GetType().String())
		for _, m := range mf.Metric {
			var labels []string
			for _, l := range m.Label {
				labels = append(labels, l.GetName()+"="+strconv.Quote(l.GetValue()))
			}
			sort.Strings(labels)
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			values[name+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return values, types
}

// scrapeSeries scrapes addr's /metrics over plain HTTP in the classic
// format and returns its series whose family starts with prefix.
func scrapeSeries(t *testing.T, addr, prefix string) map[string]float64 {
	t.Helper()
	resp, body := scrape(t, http.DefaultClient, "http://"+addr+"/metrics", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s: %s", resp.Status, body)
	}
	values, _ := series(t, body, prefix)
	return values
}

// four is the four counters of traffic of one series: prefix_{receive,
// transmit}_{bytes,packets}_total{labels}.
func four(into map[string]float64, prefix, labels string, t traffic) {
	into[prefix+"_receive_bytes_total{"+labels+"}"] = float64(t.rxBytes)
	into[prefix+"_transmit_bytes_total{"+labels+"}"] = float64(t.txBytes)
	into[prefix+"_receive_packets_total{"+labels+"}"] = float64(t.rxPackets)
	into[prefix+"_transmit_packets_total{"+labels+"}"] = float64(t.txPackets)
}

// seriesDiff lists the series that differ between want and got, one a
// line, "-" for want and "+" for got.
func seriesDiff(want, got map[string]float64) string {
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		w, wok := want[k]
		g, gok := got[k]
		switch {
		case !gok:
			fmt.Fprintf(&b, "-%s %v (missing)\n", k, w)
		case !wok:
			fmt.Fprintf(&b, "+%s %v (unexpected)\n", k, g)
		case w != g:
			fmt.Fprintf(&b, "-%s %v\n+%s %v\n", k, w, k, g)
		}
	}
	return b.String()
}
