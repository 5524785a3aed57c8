package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// --state FILE: cron's totals, from one run to the next. A run of total or
// iface with --state reports once, at once, the traffic since the previous
// run with the same file, from the kernel's cumulative counters kept
// there, and writes them for the next. Nothing between two runs is lost,
// however far apart they are; the first run only takes the baseline.
//
// The file is JSON (stateFile), written whole to a temporary file in the
// same directory, synced and renamed over the old one, the directory
// synced after, so that a crash leaves the old file or the new one, never
// half of one. Two runs at once (cron's overlapping runs) take turns on a
// lock (FILE.lock, flock(2)); one that waits longer than stateWait gives
// up and says so. It is written after the report: a run whose output could
// not be written leaves the file as it was, and the next run reports that
// traffic again rather than never.

// stateFormat and stateVersion mark netuse's state files; a file of
// another format, or of a later version, is refused, never read as zero.
const (
	stateFormat  = "netuse-state"
	stateVersion = 1
)

// stateWait is how long a run waits for another run's lock on the file.
const stateWait = 10 * time.Second

// stateFile is --state's file: every interface's counters at the end of
// the last run, and what tells whether they still count from the same
// start: the boot, and each interface's index.
type stateFile struct {
	Format  string                `json:"format"`
	Version int                   `json:"version"`
	BootID  string                `json:"boot_id"` // /proc/sys/kernel/random/boot_id; "" if not known
	Taken   time.Time             `json:"taken"`   // when the counters were read
	Ifaces  map[string]stateIface `json:"ifaces"`
}

// stateIface is one interface's counters in a state file.
type stateIface struct {
	Index     int    `json:"index"` // the interface's index: a new one is a new interface, from zero
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
	RxErrors  uint64 `json:"rx_errors"`
	TxErrors  uint64 `json:"tx_errors"`
	RxDrops   uint64 `json:"rx_drops"`
	TxDrops   uint64 `json:"tx_drops"`
}

// errStateBusy: another run held the lock for longer than stateWait.
var errStateBusy = errors.New("another netuse run holds it")

// loadState reads a state file; nil, nil if there is none.
func loadState(path string) (*stateFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--state %q: %w", path, err)
	}
	var st stateFile
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&st); err != nil || st.Format != stateFormat {
		why := "no format \"" + stateFormat + "\""
		if err != nil {
			why = err.Error()
		}
		return nil, fmt.Errorf("--state %q is no netuse state file (%s); give another file, or remove it to start again from a baseline", path, why)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("--state %q is of version %d, which this netuse (version %d) does not read; give another file, or remove it to start again from a baseline", path, st.Version, stateVersion)
	}
	if st.Taken.IsZero() || st.Ifaces == nil {
		return nil, fmt.Errorf("--state %q has no counters; give another file, or remove it to start again from a baseline", path)
	}
	return &st, nil
}

