package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted
// when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	needRoot(t)
	dir := filepath.Join(t.TempDir(), "mnt")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "netuse-test", dir).CombinedOutput(); err != nil {
		privSkip(t, "mount tmpfs: "+strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

func remount(t *testing.T, dir, mode string) {
	t.Helper()
	if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
		t.Fatalf("remount %s %s: %v %s", mode, dir, err, out)
	}
}

// TestHistoryReadOnlyDir: serve on a read-only file system says so on
// stderr and in netuse_history_write_errors_total, serves /metrics all
// along, and once the file system is writable writes what it kept: the
// interface's totals since serve started, to the byte.
func TestHistoryReadOnlyDir(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	remount(t, dir, "ro")
	path := filepath.Join(dir, "netuse", "history.db")

	// serve itself: it listens, and its metrics say the writes fail.
	ifs := newFakeIfaces(ifc("eth0", 2, 100, 200, 1, 2))
	a, _, stderr := serveApp(ifs, noCapture())
	s := startServe(t, a, stderr, "serve", "--listen", "127.0.0.1:0", "--db", path)
	got := scrapeSeries(t, s.addr, "netuse_history_")
	if got["netuse_history_write_errors_total{}"] < 1 || got["netuse_history_last_write_timestamp_seconds{}"] != 0 {
		t.Errorf("metrics %v; want a write error and no write", got)
	}
	if want := `netuse: serve: history "` + path + `": mkdir`; !strings.Contains(stderr.String(), want) || !strings.Contains(stderr.String(), "read-only file system") {
		t.Errorf("stderr %q; want %q ... read-only file system", stderr.String(), want)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	// The store: traffic kept while it cannot write, written once it can.
	clk := &histClock{time.Date(2026, 11, 3, 10, 0, 0, 0, histLoc)}
	hc := &histCounters{cs: []counter{{name: "eth0", index: 2, traffic: traffic{5000, 7000, 50, 70}}}}
	h := startHistServe(t, path, hc, clk, "b")
	var want traffic
	for i := range 30 {
		if i == 20 {
			remount(t, dir, "rw")
		}
		d := traffic{1000, 10, 2, 1}
		hc.move(0, d)
		want.add(d)
		clk.t = clk.t.Add(30 * time.Second)
		if err := h.e.refresh(); err != nil {
			t.Fatal(err)
		}
	}
	h.e.closeHistory()
	if out := h.stderr.String(); strings.Count(out, "read-only file system") != 1 || !strings.HasSuffix(out, `netuse: serve: history "`+path+`": writing again`+"\n") {
		t.Errorf("stderr %q; want the failure once, then that it writes again", out)
	}
	if h.e.hist.writeErrors < 5 {
		t.Errorf("%d write errors counted; want one a minute for 10 minutes", h.e.hist.writeErrors)
	}
	for _, lvl := range levelName {
		if got := histSum(t, path, lvl, "iface", "eth0"); got != want {
			t.Errorf("%s: %+v, want %+v", lvl, got, want)
		}
	}
}

// TestHistoryFullDisk: a file system that fills up makes the writes fail
// (SQLITE_FULL), said once; once there is room the traffic kept is
// written, none lost and none twice.
func TestHistoryFullDisk(t *testing.T) {
	dir := mountTmpfs(t, "16m") // the WAL grows to 4 MB (1,000 pages) before SQLite reuses it
	path := filepath.Join(dir, "history.db")
	clk := &histClock{time.Date(2026, 11, 3, 10, 0, 0, 0, histLoc)}
	hc := &histCounters{cs: []counter{{name: "eth0", index: 2, traffic: traffic{5000, 7000, 50, 70}}}}
	h := startHistServe(t, path, hc, clk, "b")
	h.e.closeHistory()
	// While serve was down eth0 moved d; the next serve credits it as
	// it opens, and its write of that fails on the full disk: d once,
	// however many tries it takes.
	d := traffic{999, 111, 9, 1}
	hc.move(0, d)
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for err == nil {
		_, err = f.Write(make([]byte, 64<<10))
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("filling the tmpfs: %v", err)
	}
	// Room for the open's small writes, not for the first flush: 5,000
	// programs counted before it (20,000 rows).
	fi, _ := os.Stat(filler)
	os.Truncate(filler, fi.Size()-256<<10)
	h = &histServe{e: newExporter(hc.read, nil, nil)}
	h.e.sampler.sample()
	h.e.hist = newHistoryStore(path, clk.now, "b", h.e.sampler.cur)
	h.e.hist.loc, h.e.stderr = histLoc, &h.stderr
	var want uint64
	for p := range 5000 {
		h.e.hist.add(clk.t, histKey{kind: "app", name: fmt.Sprintf("early-%s-%04d", strings.Repeat("q", 40), p)}, traffic{rxBytes: 1})
		want++
	}
	h.e.writeHistory()
	for i := range 20 {
		if i == 15 {
			os.Remove(filler)
		}
		// 200 new programs a minute: rows that need new pages (some 1.3
		// MB in all, and the WAL, once the filler is gone).
		for p := range 200 {
			h.e.hist.add(clk.t, histKey{kind: "app", name: "program-" + strings.Repeat("z", 40) + string(rune('a'+p%26)) + string(rune('a'+p/26)) + string(rune('a'+i))}, traffic{rxBytes: 3})
			want += 3
		}
		if i == 0 {
			// A real write failed: SQLite may have had room for a first few.
			h.e.writeHistory()
			clk.t = clk.t.Add(time.Minute)
		}
		clk.t = clk.t.Add(time.Minute)
		h.e.writeHistory()
	}
	h.e.closeHistory()
	out := h.stderr.String()
	if !strings.Contains(out, "full") || !strings.HasSuffix(out, "writing again\n") || h.e.hist.writeErrors == 0 {
		t.Errorf("stderr %q, %d write errors; want the disk full said, and writing again", out, h.e.hist.writeErrors)
	}
	db := histDB(t, path)
	defer db.Close()
	for _, lvl := range levelName {
		var got uint64
		db.QueryRow("SELECT sum(rx_bytes) FROM usage WHERE level = ? AND kind = 'app'", lvl).Scan(&got)
		if got != want {
			t.Errorf("%s: %d bytes, want %d", lvl, got, want)
		}
		if got := histSum(t, path, lvl, "iface", "eth0"); got != d {
			t.Errorf("%s: eth0 %+v, want %+v: the credit at open once", lvl, got, d)
		}
	}
}

// TestHistorySQLiteOneLiner runs docs/history.md's sqlite3 one-liner on a file
// serve wrote, and checks its answer.
func TestHistorySQLiteOneLiner(t *testing.T) {
	sqlite3 := needTool(t, "sqlite3", "sqlite3 (Debian's sqlite3)")
	doc, err := os.ReadFile(filepath.Join("docs", "history.md"))
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "sqlite3 -readonly /var/lib/netuse/history.db") {
			line = strings.TrimSpace(l)
		}
	}
	if line == "" {
		t.Fatal("no sqlite3 one-liner in docs/history.md")
	}
	path := filepath.Join(t.TempDir(), "history.db")
	clk := &histClock{time.Now().Add(-2 * 24 * time.Hour)}
	h := startHistServe(t, path, &histCounters{}, clk, "b")
	for i, p := range []string{"curl", "firefox", "apt"} {
		h.e.hist.add(clk.t, histKey{kind: "app", name: p, user: "root"}, traffic{rxBytes: uint64(1000 * (i + 1)), txBytes: 1})
		h.e.hist.add(clk.t.Add(-30*24*time.Hour), histKey{kind: "app", name: p, user: "root"}, traffic{rxBytes: 1e6}) // a month ago: not in the last 7 days
	}
	h.e.closeHistory()
	query := strings.TrimSuffix(strings.TrimPrefix(line, `sqlite3 -readonly /var/lib/netuse/history.db "`), `"`)
	out, err := exec.Command(sqlite3, "-readonly", path, query).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	if want := "apt|3001\nfirefox|2001\ncurl|1001\n"; string(out) != want {
		t.Errorf("sqlite3 said %q, want %q", out, want)
	}
}

