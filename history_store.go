package main

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The history file: netuse serve adds the traffic of each report to the
// buckets it falls in, and netuse history reads them (history_cmd.go).
//
// The store is SQLite, through modernc.org/sqlite: a translation of
// SQLite's C to Go, so that netuse still builds with CGO_ENABLED=0 into
// one static binary, and the file is the format vnStat and picosnitch
// keep their history in, which the sqlite3 shell reads.
//
// What is written is deltas, never totals: each report's traffic since
// the one before, added (an UPSERT) into its bucket of each of the four
// lengths at once, in one transaction per flush. A serve run counts from
// its own baseline, so no run can count what another wrote; the sums of
// the buckets of one length equal those of every other length over the
// same span, without a rollup job; and retention only deletes rows.
//
// The interfaces' traffic is kept to the byte across restarts: each flush
// also writes the kernel's counters it had reached, with the boot id, and
// the next serve credits what the counters moved since (the traffic while
// serve was down, or after its last flush when it was killed) to the
// bucket it starts in. After a reboot the counters count from the boot:
// all of them is new. Processes' traffic is seen only by the capture: a
// crash loses what was not flushed yet, at most historyFlush of it.

// historySchema is the schema's version, in PRAGMA user_version. A file
// of a later version is refused, never written; one of an earlier version
// is migrated (historyMigrations) when serve opens it.
const historySchema = 1

// historyMigrations[v] takes a file from version v to v+1.
var historyMigrations = []string{
	0: `
CREATE TABLE usage (
	level      TEXT    NOT NULL, -- the bucket's length: 5m, hour, day or month
	start      INTEGER NOT NULL, -- the bucket's start, Unix seconds; day and month start at local midnight
	kind       TEXT    NOT NULL, -- iface, app (a group of processes) or reason (traffic of no process)
	name       TEXT    NOT NULL, -- the interface, the program, or the reason
	user       TEXT    NOT NULL, -- app: the processes' user; else ''
	container  TEXT    NOT NULL, -- app: their container or service, '' if none; else ''
	rx_bytes   INTEGER NOT NULL,
	tx_bytes   INTEGER NOT NULL,
	rx_packets INTEGER NOT NULL,
	tx_packets INTEGER NOT NULL,
	PRIMARY KEY (level, kind, start, name, user, container)
) WITHOUT ROWID;
CREATE TABLE counters (
	iface      TEXT    PRIMARY KEY, -- the interface's counters at the last flush
	ifindex    INTEGER NOT NULL,
	boot_id    TEXT    NOT NULL,
	rx_bytes   INTEGER NOT NULL,
	tx_bytes   INTEGER NOT NULL,
	rx_packets INTEGER NOT NULL,
	tx_packets INTEGER NOT NULL
);
CREATE TABLE retention (
	level        TEXT    PRIMARY KEY, -- how long serve keeps this length's buckets
	keep_seconds INTEGER NOT NULL     -- 0: for ever
);`,
}

// historyFlush is how often serve writes what its reports counted: at
// most this much of the processes' traffic is lost when serve is killed.
// A minute: a transaction of some thousand rows a minute is nothing to
// the disk, and a minute is the finest step anyone reads history at.
const historyFlush = time.Minute

// maxHistoryKeys bounds the rows of one kind in one bucket, as maxGroups
// bounds serve's groups: past it, new names of processes (or interfaces)
// add to the "(other)" row, whose bytes still count.
const maxHistoryKeys = maxGroups

// maxPendingBuckets bounds the 5-minute buckets kept in memory while
// writing fails (a full disk): a day of them; older ones are dropped.
const maxPendingBuckets = 288

// level is a bucket length.
type level int

const (
	level5m level = iota
	levelHour
	levelDay
	levelMonth
	numLevels
)

var levelName = [numLevels]string{"5m", "hour", "day", "month"}

// defaultKeep is how long each length's buckets are kept, vnStat's
// defaults nearly: 5 minutes for 48 hours, hours for 90 days, days for
// two years, months for ever (0).
var defaultKeep = [numLevels]time.Duration{48 * time.Hour, 90 * 24 * time.Hour, 2 * 365 * 24 * time.Hour, 0}

// bucketStart returns the start of t's bucket of length l in loc: 5
// minutes and hours are counted from loc's midnight (a zone 30 minutes
// off UTC has hours at :30), days and months start at loc's midnight.
func bucketStart(l level, t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	switch l {
	case level5m, levelHour:
		n := int64(300)
		if l == levelHour {
			n = 3600
		}
		_, off := t.Zone()
		s := t.Unix()
		r := (s + int64(off)) % n
		if r < 0 {
			r += n
		}
		return time.Unix(s-r, 0).In(loc)
	case levelDay:
		y, m, d := t.Date()
		return time.Date(y, m, d, 0, 0, 0, 0, loc)
	}
	y, m, _ := t.Date()
	return time.Date(y, m, 1, 0, 0, 0, 0, loc)
}

