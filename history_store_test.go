package main

import (
	"bytes"
	"database/sql"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// histClock is a clock that tests move by hand.
type histClock struct{ t time.Time }

// histDB opens the history file at path read-only, as a reader beside
// serve would.
func histDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func (c *histClock) now() time.Time { return c.t }

// histCounters is interfaces whose counters a test moves by hand.
type histCounters struct {
	cs []counter
}

func (h *histCounters) read() ([]counter, error) {
	out := make([]counter, len(h.cs))
	copy(out, h.cs)
	return out, nil
}

// move adds t to interface i's counters.
func (h *histCounters) move(i int, t traffic) { h.cs[i].traffic.add(t) }

// histServe is serve's exporter with history, without HTTP or capture.
type histServe struct {
	e      *exporter
	stderr bytes.Buffer
}

func startHistServe(t *testing.T, path string, hc *histCounters, clk *histClock, boot string) *histServe {
	t.Helper()
	s := &histServe{e: newExporter(hc.read, nil, []string{"program"})}
	if _, err := s.e.sampler.sample(); err != nil {
		t.Fatal(err)
	}
	if err := s.e.openHistory(path, defaultKeep, clk.now, boot, &s.stderr); err != nil {
		t.Fatal(err)
	}
	s.e.hist.loc = histLoc
	return s
}

// crash drops the store as kill -9 would: nothing pending is written.
func (s *histServe) crash() {
	s.e.hist.close()
}

// histLoc is a zone with DST, so that days of 23 and 25 hours are met.
var histLoc = func() *time.Location {
	l, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		return time.FixedZone("CET", 3600)
	}
	return l
}()

