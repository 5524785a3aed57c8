package main

import (
	"bufio"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// servedAt matches serve's line once it listens.
var servedAt = regexp.MustCompile(`^netuse: serve: metrics on http://(\S+)/metrics$`)

// TestServeWithoutPrivileges runs the real binary as nobody, without a
// capability, as a user trying it would: serve must go on with the
// interfaces alone, say so once on stderr, and say why in a metric; and
// SIGINT must end it with exit 0. Without CAP_NET_RAW it captures nothing,
// so it may run in the machine's own namespace.
func TestServeWithoutPrivileges(t *testing.T) {
	cmd := asNobody("", capsBin(t, ""), "serve", "--listen", "127.0.0.1:0")
	var stdout strings.Builder
	cmd.Stdout = &stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
	})
	lines := make(chan string, 16)
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		cmd.Wait()
	}()

	// The sign: the line that says where it listens.
	var said []string
	var addr string
	deadline := time.After(10 * time.Second)
	for addr == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("serve ended before it listened; stderr %q", said)
			}
			said = append(said, line)
			if m := servedAt.FindStringSubmatch(line); m != nil {
				addr = m[1]
			}
		case <-deadline:
			t.Fatalf("serve did not say where it listens within 10s; stderr %q", said)
		}
	}
	if len(said) != 2 || !strings.Contains(said[0], "CAP_NET_RAW") || !strings.Contains(said[0], "interface metrics only") {
		t.Errorf("stderr %q; want one line naming CAP_NET_RAW and the interfaces alone, then where it listens", said)
	}

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s, %v", resp.Status, err)
	}
	got := parseMetrics(t, body)
	if v, ok := got["netuse_process_metrics_enabled"]["no CAP_NET_RAW"]; !ok || v != 0 || len(got["netuse_process_metrics_enabled"]) != 1 {
		t.Errorf("netuse_process_metrics_enabled: %v; want one series, reason \"no CAP_NET_RAW\", value 0", got["netuse_process_metrics_enabled"])
	}
	if _, ok := got["netuse_process_receive_bytes_total"]; ok {
		t.Error("process series without a capture")
	}
	if _, ok := got["netuse_interface_receive_bytes_total"]["lo"]; !ok {
		t.Errorf("no netuse_interface_receive_bytes_total{device=\"lo\"} in\n%s", body)
	}

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not end within 10s of SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 || stdout.Len() > 0 {
		t.Errorf("after SIGINT: exit %d, stdout %q; want 0 and nothing", code, stdout.String())
	}
	for line := range lines {
		t.Errorf("stderr after SIGINT: %q", line)
	}
}