// bucketNext returns the start of the bucket after the one at start.
func bucketNext(l level, start time.Time, loc *time.Location) time.Time {
	start = start.In(loc)
	switch l {
	case level5m:
		return start.Add(5 * time.Minute)
	case levelHour:
		return bucketStart(levelHour, start.Add(90*time.Minute), loc) // an hour on, whatever DST did
	case levelDay:
		y, m, d := start.Date()
		return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
	}
	y, m, _ := start.Date()
	return time.Date(y, m+1, 1, 0, 0, 0, 0, loc)
}

// histKey is one row's identity within a bucket.
type histKey struct {
	kind      string // "iface", "app" or "reason"
	name      string
	user      string
	container string
}

// otherKey is where a kind's keys past maxHistoryKeys go.
func otherKey(kind string) histKey {
	if kind == "app" {
		return histKey{kind, "(other)", "(other)", "(other)"}
	}
	return histKey{kind: kind, name: "(other)"}
}

// bucketKind is one kind's rows of one bucket.
type bucketKind struct {
	level level
	start int64
	kind  string
}

// historyStore is serve's side of the file: what the reports counted
// since the last flush, and the file. Its owner (the exporter, under its
// mutex) calls every method; it has no goroutine.
type historyStore struct {
	path  string
	now   func() time.Time // the clock buckets are taken from
	loc   *time.Location   // the zone of days and months
	flush time.Duration    // how often to write; historyFlush
	keep  [numLevels]time.Duration
	boot  string // the kernel's boot id; "" if not known

	db       *sql.DB // nil until open succeeds
	unlock   func()
	baseline []counter // the counters serve started from, for open's credit

	pending   map[int64]map[histKey]traffic // by 5-minute bucket (Unix seconds)
	counters  map[string]counter            // the interfaces' counters at the last report
	known     map[bucketKind]map[histKey]bool
	lastFlush time.Time
	lastPrune time.Time

	// What serve's metrics and stderr say of the writing.
	writeErrors uint64
	lastWrite   time.Time
	lastErr     string // the last failure said on stderr; "" once writing works
}

// errHistoryBusy is another serve writing the file; errHistoryNewer a
// file of a later schema. serve refuses to start on either.
var (
	errHistoryBusy  = errors.New("another netuse serve writes it")
	errHistoryNewer = errors.New("newer than this netuse's")
)

// newHistoryStore returns the store of the file at path, not open yet;
// cs are the interfaces' counters serve starts from.
func newHistoryStore(path string, now func() time.Time, boot string, cs []counter) *historyStore {
	s := &historyStore{path: path, now: now, loc: time.Local, flush: historyFlush, keep: defaultKeep, boot: boot,
		pending: map[int64]map[histKey]traffic{}, counters: map[string]counter{}, known: map[bucketKind]map[histKey]bool{},
		lastFlush: now()}
	s.baseline = cs
	for _, c := range cs {
		s.counters[c.name] = c
	}
	return s
}

// open opens the file (making it, and its directory, if need be), takes
// its lock, migrates it, and credits the interfaces' traffic since its
// last flush. A file that is not a database, or is damaged, is moved
// aside and a new one made; moved says where. A file of a later schema
// is an error, and is left as it is.
func (s *historyStore) open() (moved string, err error) {
	path := s.path
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", fmt.Errorf("history %q: %w", path, err)
	}
	unlock, err := lockState(path+".lock", 0)
	if errors.Is(err, errStateBusy) {
		return "", fmt.Errorf("history %q: %w (its lock %q); give this one another --db, or --db off", path, errHistoryBusy, path+".lock")
	}
	if err != nil {
		return "", fmt.Errorf("history %q: lock: %w", path, err)
	}
	db, err := openWriter(path)
	if isCorrupt(err) {
		moved = fmt.Sprintf("%s.corrupt-%s", path, s.now().UTC().Format("20060102T150405Z"))
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if rerr := os.Rename(path+suffix, moved+suffix); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				unlock()
				return "", fmt.Errorf("%v, and moving it aside failed: %w", err, rerr)
			}
		}
		db, err = openWriter(path)
	}
	for l := level5m; err == nil && l < numLevels; l++ {
		// For history, which reads the buckets kept, not those pruned.
		_, err = db.Exec("INSERT OR REPLACE INTO retention VALUES (?, ?)", levelName[l], int64(s.keep[l]/time.Second))
	}
	if err == nil {
		s.db = db
		err = s.start(s.baseline)
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		s.db = nil
		unlock()
		return moved, err
	}
	// Open from here on, whatever the write says: the credit is pending,
	// and a second open would credit it again. At once, not a flush
	// interval on: the file has the counters this run counts from before
	// it can be killed.
	s.unlock = unlock
	return moved, s.write()
}

