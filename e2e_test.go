package main

// End-to-end tests: they build the binary and run it as a user would.

import (
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The netuse binary of the end-to-end tests is built once, by the first
// test that runs it: a go test -run that picks only unit tests (or a
// test child, runTestChild) builds nothing.
var (
	buildOnce sync.Once
	buildDir  string // the temporary directory of the binary; TestMain removes it
	builtBin  string
	buildErr  error
)

// netuseBinary returns the path of a netuse built from this package,
// building it on the first call.
func netuseBinary(t testing.TB) string {
	t.Helper()
	shortSkip(t, "builds and runs the binary")
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "netuse-test")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = dir
		bin := filepath.Join(dir, "netuse")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
			return
		}
		builtBin = bin
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

func TestMain(m *testing.M) {
	if code, ok := runTestChild(); ok {
		os.Exit(code)
	}
	flag.Parse()
	if *fuzzSeeds {
		if err := writeSeeds(fuzzSeedsOf()); err != nil {
			fmt.Fprintln(os.Stderr, "-fuzzseeds:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// Every serve a test starts, in this process or as the binary, keeps
	// no history unless its test gives --db: not in /var/lib/netuse, and
	// not one file for serves that run at once.
	os.Setenv("NETUSE_DB", "off")
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// startPiped starts cmd with its stdout a pipe, returned, and its stderr
// kept in a buffer.
func startPiped(t *testing.T, cmd *exec.Cmd) (stdout io.Reader, stderr *bytes.Buffer) {
	t.Helper()
	stderr = &bytes.Buffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdout, stderr
}

// procNetDev reads the kernel's counters of one interface: rx and tx bytes.
func procNetDev(t *testing.T, iface string) (rx, tx uint64) {
	t.Helper()
	b, err := os.ReadFile("/proc/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) != iface {
			continue
		}
		f := strings.Fields(rest)
		rx, _ = strconv.ParseUint(f[0], 10, 64)
		tx, _ = strconv.ParseUint(f[8], 10, 64)
		return rx, tx
	}
	t.Fatalf("no %s in /proc/net/dev", iface)
	return 0, 0
}

// sendLoopback moves n bytes over a TCP connection on 127.0.0.1.
func sendLoopback(t *testing.T, n int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan int64)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- -1
			return
		}
		defer c.Close()
		got, _ := io.Copy(io.Discard, c)
		done <- got
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(make([]byte, n)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := <-done; got != int64(n) {
		t.Fatalf("loopback: received %d bytes, sent %d", got, n)
	}
}

// TestLoopbackJSON runs netuse iface --json on lo until it is
// interrupted, sends 4 MiB over loopback after its first record, and
// stops it once its records say they saw the 4 MiB: a sign, however long
// the machine takes, not a window the bytes must fall in. It checks the
// records against each other, the bytes sent and /proc/net/dev.
func TestLoopbackJSON(t *testing.T) {
	if _, err := os.Stat("/proc/net/dev"); err != nil {
		t.Skip("needs Linux's /proc/net/dev")
	}
	const sent = 4 << 20
	rx0, tx0 := procNetDev(t, "lo")
	cmd := exec.Command(netuseBinary(t), "iface", "--iface", "lo", "--json", "--interval", "300ms")
	stdout, stderr := startPiped(t, cmd)
	t.Cleanup(func() { cmd.Process.Kill() })
	records := make(chan record)
	go func() {
		defer close(records)
		lines := bufio.NewScanner(stdout)
		for lines.Scan() {
			var r record
			if err := json.Unmarshal(lines.Bytes(), &r); err != nil {
				t.Errorf("not a JSON record: %q: %v", lines.Text(), err)
				continue
			}
			records <- r
		}
	}()
	var recs []record
	var rx, tx uint64 // moved since the first record
	deadline := time.After(patience)
	for rx < sent || tx < sent {
		select {
		case r, ok := <-records:
			if !ok {
				t.Fatalf("netuse ended after %d records: %s", len(recs), stderr.String())
			}
			recs = append(recs, r)
			if len(recs) == 1 {
				sendLoopback(t, sent)
				continue
			}
			rx, tx = rx+r.RxBytes, tx+r.TxBytes
		case <-deadline:
			t.Fatalf("after %v, %d records counted rx %d tx %d bytes on lo since the first, want the %d sent", patience, len(recs), rx, tx, sent)
		}
	}
	cmd.Process.Signal(os.Interrupt)
	for r := range records {
		recs = append(recs, r)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("netuse: %v: %s", err, stderr.String())
	}
	rx1, tx1 := procNetDev(t, "lo")
	if len(recs) < 3 || recs[len(recs)-1].Type != "summary" {
		t.Fatalf("%d records, want one per interval (two or more), then the summary", len(recs))
	}
	summary := recs[len(recs)-1]
	recs = recs[:len(recs)-1]
	var rxSum uint64
	for i, r := range recs {
		if r.Type != "iface" || r.Iface != "lo" || r.Seq != i+1 {
			t.Errorf("record %d: type %q iface %q seq %d; want iface, lo, %d", i, r.Type, r.Iface, r.Seq, i+1)
		}
		if r.Interval <= 0 || (!r.Partial && r.Interval < 0.15) {
			t.Errorf("record %d: interval %.3fs, want about 0.3s (less if partial: %v)", i, r.Interval, r.Partial)
		}
		if want := float64(r.RxBytes) / r.Interval; r.RxRate < want*0.999 || r.RxRate > want*1.001 {
			t.Errorf("record %d: rx_rate %.1f, want rx_bytes/interval = %.1f", i, r.RxRate, want)
		}
		if _, err := time.Parse(time.RFC3339, r.TS); err != nil {
			t.Errorf("record %d: ts %q is not RFC 3339: %v", i, r.TS, err)
		}
		rxSum += r.RxBytes
		if r.RxTotal != rxSum {
			t.Errorf("record %d: rx_total %d, want the sum of the intervals so far %d", i, r.RxTotal, rxSum)
		}
	}
	last := recs[len(recs)-1]
	if summary.Iface != "lo" || summary.Seq != last.Seq || summary.RxBytes != last.RxTotal || summary.TxBytes != last.TxTotal {
		t.Errorf("summary %+v, want lo's totals over the %d intervals", summary, len(recs))
	}
	// netuse's window lies inside the test's, so it saw at most what the kernel counted.
	if last.RxTotal > rx1-rx0 || last.TxTotal > tx1-tx0 {
		t.Errorf("netuse counted rx %d tx %d on lo; /proc/net/dev moved only rx %d tx %d", last.RxTotal, last.TxTotal, rx1-rx0, tx1-tx0)
	}
}

func TestUsageErrorExit(t *testing.T) {
	for _, args := range [][]string{
		{"--interval", "0"}, {"--interval", "abc"}, {"--units", "foo"}, {"--nope"},
		{"-i", "-1"}, {"-c", "-1"}, {"--sort", "bogus"}, {"-i", "1ns"}, {"-i", "1e12"},
		{"iface", "--max-flows", "5"}, {"help", "bogus"},
	} {
		// A value taken by mistake would run until killed: -i 1ns did.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, netuseBinary(t), args...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		if code := cmd.ProcessState.ExitCode(); code != 2 {
			t.Errorf("netuse %v: exit %d (%v), want 2", args, code, err)
		}
		if stdout.Len() > 0 || strings.Count(stderr.String(), "\n") != 1 || !strings.HasPrefix(stderr.String(), "netuse: ") {
			t.Errorf("netuse %v: stdout %.200q (%d bytes), stderr %q; want nothing and one line", args, stdout.String(), stdout.Len(), stderr.String())
		}
	}
}

func TestPipedHasNoEscapes(t *testing.T) {
	for _, mode := range []string{"total", "iface"} {
		out, err := exec.Command(netuseBinary(t), mode, "--count", "2", "--interval", "100ms").Output()
		if err != nil {
			t.Fatalf("netuse %s: %v", mode, err)
		}
		if bytes.ContainsAny(out, "\x1b\r") {
			t.Errorf("netuse %s piped wrote escape sequences or \\r: %q", mode, out)
		}
		if got := strings.Count(string(out), "netuse "+mode+"  "); got != 2 {
			t.Errorf("netuse %s piped: %d headers, want one per interval (2):\n%s", mode, got, out)
		}
	}
}

// TestHeadClosesPipe is `netuse total --json | head -1`: netuse must end at
// once, quietly and with status 0, when head stops reading.
func TestHeadClosesPipe(t *testing.T) {
	cmd := exec.Command("bash", "-c", `set -o pipefail; "$0" total --json --interval 100ms | head -1`, netuseBinary(t))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.Output(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("netuse did not end after head closed the pipe")
	}
	if err != nil || stderr.Len() > 0 {
		t.Errorf("pipeline: %v, stderr %q; want status 0 and no text", err, stderr.String())
	}
	var r record
	if json.Unmarshal(out, &r) != nil || r.Type != "total" || strings.Count(string(out), "\n") != 1 {
		t.Errorf("head -1 got %q, want one total record", out)
	}
}

// TestSignalEndsQuietly sends SIGTERM and SIGINT to a running netuse.
func TestSignalEndsQuietly(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		cmd := exec.Command(netuseBinary(t), "iface", "--json", "--interval", "100ms")
		stdout, stderr := startPiped(t, cmd)
		r := bufio.NewReader(stdout)
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatalf("no first record: %v", err)
		}
		cmd.Process.Signal(sig)
		rest, _ := io.ReadAll(r)
		err := cmd.Wait()
		if err != nil || stderr.Len() > 0 {
			t.Errorf("%v: %v, stderr %q; want status 0 and nothing", sig, err, stderr.String())
		}
		for _, l := range strings.Split(strings.TrimSpace(string(rest)), "\n") {
			if l != "" && !json.Valid([]byte(l)) {
				t.Errorf("%v: half-written record %q", sig, l)
			}
		}
	}
}

