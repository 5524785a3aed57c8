package main

// Privileged tests of serve's history against real traffic: serve runs in
// namespace a of a test network (newTestNet) as the test binary
// (netuseChild) with a clock 600 times as fast as the real one,
// so that a real second is ten minutes of buckets; named helpers upload
// known bytes from a to b; the test reads the file with netuse history.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startHistServeNS runs serve with history in file, in ns, with the fast
// clock from start, and waits for its line that says where it listens.
func startHistServeNS(t *testing.T, ns, file string, start time.Time) (p *bgProc, addr string) {
	t.Helper()
	t.Setenv("NETUSE_TEST_HISTORY_CLOCK", start.Format(time.RFC3339))
	return startServeNS(t, ns, childArgv("netuse", "serve", "--listen", "127.0.0.1:0", "--db", file, "--iface", "veth-a", "--interval", "60s")...)
}

// lastWrite is serve's netuse_history_last_write_timestamp_seconds, by
// its clock, from its /metrics in ns.
func lastWrite(t *testing.T, ns, addr string) time.Time {
	t.Helper()
	out, err := inNS(ns, "curl", "-sS", "--max-time", "10", "http://"+addr+"/metrics").Output()
	if err != nil {
		t.Fatalf("curl %s/metrics: %v", addr, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "netuse_history_last_write_timestamp_seconds "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%q: %v", line, err)
			}
			return time.UnixMilli(int64(f * 1000))
		}
	}
	t.Fatalf("no netuse_history_last_write_timestamp_seconds in serve's /metrics:\n%s", out)
	return time.Time{}
}

// stopServe ends serve with SIGINT, as a service manager would, and waits
// for it to exit 0.
func stopServe(t *testing.T, p *bgProc) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Fatalf("serve still runs 20 s after SIGINT:\n%s", p.out.String())
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("serve: %v\n%s", err, p.out.String())
	}
}

// historyOf runs netuse history --json with args on file and returns each
// record's key (program or iface, with the bucket's start under --every)
// and traffic.
func historyOf(t *testing.T, file string, args ...string) map[string]traffic {
	t.Helper()
	cmd := exec.Command(netuseBinary(t), append([]string{"history", "--json", "--db", file}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("netuse history %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	got := map[string]traffic{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		var r historyRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%q: %v", sc.Text(), err)
		}
		key := ""
		switch {
		case r.Program != nil:
			key = *r.Program
		case r.Iface != nil:
			key = *r.Iface
		}
		tr := got[key]
		tr.add(traffic{r.RxBytes, r.TxBytes, r.RxPackets, r.TxPackets})
		got[key] = tr
	}
	return got
}

// histBuckets counts the 5-minute buckets of veth-a in file, read-only.
func histBuckets(t *testing.T, file string) int {
	t.Helper()
	db := histDB(t, file)
	defer db.Close()
	var n int
	db.QueryRow("SELECT count(DISTINCT start) FROM usage WHERE level = '5m' AND kind = 'app'").Scan(&n)
	return n
}

// storedCounters reads veth-a's counters that file keeps: those of
// serve's last flush.
func storedCounters(t *testing.T, file string) (rx, tx uint64) {
	t.Helper()
	db := histDB(t, file)
	defer db.Close()
	if err := db.QueryRow("SELECT rx_bytes, tx_bytes FROM counters WHERE iface = 'veth-a'").Scan(&rx, &tx); err != nil {
		t.Fatal(err)
	}
	return rx, tx
}

