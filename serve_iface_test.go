package main

// Tests of serve's interface series: counters that go up, reset, come
// and go (serve_test.go holds the harness).

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// ifaceStep is a change of the fake counters, and what each interface
// moved in it: the difference where the counters went up, all of them
// where they went back to zero first (a reset, an interface made anew).
type ifaceStep struct {
	what     string
	counters []counter
	moved    map[string]traffic
}

// ifaceSteps starts with four interfaces, then: traffic moves; wlan0
// vanishes, veth1 is re-created with another index and lower counters,
// eth1's driver resets its counters; traffic moves again.
var ifaceSteps = []ifaceStep{
	{what: "start", counters: []counter{
		ifc("eth0", 2, 1000, 2000, 10, 20),
		ifc("eth1", 4, 9000000, 9000000, 9000, 9000),
		ifc("wlan0", 3, 5000, 5000, 50, 50),
		ifc("veth1", 10, 700, 700, 7, 7),
	}},
	{what: "traffic moves", counters: []counter{
		ifc("eth0", 2, 4000, 2500, 40, 25),
		ifc("eth1", 4, 9100000, 9050000, 9100, 9050),
		ifc("wlan0", 3, 6000, 5000, 60, 50),
		ifc("veth1", 10, 900, 800, 9, 8),
	}, moved: map[string]traffic{
		"eth0":  {rxBytes: 3000, txBytes: 500, rxPackets: 30, txPackets: 5},
		"eth1":  {rxBytes: 100000, txBytes: 50000, rxPackets: 100, txPackets: 50},
		"wlan0": {rxBytes: 1000, rxPackets: 10},
		"veth1": {rxBytes: 200, txBytes: 100, rxPackets: 2, txPackets: 1},
	}},
	{what: "wlan0 vanishes, veth1 is re-created with index 11, eth1's counters reset", counters: []counter{
		ifc("eth0", 2, 5000, 3000, 50, 30),
		ifc("eth1", 4, 4000, 3000, 40, 30),
		ifc("veth1", 11, 300, 100, 3, 1),
	}, moved: map[string]traffic{
		"eth0":  {rxBytes: 1000, txBytes: 500, rxPackets: 10, txPackets: 5},
		"eth1":  {rxBytes: 4000, txBytes: 3000, rxPackets: 40, txPackets: 30},
		"veth1": {rxBytes: 300, txBytes: 100, rxPackets: 3, txPackets: 1},
	}},
	{what: "traffic moves again, wlan0 still gone", counters: []counter{
		ifc("eth0", 2, 7000, 3500, 70, 35),
		ifc("eth1", 4, 6000, 4000, 60, 40),
		ifc("veth1", 11, 500, 150, 5, 2),
	}, moved: map[string]traffic{
		"eth0":  {rxBytes: 2000, txBytes: 500, rxPackets: 20, txPackets: 5},
		"eth1":  {rxBytes: 2000, txBytes: 1000, rxPackets: 20, txPackets: 10},
		"veth1": {rxBytes: 200, txBytes: 50, rxPackets: 2, txPackets: 1},
	}},
}

