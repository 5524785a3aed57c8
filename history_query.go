package main

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The history's answer to a question (historyOptions): the fewest
// buckets that tile the span asked for, read from the file opened
// read-only, summed per --by key, filtered, sorted and cut to --top.
// netuse history and serve's /api/v1/history both ask it.

// span is a run of buckets of one length, [from, to) in Unix seconds.
type span struct {
	l        level
	from, to int64
}

// planSpans tiles [since, until) with the fewest buckets kept: at each
// point the longest bucket that starts there and ends by until, so that
// 90 days are some 90 days' and 48 hours' rows rather than 2,160 hours'.
// Each end widens to a whole bucket: since to the start of the shortest
// one still kept then, until to the end of the 5-minute bucket (or the
// shortest kept) it falls in. from and to are the span covered. keep is
// serve's retention, which the file keeps (readKeep).
func planSpans(since, until, now time.Time, keep [numLevels]time.Duration, loc *time.Location) (spans []span, from, to time.Time) {
	kept := func(l level, t time.Time) bool { return keep[l] <= 0 || !t.Before(now.Add(-keep[l])) }
	first := level5m
	for first < numLevels-1 && !kept(first, bucketStart(first, since, loc)) {
		first++
	}
	t := bucketStart(first, since, loc)
	from = t
	for t.Before(until) {
		l := level(-1)
		for c := numLevels - 1; c >= 0; c-- {
			if bucketStart(c, t, loc).Equal(t) && !bucketNext(c, t, loc).After(until) && kept(c, t) {
				l = c
				break
			}
		}
		if l < 0 { // until falls inside every bucket starting at t: the shortest kept
			l = numLevels - 1
			for c := level5m; c < numLevels; c++ {
				if bucketStart(c, t, loc).Equal(t) && kept(c, t) {
					l = c
					break
				}
			}
		}
		next := bucketNext(l, t, loc)
		if n := len(spans); n > 0 && spans[n-1].l == l && spans[n-1].to == t.Unix() {
			spans[n-1].to = next.Unix()
		} else {
			spans = append(spans, span{l, t.Unix(), next.Unix()})
		}
		t = next
	}
	return spans, from, t
}

// historyRow is one row of the answer: a bucket (or the whole span) and
// a key's traffic.
type historyRow struct {
	from, to time.Time
	key      histKey // the --by keys' values; the others ""
	reason   string  // a reason row under --by program: its NDJSON key
	t        traffic
}

// readHistory returns the rows h asks for, at now, from h.db: what
// netuse history writes, and serve's /api/v1/history.
func readHistory(h historyOptions, now time.Time) (rows []historyRow, from, to time.Time, err error) {
	since, _ := parseWhen(h.since, now)
	until := now
	if h.until != "" {
		until, _ = parseWhen(h.until, now)
	}
	if !since.Before(until) {
		return nil, from, to, usageError{fmt.Errorf("--since %q is not before --until %q", h.since, h.until)}
	}
	db, err := openReader(h.db)
	if err != nil {
		return nil, from, to, err
	}
	defer db.Close()
	rows, from, to, err = queryHistory(db, h, since, until, now, time.Local)
	if err != nil {
		return nil, from, to, historyErr(h.db, err)
	}
	return rows, from, to, nil
}

// parseWhen reads --since and --until: a span back from now (24h, 7d),
// "now", or a local date or time.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "now" {
		return now, nil
	}
	if d, err := parseSpan(s); err == nil {
		if d <= 0 {
			return time.Time{}, errors.New("want a span of time back from now, more than 0")
		}
		return now.Add(-d), nil
	}
	for _, layout := range []string{"2006-01-02", "2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02 15:04:05", time.RFC3339} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("want a span back from now (24h, 7d, 2w, 1y), a local date (2026-11-01) or time ('2026-11-01 08:00')")
}

// openReader opens the history file read-only, saying how to make one if
// there is none.
func openReader(file string) (*sql.DB, error) {
	if _, err := os.Stat(file); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("history %q: no such file: netuse serve keeps history there; start it (sudo netuse serve, or the contrib unit), or give --db the file it writes", file)
	} else if err != nil {
		return nil, fmt.Errorf("history %q: %w", file, err)
	}
	db, err := openRO(file, "")
	var se *sqlite.Error
	if errors.As(err, &se) && (se.Code()&0xff == sqlite3.SQLITE_READONLY || se.Code()&0xff == sqlite3.SQLITE_CANTOPEN) {
		// A reader who may not write the directory cannot make the WAL's
		// index (-shm). With no WAL either, serve is not writing and its
		// last write is all in the file: read it as immutable.
		if _, serr := os.Stat(file + "-wal"); errors.Is(serr, fs.ErrNotExist) {
			db, err = openRO(file, "&immutable=1")
		} else {
			err = fmt.Errorf("history %q: serve is writing it, and this user may not open its index %q: run history as root or as serve's user", file, file+"-shm")
		}
	}
	if err != nil {
		return nil, err
	}
	return db, nil
}