// openWriter opens path read-write, mode 0640, in WAL mode (readers read
// while serve writes), checks it and brings its schema up to date.
func openWriter(path string) (*sql.DB, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("history %q: %w", path, err)
	}
	f.Close()
	// synchronous=NORMAL: in WAL mode a commit survives the process's
	// crash (it is in the kernel's page cache); a power cut may lose the
	// last commits, never the file.
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("history %q: %w", path, err)
	}
	db.SetMaxOpenConns(1) // the pragmas are per connection; one writer
	err = checkHistory(db, path, true)
	if err == nil {
		// After the check: WAL rewrites the header of a file it must leave be.
		_, err = db.Exec("PRAGMA journal_mode = WAL")
	}
	if err != nil {
		db.Close()
		return nil, historyErr(path, err)
	}
	return db, nil
}

// checkHistory reads the file's version: a later one than this netuse's
// is an error; an earlier one is migrated if write, else an error that
// there is no history yet. It checks the whole file when it writes.
func checkHistory(db *sql.DB, path string, write bool) error {
	var v int
	if err := db.QueryRow("PRAGMA user_version").Scan(&v); err != nil {
		return historyErr(path, err)
	}
	if v > historySchema {
		return fmt.Errorf("history %q: its schema is version %d, %w (%d): run a newer netuse; the file is left as it is", path, v, errHistoryNewer, historySchema)
	}
	if !write {
		if v < historySchema {
			return fmt.Errorf("history %q: its schema is version %d, older than this netuse's (%d): run netuse serve once to migrate it", path, v, historySchema)
		}
		return nil
	}
	var check string
	if err := db.QueryRow("PRAGMA quick_check").Scan(&check); err != nil {
		return historyErr(path, err)
	}
	if check != "ok" {
		return &errCorrupt{path, fmt.Errorf("quick_check: %s", check)}
	}
	for ; v < historySchema; v++ {
		tx, err := db.Begin()
		if err != nil {
			return historyErr(path, err)
		}
		if _, err := tx.Exec(historyMigrations[v]); err != nil {
			tx.Rollback()
			return historyErr(path, fmt.Errorf("migrate from version %d: %w", v, err))
		}
		if _, err := tx.Exec(fmt.Sprintf("PRAGMA user_version = %d", v+1)); err != nil {
			tx.Rollback()
			return historyErr(path, err)
		}
		if err := tx.Commit(); err != nil {
			return historyErr(path, err)
		}
	}
	return nil
}

// errCorrupt marks a file SQLite cannot read as a database.
type errCorrupt struct {
	path string
	err  error
}

func (e *errCorrupt) Error() string {
	return fmt.Sprintf("history %q is damaged or not a netuse history file: %v", e.path, e.err)
}

// historyErr wraps err with the file's name, as errCorrupt when SQLite
// says the file is damaged or not a database.
func historyErr(path string, err error) error {
	if strings.HasPrefix(err.Error(), "history ") {
		return err // said already
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
			return &errCorrupt{path, err}
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR:
			// IOERR too: a full disk shows as one when SQLite grows the
			// WAL's index (-shm).
			return fmt.Errorf("history %q: %w (is its file system full?)", path, err)
		}
	}
	return fmt.Errorf("history %q: %w", path, err)
}

func isCorrupt(err error) bool {
	var c *errCorrupt
	return errors.As(err, &c)
}