// runIfaceSteps serves the steps' counters, scrapes after each (with
// ticker, once serve's ticker reported twice more at -i 10ms), and
// checks that every netuse_interface_* series is a counter, never went
// down, and is the traffic its interface moved since serve started; an
// interface gone keeps its last values.
func runIfaceSteps(t *testing.T, steps []ifaceStep, ticker bool) {
	t.Helper()
	ifs := newFakeIfaces(steps[0].counters...)
	a, stdout, stderr := serveApp(ifs, noCapture())
	args := []string{"serve", "--listen", "127.0.0.1:0"}
	if ticker {
		a.clock = clock{now: time.Now, sleep: sleepCtx}
		args = append(args, "--interval", "10ms")
	}
	s := startServe(t, a, stderr, args...)
	moved := map[string]traffic{} // since serve started: none yet for those of the start
	for _, c := range steps[0].counters {
		moved[c.name] = traffic{}
	}
	var prev map[string]float64
	for i, step := range steps {
		if i > 0 {
			ifs.set(step.counters...)
		}
		if ticker {
			ifs.waitReads(t, 2) // reports of the ticker's before the scrape's
		}
		for name, m := range step.moved {
			tr := moved[name]
			tr.add(m)
			moved[name] = tr
		}
		want := map[string]float64{}
		for name, tr := range moved {
			four(want, "netuse_interface", `device="`+name+`"`, tr)
		}
		resp, body := scrape(t, http.DefaultClient, "http://"+s.addr+"/metrics", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("step %d (%s): GET /metrics: %s: %s", i, step.what, resp.Status, body)
		}
		got, types := series(t, body, "netuse_interface_")
		for name, typ := range types {
			if typ != "counter" {
				t.Errorf("step %d (%s): %s is a %s; want a counter", i, step.what, name, typ)
			}
		}
		if d := seriesDiff(want, got); d != "" {
			t.Errorf("step %d (%s): the interface series are not the traffic moved since serve started:\n%s", i, step.what, d)
		}
		for k, v := range prev {
			if g, ok := got[k]; !ok || g < v {
				t.Errorf("step %d (%s): %s went from %v to %v (present %v); a counter never goes down, nor away", i, step.what, k, v, g, ok)
			}
		}
		prev = got
	}
	if err := s.stop(); err != nil {
		t.Errorf("serve ended with %v; want nil when its context is cancelled", err)
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q; want nothing", stdout)
	}
}

// TestServeInterfaces: the interface series count the traffic moved since
// serve started, through a reset, an interface that vanishes and one
// re-created with lower counters, and never go down; a ticker's reports
// between the scrapes change nothing.
func TestServeInterfaces(t *testing.T) {
	t.Run("scrapes", func(t *testing.T) {
		runIfaceSteps(t, ifaceSteps, false)
	})
	t.Run("ticker", func(t *testing.T) {
		runIfaceSteps(t, ifaceSteps, true)
	})
}

// TestServeInterfaceRecreated: an interface deleted and made anew between
// two scrapes (a container's veth) has another index and counters from
// zero: all of them are traffic moved since serve started, even when they
// are above the old interface's counters.
//
// A sampler (sample.go) that keyed interfaces by name alone, ignoring
// counter.index, would take the new counters minus the old interface's
// for the traffic moved, 100 bytes short here.
func TestServeInterfaceRecreated(t *testing.T) {
	runIfaceSteps(t, []ifaceStep{
		{what: "start", counters: []counter{
			ifc("eth0", 2, 1000, 1000, 10, 10),
			ifc("veth2", 12, 100, 100, 1, 1),
		}},
		{what: "veth2 is re-created with index 13 and moves more than the old one had", counters: []counter{
			ifc("eth0", 2, 2000, 2000, 20, 20),
			ifc("veth2", 13, 5000, 4000, 50, 40),
		}, moved: map[string]traffic{
			"eth0":  {rxBytes: 1000, txBytes: 1000, rxPackets: 10, txPackets: 10},
			"veth2": {rxBytes: 5000, txBytes: 4000, rxPackets: 50, txPackets: 40},
		}},
		{what: "veth2 moves on", counters: []counter{
			ifc("eth0", 2, 2000, 2000, 20, 20),
			ifc("veth2", 13, 6000, 4500, 60, 45),
		}, moved: map[string]traffic{
			"veth2": {rxBytes: 1000, txBytes: 500, rxPackets: 10, txPackets: 5},
		}},
	}, false)
}

// TestServeInterfaceAppears: an interface that first shows up while
// serve runs (a VPN's tun), or that comes back after a scrape saw it gone,
// was made after serve started: every byte of its counters moved since.
//
// Taking the counters of an interface seen for the first time for a
// baseline, as iface mode does (sample.go), would start its series at 0
// a scrape later, without the traffic it moved before that scrape.
func TestServeInterfaceAppears(t *testing.T) {
	runIfaceSteps(t, []ifaceStep{
		{what: "start", counters: []counter{
			ifc("eth0", 2, 1000, 1000, 10, 10),
			ifc("wg0", 30, 400, 400, 4, 4),
		}},
		{what: "wg0 is deleted", counters: []counter{
			ifc("eth0", 2, 2000, 2000, 20, 20),
		}, moved: map[string]traffic{
			"eth0": {rxBytes: 1000, txBytes: 1000, rxPackets: 10, txPackets: 10},
		}},
		{what: "tun0 is created; wg0 is created again, with index 31", counters: []counter{
			ifc("eth0", 2, 2000, 2000, 20, 20),
			ifc("tun0", 20, 800, 600, 8, 6),
			ifc("wg0", 31, 200, 100, 2, 1),
		}, moved: map[string]traffic{
			"tun0": {rxBytes: 800, txBytes: 600, rxPackets: 8, txPackets: 6},
			"wg0":  {rxBytes: 200, txBytes: 100, rxPackets: 2, txPackets: 1},
		}},
		{what: "tun0 and wg0 move on", counters: []counter{
			ifc("eth0", 2, 2000, 2000, 20, 20),
			ifc("tun0", 20, 1800, 700, 18, 7),
			ifc("wg0", 31, 300, 100, 3, 1),
		}, moved: map[string]traffic{
			"tun0": {rxBytes: 1000, txBytes: 100, rxPackets: 10, txPackets: 1},
			"wg0":  {rxBytes: 100, rxPackets: 1},
		}},
	}, false)
}

