package main

// Privileged end-to-end tests of netuse serve with a real Prometheus
// (Debian's prometheus and promtool): serve and Prometheus run in
// namespace a of a test network (newTestNet), Prometheus scraping serve
// every second, while helpers move known traffic over the veth; the test
// asks Prometheus's HTTP API what it stored. The test process stays in
// its own namespace and reaches both servers with curl run inside a
// (ip netns exec). They need root; they skip without it, except under CI.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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

// promListen is the address of the test's Prometheus inside namespace a:
// a loopback that no other program shares, so that a fixed port is free,
// and one below the kernel's ephemeral ports (32768 and up), so that
// serve's --listen 127.0.0.1:0 cannot take it first.
const promListen = "127.0.0.1:9096"

// The helpers' process names: the receiver in b is a process of this
// machine too, which netuse may credit (TestProcOtherNamespace), and
// under one name both ends would add up in one group.
const (
	promSendComm = "nuprom-send"
	promRecvComm = "nuprom-recv"
)

// serveFamilies are the families serve exports, as docs/metrics.md lists
// them, with their type and the labels of their series (Prometheus's own
// job and instance aside). netuse_process_metrics_enabled has a reason
// only when it is 0: Prometheus stores no label with an empty value.
var serveFamilies = map[string]struct {
	typ    string
	labels []string
}{
	"netuse_interface_receive_bytes_total":     {"counter", []string{"device"}},
	"netuse_interface_transmit_bytes_total":    {"counter", []string{"device"}},
	"netuse_interface_receive_packets_total":   {"counter", []string{"device"}},
	"netuse_interface_transmit_packets_total":  {"counter", []string{"device"}},
	"netuse_process_receive_bytes_total":       {"counter", []string{"groupname"}},
	"netuse_process_transmit_bytes_total":      {"counter", []string{"groupname"}},
	"netuse_process_receive_packets_total":     {"counter", []string{"groupname"}},
	"netuse_process_transmit_packets_total":    {"counter", []string{"groupname"}},
	"netuse_unattributed_receive_bytes_total":  {"counter", []string{"reason"}},
	"netuse_unattributed_transmit_bytes_total": {"counter", []string{"reason"}},
	"netuse_capture_received_packets_total":    {"counter", []string{"device"}},
	"netuse_capture_dropped_packets_total":     {"counter", []string{"device"}},
	"netuse_capture_flows_evicted_total":       {"counter", nil},
	"netuse_process_groups_folded_total":       {"counter", nil},
	"netuse_owner_records_lost_total":          {"counter", nil},
	"netuse_process_metrics_enabled":           {"gauge", nil},
	"netuse_build_info":                        {"gauge", []string{"goversion", "version"}},
}