// saveState writes st to path as a whole: a temporary file in the same
// directory, synced, renamed over path, and the directory synced.
func saveState(path string, st *stateFile) error {
	b, err := json.MarshalIndent(st, "", "\t")
	if err != nil {
		return err // plain fields: cannot happen
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("--state %q: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename, nothing is there
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("--state %q: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync() // a directory that cannot be synced (some file systems) loses only the rename's durability
		d.Close()
	}
	return nil
}

// newState is the state of counters cs read at now.
func newState(cs []counter, boot string, now time.Time) *stateFile {
	st := &stateFile{Format: stateFormat, Version: stateVersion, BootID: boot, Taken: now, Ifaces: make(map[string]stateIface, len(cs))}
	for _, c := range cs {
		st.Ifaces[c.name] = stateIface{Index: c.index, RxBytes: c.rxBytes, TxBytes: c.txBytes, RxPackets: c.rxPackets, TxPackets: c.txPackets,
			RxErrors: c.rxErrors, TxErrors: c.txErrors, RxDrops: c.rxDrops, TxDrops: c.txDrops}
	}
	return st
}

// sinceState returns every interface's usage from the counters in prev to
// those in cs, sorted by name. An interface counts from zero when prev has
// none of it (it is new since), when its index changed (deleted and made
// again), or when the machine booted since (another boot id; where there
// is none, a counter that went down tells); a counter
// that went down was reset and counts from zero too (delta).
func sinceState(prev *stateFile, cs []counter, boot string) []usage {
	rebooted := prev.BootID != boot
	us := make([]usage, 0, len(cs))
	for _, c := range cs {
		p, ok := prev.Ifaces[c.name]
		if !ok || p.Index != c.index || rebooted {
			p = stateIface{}
		}
		u := usage{name: c.name, down: c.down,
			interval: traffic{
				rxBytes: delta(p.RxBytes, c.rxBytes), txBytes: delta(p.TxBytes, c.txBytes),
				rxPackets: delta(p.RxPackets, c.rxPackets), txPackets: delta(p.TxPackets, c.txPackets),
			},
			rxErrors: delta(p.RxErrors, c.rxErrors), txErrors: delta(p.TxErrors, c.txErrors),
			rxDrops: delta(p.RxDrops, c.rxDrops), txDrops: delta(p.TxDrops, c.txDrops)}
		u.total = u.interval
		us = append(us, u)
	}
	slices.SortFunc(us, func(a, b usage) int { return strings.Compare(a.name, b.name) })
	return us
}

// runState runs total or iface with --state: one report of the traffic
// since the previous run, then the file for the next.
func (a *app) runState(m mode, o options, r *renderer) error {
	unlock, err := lockState(o.state+".lock", a.stateWait)
	if errors.Is(err, errStateBusy) {
		return fmt.Errorf("--state %q: %w (its lock %q) and did not finish within %v; runs of one file take turns: space them further apart, or give each its own file", o.state, err, o.state+".lock", a.stateWait)
	}
	if err != nil {
		return fmt.Errorf("--state %q: %w", o.state, err)
	}
	defer unlock()
	prev, err := loadState(o.state)
	if err != nil {
		return err
	}
	cs, err := a.counters()
	if err != nil {
		return err
	}
	if err := checkGlobs(o.globs, selector{}.pick(cs)); err != nil {
		return err
	}
	boot := a.bootID()
	now := a.clock.now()
	next := newState(cs, boot, now)
	if prev == nil {
		if err := saveState(o.state, next); err != nil {
			return err
		}
		fmt.Fprintf(a.stderr, "netuse: --state %q: no earlier run: took the baseline; the next run reports the traffic since now\n", o.state)
		return nil
	}
	elapsed := now.Sub(prev.Taken)
	if prev.BootID != boot {
		// Counted since the boot: the traffic between the last run and
		// the reboot went with the counters.
		if up, ok := a.uptime(); ok && up < elapsed {
			elapsed = up
		}
		fmt.Fprintf(a.stderr, "netuse: --state %q: the machine booted since the last run (%s): the counters count from the boot\n", o.state, prev.Taken.Format(timeLayout))
	}
	if elapsed <= 0 {
		elapsed = time.Nanosecond // a clock set back: no rate, but the bytes
	}
	us := sinceState(prev, cs, boot)
	picked := selector{globs: o.globs, edge: m == modeTotal}.pick(cs)
	us = slices.DeleteFunc(us, func(u usage) bool { _, ok := slices.BinarySearch(picked, u.name); return !ok })
	f := report{mode: m, seq: 1, at: now, elapsed: elapsed, interval: elapsed, rows: us, since: prev.Taken}
	if m == modeTotal {
		var acc traffic
		f.rows, f.ifaces = []usage{sumUsage(us, &acc)}, picked
	}
	if err := r.render(f, o); err != nil {
		return err // the file stays: the next run reports this traffic
	}
	r.close()
	return saveState(o.state, next)
}
