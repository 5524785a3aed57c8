package main

import (
	"io"
	"net/http"
	"os"
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

	addr := freePort(t)
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

// TestTextfileReadOnlyDir: a --textfile whose directory takes no file (a
// read-only mount, which root cannot write either) is an error of one line
// naming it, exit 1, before the capture opens and before anything is
// written on stdout.
func TestTextfileReadOnlyDir(t *testing.T) {
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "netuse-test", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a read-only tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	a, stdout, stderr := testApp(loadCounters(t, "basic"), false)
	opened := false
	a.proc = procOS{
		records: func(*registry, socketTables) (*ownerRecords, error) { opened = true; return nil, errNoCapRaw },
		capture: func([]string) (frameSource, error) { opened = true; return nil, errNoCapRaw },
		tables:  func(func(string)) socketTables { opened = true; return nil },
	}
	path := filepath.Join(dir, "netuse.prom")
	if code := a.main([]string{"proc", "--textfile", path, "-c", "1"}); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	want := `netuse: --textfile "` + path + `": cannot write in "` + filepath.Dir(path) + `" (it takes no new file: read-only file system); want`
	if msg := stderr.String(); !strings.HasPrefix(msg, want) || strings.Count(msg, "\n") != 1 {
		t.Errorf("stderr %q; want one line beginning %q", msg, want)
	}
	if stdout.Len() > 0 || opened {
		t.Errorf("stdout %q, capture or tables opened: %v; want nothing before the check", stdout, opened)
	}
}