// TestServePrometheus runs netuse serve on veth-a with a Prometheus
// scraping it every second, uploads 8 MiB from a to b, and checks through
// Prometheus's API that increase() of the interface's and of the
// sender's counters over the test is what veth-a's own counters moved
// (within 1%), that the families have their types (metadata) and the
// series their labels, and that promtool passes serve's /metrics.
func TestServePrometheus(t *testing.T) {
	prometheus := needTool(t, "prometheus", "prometheus (Debian's Prometheus server)")
	promtool := needTool(t, "promtool", "promtool (from Debian's prometheus)")
	needTool(t, "curl", "curl(1)")
	n := newTestNet(t)
	netuseBinary(t) // built now, not between rx0 and serve's start

	t0 := time.Now()
	rx0, tx0 := ifaceBytes(t, n.a, "veth-a")
	e := &promEnv{t: t, ns: n.a}
	e.startServe("--iface", "veth-a")
	e.startPrometheus(prometheus)
	e.wait("Prometheus to scrape serve twice", 60*time.Second, func() (bool, string) {
		r, err := e.query(`sum_over_time(up{job="netuse"}[5m]) >= 2`, "")
		return err == nil && len(r) == 1, fmt.Sprintf("answer %v, error %v; target: %s", r, err, e.targetHealth())
	})

	// A first, small upload makes the sender's group, so that its
	// series has a sample before the 8 MiB: increase() sees a counter
	// from its first sample on, and a series born with the whole
	// transfer in it would show none of it.
	uploadAs(t, n.a, n.b, "192.0.2.2:7040", 64<<10)
	e.wait("a sample of the sender's group", 30*time.Second, func() (bool, string) {
		r, err := e.query(`netuse_process_transmit_bytes_total{groupname="`+promSendComm+`"}`, "")
		return err == nil && len(r) == 1, fmt.Sprintf("answer %v, error %v", r, err)
	})
	uploadAs(t, n.a, n.b, "192.0.2.2:7041", transfer)
	rx1, tx1 := ifaceBytes(t, n.a, "veth-a")
	t1 := time.Now()

	// Two scrapes that began after the transfer ended and veth-a's
	// counters were read: Prometheus may stamp a scrape up to 2 ms
	// before it starts (--scrape.timestamp-tolerance), and packets
	// still in the capture's ring at the first are the second's.
	var after []string // timestamps of scrapes after t1, as Prometheus writes them
	e.wait("two scrapes of serve after the transfer", 30*time.Second, func() (bool, string) {
		r, err := e.query(`timestamp(up{job="netuse"})`, "")
		if err == nil && len(r) == 1 && r[0].value() > float64(t1.UnixMilli())/1000 &&
			(len(after) == 0 || after[len(after)-1] != r[0].valueText()) {
			after = append(after, r[0].valueText())
		}
		return len(after) >= 2, fmt.Sprintf("scrapes after %s: %v; answer %v, error %v", t1.Format(time.StampMilli), after, r, err)
	})
	end := after[1]

	// increase() at the last sample's own time, over a range that begins
	// before serve started: nothing to extrapolate at the end, and at the
	// start Prometheus extrapolates a counter back to where it would
	// have been zero, if that is less than half a scrape interval before
	// its first sample. serve's interface counters start at zero; the
	// sender's group starts with the 64 KiB, which against the 8 MiB
	// after it is some 40 ms. So increase() is each counter's last
	// value: the bytes since serve started, what veth-a moved from rx0
	// to rx1. The last value is logged beside it, so that a difference
	// says whether Prometheus or serve made it.
	rng := fmt.Sprintf("%ds", int(time.Since(t0).Seconds())+60)
	// Both directions together, and tx, as testProcTCP: veth-a's rx is
	// acknowledgements only, 5 to 10 kB, where one late acknowledgement
	// (66 bytes, that of the FIN, after rx1 is read; seen in 3 runs of 5)
	// or the link's first neighbour discovery (between rx0 and serve's
	// start) is 1%. It is logged, not checked.
	figure := func(what string, want uint64, checked bool, series ...string) {
		t.Helper()
		var inc, last float64
		for _, s := range series {
			inc += e.queryOne("increase("+s+"["+rng+"])", end)
			last += e.queryOne(s, end)
		}
		promWithin1(t, what, inc, last, want, checked)
	}
	iface := []string{`netuse_interface_receive_bytes_total{device="veth-a"}`, `netuse_interface_transmit_bytes_total{device="veth-a"}`}
	figure("veth-a rx+tx", rx1-rx0+tx1-tx0, true, iface...)
	figure("veth-a tx", tx1-tx0, true, iface[1])
	figure("veth-a rx", rx1-rx0, false, iface[0])
	send := `{groupname="` + promSendComm + `"}`
	figure("sender rx+tx against veth-a rx+tx", rx1-rx0+tx1-tx0, true,
		"netuse_process_receive_bytes_total"+send, "netuse_process_transmit_bytes_total"+send)
	figure("sender tx against veth-a tx", tx1-tx0, true, "netuse_process_transmit_bytes_total"+send)
	// The receiver, in b, a process of this machine whose socket is in
	// another namespace than serve: credited too, as TestProcOtherNamespace's.
	figure("receiver rx against veth-a tx", tx1-tx0, true, `netuse_process_receive_bytes_total{groupname="`+promRecvComm+`"}`)
	// Logged, not checked: the bytes of no process (ARP), and the
	// capture's own counters. A series born with its first bytes, as
	// these are, shows them in its last value, not in increase().
	for _, s := range []string{
		`netuse_unattributed_receive_bytes_total`, `netuse_unattributed_transmit_bytes_total`,
		`netuse_capture_received_packets_total`, `netuse_capture_dropped_packets_total`,
		`netuse_capture_flows_evicted_total`, `netuse_owner_records_lost_total`,
	} {
		inc, err := e.query("increase("+s+"["+rng+"])", end)
		last, err2 := e.query(s, end)
		t.Logf("%s: increase() %v, last value %v %v", s, inc, last, errors.Join(err, err2))
	}
	if v := e.queryOne(`netuse_process_metrics_enabled`, end); v != 1 {
		t.Errorf("netuse_process_metrics_enabled is %v, want 1: serve captures as root", v)
	}
	if v := e.queryOne(`max_over_time(netuse_capture_dropped_packets_total{device="veth-a"}[`+rng+`])`, end); v != 0 {
		t.Errorf("the kernel dropped %v frames of the capture", v)
	}

	e.checkMetadata()
	e.checkSeries(t0, end)
	e.checkPromtool(promtool)
	if out := e.serve.out.String(); strings.Count(out, "\n") != 1 {
		t.Errorf("serve wrote more than its address to stderr:\n%s", out)
	}
}