// openRO opens the history file read-only, with SQLite's URI parameters
// more, and checks its version.
func openRO(file, more string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", "file:"+file+"?mode=ro&_pragma=busy_timeout(5000)"+more)
	if err != nil {
		return nil, fmt.Errorf("history %q: %w", file, err)
	}
	if err := checkHistory(db, file, false); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// queryHistory returns the rows h asks for, sorted and cut to --top (per
// bucket with --every).
func queryHistory(db *sql.DB, h historyOptions, since, until, now time.Time, loc *time.Location) (rows []historyRow, from, to time.Time, err error) {
	var spans []span
	if h.every < numLevels {
		from = bucketStart(h.every, since, loc)
		to = from
		for to.Before(until) {
			to = bucketNext(h.every, to, loc)
		}
		spans = []span{{h.every, from.Unix(), to.Unix()}}
	} else {
		keep, err := readKeep(db)
		if err != nil {
			return nil, from, to, err
		}
		spans, from, to = planSpans(since, until, now, keep, loc)
	}
	kinds := "'app', 'reason'"
	switch {
	case h.by[0] == "iface":
		kinds = "'iface'"
	case h.by[0] == "reason":
		kinds = "'reason'"
	case !slices.Contains(h.by, "program"):
		kinds = "'app'"
	}
	var parts []string
	var args []any
	for _, s := range spans {
		parts = append(parts, "SELECT start, kind, name, user, container, rx_bytes, tx_bytes, rx_packets, tx_packets FROM usage WHERE level = ? AND kind IN ("+kinds+") AND start >= ? AND start < ?")
		args = append(args, levelName[s.l], s.from, s.to)
	}
	start := "0"
	if h.every < numLevels {
		start = "start"
	}
	q := "SELECT " + start + ", kind, name, user, container, sum(rx_bytes), sum(tx_bytes), sum(rx_packets), sum(tx_packets) FROM (" +
		strings.Join(parts, " UNION ALL ") + ") GROUP BY 1, kind, name, user, container"
	rs, err := db.Query(q, args...)
	if err != nil {
		return nil, from, to, err
	}
	defer rs.Close()
	type groupAt struct {
		at     int64
		key    histKey
		reason string
	}
	sums := map[groupAt]traffic{}
	for rs.Next() {
		var at int64
		var k histKey
		var t traffic
		if err := rs.Scan(&at, &k.kind, &k.name, &k.user, &k.container, &t.rxBytes, &t.txBytes, &t.rxPackets, &t.txPackets); err != nil {
			return nil, from, to, err
		}
		g := groupAt{at: at}
		if k.kind == "reason" && h.by[0] != "reason" {
			g.reason = k.name
			k = histKey{kind: "app", name: reasonNameOf(k.name)}
		}
		if !h.keep(k) {
			continue
		}
		g.key = h.project(k)
		s := sums[g]
		s.add(t)
		sums[g] = s
	}
	if err := rs.Err(); err != nil {
		return nil, from, to, err
	}
	out := make([]historyRow, 0, len(sums))
	for g, t := range sums {
		r := historyRow{from: from, to: to, key: g.key, reason: g.reason, t: t}
		if h.every < numLevels {
			r.from = time.Unix(g.at, 0).In(loc)
			r.to = bucketNext(h.every, r.from, loc)
		}
		out = append(out, r)
	}
	h.sortRows(out)
	if h.top > 0 {
		n, kept := 0, out[:0]
		for i, r := range out {
			if i > 0 && !r.from.Equal(out[i-1].from) {
				n = 0
			}
			if n < h.top {
				kept = append(kept, r)
			}
			n++
		}
		out = kept
	}
	return out, from, to, nil
}

// readKeep reads serve's retention from the file: each length's, or the
// default where the file does not say.
func readKeep(db *sql.DB) ([numLevels]time.Duration, error) {
	keep := defaultKeep
	rows, err := db.Query("SELECT level, keep_seconds FROM retention")
	if err != nil {
		return keep, err
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var secs int64
		if err := rows.Scan(&name, &secs); err != nil {
			return keep, err
		}
		for l, n := range levelName {
			if n == name {
				keep[l] = time.Duration(secs) * time.Second
			}
		}
	}
	return keep, rows.Err()
}

// reasonNameOf is the table's name of a reason's NDJSON key.
func reasonNameOf(key string) string {
	for r, k := range reasonKey {
		if k == key && r != int(attributed) {
			return reasonName[r]
		}
	}
	return "(" + key + ")"
}

// keep reports whether a row passes --program, --user and --iface.
func (h historyOptions) keep(k histKey) bool {
	match := func(globs []string, name string) bool {
		return slices.ContainsFunc(globs, func(g string) bool { ok, _ := path.Match(g, name); return ok })
	}
	if k.kind == "iface" {
		return len(h.ifaces) == 0 || match(h.ifaces, k.name)
	}
	if len(h.programs) > 0 && !match(h.programs, k.name) {
		return false
	}
	return len(h.users) == 0 || slices.Contains(h.users, k.user)
}

// project keeps the --by keys of k.
func (h historyOptions) project(k histKey) histKey {
	p := histKey{kind: k.kind}
	for _, by := range h.by {
		switch by {
		case "program", "iface", "reason":
			p.name = k.name
		case "user":
			p.user = k.user
		case "container":
			p.container = k.container
		}
	}
	return p
}

// sortRows orders rows by bucket, then by --sort (total by default,
// largest first; name in the keys' order).
func (h historyOptions) sortRows(rows []historyRow) {
	by := func(t traffic) uint64 {
		switch h.sort {
		case "rx":
			return t.rxBytes
		case "tx":
			return t.txBytes
		}
		return t.rxBytes + t.txBytes
	}
	slices.SortFunc(rows, func(a, b historyRow) int {
		if c := a.from.Compare(b.from); c != 0 {
			return c
		}
		if h.sort != "name" {
			if x, y := by(a.t), by(b.t); x != y {
				if x > y {
					return -1
				}
				return 1
			}
		}
		for _, c := range []int{strings.Compare(a.key.name, b.key.name), strings.Compare(a.key.user, b.key.user), strings.Compare(a.key.container, b.key.container)} {
			if c != 0 {
				return c
			}
		}
		return 0
	})
}