// checkIfaceTotals checks that veth-a's totals in file are what its
// counters moved from rx0, tx0 (the first serve's baseline, which it
// wrote as it started: before it, a new veth sends IPv6 multicast
// listener reports that no history has) to those of serve's last
// report, which the file keeps, to the byte; and that those are no
// more than a few late packets short of rx1, tx1, read after serve ended.
func checkIfaceTotals(t *testing.T, file string, rx0, tx0, rx1, tx1 uint64) {
	t.Helper()
	rx, tx := storedCounters(t, file)
	got := historyOf(t, file, "--since", "2026-11-30", "--until", "2027-01-01", "--by", "iface")["veth-a"]
	if got.rxBytes != rx-rx0 || got.txBytes != tx-tx0 {
		t.Errorf("veth-a: history rx %d tx %d; the counters moved rx %d tx %d by serve's last report", got.rxBytes, got.txBytes, rx-rx0, tx-tx0)
	}
	if rx1-rx > 1000 || tx1-tx > 1000 {
		t.Errorf("veth-a: serve's last report had rx %d tx %d, the counters after it ended rx %d tx %d", rx, tx, rx1, tx1)
	}
	t.Logf("veth-a: history rx %d tx %d; after serve ended the counters had moved %d and %d more", got.rxBytes, got.txBytes, rx1-rx, tx1-tx)
}

// TestHistoryRealTraffic: three programs upload 2 MiB each from a to b,
// each in another 5-minute bucket of serve's fast clock, from 23:52 on
// the last day of November to past midnight; netuse history then says,
// per program, what veth-a's counters moved around each upload (within
// 0.1%), per interface what they moved up to serve's last report (to the
// byte: checkIfaceTotals), and every
// length of bucket the same sums.
func TestHistoryRealTraffic(t *testing.T) {
	n := newTestNet(t)
	needTool(t, "curl", "curl(1)")
	netuseBinary(t)
	file := filepath.Join(t.TempDir(), "history.db")
	serve, addr := startHistServeNS(t, n.a, file, time.Date(2026, 11, 30, 23, 52, 0, 0, time.Local))
	rx0, tx0 := storedCounters(t, file)
	senders := []string{"nuhist-one", "nuhist-two", "nuhist-three"}
	moved := map[string]uint64{}
	buckets := 0
	var next time.Time // the start of the 5-minute bucket after the last upload's
	for i, comm := range senders {
		// Each upload in a bucket of its own: the sign is serve's
		// flush at or after the next bucket's start, by its clock.
		for deadline := time.Now().Add(20 * time.Second); i > 0 && lastWrite(t, n.a, addr).Before(next); {
			if time.Now().After(deadline) {
				t.Fatalf("serve wrote nothing at or after %v within 20 s", next)
			}
			time.Sleep(20 * time.Millisecond) // polling serve for the sign
		}
		moved[comm] = histUpload(t, n, comm, 7050+i, 2<<20)
		// Wait for the upload's bucket in the file.
		for deadline := time.Now().Add(20 * time.Second); histBuckets(t, file) <= buckets; {
			if time.Now().After(deadline) {
				t.Fatalf("the upload of %s not in the file after 20 s", comm)
			}
			time.Sleep(20 * time.Millisecond) // polling the file for the sign
		}
		buckets = histBuckets(t, file)
		next = bucketNext(level5m, bucketStart(level5m, lastWrite(t, n.a, addr), time.Local), time.Local)
	}
	span := []string{"--since", "2026-11-30", "--until", "2026-12-02"}
	// Read while serve writes (WAL): the uploads flushed so far are there.
	if live := historyOf(t, file, append(span, "--by", "program")...); live[senders[0]].txBytes == 0 {
		t.Errorf("netuse history while serve runs: %v; want %s's upload", live, senders[0])
	}
	stopServe(t, serve)
	rx1, tx1 := ifaceBytes(t, n.a, "veth-a")

	apps := historyOf(t, file, append(span, "--by", "program")...)
	for _, comm := range senders {
		near(t, comm+" rx+tx, history against veth-a", apps[comm].rxBytes+apps[comm].txBytes, moved[comm], 0.999, 1.001)
	}
	checkIfaceTotals(t, file, rx0, tx0, rx1, tx1)
	ifaces := historyOf(t, file, append(span, "--by", "iface")...)
	if n := histBuckets(t, file); n < len(senders) {
		t.Errorf("the uploads fell in %d 5-minute buckets, want %d or more", n, len(senders))
	}
	for _, every := range levelName {
		for _, by := range []string{"program", "iface"} {
			rows := historyOf(t, file, append(span, "--by", by, "--every", every)...)
			want := apps
			if by == "iface" {
				want = ifaces
			}
			for k, w := range want {
				if rows[k] != w {
					t.Errorf("--by %s --every %s: %s %+v, want %+v as without --every", by, every, k, rows[k], w)
				}
			}
		}
	}
	// Three buckets from 23:50 on at the least: the last upload is on 1
	// December, so that days and months were rolled up across their ends.
	db := histDB(t, file)
	defer db.Close()
	for _, lvl := range []string{"day", "month"} {
		var n int
		db.QueryRow("SELECT count(DISTINCT start) FROM usage WHERE level = ? AND kind = 'app'", lvl).Scan(&n)
		if n != 2 {
			t.Errorf("the uploads fell in %d %s buckets, want 2", n, lvl)
		}
	}
}

