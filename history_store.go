package main

import (
	"database/sql"
	"slices"
	"time"
)

// The history store: netuse serve adds the traffic of each report to the
// buckets it falls in (history_buckets.go), in the history file
// (history_file.go), and netuse history reads them (history_cmd.go,
// history_query.go).
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

// open opens the file (openFile) and credits the interfaces' traffic
// since its last flush. moved is where a damaged file was moved aside.
func (s *historyStore) open() (moved string, err error) {
	db, unlock, moved, err := openFile(s.path, s.keep, s.now)
	if err != nil {
		return moved, err
	}
	s.db = db
	if err := s.start(s.baseline); err != nil {
		db.Close()
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

// start credits the traffic the interfaces' counters cs moved since the
// file's last flush (a restart, a crash) or since the boot (a reboot) to
// the current bucket, and takes cs as the baseline of the reports.
func (s *historyStore) start(cs []counter) error {
	rows, err := s.db.Query("SELECT iface, ifindex, boot_id, rx_bytes, tx_bytes, rx_packets, tx_packets FROM counters")
	if err != nil {
		return historyErr(s.path, err)
	}
	prev, boots := map[string]counter{}, map[string]string{} // by name: the counters flushed, and their boot id
	for rows.Next() {
		var p counter
		var boot string
		if err := rows.Scan(&p.name, &p.index, &boot, &p.rxBytes, &p.txBytes, &p.rxPackets, &p.txPackets); err != nil {
			rows.Close()
			return historyErr(s.path, err)
		}
		prev[p.name], boots[p.name] = p, boot
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
		if boots[c.name] == s.boot && p.index == c.index {
			d = traffic{delta(p.rxBytes, c.rxBytes), delta(p.txBytes, c.txBytes), delta(p.rxPackets, c.rxPackets), delta(p.txPackets, c.txPackets)}
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
