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
// The file keeps netuse's own totals too, since that baseline: each
// interface's, by name, and total mode's edge sum. A row's interval is the
// traffic since the previous run, and its total the file's total plus that
// interval, so that the totals (NDJSON's rx_total, the Prometheus
// counters) only go up from run to run: across reboots, counter resets
// and interfaces made again, where the kernel's counters start again from
// zero. An interface gone at a run takes its totals with it, so that the
// file stays small however many containers' veths come and go; one that
// comes back counts from zero, which Prometheus reads as a counter reset.
// The edge sum is kept apart from the interfaces, and never goes down.
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
// start: the boot, and each interface's index; and netuse's totals since
// the file's baseline.
//
// The totals (TotalsSince, stateIface.Total, Edge) came after the first
// files of version 1, as optional fields: a file without them reads as
// totals of zero at its last run, which then count from there.
type stateFile struct {
	Format      string                `json:"format"`
	Version     int                   `json:"version"`
	BootID      string                `json:"boot_id"`               // /proc/sys/kernel/random/boot_id; "" if not known
	Taken       time.Time             `json:"taken"`                 // when the counters were read
	TotalsSince time.Time             `json:"totals_since,omitzero"` // when the totals started from zero: the file's first run
	Ifaces      map[string]stateIface `json:"ifaces"`
	Edge        []stateEdge           `json:"edge,omitempty"` // total: the edge sums, one per selection of interfaces
}

// stateIface is one interface's counters in a state file, and its total.
type stateIface struct {
	Index     int        `json:"index"` // the interface's index: a new one is a new interface, from zero
	RxBytes   uint64     `json:"rx_bytes"`
	TxBytes   uint64     `json:"tx_bytes"`
	RxPackets uint64     `json:"rx_packets"`
	TxPackets uint64     `json:"tx_packets"`
	RxErrors  uint64     `json:"rx_errors"`
	TxErrors  uint64     `json:"tx_errors"`
	RxDrops   uint64     `json:"rx_drops"`
	TxDrops   uint64     `json:"tx_drops"`
	Total     stateTotal `json:"total"` // the traffic of the interface by this name since TotalsSince, whatever its index
}

