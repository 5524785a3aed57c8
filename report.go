package main

import (
	"net/netip"
	"strconv"
	"time"
)

// The output's vocabulary: a report, one interval's output, and its rows,
// which the run loops (proc.go, sample.go, state.go) make and the
// renderer (render.go) writes; and a group row's key (groupKey), which a
// view (view.go) makes and every sink reads.

// report is one interval's output.
type report struct {
	mode     mode          // the command
	seq      int           // interval number, from 1
	at       time.Time     // when the interval ended
	elapsed  time.Duration // time that really elapsed during the interval
	interval time.Duration // nominal interval, for the header
	rows     []usage
	ifaces   []string  // total: the interfaces summed
	capture  *captured // proc, conn: what the capture saw
	by       []string  // proc, conn: the rows are groups of these keys (--by)
	partial  bool      // the run was interrupted before the interval was over
	since    time.Time // --state: when the previous run read the counters
	// totalsSince is --state's start of the totals: the file's first run
	totalsSince time.Time
	summary     bool   // the run's summary: elapsed is the run's length, rows its totals
	filter      string // proc, conn: the filter's flags, "" for none; a table with no rows names it
	// all is iface's "(all)" row: every row's traffic added up before
	// --top cut them; nil with fewer than two rows, or in other modes
	all *usage
}

// usage is one row of a report: an interface's traffic, or a process's
// (proc), during an interval and since the start.
type usage struct {
	name               string
	interval           traffic
	total              traffic    // since netuse started
	rxErrors, txErrors uint64     // during the interval
	rxDrops, txDrops   uint64     // during the interval
	down               bool       // iface: the interface is down (not up, or no carrier)
	proc               *process   // proc, conn: the row's process, or pid 0's
	conn               *connInfo  // conn: the row's connection
	group              *groupInfo // --by: the row's group; proc and conn are nil
}

// unattributed returns why row u's bytes went to no process, for a row
// of no process (pid 0) or a group of such rows; ok is false for the
// others.
func (u usage) unattributed() (why reason, ok bool) {
	switch {
	case u.group != nil:
		return u.group.key.reason, unattributed(u.group.key.pid, u.group.key.reason)
	case u.proc != nil:
		return u.proc.reason, unattributed(u.proc.pid, u.proc.reason)
	}
	return attributed, false
}

// unattributed reports whether bytes of pid for reason why went to no
// process: pid 0, for a reason other than attributed.
func unattributed(pid int, why reason) bool { return pid == 0 && why != attributed }

// connInfo is a conn row's connection: a flow end of this host, or the
// zero value for the bytes of no flow (pid 0: not TCP or UDP, ...).
type connInfo struct {
	flow
	state       tcpState // TCP: its socket's, at the last look
	first, last int64    // when its first and last packets were captured, Unix ns; 0 if not known
	remoteName  string   // --resolve: the remote address's name, once known
}

// attribution returns the bytes credited to a process, of every row
// before a view filtered or grouped them, and their share of the bytes
// captured (1 when nothing was captured).
func (rep report) attribution() (uint64, float64) {
	n := rep.capture.attributed
	all := rep.capture.rxBytes + rep.capture.txBytes
	if all == 0 {
		return n, 1
	}
	return n, float64(n) / float64(all)
}

// groupKey is what a group's rows share: the values of its --by keys, the
// others zero. A process (pid and start) groups the connections of proc's
// rows when the view is made of connections without --by.
type groupKey struct {
	program   string
	user      string
	container string
	netns     uint64
	remote    netip.Addr
	pid       int
	start     uint64
	reason    reason
}

// groupInfo is a group row's key and what it is made of.
type groupInfo struct {
	key     groupKey
	by      []string // the keys, as --by gave them
	members int      // rows (processes or connections) in the group this interval
	// remoteName is the name of key.remote with --resolve, once known
	remoteName string
}

// reasonCell returns what the first key's column of group k shows when
// that key has no value: the reason of a group of no process's traffic,
// or "" for a group of processes.
func (k groupKey) reasonCell() string {
	if !unattributed(k.pid, k.reason) {
		return ""
	}
	return reasonName[k.reason]
}

// value returns the group's value of key by, as NDJSON carries it.
func (k groupKey) value(by string) string {
	switch by {
	case "program":
		return k.program
	case "user":
		return k.user
	case "container":
		return k.container
	case "netns":
		if k.netns == 0 {
			return ""
		}
		return strconv.FormatUint(k.netns, 10)
	case "remote":
		if !k.remote.IsValid() {
			return ""
		}
		return k.remote.String()
	case "pid":
		return strconv.Itoa(k.pid)
	}
	return ""
}
