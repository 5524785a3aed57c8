package main

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Views of proc's and conn's rows: filters (--pid, --program, --user,
// --port, --remote) keep some rows, and --by groups the rows kept. Both
// come before sorting and --top, so that a filtered stream is complete
// and a group's bytes are exactly those of the rows it replaces.
//
// A view is made of process rows when it can be, and of connection rows
// when it needs a connection's endpoints: conn's rows, and proc's with
// --by remote, --port or --remote (proc's rows are then the connections
// grouped by process).

// groupKeys are the keys --by takes, in the order the help lists them.
var groupKeys = []string{"program", "user", "container", "netns", "remote"}

// filter keeps the rows that match every one of its parts given; a part
// of several values keeps a row that matches any of them.
type filter struct {
	pids     []int
	programs []string // shell globs on the program name
	users    []string // user names, or uids as numbers
	ports    []uint16 // either end's port (connections)
	remotes  []netip.Prefix
}

// String says the filter as its flags would, "" for none: --program
// "curl" --port "443".
func (f filter) String() string {
	var parts []string
	add := func(flag string, n int, item func(i int) string) {
		if n == 0 {
			return
		}
		vals := make([]string, n)
		for i := range vals {
			vals[i] = item(i)
		}
		parts = append(parts, fmt.Sprintf("--%s %q", flag, strings.Join(vals, ",")))
	}
	add("pid", len(f.pids), func(i int) string { return strconv.Itoa(f.pids[i]) })
	add("program", len(f.programs), func(i int) string { return f.programs[i] })
	add("user", len(f.users), func(i int) string { return f.users[i] })
	add("port", len(f.ports), func(i int) string { return strconv.Itoa(int(f.ports[i])) })
	add("remote", len(f.remotes), func(i int) string { return f.remotes[i].String() })
	return strings.Join(parts, " ")
}

// needsConns reports whether the filter looks at connections' endpoints.
func (f filter) needsConns() bool { return len(f.ports) > 0 || len(f.remotes) > 0 }

// keep reports whether row u passes the filter. A row of no process (pid
// 0) passes --pid 0 and a --program glob that matches its name, such as
// "(no socket)"; a row of no connection (not TCP or UDP) has no port or
// remote address, and passes no --port or --remote.
func (f filter) keep(u usage) bool {
	p := u.proc
	if len(f.pids) > 0 && !slices.Contains(f.pids, p.pid) {
		return false
	}
	if len(f.programs) > 0 && !slices.ContainsFunc(f.programs, func(g string) bool { ok, _ := path.Match(g, u.name); return ok }) {
		return false
	}
	if len(f.users) > 0 && !slices.Contains(f.users, p.user) {
		return false
	}
	if f.needsConns() {
		c := u.conn
		if c == nil || c.proto == 0 {
			return false
		}
		if len(f.ports) > 0 && !slices.Contains(f.ports, c.local.Port()) && !slices.Contains(f.ports, c.remote.Port()) {
			return false
		}
		if len(f.remotes) > 0 && !slices.ContainsFunc(f.remotes, func(p netip.Prefix) bool { return p.Contains(c.remote.Addr()) }) {
			return false
		}
	}
	return true
}

// maxGroups bounds the groups a view remembers: past it the quarter of
// them idle longest folds into the "(other)" group, whose bytes still
// count.
const maxGroups = 4096

// view filters and groups the rows of each report, and keeps each group's
// totals over the run: a group outlives the processes and connections it
// was made of.
type view struct {
	by       []string
	filter   filter
	conns    bool // the view is made of connections
	byProc   bool // connections grouped back into processes (proc without --by)
	groups   map[groupKey]*keptRow
	other    *keptRow // groups folded away; nil until one is
	folded   uint64   // groups folded away
	seq      int
	resolved func(netip.Addr) string // --resolve: an address's name, "" while not known; nil: none
}

// newView returns the view of m's rows that by and f ask for.
func newView(m mode, by []string, f filter) *view {
	v := &view{by: by, filter: f, groups: map[groupKey]*keptRow{}}
	v.conns = m == modeConn || slices.Contains(by, "remote") || f.needsConns()
	v.byProc = m == modeProc && v.conns && len(by) == 0
	return v
}

// apply returns the rows of report seq as the view shows them, from the
// process rows or the connection rows, whichever it is made of.
func (v *view) apply(seq int, procs, conns []usage) []usage {
	v.seq = seq
	rows := procs
	if v.conns {
		rows = conns
	}
	kept := rows[:0:0]
	for _, u := range rows {
		if v.filter.keep(u) {
			if v.resolved != nil && u.conn != nil && u.conn.proto != 0 {
				c := *u.conn
				c.remoteName = v.resolved(c.remote.Addr())
				u.conn = &c
			}
			kept = append(kept, u)
		}
	}
	if len(v.by) == 0 && !v.byProc {
		return kept
	}
	return v.group(kept)
}

// group adds rows to their groups and returns the groups active in this
// report, each with the sum of its rows' traffic and its totals since the
// start.
func (v *view) group(rows []usage) []usage {
	active := map[groupKey]*keptRow{}
	order := []groupKey{}
	for _, u := range rows {
		k := v.keyOf(u)
		g := v.groups[k]
		if g == nil {
			if len(v.groups) >= maxGroups {
				v.other = foldIdle(v.groups, maxGroups/4, v.other)
				v.folded += maxGroups / 4
			}
			g = &keptRow{u: v.newGroup(k, u)}
			v.groups[k] = g
		}
		if g.last != v.seq {
			g.last, g.u.interval = v.seq, traffic{}
			if g.u.group != nil {
				g.u.group.members = 0
			}
		}
		if active[k] == nil {
			active[k] = g
			order = append(order, k)
		}
		g.u.interval.add(u.interval)
		g.u.total.add(u.interval)
		if g.u.group != nil {
			g.u.group.members++
		}
		if v.byProc {
			g.u.name = u.name // the name the process has now
		}
	}
	out := make([]usage, 0, len(order))
	for _, k := range order {
		u := cloneGroup(active[k].u)
		if v.resolved != nil && k.remote.IsValid() {
			u.group.remoteName = v.resolved(k.remote)
		}
		out = append(out, u)
	}
	return out
}

// cloneGroup copies a group row, so that a report keeps the values it had.
func cloneGroup(u usage) usage {
	if u.group != nil {
		g := *u.group
		u.group = &g
	}
	return u
}

// keyOf returns the group of row u.
func (v *view) keyOf(u usage) groupKey {
	p := u.proc
	if v.byProc {
		return groupKey{pid: p.pid, start: p.start, reason: p.reason}
	}
	var k groupKey
	for _, by := range v.by {
		switch by {
		case "program":
			k.program = u.name
			if p.pid == 0 {
				k.reason = p.reason
			}
		case "user":
			k.user = p.user
		case "container":
			k.container = containerOf(p.cgroup)
		case "netns":
			k.netns = p.netns
		case "remote":
			if u.conn != nil && u.conn.proto != 0 {
				k.remote = u.conn.remote.Addr()
			}
		case "pid": // serve's alone
			k.pid = p.pid
		}
	}
	if p.pid == 0 && (k.program != "" || !slices.Contains(v.by, "remote")) {
		// Traffic of no process groups by why, whatever the keys: it has
		// no user or container to share with processes. --by remote
		// alone is iftop's view, by address, whoever sent it.
		k.reason = p.reason
	}
	return k
}

// newGroup makes the row of group k, whose first row is u.
func (v *view) newGroup(k groupKey, u usage) usage {
	if v.byProc {
		return usage{name: u.name, proc: u.proc}
	}
	return usage{name: k.label(v.by), group: &groupInfo{key: k, by: v.by}}
}

// label names a group in one string: its keys' values joined by "/", for
// the ledger and the name column's sort.
func (k groupKey) label(by []string) string {
	parts := make([]string, len(by))
	for i, b := range by {
		parts[i] = k.value(b)
	}
	if len(parts) > 0 && parts[0] == "" {
		parts[0] = k.reasonCell()
	}
	return strings.Join(parts, "/")
}
