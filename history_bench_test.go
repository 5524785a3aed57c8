package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// The figures of BENCHMARKS.md's "History": the file after 90 simulated
// days of 1,000 programs and 20 interfaces, what netuse history --since
// 90d --by program takes on it, and what one of serve's flushes costs.
//
//	go test -run '^$' -bench 'History' -benchtime 20x .
//
// NETUSE_BENCH_HISTORY=PATH keeps the 90-day file there between runs
// (made if missing); without it the file is made in a temporary directory.

const (
	benchPrograms = 1000
	benchIfaces   = 20
	benchDays     = 90
)

var (
	benchHistoryOnce sync.Once
	benchHistoryPath string
	benchHistoryEnd  time.Time
	benchHistoryErr  error
)

// benchHistoryFile makes the 90-day file through serve's own store: every
// program and interface moves traffic in every 5-minute bucket of the
// last 48 hours (what the 5-minute buckets keep) and once an hour before,
// each hour's traffic written as serve would (one flush), so that every
// bucket kept has all 1,020 rows: the largest file the retention allows
// for them.
func benchHistoryFile(b *testing.B) (string, time.Time) {
	benchHistoryOnce.Do(func() {
		path := os.Getenv("NETUSE_BENCH_HISTORY")
		if path == "" {
			dir, err := os.MkdirTemp("", "netuse-bench-history")
			if err != nil {
				benchHistoryErr = err
				return
			}
			path = filepath.Join(dir, "history.db")
		}
		end := time.Date(2026, 12, 1, 0, 0, 0, 0, time.Local)
		benchHistoryPath, benchHistoryEnd = path, end
		if _, err := os.Stat(path); err == nil {
			return
		}
		clk := &histClock{end.Add(-benchDays * 24 * time.Hour)}
		s := newHistoryStore(path, clk.now, "bench", nil)
		if _, err := s.open(); err != nil {
			benchHistoryErr = err
			return
		}
		defer s.close()
		start := time.Now()
		for clk.t.Before(end) {
			step := time.Hour
			if end.Sub(clk.t) <= 48*time.Hour {
				step = 5 * time.Minute
			}
			for i := range benchPrograms {
				s.add(clk.t, histKey{kind: "app", name: fmt.Sprintf("program-%04d", i), user: fmt.Sprintf("user%d", i%20)}, traffic{uint64(1000 + i), uint64(500 + i), 10, 5})
			}
			for i := range benchIfaces {
				s.add(clk.t, histKey{kind: "iface", name: fmt.Sprintf("eth%d", i)}, traffic{1e6, 5e5, 1000, 500})
			}
			clk.t = clk.t.Add(step)
			if err := s.write(); err != nil {
				benchHistoryErr = err
				return
			}
		}
		fmt.Fprintf(os.Stderr, "made %s in %v\n", path, time.Since(start).Round(time.Second))
	})
	if benchHistoryErr != nil {
		b.Fatal(benchHistoryErr)
	}
	return benchHistoryPath, benchHistoryEnd
}

// BenchmarkHistoryQuery90d: netuse history --since 90d --by program on
// the 90-day file, the whole command (open, check, query, table) into
// io.Discard; it reports the file's size.
func BenchmarkHistoryQuery90d(b *testing.B) {
	path, end := benchHistoryFile(b)
	var size int64
	for _, suffix := range []string{"", "-wal"} {
		if fi, err := os.Stat(path + suffix); err == nil {
			size += fi.Size()
		}
	}
	// At the file's end, a month's first midnight, 90 days are days and
	// months alone; 13h37m before it, hours and 5-minute buckets too.
	midday := end.Add(-13*time.Hour - 37*time.Minute)
	for _, c := range []struct {
		name string
		now  time.Time
		args []string
	}{
		{"90d", end, []string{"--since", "90d", "--by", "program"}},
		{"90d-json", end, []string{"--since", "90d", "--by", "program", "--json"}},
		{"90d-midday", midday, []string{"--since", "90d", "--by", "program"}},
		{"24h", end, []string{"--since", "24h", "--by", "program"}},
		{"30d-by-day", end, []string{"--since", "30d", "--by", "iface", "--every", "day"}},
	} {
		args := append([]string{"history", "--db", path}, c.args...)
		b.Run(c.name, func(b *testing.B) {
			now := c.now
			a := &app{stdout: io.Discard, stderr: io.Discard, clock: clock{now: func() time.Time { return now }, sleep: func(context.Context, time.Duration) error { return nil }}}
			for b.Loop() {
				if code := a.main(args); code != 0 {
					b.Fatalf("exit %d", code)
				}
			}
			b.ReportMetric(float64(size)/(1<<20), "file-MiB")
		})
	}
}

// BenchmarkHistoryFlush: one of serve's flushes (a minute) of 1,000
// programs and 20 interfaces into a file that has the day's rows: serve's
// added cost, once a minute.
func BenchmarkHistoryFlush(b *testing.B) {
	path := filepath.Join(b.TempDir(), "history.db")
	clk := &histClock{time.Date(2026, 12, 1, 0, 0, 0, 0, time.Local)}
	s := newHistoryStore(path, clk.now, "bench", nil)
	if _, err := s.open(); err != nil {
		b.Fatal(err)
	}
	defer s.close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		for i := range benchPrograms {
			s.add(clk.t, histKey{kind: "app", name: fmt.Sprintf("program-%04d", i), user: "u"}, traffic{1000, 500, 10, 5})
		}
		for i := range benchIfaces {
			s.add(clk.t, histKey{kind: "iface", name: fmt.Sprintf("eth%d", i)}, traffic{1e6, 5e5, 1000, 500})
		}
		clk.t = clk.t.Add(time.Minute)
		if err := s.write(); err != nil {
			b.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-MiB")
}
