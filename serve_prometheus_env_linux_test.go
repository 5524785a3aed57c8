package main

// The harness of TestServePrometheus: serve and a real Prometheus in a
// namespace, and what Prometheus's API says of the series.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// promEnv is a netuse serve and a Prometheus scraping it, both in
// namespace ns.
type promEnv struct {
	t     *testing.T
	ns    string
	serve *bgProc
	addr  string // serve's, from its stderr
	prom  *bgProc
}

// startServe starts netuse serve on a port of the namespace's loopback and
// waits for its line that says where it listens.
func (e *promEnv) startServe(args ...string) {
	t := e.t
	t.Helper()
	e.serve, e.addr = startServeNS(t, e.ns, append([]string{netuseBinary(t), "serve", "--listen", "127.0.0.1:0"}, args...)...)
}

// startPrometheus starts a Prometheus of the test's own (configuration and
// data in a temporary directory) that scrapes serve every second as job
// netuse.
func (e *promEnv) startPrometheus(prometheus string) {
	t := e.t
	t.Helper()
	dir := t.TempDir() // removed after the cleanup that ends Prometheus
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: netuse
    static_configs:
      - targets: [%q]
`, e.addr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	e.prom = startBg(t, e.ns, func(string) {}, prometheus,
		"--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--storage.tsdb.retention.time=1h",
		"--web.listen-address="+promListen)
}

// wait calls cond every 100 ms until it holds, for at most timeout, and
// logs how long that took; past timeout it fails the test with what it waited for, cond's last state, and the
// ends of Prometheus's log and of serve's stderr.
func (e *promEnv) wait(what string, timeout time.Duration, cond func() (bool, string)) {
	t := e.t
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, state := cond()
		if ok {
			t.Logf("waited %.1f s for %s", time.Since(start).Seconds(), what)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last: %s\nPrometheus's log, its end:\n%s\nserve's stderr:\n%s", timeout, what, state, e.prom.tail(), e.serve.tail())
		}
		select {
		case <-e.prom.done:
			t.Fatalf("Prometheus ended while the test waited for %s:\n%s", what, e.prom.tail())
		case <-e.serve.done:
			t.Fatalf("netuse serve ended while the test waited for %s:\n%s", what, e.serve.tail())
		case <-time.After(100 * time.Millisecond): // polling the condition, not a wait for a result
		}
	}
}

// get fetches url inside the namespace, with curl.
func (e *promEnv) get(url string) ([]byte, error) {
	out, err := inNS(e.ns, "curl", "-sSg", "--max-time", "10", url).Output()
	if ee, ok := err.(*exec.ExitError); ok {
		err = fmt.Errorf("curl %s: %v: %s", url, err, bytes.TrimSpace(ee.Stderr))
	}
	return out, err
}

// api calls Prometheus's HTTP API and returns the answer's data.
func (e *promEnv) api(path string, params url.Values) (json.RawMessage, error) {
	out, err := e.get("http://" + promListen + path + "?" + params.Encode())
	if err != nil {
		return nil, err
	}
	var r struct {
		Status, ErrorType, Error string
		Data                     json.RawMessage
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, fmt.Errorf("%s: %v: %q", path, err, out)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s %v: %s: %s", path, params, r.ErrorType, r.Error)
	}
	return r.Data, nil
}

// promSample is a sample of an instant vector, as the API writes it.
type promSample struct {
	Metric map[string]string
	Value  [2]json.RawMessage // the time in seconds, and the value as a string
}

func (s promSample) valueText() string {
	var v string
	json.Unmarshal(s.Value[1], &v)
	return v
}

func (s promSample) value() float64 {
	v, _ := strconv.ParseFloat(s.valueText(), 64)
	return v
}

func (s promSample) String() string { return fmt.Sprintf("%v=%s", s.Metric, s.valueText()) }

// query evaluates expr at time at (seconds since 1970 as the API writes
// them; "" for now), which must give an instant vector.
func (e *promEnv) query(expr, at string) ([]promSample, error) {
	params := url.Values{"query": {expr}}
	if at != "" {
		params.Set("time", at)
	}
	data, err := e.api("/api/v1/query", params)
	if err != nil {
		return nil, err
	}
	var v struct {
		ResultType string
		Result     []promSample
	}
	if err := json.Unmarshal(data, &v); err != nil || v.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: not a vector: %s", expr, data)
	}
	return v.Result, nil
}

// queryOne evaluates expr at time at, which must give one sample.
func (e *promEnv) queryOne(expr, at string) float64 {
	e.t.Helper()
	r, err := e.query(expr, at)
	if err != nil || len(r) != 1 {
		e.t.Fatalf("query %s at %s: %v, error %v; want one sample", expr, at, r, err)
	}
	return r[0].value()
}

// targetHealth says how Prometheus's scrapes of serve go.
func (e *promEnv) targetHealth() string {
	data, err := e.api("/api/v1/targets", url.Values{"state": {"active"}})
	if err != nil {
		return err.Error()
	}
	var v struct {
		ActiveTargets []struct{ ScrapeURL, Health, LastError string }
	}
	json.Unmarshal(data, &v)
	return fmt.Sprintf("%+v", v.ActiveTargets)
}

// checkMetadata checks the type Prometheus stored of every family. serve
// offers OpenMetrics, which Prometheus prefers, and an OpenMetrics
// family's name has no _total (its counters' samples have): Prometheus
// 2.42 files the metadata under that name; from the classic text format,
// under the samples' name. Either will do.
func (e *promEnv) checkMetadata() {
	t := e.t
	t.Helper()
	data, err := e.api("/api/v1/metadata", nil)
	if err != nil {
		t.Fatal(err)
	}
	var meta map[string][]struct{ Type, Help, Unit string }
	if err := json.Unmarshal(data, &meta); err != nil {
		t.Fatalf("metadata: %v: %s", err, data)
	}
	for name, f := range serveFamilies {
		m, ok := meta[strings.TrimSuffix(name, "_total")]
		if !ok {
			m, ok = meta[name]
		}
		switch {
		case !ok:
			t.Errorf("metadata: no %s", name)
		case len(m) != 1 || m[0].Type != f.typ || m[0].Help == "":
			t.Errorf("metadata of %s: %+v; want one, of type %s, with a help text", name, m, f.typ)
		}
	}
}

// checkSeries checks the labels of every netuse_ series Prometheus stored
// from t0 to end, and that the families with labels have the series the
// test made: veth-a's alone (serve --iface veth-a), the two helpers'
// groups alone, and a reason for the ARP.
func (e *promEnv) checkSeries(t0 time.Time, end string) {
	t := e.t
	t.Helper()
	data, err := e.api("/api/v1/series", url.Values{"match[]": {`{__name__=~"netuse_.+"}`}, "start": {strconv.FormatInt(t0.Unix(), 10)}, "end": {end}})
	if err != nil {
		t.Fatal(err)
	}
	var series []map[string]string
	if err := json.Unmarshal(data, &series); err != nil {
		t.Fatalf("series: %v: %s", err, data)
	}
	seen := map[string]map[string]bool{} // family -> the values of its first label
	for _, s := range series {
		name := s["__name__"]
		f, ok := serveFamilies[name]
		if !ok {
			t.Errorf("series %v: a family the test does not know", s)
			continue
		}
		var labels []string
		for k := range s {
			if k != "__name__" && k != "job" && k != "instance" {
				labels = append(labels, k)
			}
		}
		slices.Sort(labels)
		if !slices.Equal(labels, f.labels) {
			t.Errorf("series %v: labels %v, want %v", s, labels, f.labels)
		}
		if seen[name] == nil {
			seen[name] = map[string]bool{}
		}
		if len(f.labels) > 0 {
			seen[name][s[f.labels[0]]] = true
		}
	}
	for name, f := range serveFamilies {
		var want []string
		switch {
		case len(f.labels) == 0 || name == "netuse_build_info":
		case f.labels[0] == "device":
			want = []string{"veth-a"}
		case f.labels[0] == "groupname":
			want = []string{promSendComm, promRecvComm}
		case f.labels[0] == "reason":
			want = []string{"not_tcp_udp"} // ARP
		}
		if seen[name] == nil {
			t.Errorf("no series of %s", name)
		}
		for _, v := range want {
			if !seen[name][v] {
				t.Errorf("%s: no series with %s=%q, only %v", name, f.labels[0], v, seen[name])
			}
		}
		if f.labels != nil && f.labels[0] != "reason" && name != "netuse_build_info" && len(seen[name]) != len(want) {
			t.Errorf("%s: series of %v, want %v alone: serve --iface veth-a, where the helpers alone move traffic", name, seen[name], want)
		}
	}
	t.Logf("%d netuse_ series, of %d families", len(series), len(seen))
}

// checkPromtool runs promtool check metrics on a scrape of serve's
// /metrics (the classic text format, which curl gets).
func (e *promEnv) checkPromtool(promtool string) {
	t := e.t
	t.Helper()
	body, err := e.get("http://" + e.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics on serve's /metrics: %v\n%s\nthe scrape:\n%s", err, out, body)
	} else {
		t.Logf("promtool check metrics on serve's /metrics: passed, %d lines", bytes.Count(body, []byte("\n")))
	}
}