// start credits the traffic the interfaces' counters cs moved since the
// file's last flush (a restart, a crash) or since the boot (a reboot) to
// the current bucket, and takes cs as the baseline of the reports.
func (s *historyStore) start(cs []counter) error {
	rows, err := s.db.Query("SELECT iface, ifindex, boot_id, rx_bytes, tx_bytes, rx_packets, tx_packets FROM counters")
	if err != nil {
		return historyErr(s.path, err)
	}
	type stored struct {
		index int
		boot  string
		t     traffic
	}
	prev := map[string]stored{}
	for rows.Next() {
		var name string
		var p stored
		if err := rows.Scan(&name, &p.index, &p.boot, &p.t.rxBytes, &p.t.txBytes, &p.t.rxPackets, &p.t.txPackets); err != nil {
			rows.Close()
			return historyErr(s.path, err)
		}
		prev[name] = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return historyErr(s.path, err)
	}
	now := s.now()
	for _, c := range cs {
		p, ok := prev[c.name]
		if !ok {
			continue // not kept before: nothing known of its past
		}
		d := c.traffic
		if p.boot == s.boot && p.index == c.index {
			d = traffic{delta(p.t.rxBytes, c.rxBytes), delta(p.t.txBytes, c.txBytes), delta(p.t.rxPackets, c.rxPackets), delta(p.t.txPackets, c.txPackets)}
		}
		s.add(now, histKey{kind: "iface", name: c.name}, d)
	}
	return nil
}

// add adds t to key's row of the 5-minute bucket at.
func (s *historyStore) add(at time.Time, key histKey, t traffic) {
	if t == (traffic{}) {
		return
	}
	b := bucketStart(level5m, at, s.loc).Unix()
	m := s.pending[b]
	if m == nil {
		m = map[histKey]traffic{}
		s.pending[b] = m
	}
	p := m[key]
	p.add(t)
	m[key] = p
}

// addReport adds one report of serve: the interfaces' usage us and
// counters cs (both of the interfaces serve keeps), and proc's rows.
func (s *historyStore) addReport(us []usage, cs []counter, procs []usage) {
	now := s.now()
	for _, u := range us {
		s.add(now, histKey{kind: "iface", name: u.name}, u.interval)
	}
	clear(s.counters)
	for _, c := range cs {
		s.counters[c.name] = c
	}
	for _, u := range procs {
		p := u.proc
		if p.pid == 0 && p.reason != attributed {
			s.add(now, histKey{kind: "reason", name: reasonKey[p.reason]}, u.interval)
			continue
		}
		s.add(now, histKey{kind: "app", name: u.name, user: p.user, container: containerOf(p.cgroup)}, u.interval)
	}
}

// due reports whether a flush is due.
func (s *historyStore) due() bool { return s.now().Sub(s.lastFlush) >= s.flush }

// write flushes what the reports counted into the file, with the
// counters, in one transaction, and drops buckets past their retention
// once an hour. On failure the traffic stays pending for the next try
// (up to maxPendingBuckets), and the error is returned.
func (s *historyStore) write() error {
	now := s.now()
	s.lastFlush = now
	err := s.writeTx(now)
	if err == nil && now.Sub(s.lastPrune) >= time.Hour {
		err = s.prune(now)
		if err == nil {
			s.lastPrune = now
		}
	}
	if err != nil {
		s.trimPending()
		clear(s.known) // it may name keys of the rolled-back transaction: read them again
		return historyErr(s.path, err)
	}
	s.lastWrite = now
	return nil
}

// trimPending drops the oldest pending buckets past maxPendingBuckets.
func (s *historyStore) trimPending() {
	if len(s.pending) <= maxPendingBuckets {
		return
	}
	starts := make([]int64, 0, len(s.pending))
	for b := range s.pending {
		starts = append(starts, b)
	}
	slices.Sort(starts)
	for _, b := range starts[:len(starts)-maxPendingBuckets] {
		delete(s.pending, b)
	}
}

const upsertUsage = `INSERT INTO usage (level, start, kind, name, user, container, rx_bytes, tx_bytes, rx_packets, tx_packets)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO UPDATE SET rx_bytes = rx_bytes + excluded.rx_bytes, tx_bytes = tx_bytes + excluded.tx_bytes,
	rx_packets = rx_packets + excluded.rx_packets, tx_packets = tx_packets + excluded.tx_packets`

