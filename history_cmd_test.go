package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// historyApp is netuse with clk's time and no default history file.
func historyApp(clk *histClock) (*app, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return &app{stdout: &stdout, stderr: &stderr, clock: clock{now: clk.now, sleep: func(context.Context, time.Duration) error { return nil }}}, &stdout, &stderr
}

// historyFixture writes a history of two days, in local time: eth0 moves
// 1000 bytes in and 100 out a minute; curl (root) 10 in a minute, apt
// (root, in apt.service) 20 in a minute during the second day's first
// hour; 5 bytes a minute of no socket.
func historyFixture(t *testing.T) (path string, clk *histClock, start time.Time) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "history.db")
	start = time.Date(2026, 11, 29, 0, 0, 0, 0, time.Local)
	clk = &histClock{start}
	hc := &histCounters{cs: []counter{{name: "eth0", index: 2}}}
	s := startHistServe(t, path, hc, clk, "b")
	s.e.hist.loc = time.Local
	for m := range 2 * 24 * 60 {
		hc.move(0, traffic{1000, 100, 10, 1})
		clk.t = start.Add(time.Duration(m)*time.Minute + 59*time.Second)
		if err := s.e.refresh(); err != nil {
			t.Fatal(err)
		}
		at := start.Add(time.Duration(m) * time.Minute) // the minute's traffic, in its own bucket
		s.e.hist.add(at, histKey{kind: "app", name: "curl", user: "root"}, traffic{rxBytes: 10, rxPackets: 1})
		if m >= 24*60 && m < 25*60 {
			s.e.hist.add(at, histKey{kind: "app", name: "apt", user: "root", container: "apt.service"}, traffic{rxBytes: 20, rxPackets: 1})
		}
		s.e.hist.add(at, histKey{kind: "reason", name: "no_socket"}, traffic{txBytes: 5, txPackets: 1})
	}
	s.e.closeHistory()
	clk.t = start.Add(48 * time.Hour)
	return path, clk, start
}

// historyJSONRun runs netuse history --json with args and returns its records.
func historyJSONRun(t *testing.T, clk *histClock, args ...string) []historyRecord {
	t.Helper()
	a, stdout, stderr := historyApp(clk)
	if code := a.main(append([]string{"history", "--json"}, args...)); code != 0 {
		t.Fatalf("netuse history --json %s: exit %d, %s", strings.Join(args, " "), code, stderr)
	}
	var recs []historyRecord
	for _, line := range strings.FieldsFunc(stdout.String(), func(r rune) bool { return r == '\n' }) {
		var r historyRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if r.Schema != historyJSON {
			t.Errorf("schema %d, want %d", r.Schema, historyJSON)
		}
		recs = append(recs, r)
	}
	return recs
}