// stateTotal is traffic that netuse counted since a state file's baseline.
type stateTotal struct {
	RxBytes   uint64 `json:"rx_bytes"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	TxPackets uint64 `json:"tx_packets"`
}

func (t stateTotal) traffic() traffic {
	return traffic{rxBytes: t.RxBytes, txBytes: t.TxBytes, rxPackets: t.RxPackets, txPackets: t.TxPackets}
}

func totalOf(t traffic) stateTotal {
	return stateTotal{RxBytes: t.rxBytes, TxBytes: t.txBytes, RxPackets: t.rxPackets, TxPackets: t.txPackets}
}

// stateEdge is total mode's edge sum since the file's baseline, for one
// selection of interfaces: every run adds to it the traffic of the
// interfaces that selection picks then, so that runs of one file with
// other selections each keep their own sum, and an interface that goes
// away leaves its bytes in it.
type stateEdge struct {
	Iface      []string `json:"iface,omitempty"` // --iface's globs, sorted, each once; none for the edge rule
	stateTotal          // its fields inline: {"iface": ["eth*"], "rx_bytes": ...}
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

// newState is the baseline of a state file: counters cs read at now, and
// totals of zero from then.
func newState(cs []counter, boot string, now time.Time) *stateFile {
	st := &stateFile{Format: stateFormat, Version: stateVersion, BootID: boot, Taken: now, TotalsSince: now, Ifaces: make(map[string]stateIface, len(cs))}
	for _, c := range cs {
		st.Ifaces[c.name] = stateIfaceOf(c, traffic{})
	}
	return st
}

// stateIfaceOf is counter c in a state file, with its total.
func stateIfaceOf(c counter, total traffic) stateIface {
	return stateIface{Index: c.index, RxBytes: c.rxBytes, TxBytes: c.txBytes, RxPackets: c.rxPackets, TxPackets: c.txPackets,
		RxErrors: c.rxErrors, TxErrors: c.txErrors, RxDrops: c.rxDrops, TxDrops: c.txDrops, Total: totalOf(total)}
}

// sinceState returns every interface's usage from the counters in prev to
// those in cs, sorted by name, and the state for the next run.
//
// An interface's interval counts from zero when prev has none of it (it
// is new since), when its index changed (deleted and made again), or when
// the machine booted since (another boot id; where there is none, a
// counter that went down tells); a counter that went down was reset and
// counts from zero too (delta). Its total is prev's total of that name,
// whatever the index and the boot, plus the interval; an interface not in
// cs is not in the next state. Each of prev's edge sums grows by the
// interval of the interfaces its selection picks in cs.
func sinceState(prev *stateFile, cs []counter, boot string, now time.Time) ([]usage, *stateFile) {
	rebooted := prev.BootID != boot
	next := &stateFile{Format: stateFormat, Version: stateVersion, BootID: boot, Taken: now, TotalsSince: prev.TotalsSince,
		Ifaces: make(map[string]stateIface, len(cs))}
	if next.TotalsSince.IsZero() {
		next.TotalsSince = prev.Taken // a file of a netuse that kept no totals: zero at its last run
	}
	us := make([]usage, 0, len(cs))
	for _, c := range cs {
		p, ok := prev.Ifaces[c.name]
		base := p
		if !ok || p.Index != c.index || rebooted {
			base = stateIface{}
		}
		u := usage{name: c.name, down: c.down,
			interval: traffic{
				rxBytes: delta(base.RxBytes, c.rxBytes), txBytes: delta(base.TxBytes, c.txBytes),
				rxPackets: delta(base.RxPackets, c.rxPackets), txPackets: delta(base.TxPackets, c.txPackets),
			},
			rxErrors: delta(base.RxErrors, c.rxErrors), txErrors: delta(base.TxErrors, c.txErrors),
			rxDrops: delta(base.RxDrops, c.rxDrops), txDrops: delta(base.TxDrops, c.txDrops)}
		u.total = p.Total.traffic() // zero if !ok
		u.total.add(u.interval)
		next.Ifaces[c.name] = stateIfaceOf(c, u.total)
		us = append(us, u)
	}
	slices.SortFunc(us, func(a, b usage) int { return strings.Compare(a.name, b.name) })
	for _, e := range prev.Edge {
		t := e.traffic()
		t.add(sumPicked(us, selector{globs: e.Iface, edge: true}.pick(cs)))
		next.Edge = append(next.Edge, stateEdge{Iface: e.Iface, stateTotal: totalOf(t)})
	}
	return us, next
}

// sumPicked sums the intervals of the rows us (sorted by name) named in
// picked (sorted).
func sumPicked(us []usage, picked []string) traffic {
	var sum traffic
	for _, u := range us {
		if _, ok := slices.BinarySearch(picked, u.name); ok {
			sum.add(u.interval)
		}
	}
	return sum
}

// edge returns st's edge sum for --iface's globs, adding one of zero if
// there is none.
func (st *stateFile) edge(globs []string) *stateEdge {
	globs = slices.Compact(slices.Sorted(slices.Values(globs)))
	for i := range st.Edge {
		if slices.Equal(st.Edge[i].Iface, globs) {
			return &st.Edge[i]
		}
	}
	st.Edge = append(st.Edge, stateEdge{Iface: globs})
	return &st.Edge[len(st.Edge)-1]
}

// baselineRows are the rows of a first --state run: the interfaces it
// picks, or total's one row, each with nothing moved yet.
func baselineRows(m mode, cs []counter, globs []string) []usage {
	if m == modeTotal {
		return []usage{{name: "total"}}
	}
	picked := selector{globs: globs}.pick(cs)
	rows := make([]usage, len(picked))
	for i, name := range picked {
		rows[i] = usage{name: name}
	}
	return rows
}

// runState runs total or iface with --state: one report of the traffic
// since the previous run, with the totals since the file's baseline, then
// the file for the next.
func (a *app) runState(m mode, o options, r *renderer) error {
	// A file that is no state file is refused before its lock is made:
	// --state /etc/hostname must leave no /etc/hostname.lock behind. It
	// is read again under the lock, as another run may replace it.
	if _, err := loadState(o.state); err != nil {
		return err
	}
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
	if prev == nil {
		next := newState(cs, boot, now)
		if m == modeTotal {
			next.edge(o.globs)
		}
		if r.textfile != "" {
			// Counters of zero, so that the series begin now and the
			// next run's window counts in Prometheus's increase().
			if err := writeTextfile(r.textfile, m, baselineRows(m, cs, o.globs)); err != nil {
				return fmt.Errorf("--textfile %q: %w", r.textfile, err)
			}
		}
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
	if m == modeTotal {
		prev.edge(o.globs) // a selection new to the file: from zero at the previous run
	}
	us, next := sinceState(prev, cs, boot, now)
	picked := selector{globs: o.globs, edge: m == modeTotal}.pick(cs)
	us = slices.DeleteFunc(us, func(u usage) bool { _, ok := slices.BinarySearch(picked, u.name); return !ok })
	f := report{mode: m, seq: 1, at: now, elapsed: elapsed, interval: elapsed, rows: us, since: prev.Taken, totalsSince: next.TotalsSince}
	if m == modeTotal {
		sum := sumUsage(us, &traffic{})
		sum.total = next.edge(o.globs).traffic() // the file's, which sinceState grew by sum.interval
		f.rows, f.ifaces = []usage{sum}, picked
	}
	if err := r.render(f, o); err != nil {
		return err // the file stays: the next run reports this traffic
	}
	r.close()
	return saveState(o.state, next)
}
