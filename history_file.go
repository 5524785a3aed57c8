package main

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The history file itself: its schema and migrations, its version
// checked as serve opens it to write (openFile) and as history opens it
// to read (history_query.go's openRO), a damaged file told from a busy or
// newer one, and where it lives without --db.

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

// errHistoryBusy is another serve writing the file; errHistoryNewer a
// file of a later schema. serve refuses to start on either.
var (
	errHistoryBusy  = errors.New("another netuse serve writes it")
	errHistoryNewer = errors.New("newer than this netuse's")
)

// openFile opens the file to write (making it, and its directory, if
// need be), takes its lock, migrates it and writes keep into it as its
// retention. A file that is not a database, or is damaged, is moved
// aside and a new one made; moved says where, at a name taken from now.
// A file of a later schema is an error, and is left as it is. On an
// error the lock is not held.
func openFile(path string, keep [numLevels]time.Duration, now func() time.Time) (db *sql.DB, unlock func(), moved string, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, nil, "", fmt.Errorf("history %q: %w", path, err)
	}
	unlock, err = lockState(path+".lock", 0)
	if errors.Is(err, errStateBusy) {
		return nil, nil, "", fmt.Errorf("history %q: %w (its lock %q); give this one another --db, or --db off", path, errHistoryBusy, path+".lock")
	}
	if err != nil {
		return nil, nil, "", fmt.Errorf("history %q: lock: %w", path, err)
	}
	db, err = openWriter(path)
	if isCorrupt(err) {
		moved = fmt.Sprintf("%s.corrupt-%s", path, now().UTC().Format("20060102T150405Z"))
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if rerr := os.Rename(path+suffix, moved+suffix); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				unlock()
				return nil, nil, "", fmt.Errorf("%v, and moving it aside failed: %w", err, rerr)
			}
		}
		db, err = openWriter(path)
	}
	for l := level5m; err == nil && l < numLevels; l++ {
		// For history, which reads the buckets kept, not those pruned.
		_, err = db.Exec("INSERT OR REPLACE INTO retention VALUES (?, ?)", levelName[l], int64(keep[l]/time.Second))
	}
	if err != nil {
		if db != nil {
			db.Close()
		}
		unlock()
		return nil, nil, moved, err
	}
	return db, unlock, moved, nil
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