// TestServePrometheusTextfile runs promtool check metrics on the
// textfiles of netuse iface and netuse proc (with a group and
// unattributed bytes in it), in a namespace of the test's own.
func TestServePrometheusTextfile(t *testing.T) {
	promtool := needTool(t, "promtool", "promtool (from Debian's prometheus)")
	n := newTestNet(t)
	bin := netuseBinary(t)
	dir := t.TempDir()

	t.Run("iface", func(t *testing.T) {
		file := filepath.Join(dir, "iface.prom")
		if out, err := inNS(n.a, bin, "iface", "--textfile", file, "--count", "1", "--interval", "100ms").CombinedOutput(); err != nil {
			t.Fatalf("netuse iface: %v\n%s", err, out)
		}
		promtoolFile(t, promtool, file, `netuse_interface_receive_bytes_total{device="veth-a"}`)
	})
	t.Run("proc", func(t *testing.T) {
		file := filepath.Join(dir, "proc.prom")
		cmd := inNS(n.a, bin, "proc", "--textfile", file, "--interval", "200ms", "--iface", "veth-a")
		p := &procRun{cmd: cmd, done: make(chan struct{})}
		cmd.Stderr = &p.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
		waitCapturing(t, p)
		uploadAs(t, n.a, n.b, "192.0.2.2:7042", 256<<10)
		want := `netuse_process_transmit_bytes_total{groupname="` + promSendComm + `"}`
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(file)
			if bytes.Contains(b, []byte(want)) && bytes.Contains(b, []byte("netuse_unattributed_")) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("netuse proc did not write the sender's group and the unattributed bytes (ARP) to %s within 10 s; it holds:\n%s\nstderr: %s", file, b, p.stderr.String())
			}
			time.Sleep(50 * time.Millisecond) // polling for the file's next version, a sign, not a wait for time to pass
		}
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Fatal("netuse proc did not end within 10 s of SIGINT")
		}
		if code := cmd.ProcessState.ExitCode(); code != 0 || p.stderr.Len() > 0 {
			t.Errorf("netuse proc: exit status %d, stderr %q", code, p.stderr.String())
		}
		promtoolFile(t, promtool, file, want)
	})
}