// TestHistoryReaderNotOwner: a user who may read the file but not write
// its directory reads it once serve has ended (no WAL left), and is told
// why not while serve writes it.
func TestHistoryReaderNotOwner(t *testing.T) {
	needRoot(t)
	setpriv := needTool(t, "setpriv", "setpriv(1) from util-linux")
	dir, err := os.MkdirTemp("", "netuse-history-ro")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // nobody may enter, not write
	path := filepath.Join(dir, "history.db")
	clk := &histClock{time.Now()}
	h := startHistServe(t, path, &histCounters{cs: []counter{{name: "eth0", index: 2}}}, clk, "b")
	h.e.hist.add(clk.t, histKey{kind: "app", name: "curl", user: "root"}, traffic{rxBytes: 1234})
	h.e.writeHistory()
	run := func() (string, error) {
		out, err := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", netuseBinary(t),
			"history", "--db", path, "--json").CombinedOutput()
		return string(out), err
	}
	os.Chmod(path, 0o644)
	out, err := run()
	if err == nil || !strings.Contains(out, "serve is writing it, and this user may not open its index") {
		t.Errorf("while serve writes: %v %q; want an error that says why", err, out)
	}
	h.e.closeHistory()
	out, err = run()
	if err != nil || !strings.Contains(out, `"program":"curl","rx_bytes":1234`) {
		t.Errorf("after serve ended: %v %q; want curl's row", err, out)
	}
}
