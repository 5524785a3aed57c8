package main

import (
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTextfileNodeExporter has Debian's node_exporter read netuse's
// --textfile through its textfile collector, on a loopback port of its
// own with every other collector off: the series must be there with
// netuse's values, and the collector must report no error reading it.
func TestTextfileNodeExporter(t *testing.T) {
	exporter := needTool(t, "prometheus-node-exporter", "prometheus-node-exporter (Debian's node_exporter)")
	dir := t.TempDir()
	a, _, stderr := testApp(loadCounters(t, "basic"), false)
	if code := a.main([]string{"iface", "--textfile", filepath.Join(dir, "netuse.prom"), "-c", "2"}); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	a, js, _ := testApp(loadCounters(t, "basic"), false)
	if code := a.main([]string{"iface", "--json", "-c", "2"}); code != 0 {
		t.Fatal("iface --json failed")
	}
	want, _ := ifaceRowsTotals(t, js.String())

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(exporter, "--web.listen-address="+addr, "--collector.disable-defaults",
		"--collector.textfile", "--collector.textfile.directory="+dir)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var body []byte
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("node_exporter did not answer on %s within 10 s: %v\n%s", addr, err, out.String())
		}
		time.Sleep(20 * time.Millisecond) // polling for the server to listen, not a wait for a result
	}
	got := parseMetrics(t, body)
	if e := got["node_textfile_scrape_error"][""]; e != 0 {
		t.Errorf("node_textfile_scrape_error %v: node_exporter could not read the file\n%s", e, body)
	}
	for name, w := range want {
		if got["netuse_interface_receive_bytes_total"][name] != w[0] || got["netuse_interface_transmit_bytes_total"][name] != w[1] {
			t.Errorf("through node_exporter, %s: rx %v tx %v; want %v", name, got["netuse_interface_receive_bytes_total"][name], got["netuse_interface_transmit_bytes_total"][name], w)
		}
	}
	if len(want) == 0 {
		t.Fatal("no interfaces to compare")
	}
}