// TestServeNoCapture: without CAP_NET_RAW serve runs on with the
// interfaces alone, says so in one line, and says why in
// netuse_process_metrics_enabled; it serves no process series.
func TestServeNoCapture(t *testing.T) {
	ifs := newFakeIfaces(ifc("eth0", 2, 1000, 2000, 10, 20), ifc("lo", 1, 500, 500, 5, 5))
	a, stdout, stderr := serveApp(ifs, noCapture())
	s := startServe(t, a, stderr, "serve", "--listen", "127.0.0.1:0")
	ifs.set(ifc("eth0", 2, 1500, 2600, 15, 26), ifc("lo", 1, 500, 500, 5, 5))
	for i := range 2 {
		resp, body := scrape(t, http.DefaultClient, "http://"+s.addr+"/metrics", "")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("scrape %d: %s: %s", i+1, resp.Status, body)
		}
		got, types := series(t, body, "netuse_")
		if v, ok := got[`netuse_process_metrics_enabled{reason="no CAP_NET_RAW"}`]; !ok || v != 0 || types["netuse_process_metrics_enabled"] != "gauge" {
			t.Errorf(`scrape %d: netuse_process_metrics_enabled{reason="no CAP_NET_RAW"} = %v (present %v, %s); want a gauge of 0`, i+1, v, ok, types["netuse_process_metrics_enabled"])
		}
		for k := range got {
			if strings.HasPrefix(k, "netuse_process_") && k != `netuse_process_metrics_enabled{reason="no CAP_NET_RAW"}` ||
				strings.HasPrefix(k, "netuse_unattributed_") || strings.HasPrefix(k, "netuse_capture_") {
				t.Errorf("scrape %d: %s: no capture, yet a series of it", i+1, k)
			}
		}
		build := `netuse_build_info{goversion="` + runtime.Version() + `",version="` + strings.TrimPrefix(versionLine(), "netuse ") + `"}`
		if v, ok := got[build]; !ok || v != 1 || types["netuse_build_info"] != "gauge" {
			t.Errorf("scrape %d: %s = %v (present %v, %s); want a gauge of 1", i+1, build, v, ok, types["netuse_build_info"])
		}
		if got[`netuse_interface_receive_bytes_total{device="eth0"}`] != 500 || got[`netuse_interface_transmit_bytes_total{device="eth0"}`] != 600 {
			t.Errorf("scrape %d: eth0's series are not the traffic moved since start (rx 500, tx 600):\n%s", i+1, body)
		}
	}
	select {
	case <-s.ended:
		t.Fatalf("serve ended without capture: %v; want it to run on", s.err)
	default:
	}
	if err := s.stop(); err != nil {
		t.Errorf("serve ended with %v; want nil", err)
	}
	var capRaw []string
	for _, l := range stderr.lines() {
		if strings.Contains(l, "CAP_NET_RAW") {
			capRaw = append(capRaw, l)
		}
	}
	if len(capRaw) != 1 || !strings.HasPrefix(capRaw[0], "netuse: warning: serve: ") {
		t.Errorf("stderr's lines about CAP_NET_RAW: %q; want one, netuse: warning: serve: ...", capRaw)
	}
	if n := len(stderr.lines()); n != 2 {
		t.Errorf("stderr = %q; want two lines: the warning and where the metrics are", stderr)
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q; want nothing", stdout)
	}
}