// histSum is what the file holds for one kind and name at one level.
func histSum(t *testing.T, path, lvl, kind, name string) traffic {
	t.Helper()
	db := histDB(t, path)
	defer db.Close()
	var tr traffic
	err := db.QueryRow("SELECT coalesce(sum(rx_bytes),0), coalesce(sum(tx_bytes),0), coalesce(sum(rx_packets),0), coalesce(sum(tx_packets),0) FROM usage WHERE level = ? AND kind = ? AND name = ?",
		lvl, kind, name).Scan(&tr.rxBytes, &tr.txBytes, &tr.rxPackets, &tr.txPackets)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// TestHistoryRollupsExact runs serve's history for eight simulated days
// across the end of October (a DST change in Paris, and a month's end),
// a report a minute with random traffic on two interfaces and from
// random programs, and checks that every length's buckets sum to what
// moved, for each interface and program, to the byte and packet.
func TestHistoryRollupsExact(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	clk := &histClock{time.Date(2026, 10, 24, 22, 3, 0, 0, histLoc)} // DST ends 25 October 03:00
	hc := &histCounters{cs: []counter{{name: "eth0", index: 2, traffic: traffic{1e9, 2e9, 1e6, 2e6}}, {name: "wlan0", index: 3}}}
	s := startHistServe(t, path, hc, clk, "boot-1")
	s.e.hist.keep = [numLevels]time.Duration{} // all kept: 5-minute buckets are compared too
	rng := rand.New(rand.NewPCG(1, 2))
	want := map[string]traffic{}
	programs := []string{"curl", "firefox", "apt", "sshd"}
	for range 8 * 24 * 60 {
		clk.t = clk.t.Add(time.Minute)
		for i, c := range hc.cs {
			d := traffic{rng.Uint64N(1 << 20), rng.Uint64N(1 << 20), rng.Uint64N(1000), rng.Uint64N(1000)}
			hc.move(i, d)
			w := want["iface/"+c.name]
			w.add(d)
			want["iface/"+c.name] = w
		}
		var procs []usage
		for _, p := range programs {
			if rng.IntN(3) == 0 {
				continue
			}
			d := traffic{rng.Uint64N(1 << 16), rng.Uint64N(1 << 16), rng.Uint64N(100), rng.Uint64N(100)}
			procs = append(procs, usage{name: p, interval: d, proc: &process{pid: 100, name: p, user: "root"}})
			w := want["app/"+p]
			w.add(d)
			want["app/"+p] = w
		}
		if err := s.e.refresh(); err != nil {
			t.Fatal(err)
		}
		s.e.mu.Lock()
		s.e.hist.addReport(nil, s.e.sampler.cur, procs)
		s.e.mu.Unlock()
	}
	s.e.closeHistory()
	if s.stderr.Len() > 0 {
		t.Errorf("stderr: %s", s.stderr.String())
	}
	for key, w := range want {
		kind, name, _ := strings.Cut(key, "/")
		for _, lvl := range levelName {
			if got := histSum(t, path, lvl, kind, name); got != w {
				t.Errorf("%s %s at %s: got %+v, want %+v", kind, name, lvl, got, w)
			}
		}
	}
	// The buckets: 8 days (of absolute time: DST moves only the bounds),
	// each on its bound.
	db := histDB(t, path)
	defer db.Close()
	for _, c := range []struct {
		lvl      string
		min, max int
	}{{"5m", 8 * 24 * 12, 8*24*12 + 1}, {"hour", 8 * 24, 8*24 + 1}, {"day", 9, 9}, {"month", 2, 2}} {
		var n int
		db.QueryRow("SELECT count(DISTINCT start) FROM usage WHERE level = ? AND kind = 'iface'", c.lvl).Scan(&n)
		if n < c.min || n > c.max {
			t.Errorf("%s buckets: %d, want %d to %d", c.lvl, n, c.min, c.max)
		}
	}
	rows, _ := db.Query("SELECT DISTINCT level, start FROM usage")
	for rows.Next() {
		var lvl string
		var start int64
		rows.Scan(&lvl, &start)
		l := level5m
		for i, n := range levelName {
			if n == lvl {
				l = level(i)
			}
		}
		at := time.Unix(start, 0).In(histLoc)
		if !bucketStart(l, at, histLoc).Equal(at) {
			t.Errorf("%s bucket at %v is not on its bound", lvl, at)
		}
		if (l == levelDay || l == levelMonth) && (at.Hour() != 0 || at.Minute() != 0) {
			t.Errorf("%s bucket at %v: not at local midnight", lvl, at)
		}
	}
	rows.Close()
}

// TestHistoryRestartCrashReboot: totals of an interface continue across
// a clean stop, a crash (no last flush), the traffic while serve was
// down, and a reboot (counters from zero, another boot id), to the byte;
// nothing is counted twice.
func TestHistoryRestartCrashReboot(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	clk := &histClock{time.Date(2026, 11, 3, 10, 0, 0, 0, histLoc)}
	hc := &histCounters{cs: []counter{{name: "eth0", index: 2, traffic: traffic{5000, 7000, 50, 70}}}}
	var want traffic
	step := func(s *histServe, n int) {
		for range n {
			clk.t = clk.t.Add(10 * time.Second)
			d := traffic{1234, 567, 3, 2}
			hc.move(0, d)
			want.add(d)
			if err := s.e.refresh(); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(what string) {
		t.Helper()
		for _, lvl := range levelName {
			if got := histSum(t, path, lvl, "iface", "eth0"); got != want {
				t.Fatalf("%s: %s buckets hold %+v, want %+v", what, lvl, got, want)
			}
		}
	}
	// Killed before its first flush: the file has the counters it
	// started from all the same, and the next run credits what they moved.
	s := startHistServe(t, path, hc, clk, "boot-1")
	step(s, 3)
	s.crash()
	s = startHistServe(t, path, hc, clk, "boot-1")
	step(s, 20)
	s.e.closeHistory()
	check("after a crash before the first flush, and a stop")

	// Down for a while: what moved meanwhile is credited at the start.
	d := traffic{999, 111, 9, 1}
	hc.move(0, d)
	want.add(d)
	clk.t = clk.t.Add(time.Hour)
	s = startHistServe(t, path, hc, clk, "boot-1")
	step(s, 20) // flushes at 60 s and 120 s of its clock; 200 s: 80 s pending
	s.crash()
	s = startHistServe(t, path, hc, clk, "boot-1")
	s.e.closeHistory()
	check("after a crash") // the counters of the last flush make up for the lost 80 s

	// A reboot: the counters count from zero, and all of them is new.
	hc.cs[0].traffic = traffic{4321, 1234, 4, 1}
	want.add(hc.cs[0].traffic)
	clk.t = clk.t.Add(time.Hour)
	s = startHistServe(t, path, hc, clk, "boot-2")
	step(s, 5)
	s.e.closeHistory()
	check("after a reboot")

	// Another interface with the name (another index): from zero too.
	hc.cs[0].index = 9
	hc.cs[0].traffic = traffic{100, 200, 1, 2}
	want.add(hc.cs[0].traffic)
	s = startHistServe(t, path, hc, clk, "boot-2")
	s.e.closeHistory()
	check("after the interface was made again")
}

// TestHistoryBounded: past maxHistoryKeys programs in a bucket, the new
// ones add to "(other)", and no byte is lost.
func TestHistoryBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	clk := &histClock{time.Date(2026, 11, 3, 10, 0, 0, 0, histLoc)}
	s := startHistServe(t, path, &histCounters{}, clk, "b")
	var procs []usage
	for i := range maxHistoryKeys + 10 {
		name := "p" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
		procs = append(procs, usage{name: name, interval: traffic{rxBytes: 1}, proc: &process{pid: 1, user: "u"}})
	}
	s.e.hist.addReport(nil, nil, procs)
	s.e.closeHistory()
	db := histDB(t, path)
	defer db.Close()
	var n, other, sum int
	db.QueryRow("SELECT count(*), sum(rx_bytes) FROM usage WHERE level = 'day' AND kind = 'app'").Scan(&n, &sum)
	db.QueryRow("SELECT rx_bytes FROM usage WHERE level = 'day' AND kind = 'app' AND name = '(other)'").Scan(&other)
	if n != maxHistoryKeys+1 || other != 10 || sum != maxHistoryKeys+10 {
		t.Errorf("rows %d, (other) %d bytes, sum %d; want %d rows, 10, %d", n, other, sum, maxHistoryKeys+1, maxHistoryKeys+10)
	}
}

// TestHistorySchemaVersions: a file of a later schema is refused by serve
// and by history, and left byte for byte; one of version 0 (an empty
// database) is migrated.
func TestHistorySchemaVersions(t *testing.T) {
	dir := t.TempDir()
	newer := filepath.Join(dir, "newer.db")
	db, err := sql.Open("sqlite", "file:"+newer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE usage (x); PRAGMA user_version = 7"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	before, _ := os.ReadFile(newer)
	clk := &histClock{time.Date(2026, 11, 3, 10, 0, 0, 0, histLoc)}
	e := newExporter((&histCounters{}).read, nil, nil)
	e.sampler.sample()
	err = e.openHistory(newer, defaultKeep, clk.now, "b", &bytes.Buffer{})
	if !errors.Is(err, errHistoryNewer) || !strings.Contains(err.Error(), "version 7") {
		t.Errorf("serve on a version 7 file: %v; want an error that it is newer", err)
	}
	a, stdout, stderr := historyApp(clk)
	if code := a.main([]string{"history", "--db", newer}); code != 1 || stdout.Len() > 0 ||
		stderr.String() != `netuse: history "`+newer+`": its schema is version 7, newer than this netuse's (1): run a newer netuse; the file is left as it is`+"\n" {
		t.Errorf("history on a version 7 file: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if after, _ := os.ReadFile(newer); !bytes.Equal(before, after) {
		t.Error("the version 7 file changed")
	}

	older := filepath.Join(dir, "older.db")
	db, _ = sql.Open("sqlite", "file:"+older)
	db.Exec("CREATE TABLE notes (x)")
	db.Close()
	a, stdout, stderr = historyApp(clk)
	if code := a.main([]string{"history", "--db", older}); code != 1 || !strings.Contains(stderr.String(), "run netuse serve once to migrate it") {
		t.Errorf("history on a version 0 file: exit %d, stderr %q", code, stderr)
	}
	s := startHistServe(t, older, &histCounters{}, clk, "b")
	s.e.closeHistory()
	db, _ = sql.Open("sqlite", "file:"+older)
	defer db.Close()
	var v, n int
	db.QueryRow("PRAGMA user_version").Scan(&v)
	db.QueryRow("SELECT count(*) FROM sqlite_master WHERE name IN ('usage', 'counters', 'notes')").Scan(&n)
	if v != historySchema || n != 3 {
		t.Errorf("after serve: version %d, %d of the tables usage, counters and notes; want %d and 3", v, n, historySchema)
	}
}

// TestHistoryDamaged: a file that is not a database, and one cut short,
// are errors of history naming the file, and serve moves them aside,
// whole, and begins a new one.
func TestHistoryDamaged(t *testing.T) {
	clk := &histClock{time.Date(2026, 11, 3, 10, 0, 0, 0, histLoc)}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	s := startHistServe(t, good, &histCounters{cs: []counter{{name: "eth0", index: 2}}}, clk, "b")
	for i := range 3000 {
		s.e.hist.add(clk.t, histKey{kind: "app", name: "p" + strings.Repeat("y", i%50) + string(rune('a'+i%26)) + string(rune('a'+i/26))}, traffic{rxBytes: 1})
	}
	s.e.closeHistory()
	whole, _ := os.ReadFile(good)
	for _, c := range []struct{ name, content string }{
		{"garbage", strings.Repeat("not a database\n", 500)},
		{"truncated", string(whole[:len(whole)/2])},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, c.name+".db")
			os.WriteFile(path, []byte(c.content), 0o640)
			a, stdout, stderr := historyApp(clk)
			code := a.main([]string{"history", "--db", path, "--since", "2026-11-01"})
			if code != 1 || stdout.Len() > 0 || !strings.HasPrefix(stderr.String(), `netuse: history "`+path+`" is damaged`) {
				t.Errorf("history: exit %d, stdout %q, stderr %q; want 1 and an error naming the file", code, stdout, stderr)
			}
			s := startHistServe(t, path, &histCounters{}, clk, "b")
			s.e.closeHistory()
			moved, _ := filepath.Glob(path + ".corrupt-*")
			if len(moved) != 1 {
				t.Fatalf("moved aside: %v; stderr %q", moved, s.stderr.String())
			}
			if b, _ := os.ReadFile(moved[0]); string(b) != c.content {
				t.Errorf("%s: not the damaged file, whole", moved[0])
			}
			if !strings.Contains(s.stderr.String(), `moved it to "`+moved[0]+`"`) {
				t.Errorf("serve's stderr %q does not say where the file went", s.stderr.String())
			}
			a, _, stderr = historyApp(clk)
			if code := a.main([]string{"history", "--db", path}); code != 0 {
				t.Errorf("history on the new file: exit %d, %s", code, stderr)
			}
		})
	}
}

// TestHistoryTwoWriters: a second serve on the same file refuses.
func TestHistoryTwoWriters(t *testing.T) {
	if _, err := lockState(filepath.Join(t.TempDir(), "probe"), 0); err != nil {
		t.Skip("no lock on this platform")
	}
	path := filepath.Join(t.TempDir(), "history.db")
	clk := &histClock{time.Date(2026, 11, 3, 10, 0, 0, 0, histLoc)}
	s := startHistServe(t, path, &histCounters{}, clk, "b")
	defer s.e.closeHistory()
	e := newExporter((&histCounters{}).read, nil, nil)
	e.sampler.sample()
	err := e.openHistory(path, defaultKeep, clk.now, "b", &bytes.Buffer{})
	if !errors.Is(err, errHistoryBusy) {
		t.Errorf("a second writer: %v; want %v", err, errHistoryBusy)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("the file's mode: %v %v, want 0640", fi.Mode(), err)
	}
}

// TestHistoryServeTwice: serve with --db writes its history metrics, and
// a second serve on the same file ends at once with one line, exit 1,
// while the first goes on.
func TestHistoryServeTwice(t *testing.T) {
	if _, err := lockState(filepath.Join(t.TempDir(), "probe"), 0); err != nil {
		t.Skip("no lock on this platform")
	}
	path := filepath.Join(t.TempDir(), "history.db")
	a, _, stderr := serveApp(newFakeIfaces(ifc("eth0", 2, 100, 200, 1, 2)), noCapture())
	s := startServe(t, a, stderr, "serve", "--listen", "127.0.0.1:0", "--db", path)
	got := scrapeSeries(t, s.addr, "netuse_history_")
	if got["netuse_history_write_errors_total{}"] != 0 || got["netuse_history_last_write_timestamp_seconds{}"] == 0 {
		t.Errorf("metrics %v; want no write error and the write at start", got)
	}
	a2, stdout2, stderr2 := serveApp(newFakeIfaces(ifc("eth0", 2, 100, 200, 1, 2)), noCapture())
	code := mainWithin(t, a2, "serve", "--listen", "127.0.0.1:0", "--db", path)
	want := `netuse: history "` + path + `": another netuse serve writes it (its lock "` + path + `.lock"); give this one another --db, or --db off` + "\n"
	if code != 1 || stdout2.String() != "" || !strings.HasSuffix(stderr2.String(), "\n"+want) { // after the capture's warning
		t.Errorf("a second serve: exit %d, stderr %q; want 1 and %q", code, stderr2.String(), want)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryRetention: past each length's retention its buckets go;
// the longer ones keep the sums.
func TestHistoryRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	clk := &histClock{time.Date(2026, 1, 1, 0, 0, 0, 0, histLoc)}
	s := startHistServe(t, path, &histCounters{}, clk, "b")
	s.e.hist.keep = [numLevels]time.Duration{2 * time.Hour, 2 * 24 * time.Hour, 40 * 24 * time.Hour, 0}
	for range 24 * 100 { // 100 days, an hour at a time
		s.e.hist.add(clk.t, histKey{kind: "iface", name: "eth0"}, traffic{rxBytes: 1})
		clk.t = clk.t.Add(time.Hour)
		s.e.writeHistory()
	}
	s.e.closeHistory()
	db := histDB(t, path)
	defer db.Close()
	for _, c := range []struct {
		lvl      string
		max, sum int
	}{{"5m", 3, 3}, {"hour", 49, 49}, {"day", 42, -1}, {"month", 4, 2400}} {
		var n, sum int
		db.QueryRow("SELECT count(*), sum(rx_bytes) FROM usage WHERE level = ?", c.lvl).Scan(&n, &sum)
		if n > c.max || n < c.max-2 || c.sum >= 0 && (sum > c.sum || sum < c.sum-2) {
			t.Errorf("%s: %d rows of %d bytes; want about %d rows of %d", c.lvl, n, sum, c.max, c.sum)
		}
	}
}

func TestHistoryParseKeep(t *testing.T) {
	for _, c := range []struct{ in, err string }{
		{"48h,90d,2y,forever", ""},
		{"1h,1d,1y,2y", ""},
		{"48h,90d,2y", "want four retentions"},
		{"48h,1h,2y,forever", `"1h": longer buckets are kept at least as long`},
		{"48h,90d,forever,2y", `"2y": longer buckets`},
		{"48x,90d,2y,forever", `"48x": want hours`},
		{"0h,90d,2y,forever", `"0h": want hours`},
	} {
		_, err := parseKeep(c.in)
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("parseKeep(%q): %v, want %q", c.in, err, c.err)
		}
	}
}

func TestHistoryBucketBounds(t *testing.T) {
	kolkata := time.FixedZone("IST", 5*3600+1800)
	for _, c := range []struct {
		l        level
		at, want time.Time
	}{
		{level5m, time.Date(2026, 3, 29, 2, 7, 0, 0, time.UTC), time.Date(2026, 3, 29, 2, 5, 0, 0, time.UTC)},
		{levelHour, time.Date(2026, 3, 29, 10, 59, 0, 0, kolkata), time.Date(2026, 3, 29, 10, 0, 0, 0, kolkata)},
		{levelDay, time.Date(2026, 10, 25, 23, 59, 0, 0, histLoc), time.Date(2026, 10, 25, 0, 0, 0, 0, histLoc)},
		{levelMonth, time.Date(2026, 12, 31, 23, 0, 0, 0, histLoc), time.Date(2026, 12, 1, 0, 0, 0, 0, histLoc)},
	} {
		loc := c.at.Location()
		if got := bucketStart(c.l, c.at, loc); !got.Equal(c.want) {
			t.Errorf("bucketStart(%s, %v) = %v, want %v", levelName[c.l], c.at, got, c.want)
		}
	}
	// Days of 23 and 25 hours, in Paris.
	for _, c := range []struct {
		day   time.Time
		hours float64
	}{{time.Date(2026, 3, 29, 0, 0, 0, 0, histLoc), 23}, {time.Date(2026, 10, 25, 0, 0, 0, 0, histLoc), 25}} {
		if got := bucketNext(levelDay, c.day, histLoc).Sub(c.day).Hours(); got != c.hours {
			t.Errorf("the day of %v: %v hours, want %v", c.day, got, c.hours)
		}
		n, h := 0, c.day
		for h.Before(bucketNext(levelDay, c.day, histLoc)) {
			h = bucketNext(levelHour, h, histLoc)
			n++
		}
		if float64(n) != c.hours {
			t.Errorf("the day of %v: %d hour buckets, want %v", c.day, n, c.hours)
		}
	}
}