func TestHistoryCmdJSON(t *testing.T) {
	path, clk, start := historyFixture(t)
	str := func(p *string) string {
		if p == nil {
			return "<none>"
		}
		return *p
	}
	for _, c := range []struct {
		name string
		args []string
		want []string // program/user/container/iface/reason rx tx, in order
	}{
		{"all of it by program", []string{"--since", "2026-11-29"},
			[]string{"curl/<none>/<none>/<none>/<none> 28800 0", "(no socket)/<none>/<none>/<none>/no_socket 0 14400", "apt/<none>/<none>/<none>/<none> 1200 0"}},
		{"by iface", []string{"--since", "2026-11-29", "--by", "iface"},
			[]string{"<none>/<none>/<none>/eth0/<none> 2880000 288000"}},
		{"second day by container,user", []string{"--since", "2026-11-30", "--by", "container,user"},
			[]string{"<none>/root//<none>/<none> 14400 0", "<none>/root/apt.service/<none>/<none> 1200 0"}},
		{"by reason", []string{"--since", "48h", "--by", "reason"},
			[]string{"<none>/<none>/<none>/<none>/no_socket 0 14400"}},
		{"filtered", []string{"--since", "2026-11-29", "--program", "a*,zz", "--user", "root"},
			[]string{"apt/<none>/<none>/<none>/<none> 1200 0"}},
		{"by iface, none picked", []string{"--since", "2026-11-29", "--by", "iface", "--iface", "wl*"}, nil},
		{"top 1", []string{"--since", "2026-11-29", "--top", "1"},
			[]string{"curl/<none>/<none>/<none>/<none> 28800 0"}},
		{"an hour: 5-minute buckets at both ends", []string{"--since", "2026-11-30 00:00", "--until", "2026-11-30 01:00"},
			[]string{"apt/<none>/<none>/<none>/<none> 1200 0", "curl/<none>/<none>/<none>/<none> 600 0", "(no socket)/<none>/<none>/<none>/no_socket 0 300"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			recs := historyJSONRun(t, clk, append([]string{"--db", path}, c.args...)...)
			var got []string
			for _, r := range recs {
				got = append(got, fmt.Sprintf("%s/%s/%s/%s/%s %d %d", str(r.Program), str(r.User), str(r.Container), str(r.Iface), str(r.Reason), r.RxBytes, r.TxBytes))
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
	// A row per day, and per hour: the same sums.
	for _, every := range []string{"5m", "hour", "day", "month"} {
		recs := historyJSONRun(t, clk, "--db", path, "--since", "2026-11-29", "--by", "iface", "--every", every)
		var sum uint64
		for i, r := range recs {
			sum += r.RxBytes
			from, _ := time.Parse(time.RFC3339, r.From)
			if i == 0 && every != "month" && !from.Equal(start) {
				t.Errorf("--every %s: the first bucket from %s, want %s", every, r.From, start.Format(time.RFC3339))
			}
		}
		n := map[string]int{"5m": 576, "hour": 48, "day": 2, "month": 1}[every]
		if len(recs) != n || sum != 2880000 {
			t.Errorf("--every %s: %d rows of %d bytes, want %d of 2880000", every, len(recs), sum, n)
		}
	}
}

func TestHistoryCmdTable(t *testing.T) {
	path, clk, _ := historyFixture(t)
	a, stdout, stderr := historyApp(clk)
	if code := a.main([]string{"history", "--db", path, "--since", "2026-11-30", "--by", "program,user", "--si"}); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	from := time.Date(2026, 11, 30, 0, 0, 0, 0, time.Local)
	want := from.Format(timeLayout) + " to " + clk.t.Format(timeLayout) + "\n" +
		"PROGRAM      USER       RX      TX    TOTAL\n" +
		"curl         root  14.4 kB     0 B  14.4 kB\n" +
		"(no socket)  -         0 B  7.2 kB   7.2 kB\n" +
		"apt          root   1.2 kB     0 B   1.2 kB\n" +
		"total              15.6 kB  7.2 kB  22.8 kB\n"
	if stdout.String() != want {
		t.Errorf("got\n%s\nwant\n%s", stdout, want)
	}
}

// TestHistoryCmdErrors: bad flags are usage errors (exit 2), a missing
// file says how to start one (exit 1), and nothing goes to stdout.
func TestHistoryCmdErrors(t *testing.T) {
	clk := &histClock{epoch}
	missing := filepath.Join(t.TempDir(), "none.db")
	for _, c := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"--db", missing}, 1, `netuse: history "` + missing + `": no such file: netuse serve keeps history there; start it (sudo netuse serve, or the contrib unit), or give --db the file it writes`},
		{[]string{}, 2, `netuse: history: no history file: give --db PATH, the file netuse serve --db writes; see 'netuse --help'`},
		{[]string{"--db", missing, "--since", "yesterday"}, 2, `netuse: --since "yesterday": want a span back from now (24h, 7d, 2w, 1y), a local date (2026-11-01) or time ('2026-11-01 08:00'); see 'netuse --help'`},
		{[]string{"--db", missing, "--until", "2026-13-01"}, 2, `netuse: --until "2026-13-01": want a span`},
		{[]string{"--db", missing, "--by", "pid"}, 2, `netuse: --by "pid": no key "pid"; want program, user, container (several joined by commas), iface or reason`},
		{[]string{"--db", missing, "--by", "iface,program"}, 2, `netuse: --by "iface,program": iface and reason go alone`},
		{[]string{"--db", missing, "--by", "user,user"}, 2, `netuse: --by "user,user": "user" twice`},
		{[]string{"--db", missing, "--every", "week"}, 2, `netuse: --every "week": want 5m, hour, day or month`},
		{[]string{"--db", missing, "--by", "iface", "--program", "curl"}, 2, `netuse: --by "iface": --program and --user pick processes`},
		{[]string{"--db", missing, "--program", "[x"}, 2, `netuse: --program "[x": "[x": want shell globs`},
		{[]string{"--db", missing, "--sort", "pid"}, 2, `netuse: --sort "pid": want rx, tx, total or name`},
		{[]string{"--db", missing, "--since", "1h", "--until", "2h"}, 2, `netuse: --since "1h" is not before --until "2h"`},
		{[]string{"--db", missing, "--top", "-1"}, 2, `netuse: --top "-1": want 0`},
		// Every command's flags that history has no use for: refused, not ignored.
		{[]string{"--db", missing, "--count", "3"}, 2, `netuse: --count "3": history reads a span of time once and writes a table, or JSON records with --json; drop it`},
		{[]string{"--db", missing, "-i", "2s"}, 2, `netuse: --interval "2s": history reads a span`},
		{[]string{"--db", missing, "--no-clear"}, 2, `netuse: --no-clear "true": history reads a span`},
		{[]string{"--db", missing, "--format", "prometheus"}, 2, `netuse: --format "prometheus": history reads a span`},
		{[]string{"--db", missing, "--textfile", "/tmp/x.prom"}, 2, `netuse: --textfile "/tmp/x.prom": history reads a span`},
	} {
		a, stdout, stderr := historyApp(clk)
		code := a.main(append([]string{"history"}, c.args...))
		if code != c.code || stdout.Len() > 0 || !strings.HasPrefix(stderr.String(), c.err) || strings.Count(stderr.String(), "\n") != 1 {
			t.Errorf("history %s: exit %d, stdout %q, stderr %q; want %d and %q", strings.Join(c.args, " "), code, stdout, stderr, c.code, c.err)
		}
	}
	// serve's own flags.
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"--db-keep", "48h,90d"}, `netuse: --db-keep "48h,90d": want four retentions`},
		{[]string{"--db-keep", "1d,1h,1y,forever"}, `netuse: --db-keep "1d,1h,1y,forever": "1h": longer buckets`},
	} {
		a, stdout, stderr := historyApp(clk)
		code := a.main(append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...))
		if code != 2 || stdout.Len() > 0 || !strings.HasPrefix(stderr.String(), c.err) {
			t.Errorf("serve %s: exit %d, stderr %q; want 2 and %q", strings.Join(c.args, " "), code, stderr, c.err)
		}
	}
}