// TestHangup sends SIGHUP to a running netuse: it ends with status 0 and
// says why on stderr. Started under nohup, it carries on.
func TestHangup(t *testing.T) {
	if signal.Ignored(syscall.SIGHUP) {
		// The tests run under nohup: netuse would inherit SIGHUP ignored.
		// With a handler here, a child starts with the default instead.
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGHUP)
		defer signal.Stop(c)
	}
	for _, nohup := range []bool{false, true} {
		argv := []string{netuseBinary(t), "iface", "--json", "--interval", "100ms"}
		if nohup {
			argv = append([]string{"nohup"}, argv...)
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		stdout, stderr := startPiped(t, cmd)
		r := bufio.NewReader(stdout)
		var head recordHead
		line, err := r.ReadString('\n')
		if err != nil || json.Unmarshal([]byte(line), &head) != nil {
			t.Fatalf("nohup %v: no first record: %v", nohup, err)
		}
		cmd.Process.Signal(syscall.SIGHUP)
		if nohup {
			// Five intervals after the hangup, it still writes; then stop it.
			for seq := head.Seq; seq < head.Seq+5; {
				line, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("nohup: netuse ended after SIGHUP (last interval %d, the hangup came after %d): %s", seq, head.Seq, stderr.String())
				}
				var h recordHead
				json.Unmarshal([]byte(line), &h)
				seq = h.Seq
			}
			cmd.Process.Signal(syscall.SIGTERM)
		}
		io.Copy(io.Discard, r)
		err = cmd.Wait()
		said := strings.Contains(stderr.String(), "netuse: hangup (SIGHUP): stopped")
		if err != nil || said == nohup {
			t.Errorf("nohup %v: %v, stderr %q; want status 0, and a line about the hangup only without nohup", nohup, err, stderr.String())
		}
	}
}

