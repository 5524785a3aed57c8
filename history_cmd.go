package main

import (
	"bufio"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/alecthomas/kong"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// netuse history: what serve kept (history_store.go), summed over a span
// of time, per interface, per group of processes or per reason, as a
// table or as JSON records (historyRecord, whose schema historyJSON
// versions). It opens the file read-only and reads while serve writes.

// historyCmd holds history's own flags; --iface, --top, --sort, --json,
// --units and --si are every command's.
type historyCmd struct {
	Since   string `default:"24h" placeholder:"24h" group:"history" help:"history: from this long ago (24h, 7d, 2w, 1y) or this local date or time (2026-11-01, '2026-11-01 08:00')."`
	Until   string `placeholder:"now" group:"history" help:"history: up to this long ago or this local date or time, as --since; default now."`
	By      string `default:"program" placeholder:"KEYS" group:"history" help:"history: one row per program, user, container (several joined by commas: user,program), or per iface or reason alone."`
	Every   string `placeholder:"LENGTH" group:"history" help:"history: a row per bucket of this length too: 5m, hour, day or month (local time), as vnstat -d and -m."`
	Program string `placeholder:"GLOBS" group:"history" help:"history: only programs whose name matches one of these shell globs (comma-separated)."`
	User    string `placeholder:"USERS" group:"history" help:"history: only processes of these users (names, comma-separated)."`
	Db      string `placeholder:"PATH" group:"history" help:"history: the file serve keeps history in; default /var/lib/netuse/history.db for root, else $XDG_STATE_HOME/netuse/history.db."`
}

func (historyCmd) Help() string {
	return `What netuse serve kept: the traffic of each program (or user, container,
interface, or reason no process was credited) over a span of time, from
serve's history file, summed, or a row per 5 minutes, hour, day or month
with --every. It reads while serve writes (SQLite's WAL), and never
writes the file.

Examples:

	netuse history --since 24h --by program
	netuse history --since 2026-11-01 --by iface --every day
	netuse history --since 7d --by user,program --top 10 --json`
}

// historyJSON is the version of history's JSON records: a record's keys
// change meaning only with a new version.
const historyJSON = 1

// historyKeys are the keys --by takes; iface and reason go alone.
var historyKeys = []string{"program", "user", "container", "iface", "reason"}

// historyOptions are history's flags, read.
type historyOptions struct {
	db           string // "" for the default
	since, until string // as given; read against the clock when history runs
	by           []string
	every        level // numLevels: no --every
	programs     []string
	users        []string
	ifaces       []string
	top          int
	sort         string
	json         bool
	r            *renderer // units: --units and --si
	none         string    // the table's line when no row came; "" for the usual one
}

// readHistoryFlags reads history's flags into c.history.
func (c *cli) readHistoryFlags(kctx *kong.Context) error {
	if err := refuseFlags(kctx, "history reads a span of time once and writes a table, or JSON records with --json; drop it"); err != nil {
		return err
	}
	h, bad := c.History.options(c.Ifaces, c.o.top, c.Sort)
	if bad != nil {
		return badFlag(kctx, bad.where, bad.value, bad.want)
	}
	if err := c.readSwitchesAndGlobs(kctx); err != nil {
		return err
	}
	h.json = c.json
	h.r = &renderer{si: c.si, bits: c.bits}
	c.history = h
	return nil
}

// options reads history's flags (and --iface, --top, --sort, read
// already) into historyOptions; a bad one is returned with where the
// flag's long name. serve's /api/v1/history reads its query through it.
func (f historyCmd) options(ifaces []string, top int, sort string) (historyOptions, *badValue) {
	h := historyOptions{db: f.Db, since: f.Since, until: f.Until, every: numLevels, ifaces: ifaces, top: top, sort: sort}
	now := time.Now()
	if _, err := parseWhen(f.Since, now); err != nil {
		return h, &badValue{"since", f.Since, err.Error()}
	}
	if f.Until != "" {
		if _, err := parseWhen(f.Until, now); err != nil {
			return h, &badValue{"until", f.Until, err.Error()}
		}
	}
	for _, key := range strings.Split(f.By, ",") {
		switch {
		case !slices.Contains(historyKeys, key):
			return h, &badValue{"by", f.By, fmt.Sprintf("no key %q; want program, user, container (several joined by commas), iface or reason", key)}
		case slices.Contains(h.by, key):
			return h, &badValue{"by", f.By, fmt.Sprintf("%q twice; want each key once", key)}
		}
		h.by = append(h.by, key)
	}
	if len(h.by) > 1 && (slices.Contains(h.by, "iface") || slices.Contains(h.by, "reason")) {
		return h, &badValue{"by", f.By, "iface and reason go alone: an interface's traffic is not split by process; want iface, reason, or keys of program, user and container"}
	}
	if f.Every != "" {
		i := slices.Index(levelName[:], f.Every)
		if i < 0 {
			return h, &badValue{"every", f.Every, "want 5m, hour, day or month"}
		}
		h.every = level(i)
	}
	for _, g := range splitList(f.Program) {
		if _, err := path.Match(g, ""); err != nil || g == "" {
			return h, &badValue{"program", f.Program, fmt.Sprintf("%q: want shell globs like curl or 'python*'", g)}
		}
		h.programs = append(h.programs, g)
	}
	h.users = splitList(f.User)
	if slices.Contains(h.users, "") {
		return h, &badValue{"user", f.User, "want user names"}
	}
	if (len(h.programs) > 0 || len(h.users) > 0) && (h.by[0] == "iface") {
		return h, &badValue{"by", f.By, "--program and --user pick processes, and an interface's traffic is not split by process; drop them or group by program, user or container"}
	}
	switch sort {
	case "", "rx", "tx", "total", "name":
	default:
		return h, &badValue{"sort", sort, "want rx, tx, total or name"}
	}
	return h, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
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

// historyRecord is one row in JSON, history's contract with pipelines:
// schema is historyJSON; from and to are local RFC 3339 times; each --by
// key is present, with "" for none (a process in no container).
type historyRecord struct {
	Schema    int     `json:"schema"`
	From      string  `json:"from"`
	To        string  `json:"to"`
	Program   *string `json:"program,omitempty"`
	User      *string `json:"user,omitempty"`
	Container *string `json:"container,omitempty"`
	Iface     *string `json:"iface,omitempty"`
	Reason    *string `json:"reason,omitempty"`
	RxBytes   uint64  `json:"rx_bytes"`
	TxBytes   uint64  `json:"tx_bytes"`
	RxPackets uint64  `json:"rx_packets"`
	TxPackets uint64  `json:"tx_packets"`
}

// runHistory answers netuse history.
func (a *app) runHistory(h historyOptions) error {
	if h.db == "" && a.historyPath != nil {
		h.db = a.historyPath()
	}
	if h.db == "" || h.db == "off" {
		return usageError{errors.New("history: no history file: give --db PATH, the file netuse serve --db writes")}
	}
	now := a.clock.now()
	rows, from, to, err := readHistory(h, now)
	if err != nil {
		return err
	}
	if len(rows) == 0 && !h.json && h.by[0] != "iface" && h.by[0] != "reason" && len(h.programs)+len(h.users) == 0 {
		// Nothing per process, not even a reason row: serve kept the
		// interfaces alone, if they moved anything. Say so, not just
		// "no traffic".
		hi := h
		hi.by, hi.every, hi.top = []string{"iface"}, numLevels, 0
		if irows, _, _, err := readHistory(hi, now); err == nil {
			var moved traffic
			for _, r := range irows {
				moved.add(r.t)
			}
			if n := moved.rxBytes + moved.txBytes; n > 0 {
				h.none = fmt.Sprintf("no traffic of processes kept in that span, while the interfaces moved %s: serve was not capturing "+
					"(it needs CAP_NET_RAW: see its stderr and netuse_process_metrics_enabled); --by iface shows the interfaces",
					strings.TrimSpace(h.r.size(float64(n), false)))
			}
		}
	}
	w := bufio.NewWriter(a.stdout)
	if h.json {
		err = writeHistoryJSON(w, h, rows)
	} else {
		err = writeHistoryTable(w, h, rows, from, to)
	}
	if err != nil {
		return err
	}
	return w.Flush()
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