// TestHistoryPlanSpans: a span is tiled by the longest buckets, in order
// and without gaps, and its ends widen to the shortest bucket kept.
func TestHistoryPlanSpans(t *testing.T) {
	loc := histLoc
	now := time.Date(2026, 12, 6, 11, 27, 0, 0, loc)
	spans, from, to := planSpans(now.Add(-90*24*time.Hour), now, now, defaultKeep, loc)
	if want := bucketStart(levelDay, now.Add(-90*24*time.Hour), loc); !from.Equal(want) {
		t.Errorf("from %v, want %v (a day bucket: the hour's is partly gone, 5-minute ones all)", from, want)
	}
	if want := time.Date(2026, 12, 6, 11, 30, 0, 0, loc); !to.Equal(want) {
		t.Errorf("to %v, want %v", to, want)
	}
	var levels []string
	prev := from.Unix()
	for _, s := range spans {
		if s.from != prev {
			t.Errorf("a gap or an overlap at %v", time.Unix(s.from, 0))
		}
		prev = s.to
		levels = append(levels, levelName[s.l])
	}
	if got := strings.Join(levels, ","); got != "day,month,day,hour,5m" {
		t.Errorf("levels %s, want day,month,day,hour,5m", got)
	}
	// Within 48 hours, from 5-minute buckets on.
	spans, from, _ = planSpans(now.Add(-24*time.Hour), now, now, defaultKeep, loc)
	if want := time.Date(2026, 12, 5, 11, 25, 0, 0, loc); !from.Equal(want) || spans[0].l != level5m {
		t.Errorf("--since 24h: from %v at %s, want %v at 5m", from, levelName[spans[0].l], want)
	}
}