// TestVersionFromBuild checks that a netuse built with plain go build,
// without -ldflags, names its version from what go build stamped in it:
// the module's version, or the commit; not "dev".
func TestVersionFromBuild(t *testing.T) {
	bin := netuseBinary(t)
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var stamp []string // what the version may be built from
	if v := info.Main.Version; v != "" && v != "(devel)" {
		stamp = append(stamp, v)
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			stamp = append(stamp, s.Value[:min(12, len(s.Value))])
		}
	}
	out, err := exec.Command(bin, "-V").Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(string(out))
	if len(stamp) == 0 {
		// Not built in a git checkout, or with GOFLAGS=-buildvcs=false:
		// -V says where to read how to stamp a version.
		if want := "netuse dev (no version stamped: see the README's Install)"; got != want {
			t.Errorf("netuse -V = %q, want %q: go build stamped neither a version nor a commit", got, want)
		}
		return
	}
	if !strings.HasPrefix(got, "netuse ") || !strings.Contains(got, stamp[0]) {
		t.Errorf("netuse -V = %q, want netuse and %q (from the build info: version %q)", got, stamp[0], info.Main.Version)
	}
}

// TestVersionStamped runs the README's build line, which stamps the
// version from git describe with -ldflags, and checks what -V says.
func TestVersionStamped(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(readme), "\n") {
		if l = strings.TrimSpace(l); strings.Contains(l, "go build -ldflags") && strings.HasSuffix(l, " -o netuse .") {
			line = l
		}
	}
	if line == "" {
		t.Fatal("README.md: no line with go build -ldflags ... -o netuse .")
	}
	describe, err := exec.Command("git", "describe", "--tags", "--always", "--dirty").Output()
	if err != nil {
		privSkip(t, fmt.Sprintf("git describe: %v (not a git checkout?)", err))
	}
	bin := filepath.Join(t.TempDir(), "netuse")
	build := strings.TrimSuffix(line, " -o netuse .") + " -o " + bin + " ."
	if out, err := exec.Command("sh", "-c", build).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}
	out, err := exec.Command(bin, "-V").Output()
	if want := "netuse " + string(describe); err != nil || string(out) != want {
		t.Errorf("after %s: netuse -V = %q, %v; want %q", line, out, err, want)
	}
}