// promtoolFile runs promtool check metrics on a textfile, which must hold
// a line beginning with series.
func promtoolFile(t *testing.T, promtool, file, series string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte("\n"+series+" ")) {
		t.Errorf("%s has no %s:\n%s", file, series, b)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(b)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics < %s: %v\n%s\nthe file:\n%s", filepath.Base(file), err, out, b)
	} else {
		t.Logf("promtool check metrics < %s: passed, %d lines", filepath.Base(file), bytes.Count(b, []byte("\n")))
	}
}

// uploadAs is upload with the helpers named: promRecvComm the server in
// toNS, promSendComm the client in fromNS.
func uploadAs(t *testing.T, fromNS, toNS, addr string, n int) {
	t.Helper()
	t.Setenv("NETUSE_TEST_COMM", promRecvComm)
	server := startHelper(t, toNS, "serve-recv", "tcp", addr)
	server.expect(t, "listening")
	t.Setenv("NETUSE_TEST_COMM", promSendComm)
	client := startHelper(t, fromNS, "send", "tcp", addr, strconv.Itoa(n))
	client.expect(t, "sent")
	server.expect(t, fmt.Sprintf("got %d", n))
}

// promWithin1 checks, if checked, that Prometheus's increase() is within
// 1% of what veth-a's counters moved, and logs both with the counter's
// last value.
func promWithin1(t *testing.T, what string, inc, last float64, want uint64, checked bool) {
	t.Helper()
	msg := fmt.Sprintf("%s: increase() %.0f, veth-a's counters %d (%.3f%%); last value %.0f (%.3f%%)", what, inc, want, 100*inc/float64(want), last, 100*last/float64(want))
	if checked && (want == 0 || math.Abs(inc-float64(want)) > 0.01*float64(want)) {
		t.Error(msg)
	} else {
		t.Log(msg)
	}
}

// promEnv is a netuse serve and a Prometheus scraping it, both in
// namespace ns.
type promEnv struct {
	t     *testing.T
	ns    string
	serve *bgProc
	addr  string // serve's, from its stderr
	prom  *bgProc
}

// bgProc is a server run in a namespace until the test ends; out is its
// stdout and stderr.
type bgProc struct {
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{} // closed once out has all the process wrote
}

// startBg starts argv in ns and calls line with each line it writes.
func startBg(t *testing.T, ns string, line func(string), argv ...string) *bgProc {
	t.Helper()
	p := &bgProc{cmd: inNS(ns, argv...), done: make(chan struct{})}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	err = p.cmd.Start()
	w.Close()
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		defer r.Close()
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			p.out.mu.Lock()
			p.out.b.WriteString(sc.Text() + "\n")
			p.out.mu.Unlock()
			line(sc.Text())
		}
	}()
	// ip netns exec execs the program: the command's pid is its.
	t.Cleanup(func() { p.cmd.Process.Kill(); <-p.done; p.cmd.Wait() })
	return p
}

// tail is the last lines of what p wrote.
func (p *bgProc) tail() string {
	lines := strings.Split(strings.TrimSuffix(p.out.String(), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// startServe starts netuse serve on a port of the namespace's loopback and
// waits for its line that says where it listens.
func (e *promEnv) startServe(args ...string) {
	t := e.t
	t.Helper()
	addrs := make(chan string, 1)
	argv := append([]string{netuseBinary(t), "serve", "--listen", "127.0.0.1:0"}, args...)
	e.serve = startBg(t, e.ns, func(line string) {
		if a, ok := strings.CutPrefix(line, "netuse: serve: metrics on http://"); ok {
			if a, ok = strings.CutSuffix(a, "/metrics"); ok {
				select {
				case addrs <- a:
				default:
				}
			}
		}
	}, argv...)
	select {
	case e.addr = <-addrs:
	case <-e.serve.done:
		t.Fatalf("netuse serve ended before it listened: %s", e.serve.out.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("netuse serve did not say where it listens within 10 s: %s", e.serve.out.String())
	}
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