// TestHistoryCmdRetention: history reads serve's --db-keep from the file:
// with 5-minute buckets kept an hour, --since 3h begins at an hour's
// bucket, and finds the traffic of the 5-minute buckets pruned in it.
func TestHistoryCmdRetention(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	clk := &histClock{time.Date(2026, 11, 30, 7, 0, 0, 0, time.Local)}
	e := newExporter((&histCounters{}).read, nil, nil)
	e.sampler.sample()
	keep := [numLevels]time.Duration{time.Hour, 48 * time.Hour, 0, 0}
	var stderr bytes.Buffer
	if err := e.openHistory(path, keep, clk.now, "b", &stderr); err != nil {
		t.Fatal(err)
	}
	e.hist.loc = time.Local
	for range 4 * 60 { // 07:00 to 11:00, a minute at a time
		e.hist.add(clk.t, histKey{kind: "iface", name: "eth0"}, traffic{rxBytes: 1})
		clk.t = clk.t.Add(time.Minute)
		e.writeHistory()
	}
	e.closeHistory()
	clk.t = time.Date(2026, 11, 30, 10, 37, 0, 0, time.Local)
	recs := historyJSONRun(t, clk, "--db", path, "--since", "3h", "--by", "iface")
	if len(recs) != 1 || recs[0].From != time.Date(2026, 11, 30, 7, 0, 0, 0, time.Local).Format(time.RFC3339) || recs[0].RxBytes != 220 {
		t.Errorf("got %+v; want one record from 07:00 (an hour bucket) to 10:40 of 220 bytes", recs)
	}
}

// TestHistoryCmdInterfacesOnly: a file where serve kept the interfaces
// alone (it could not capture) answers --by program with why, not with
// "no traffic"; a span where nothing moved says no traffic.
func TestHistoryCmdInterfacesOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.db")
	start := time.Date(2026, 11, 29, 0, 0, 0, 0, time.Local)
	clk := &histClock{start}
	hc := &histCounters{cs: []counter{{name: "eth0", index: 2}}}
	s := startHistServe(t, path, hc, clk, "b")
	s.e.hist.loc = time.Local
	for m := range 60 {
		hc.move(0, traffic{1000, 24, 10, 1})
		clk.t = start.Add(time.Duration(m)*time.Minute + 59*time.Second)
		if err := s.e.refresh(); err != nil {
			t.Fatal(err)
		}
	}
	s.e.closeHistory()
	clk.t = start.Add(2 * time.Hour)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "2026-11-29", "--by", "program", "--si"}, "no traffic of processes kept in that span, while the interfaces moved 61.4 kB: serve was not capturing"},
		{[]string{"--since", "2026-11-29", "--by", "user,container"}, "no traffic of processes kept in that span, while the interfaces moved"},
		{[]string{"--since", "2026-11-28", "--until", "2026-11-29"}, "no traffic kept in that span\n"},
		{[]string{"--since", "2026-11-29", "--by", "program", "--program", "curl"}, "no traffic kept in that span\n"},
	} {
		a, stdout, stderr := historyApp(clk)
		if code := a.main(append([]string{"history", "--db", path}, c.args...)); code != 0 {
			t.Fatalf("history %s: exit %d: %s", strings.Join(c.args, " "), code, stderr)
		}
		if _, line, _ := strings.Cut(stdout.String(), "\n"); !strings.HasPrefix(line, c.want) {
			t.Errorf("history %s: %q; want its second line to start %q", strings.Join(c.args, " "), stdout, c.want)
		}
	}
}
