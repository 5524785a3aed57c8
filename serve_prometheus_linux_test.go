package main

// Privileged end-to-end tests of netuse serve with a real Prometheus
// (Debian's prometheus and promtool): serve and Prometheus run in
// namespace a of a test network (newTestNet), Prometheus scraping serve
// every second, while helpers move known traffic over the veth; the test
// asks Prometheus's HTTP API what it stored. The test process stays in
// its own namespace and reaches both servers with curl run inside a
// (ip netns exec). They need root; they skip without it, except under CI.

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
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
	uploadAs(t, n.a, n.b, "192.0.2.2:7040", 64<<10, promSendComm, promRecvComm)
	e.wait("a sample of the sender's group", 30*time.Second, func() (bool, string) {
		r, err := e.query(`netuse_process_transmit_bytes_total{groupname="`+promSendComm+`"}`, "")
		return err == nil && len(r) == 1, fmt.Sprintf("answer %v, error %v", r, err)
	})
	uploadAs(t, n.a, n.b, "192.0.2.2:7041", transfer, promSendComm, promRecvComm)
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
	// (66 bytes, that of the FIN, after rx1 is read) or the link's first
	// neighbour discovery (between rx0 and serve's start) is 1%. It is
	// logged, not checked. Prometheus's increase() must be within 1% of
	// what veth-a's counters moved; the counter's last value is logged
	// beside it.
	figure := func(what string, want uint64, checked bool, series ...string) {
		t.Helper()
		var inc, last float64
		for _, s := range series {
			inc += e.queryOne("increase("+s+"["+rng+"])", end)
			last += e.queryOne(s, end)
		}
		t.Logf("%s: the counter's last value %.0f, veth-a's counters %d", what, last, want)
		if checked {
			near(t, what+": Prometheus's increase()", uint64(math.Round(inc)), want, 0.99, 1.01)
		}
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
		p := &netuseRun{cmd: cmd, done: make(chan struct{})}
		cmd.Stderr = &p.stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-p.done })
		waitCapturing(t, p)
		uploadAs(t, n.a, n.b, "192.0.2.2:7042", 256<<10, promSendComm, promRecvComm)
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