func (s *historyStore) writeTx(now time.Time) error {
	tx, err := s.db.Begin()
	if err != nil {
		return err
	}
	defer tx.Rollback() // after Commit, a no-op
	up, err := tx.Prepare(upsertUsage)
	if err != nil {
		return err
	}
	defer up.Close()
	known := map[bucketKind]map[histKey]bool{}
	for b, rows := range s.pending {
		at := time.Unix(b, 0)
		for key, t := range rows {
			for l := range numLevels {
				bk := bucketKind{l, bucketStart(l, at, s.loc).Unix(), key.kind}
				k, err := s.bounded(tx, known, bk, key)
				if err != nil {
					return err
				}
				if _, err := up.Exec(levelName[l], bk.start, k.kind, k.name, k.user, k.container,
					int64(t.rxBytes), int64(t.txBytes), int64(t.rxPackets), int64(t.txPackets)); err != nil {
					return err
				}
			}
		}
	}
	if _, err := tx.Exec("DELETE FROM counters"); err != nil {
		return err
	}
	for _, c := range s.counters {
		if _, err := tx.Exec("INSERT INTO counters VALUES (?, ?, ?, ?, ?, ?, ?)", c.name, c.index, s.boot,
			int64(c.rxBytes), int64(c.txBytes), int64(c.rxPackets), int64(c.txPackets)); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	clear(s.pending)
	s.known = known // the buckets of this flush: the next one writes mostly into them
	return nil
}

// bounded returns key, or its kind's "(other)" when its bucket has
// maxHistoryKeys rows of that kind already. known holds the keys of the
// buckets this flush writes, read from the file the first time.
func (s *historyStore) bounded(tx *sql.Tx, known map[bucketKind]map[histKey]bool, bk bucketKind, key histKey) (histKey, error) {
	set := known[bk]
	if set == nil {
		set = s.known[bk]
		if set == nil {
			set = map[histKey]bool{}
			rows, err := tx.Query("SELECT name, user, container FROM usage WHERE level = ? AND kind = ? AND start = ?", levelName[bk.level], bk.kind, bk.start)
			if err != nil {
				return key, err
			}
			for rows.Next() {
				k := histKey{kind: bk.kind}
				if err := rows.Scan(&k.name, &k.user, &k.container); err != nil {
					rows.Close()
					return key, err
				}
				set[k] = true
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return key, err
			}
		}
		known[bk] = set
	}
	if set[key] {
		return key, nil
	}
	if len(set) >= maxHistoryKeys {
		return otherKey(key.kind), nil
	}
	set[key] = true
	return key, nil
}

// prune deletes the buckets past their retention.
func (s *historyStore) prune(now time.Time) error {
	for l := range numLevels {
		if s.keep[l] <= 0 {
			continue
		}
		cut := now.Add(-s.keep[l]).Unix()
		if _, err := s.db.Exec("DELETE FROM usage WHERE level = ? AND kind IN ('iface', 'app', 'reason') AND start < ?", levelName[l], cut); err != nil {
			return err
		}
	}
	return nil
}

// close closes the file, if open; its owner writes what is pending first.
func (s *historyStore) close() {
	if s.db != nil {
		s.db.Close()
		s.db = nil
		s.unlock()
	}
}

// defaultHistoryPath is where serve keeps history and history reads it
// without --db: the StateDirectory systemd gives a unit (the contrib
// unit's, /var/lib/netuse, whose user is made for it), else
// /var/lib/netuse for root, else the XDG state directory.
func defaultHistoryPath() string {
	if dir, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":"); filepath.IsAbs(dir) {
		return filepath.Join(dir, "history.db")
	}
	if os.Geteuid() == 0 {
		return "/var/lib/netuse/history.db"
	}
	dir := os.Getenv("XDG_STATE_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(dir, "netuse", "history.db")
}

// parseKeep reads --db-keep: four retentions, of the 5-minute, hour, day
// and month buckets, each a number of hours (48h), days (90d) or years
// (2y), or "forever".
func parseKeep(text string) ([numLevels]time.Duration, error) {
	var keep [numLevels]time.Duration
	parts := strings.Split(text, ",")
	if len(parts) != int(numLevels) {
		return keep, fmt.Errorf("want four retentions, of the 5m, hour, day and month buckets, such as 48h,90d,2y,forever")
	}
	for i, p := range parts {
		if p == "forever" {
			continue
		}
		d, err := parseSpan(p)
		if err != nil || d <= 0 {
			return keep, fmt.Errorf("%q: want hours (48h), days (90d), years (2y) or forever", p)
		}
		if i > 0 && keep[i-1] == 0 || i > 0 && d < keep[i-1] {
			return keep, fmt.Errorf("%q: longer buckets are kept at least as long as shorter ones", p)
		}
		keep[i] = d
	}
	return keep, nil
}

// parseSpan reads a span of time: a Go duration (48h, 30m), or days (7d),
// weeks (2w) or years (2y, of 365 days).
func parseSpan(s string) (time.Duration, error) {
	for suffix, unit := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour, "y": 365 * 24 * time.Hour} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			var v int
			if _, err := fmt.Sscanf(n, "%d", &v); err != nil || fmt.Sprint(v) != n || v <= 0 || v > 100*366 {
				return 0, fmt.Errorf("bad span %q", s)
			}
			return time.Duration(v) * unit, nil
		}
	}
	return time.ParseDuration(s)
}