// histKills is how many times TestHistoryKill kills serve: the 20.
const histKills = 20

// TestHistoryKill kills serve with SIGKILL histKills times, each a while
// after an upload of 256 KiB, the while growing by 20 ms from 0 (about
// 0 to 4 flushes). After each kill the file opens and passes SQLite's
// quick_check; an upload more than 2 flush intervals (and a report)
// before its kill is in the file whole; none is counted more than once;
// and after a last, clean run the interface's totals are what its
// counters moved, to the byte (checkIfaceTotals): each start credits
// what the counters moved since the last flush.
func TestHistoryKill(t *testing.T) {
	n := newTestNet(t)
	netuseBinary(t)
	file := filepath.Join(t.TempDir(), "history.db")
	var rx0, tx0 uint64
	const comm = "nuhist-kill"
	const sure = 300 * time.Millisecond // a report and a flush of the fast clock (100 ms each), and a margin
	var prev uint64
	clockAt := time.Date(2026, 12, 1, 8, 0, 0, 0, time.Local)
	for i := range histKills {
		serve, _ := startHistServeNS(t, n.a, file, clockAt)
		if i == 0 {
			rx0, tx0 = storedCounters(t, file)
		}
		clockAt = clockAt.Add(time.Hour) // each run's clock after the last's
		wire := histUpload(t, n, comm, 7100+i, 256<<10)
		delay := time.Duration(i) * 20 * time.Millisecond
		time.Sleep(delay) // where in serve's flushes the kill falls; not a wait for a result
		serve.cmd.Process.Signal(syscall.SIGKILL)
		<-serve.done
		serve.cmd.Wait()

		db := histDB(t, file)
		var check string
		if err := db.QueryRow("PRAGMA quick_check").Scan(&check); err != nil || check != "ok" {
			t.Fatalf("kill %d: quick_check %q, %v", i+1, check, err)
		}
		db.Close()
		apps := historyOf(t, file, "--since", "2026-11-30", "--until", "2027-01-01", "--by", "program")
		got := apps[comm].rxBytes + apps[comm].txBytes
		gain := got - prev
		t.Logf("kill %d, %v after the upload of %d bytes on the wire: %d more in the file", i+1, delay, wire, gain)
		if got < prev || float64(gain) > 1.001*float64(wire) {
			t.Errorf("kill %d: the sender's total went from %d to %d, for %d bytes on the wire: counted twice", i+1, prev, got, wire)
		}
		if delay >= sure && float64(gain) < 0.999*float64(wire) {
			t.Errorf("kill %d, %v after the upload: %d of its %d bytes in the file; want all, flushed before the kill", i+1, delay, gain, wire)
		}
		prev = got
	}
	serve, _ := startHistServeNS(t, n.a, file, clockAt)
	stopServe(t, serve)
	rx1, tx1 := ifaceBytes(t, n.a, "veth-a")
	checkIfaceTotals(t, file, rx0, tx0, rx1, tx1)
}

// histUpload has a process named comm in a send size bytes to a server
// in b on port, named comm-r, and returns what veth-a's counters moved
// meanwhile.
func histUpload(t *testing.T, n *testNet, comm string, port, size int) uint64 {
	t.Helper()
	veth := markIface(t, n.a, "veth-a")
	uploadAs(t, n.a, n.b, fmt.Sprintf("192.0.2.2:%d", port), size, comm, comm+"-r")
	rx, tx := veth.moved(t)
	return rx + tx
}
